"""Ctrl+C at any moment of ``vbg run``'s start-up ends it with exit 130, no traceback and no false
"onnxruntime is not installed" (issue #17, attack 8); a Ctrl+C once frames flow stops the run cleanly (exit 0)."""
from __future__ import annotations

import builtins
import importlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vbg_app import cli

ROOT = Path(__file__).resolve().parents[1]

# `python -m vbg_app ARGS`, but saying "up" once the interpreter itself has started (site imported): a Ctrl+C
# before that is CPython's own start-up ("Fatal Python error: init_import_site"), which no program can catch.
_LAUNCH = ("import runpy, sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.argv = ['vbg'] + sys.argv[1:]; "
           "runpy.run_module('vbg_app', run_name='__main__', alter_sys=True)")


def _default_sigint() -> None:
    """In the child: Ctrl+C as a terminal delivers it. A test runner started in the background by a shell
    without job control has SIGINT ignored, and children inherit that (a Ctrl+C would then never arrive)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str, code: str = _LAUNCH) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint if sys.platform != "win32" else None)


def _clean(err: str) -> None:
    for bad in ("Traceback", "not installed", "Exception ignored", "KeyboardInterrupt", "Fatal Python error"):
        assert bad not in err, err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is a console event on Windows")
@pytest.mark.parametrize("delay", [0.05, 0.2, 0.35, 0.5, 1.0, 2.0])
def test_ctrl_c_at_any_moment_of_start_up_exits_130_without_a_traceback(delay):
    """Delays from the interpreter being up: importing vbg's CLI, numpy/cv2/onnxruntime, loading the model,
    opening the demo source, the first frames. 130 while starting; 0 when frames were already flowing (the run
    stops and prints its summary, as a Ctrl+C in the middle of a run always did)."""
    proc = _start("run", "--source", "demo", "--sink", "null", "--quiet")
    try:
        assert proc.stdout.readline().strip() == "up"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    _clean(err)
    if proc.returncode == 0:
        assert " frames" in err.strip().splitlines()[-1], err  # stopped cleanly: the summary line
    else:
        assert proc.returncode == 130, (proc.returncode, err)


@pytest.mark.parametrize("module", ["vbg_app.errors", "vbg_app.cli"])
def test_ctrl_c_while_python_imports_the_cli_module_exits_130(module):
    """A KeyboardInterrupt raised by the module-level imports of vbg_app.cli / vbg_app.__main__ (before
    errors.guarded runs): exit 130, no traceback."""
    code = ("import builtins, runpy, sys\n"
            "real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            f"    if name == {module!r}:\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "sys.argv = ['vbg', 'run', '--sink', 'null']\n"
            "runpy.run_module('vbg_app', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    _clean(proc.stderr)


def _interrupted_import_error() -> ImportError:
    """What pybind11 (onnxruntime's C extension) raises when Ctrl+C hits its initialisation."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise ImportError("initialization failed") from ki
    except ImportError as exc:
        return exc


@pytest.fixture
def failing_import(monkeypatch):
    """``failing_import(name, exc)``: ``import name`` raises ``exc`` (``name`` stays importable otherwise)."""
    real = builtins.__import__

    def install(name: str, exc: BaseException) -> None:
        def imp(n, *args, **kwargs):
            if n == name or n.startswith(name + "."):
                raise exc
            return real(n, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", imp)

    return install


@pytest.mark.parametrize("exc", [_interrupted_import_error(), KeyboardInterrupt()], ids=["pybind11", "plain"])
def test_ctrl_c_inside_the_onnxruntime_import_is_not_reported_as_missing(failing_import, capsys, tmp_path, exc):
    failing_import("onnxruntime", exc)
    assert cli.main(["run", "--source", "demo", "--sink", "null", "--frames", "1", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "not installed" not in err and "error:" not in err, err


def test_an_onnxruntime_that_is_installed_but_does_not_load_is_not_called_missing(failing_import, capsys):
    """numpy's import_array turns a Ctrl+C during its import into ``ImportError: import numpy failed`` with
    no trace of the interrupt: onnxruntime is installed, so vbg must not say it is not."""
    failing_import("onnxruntime", ImportError("import numpy failed"))
    assert cli.main(["run", "--source", "demo", "--sink", "null", "--frames", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not installed" not in err and "onnxruntime is installed but does not load (import numpy failed)" in err


def test_ctrl_c_inside_a_commands_import_is_not_reported_as_a_missing_extra(monkeypatch, capsys):
    real = importlib.import_module

    def imp(name, *args, **kwargs):
        if name == "vbg_app.train.cli":
            raise _interrupted_import_error()
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", imp)
    assert cli.main(["train", "--config", "x.yaml"]) == 130
    err = capsys.readouterr().err
    assert "missing" not in err and "error:" not in err, err


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
def test_a_ctrl_c_that_python_loses_during_start_up_still_stops_vbg(monkeypatch, capsys):
    """SIGINT handled inside a __del__ (or a weakref callback of the import machinery): Python prints
    "Exception ignored" and carries on; vbg still ends with 130 before the first frame, printing nothing."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("another SIGINT handler is installed")
    real = builtins.__import__

    class Interrupts:
        def __del__(self):
            signal.raise_signal(signal.SIGINT)
            sum(range(10))  # bytecode to run the handler in: its KeyboardInterrupt is lost

    def imp(name, *args, **kwargs):
        if name == "vbg_app.pipeline":
            Interrupts()
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", imp)
    assert cli.main(["run", "--source", "demo", "--sink", "null", "--frames", "3", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and " frames" not in err, err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # main() put Python's handler back
