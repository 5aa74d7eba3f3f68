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


def test_vbg_run_imports_no_tool_and_no_other_command():
    """The parser of `vbg run` is built without importing the other commands' modules."""
    proc = _blocked("from vbg_app import cli\ncli.build_parser('run')\n"
                    "print(' '.join(sorted(m for m in sys.modules if m.startswith('vbg_app'))))")
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    for package in ("vbg_app.tools", "vbg_app.gui", "vbg_app.train"):
        assert not {m for m in loaded if m == package or m.startswith(package + ".")}, package


def test_a_command_without_its_extra_says_which_extra(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "vbg_app.train.export", raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)  # as if the train extra were not installed
    assert cli.main(["export", "--help"]) == 2
    err = capsys.readouterr().err
    assert err == "error: vbg export cannot start: torch is missing. Install the train extra: pip install 'vbg[train]'.\n"
