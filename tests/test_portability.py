"""Every `vbg` command starts on Windows and macOS too: no Unix-only module is imported where it is not used.

Windows has no ``resource``, ``fcntl``, ``termios``, ``pwd`` or ``grp``. Each check runs in a fresh interpreter
with those names blocked in ``sys.modules`` (an import of a blocked name raises ImportError, as on Windows).
"""
import os
import subprocess
import sys

import pytest

from vbg_app import cli

UNIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")
BLOCKED = "import sys\nfor _n in {names!r}:\n    sys.modules[_n] = None\n".format(names=UNIX_ONLY)


def _blocked(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", BLOCKED + code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _vbg(*args: str) -> subprocess.CompletedProcess:
    return _blocked("from vbg_app import cli\nsys.exit(cli.main(sys.argv[1:]))", *args)


def test_the_blocking_works():
    proc = _blocked("import resource")
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


@pytest.mark.parametrize("command", [None, "run", "devices", *cli.COMMANDS])
def test_every_help_works_without_unix_only_modules(command):
    proc = _vbg(*([command] if command else []), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: vbg {command}" if command else "usage: vbg")


def test_a_demo_run_works_without_unix_only_modules(tmp_path):
    proc = _vbg("run", "--source", "demo", "--frames", "2", "--sink", f"file:{tmp_path / 'out.avi'}", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "vbg: 2 frames" in proc.stderr and (tmp_path / "out.avi").stat().st_size > 0


@pytest.mark.parametrize("module", ["vbg_app.tools.soak", "vbg_app.tools.stagebench", "vbg_app.tools.temporal_lab",
                                    "vbg_app.tools.budget", "vbg_app.tools.gt_video"])
def test_the_tools_start_without_unix_only_modules(module):
    proc = _blocked(f"import runpy\nsys.argv = ['{module}', '--help']\nrunpy.run_module('{module}', run_name='__main__')")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


def test_memory_figures_without_resource():
    proc = _blocked("from vbg_app import procinfo\nprint(procinfo.rss_mb(), procinfo.peak_rss_mb(), procinfo.os_threads())")
    assert proc.returncode == 0, proc.stderr
    rss, peak, threads = proc.stdout.split()
    assert float(rss) > 10 and float(peak) >= float(rss) and int(threads) >= 1


# what `vbg run` must never load: the tools, the other commands, the training stack, plotting and Qt
NOT_FOR_RUN = ("vbg_app.tools", "vbg_app.gui", "vbg_app.train", "torch", "matplotlib", "PySide6", "shiboken6")


def _loaded(names: set, packages=NOT_FOR_RUN) -> dict:
    return {p: sorted(m for m in names if m == p or m.startswith(p + ".")) for p in packages
            if any(m == p or m.startswith(p + ".") for m in names)}


def test_vbg_run_imports_no_tool_and_no_other_command():
    """The parser of `vbg run` is built without importing the other commands' modules."""
    proc = _blocked("from vbg_app import cli\ncli.build_parser('run')\n"
                    "print(' '.join(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    assert _loaded(set(proc.stdout.split())) == {}


def test_a_vbg_run_loads_only_the_frame_path(tmp_path):
    """A whole `vbg run` (parser, pipeline built, demo frames through it to a file) imports none of the tools,
    the training code, torch, matplotlib or Qt."""
    out = tmp_path / "out.avi"
    proc = _blocked("from vbg_app import cli\n"
                    f"rc = cli.main(['run', '--source', 'demo', '--frames', '3', '--sink', 'file:{out}', '--quiet'])\n"
                    "print(rc, ' '.join(sorted(sys.modules)))")
    assert proc.returncode == 0, proc.stderr
    rc, *names = proc.stdout.split()
    assert rc == "0" and out.stat().st_size > 0, proc.stderr
    assert "vbg_app.pipeline" in names and "onnxruntime" in names  # it did run the frame path
    assert _loaded(set(names)) == {}


@pytest.mark.parametrize("missing", ["torch", "yaml"])
def test_vbg_train_without_its_extra_says_so_in_one_line(monkeypatch, capsys, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # as if the train extra were not installed
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # vbg train sets it when unset: undone after the test
    assert cli.main(["train", "--config", "any.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: vbg train needs PyTorch and PyYAML (the train extra): {missing} is missing. "
                   "Install the train extra: pip install 'vbg[train]'.\n")


def test_a_command_without_its_extra_says_which_extra(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "vbg_app.train.export", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if the train extra were not installed
    assert cli.main(["export", "--help"]) == 2
    err = capsys.readouterr().err
    assert err == "error: vbg export cannot start: torch is missing. Install the train extra: pip install 'vbg[train]'.\n"
