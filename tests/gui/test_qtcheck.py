"""The start-up checks in vbg_app.gui.qtcheck: PySide6's paint bug (issue #13) and missing xcb libraries.

The decisions are tested with fake numbers and a fake ldd, so these tests do not depend on the PySide6 or the
system libraries installed here; one test per check runs ``vbg-gui`` to see the exit code and the line."""
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vbg_app.errors import EXIT_DEVICE_UNAVAILABLE
from vbg_app.gui import qtcheck
from vbg_app.gui.qtcheck import QtUnusable

ROOT = Path(__file__).resolve().parents[2]


# -- PySide6 6.12.0: None's reference count falls while painting ---------------------------------------------
@pytest.mark.parametrize("drop, python, refused", [
    (200, (3, 11), True),     # the bug: one per call
    (120, (3, 10), True),
    (55, (3, 11), True),      # a partial fall is still the bug
    (0, (3, 11), False),      # a sound PySide6
    (-40, (3, 11), False),    # the count rose (caches filled)
    (30, (3, 11), False),     # noise
    (200, (3, 12), False),    # None is immortal from 3.12 on: harmless
    (200, (3, 13), False),
])
def test_paint_verdict(drop, python, refused):
    error = qtcheck.paint_verdict(drop, 200, python, "6.12.0")
    assert (error is not None) == refused
    if refused:
        line = error.one_line()
        assert isinstance(error, QtUnusable) and error.exit_code == EXIT_DEVICE_UNAVAILABLE == 3
        assert f"PySide6 6.12.0 on Python {python[0]}.{python[1]}" in line and "crashes" in line
        assert 'pip install "PySide6-Essentials>=6.6,<6.12"' in line  # as pyproject.toml pins it
        assert "\n" not in line


def test_the_check_names_the_installed_version_and_uses_the_probe():
    calls = []

    def probe():
        calls.append(1)
        return 200

    with pytest.raises(QtUnusable) as info:
        qtcheck.check_paint_refcount(probe=probe, python=(3, 11), pyside_version="6.12.7")
    assert calls == [1] and "PySide6 6.12.7 on Python 3.11" in str(info.value) and ",<6.12" in str(info.value)
    with pytest.raises(QtUnusable, match="!=custom"):  # a version without X.Y: leave out just it
        qtcheck.check_paint_refcount(probe=probe, python=(3, 11), pyside_version="custom")
    qtcheck.check_paint_refcount(probe=lambda: 0, python=(3, 11), pyside_version="6.12.7")  # sound: no error
    qtcheck.check_paint_refcount(probe=lambda: pytest.fail("probed on 3.12"), python=(3, 12), pyside_version="x")


def test_the_real_probe_gives_back_what_it_saw_lost(qtbot):
    """(On a broken PySide6 it measures ~200 here; test_paint_refcount.py fails then.)"""
    before = sys.getrefcount(None)
    drop = qtcheck.paint_probe()
    assert sys.getrefcount(None) >= before - 20, drop  # what it saw lost was given back
    if sys.version_info >= (3, 12):
        assert drop == 0


def test_restore_none_refs_gives_references_back():
    if sys.version_info >= (3, 12):
        pytest.skip("None is immortal")
    before = sys.getrefcount(None)
    qtcheck.restore_none_refs(100)
    assert sys.getrefcount(None) - before >= 95  # (a few references may come and go meanwhile)
    qtcheck.restore_none_refs(0)
    qtcheck.restore_none_refs(-5)


def test_start_up_refuses_a_broken_pyside_with_exit_3(qtbot, gui_dirs, monkeypatch, capsys, restore_log_handlers):
    """``vbg-gui`` (gui.main) with a probe that sees the fall: one line with the fix, exit code 3, no window."""
    import vbg_app.gui as gui
    from vbg_app.gui import main_window

    monkeypatch.setattr(qtcheck, "check_paint_refcount", functools.partial(
        qtcheck.check_paint_refcount, probe=lambda: 200, python=(3, 11), pyside_version="6.12.0"))
    monkeypatch.setattr(main_window, "MainWindow", lambda *a, **k: pytest.fail("the window was built"))
    rc = gui.main(["--source", "demo", "--screenshot", str(gui_dirs[1] / "shot.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3
    assert err[-1].startswith("error: PySide6 6.12.0 on Python 3.11 has a bug that crashes the app within a minute")
    assert 'pip install "PySide6-Essentials>=6.6,<6.12"' in err[-1]


# -- xcb platform plugin: missing system libraries -----------------------------------------------------------
LDD_BARE_DEBIAN = textwrap.dedent("""\
    \tlinux-vdso.so.1 (0x00007ffd6b1f2000)
    \tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1e2c000000)
    \tlibxkbcommon-x11.so.0 => not found
    \tlibxcb-cursor.so.0 => not found
    \tlibxcb-icccm.so.4 => not found
    \tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f1e2bfe0000)
    \tlibxcb-keysyms.so.1 => not found
    \tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f1e2bfb0000)
    \tlibxcb-icccm.so.4 => not found
    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1e2bc00000)
    \t/lib64/ld-linux-x86-64.so.2 (0x00007f1e2c5a0000)
    """)
LDD_COMPLETE = "\n".join(line for line in LDD_BARE_DEBIAN.splitlines() if "not found" not in line)


@pytest.mark.parametrize("output, missing", [
    (LDD_BARE_DEBIAN, ["libxkbcommon-x11.so.0", "libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1"]),
    (LDD_COMPLETE, []),
    ("", []),
    ("\tnot a dynamic executable\n", []),
    ("\tlibfoo.so.2 => not found\n\tlibxcb-xinerama.so.0 => not found\n", ["libfoo.so.2", "libxcb-xinerama.so.0"]),
])
def test_missing_libraries_from_ldd(output, missing):
    assert qtcheck.missing_libraries(output) == missing


@pytest.mark.parametrize("libraries, packages, unknown", [
    (["libxcb-icccm.so.4", "libxcb-keysyms.so.1"], ["libxcb-icccm4", "libxcb-keysyms1"], []),
    (["libxcb-cursor.so.0", "libxcb-image.so.0", "libxcb-render-util.so.0", "libxcb-xinerama.so.0",
      "libxcb-shape.so.0", "libxkbcommon-x11.so.0", "libxcb-randr.so.0"],
     ["libxcb-cursor0", "libxcb-image0", "libxcb-render-util0", "libxcb-xinerama0", "libxcb-shape0",
      "libxkbcommon-x11-0", "libxcb-randr0"], []),
    (["libglib-2.0.so.0", "libgthread-2.0.so.0"], ["libglib2.0-0"], []),  # one package, named once
    (["libfoo.so.2", "libxcb-icccm.so.4"], ["libxcb-icccm4"], ["libfoo.so.2"]),
    ([], [], []),
])
def test_apt_packages(libraries, packages, unknown):
    assert qtcheck.apt_packages(libraries) == (packages, unknown)


@pytest.mark.parametrize("env, system, xcb", [
    ({"DISPLAY": ":0"}, "Linux", True),                                   # an X11 session
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "Linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "Linux", True),                          # asked for (no DISPLAY: still xcb)
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb;wayland"}, "Linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "Linux", False),  # tests, --screenshot on a server
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "Linux", False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "Linux", False),  # a Wayland session
    ({}, "Linux", False),                                                 # no display at all
    ({"DISPLAY": ":0"}, "Windows", False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "Darwin", False),
])
def test_uses_xcb(env, system, xcb):
    assert qtcheck.uses_xcb(env, system) is xcb


def test_check_xcb_libraries_raises_with_the_apt_command():
    seen = []

    def ldd(path):
        seen.append(path.name)
        return LDD_BARE_DEBIAN if path.name == "libqxcb.so" else "\tlibxcb-xinerama.so.0 => not found\n"

    files = [Path("/qt/plugins/platforms/libqxcb.so"), Path("/qt/lib/libQt6XcbQpa.so.6")]
    with pytest.raises(QtUnusable) as info:
        qtcheck.check_xcb_libraries({"DISPLAY": ":0"}, "Linux", files=files, ldd=ldd)
    line = info.value.one_line()
    assert seen == ["libqxcb.so", "libQt6XcbQpa.so.6"] and info.value.exit_code == 3
    assert "Qt platform plugin xcb" in line and "libxcb-icccm.so.4" in line and "libxcb-xinerama.so.0" in line
    assert ("sudo apt install libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0"
            in line)
    assert "\n" not in line


def test_check_xcb_libraries_skips_what_it_cannot_or_need_not_check():
    files = [Path("/qt/plugins/platforms/libqxcb.so")]
    never = lambda path: pytest.fail("ldd ran")  # noqa: E731
    qtcheck.check_xcb_libraries({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "Linux", files=files, ldd=never)
    qtcheck.check_xcb_libraries({"DISPLAY": ":0"}, "Windows", files=files, ldd=never)
    qtcheck.check_xcb_libraries({"DISPLAY": ":0"}, "Linux", files=files, ldd=lambda path: None)  # no ldd
    qtcheck.check_xcb_libraries({"DISPLAY": ":0"}, "Linux", files=[], ldd=never)  # no plugin file found
    qtcheck.check_xcb_libraries({"DISPLAY": ":0"}, "Linux", files=files, ldd=lambda path: LDD_COMPLETE)


@pytest.mark.skipif(sys.platform != "linux", reason="the xcb check runs on Linux only")
def test_vbg_gui_on_a_bare_desktop_exits_3_with_the_install_command(tmp_path):
    """A fresh process, as ``vbg-gui`` on an X11 desktop (DISPLAY set, QT_QPA_PLATFORM unset), with ldd faked to
    report what a fresh Debian lacks: one line naming the packages and exit code 3, before Qt could abort."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""\
        import sys
        from vbg_app.gui import qtcheck
        qtcheck.run_ldd = lambda path: {LDD_BARE_DEBIAN!r}
        from vbg_app import gui
        sys.exit(gui.main(["--source", "demo", "--screenshot", {str(tmp_path / "shot.png")!r}]))
        """))
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update(DISPLAY=":99", VBG_CONFIG_DIR=str(tmp_path / "c"), VBG_DATA_DIR=str(tmp_path / "d"))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT)
    assert proc.returncode == 3, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the Qt platform plugin xcb cannot load")
    assert last.endswith("sudo apt install libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1.")
    assert not (tmp_path / "shot.png").exists()
