"""The PyInstaller app bundle: build it, unpack the .tar.gz outside the source tree, run it with an empty
environment, install and uninstall it for a throw-away user.

Builds once per session with ``python packaging/build.py`` into a temporary folder (about a minute on a
2-core machine), or reuses ``$VBG_BUNDLE_TARBALL`` (a .tar.gz built earlier in the same run). Skips when
PyInstaller is not installed, unless ``VBG_REQUIRE_PACKAGING=1`` (CI sets it: there a skip would hide a
missing install step). Linux only: the .tar.gz and install.sh are Linux's; the spec itself is shared.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.packaging]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "packaging" / "build.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

if not sys.platform.startswith("linux"):
    pytest.skip("the .tar.gz and install.sh are Linux's (the spec is tested there too)", allow_module_level=True)
try:
    import PyInstaller  # noqa: F401
except ImportError:
    if os.environ.get("VBG_REQUIRE_PACKAGING") == "1":
        raise RuntimeError("VBG_REQUIRE_PACKAGING=1 but PyInstaller is not installed: pip install -e '.[packaging]'")
    pytest.skip("PyInstaller is not installed (pip install -e '.[packaging]')", allow_module_level=True)


def clean_env(home: Path, **extra) -> dict:
    """What a freshly downloaded app gets from a minimal desktop session: no PYTHONPATH, no venv, no LD_*."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    env.update(extra)
    return env


def run(cmd, home: Path, timeout=240, **extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=home, env=clean_env(home, **extra), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """{"tarball": Path, "info": vbg-build.json or {}}."""
    reuse = os.environ.get("VBG_BUNDLE_TARBALL")
    if reuse:
        tarball = Path(reuse)
        assert tarball.is_file(), f"VBG_BUNDLE_TARBALL={reuse} does not exist"
        info_path = tarball.parent / "vbg-build.json"
        return {"tarball": tarball, "info": json.loads(info_path.read_text()) if info_path.is_file() else {}}
    out = tmp_path_factory.mktemp("bundle")
    res = subprocess.run([sys.executable, str(BUILD), "--dist", str(out / "dist"), "--work", str(out / "work")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    print(res.stdout[-3000:])
    assert res.returncode == 0, f"build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    tarballs = list((out / "dist").glob("vbg-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    return {"tarball": tarballs[0], "info": json.loads((out / "dist" / "vbg-build.json").read_text())}


@pytest.fixture(scope="session")
def members(built) -> dict:
    with tarfile.open(built["tarball"]) as tar:
        return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}


@pytest.fixture
def unpacked(built, tmp_path) -> Path:
    """The tar.gz unpacked into a fresh folder outside the source tree; returns the app folder."""
    with tarfile.open(built["tarball"]) as tar:
        if sys.version_info >= (3, 12):
            tar.extractall(tmp_path / "unpacked", filter="tar")
        else:
            tar.extractall(tmp_path / "unpacked")
    (app,) = [p for p in (tmp_path / "unpacked").iterdir() if p.is_dir()]
    assert ROOT not in app.parents
    return app


def test_tarball_has_the_apps_data_and_no_dev_stacks(members, built):
    names = set(members)
    for need in ("vbg", "vbg-gui", "install.sh", "uninstall.sh", "vbg.desktop.in", "vbg.png", ".vbg-bundle"):
        assert need in names, need
    assert members["vbg"].mode & 0o111 and members["vbg-gui"].mode & 0o111
    assert members["install.sh"].mode & 0o111 and members["uninstall.sh"].mode & 0o111
    internal = {n[len("_internal/"):] for n in names if n.startswith("_internal/")}
    # every shipped model, background and the demo portrait, with their license files
    for pattern in ("models/*.onnx", "models/*.tflite", "models/LICENSE*", "assets/backgrounds/*.jpg",
                    "assets/backgrounds/LICENSES.md", "assets/demo/*.png", "assets/demo/*.json",
                    "assets/demo/LICENSE.md"):
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.is_file()]
        assert files, pattern
        for f in files:
            assert f in internal, f
    # Qt: the platform plugins a desktop (X11, Wayland) and the tests (offscreen) need
    plugins = {Path(n).name for n in internal if "/plugins/platforms/" in n}
    for need in ("libqoffscreen.so", "libqxcb.so", "libqminimal.so"):
        assert need in plugins, (need, plugins)
    assert not {"libqeglfs.so", "libqvnc.so", "libqlinuxfb.so"} & plugins
    # onnxruntime: every provider library the build environment's onnxruntime has
    import onnxruntime
    capi = Path(onnxruntime.__file__).parent / "capi"
    for lib in capi.glob("libonnxruntime_providers_*.so"):
        assert f"onnxruntime/capi/{lib.name}" in internal, lib.name
    # left out: training/plotting stacks, other GUI toolkits, unused Qt modules, OpenCV's own Qt plugins
    tops = {n.split("/")[0] for n in internal}
    for gone in ("torch", "matplotlib", "tkinter", "_tkinter", "scipy", "pytest", "PyQt5"):
        assert gone not in tops, gone
    assert not [n for n in internal if n.startswith("cv2/qt/")]
    qt_py = {Path(n).name.split(".")[0] for n in internal if n.startswith("PySide6/Qt") and n.endswith(".abi3.so")}
    assert {"QtCore", "QtGui", "QtWidgets"} <= qt_py
    for gone in ("QtWebEngineCore", "QtQml", "QtQuick", "QtNetwork", "QtMultimedia", "QtPdf", "QtSql"):
        assert gone not in qt_py, gone
    assert built["info"].get("warnings", []) == [], built["info"]["warnings"]


def test_runs_outside_the_source_tree_in_a_clean_environment(unpacked, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    res = run([unpacked / "vbg", "--version"], home)
    assert res.returncode == 0 and res.stdout.startswith("vbg "), res.stderr
    res = run([unpacked / "vbg", "run", "--source", "demo", "--sink", "null", "--frames", "30"], home)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "vbg: 30 frames" in res.stderr, res.stderr[-3000:]
    shot = home / "shot.png"
    res = run([unpacked / "vbg-gui", "--source", "demo", "--screenshot", shot, "--quit-after-frames", "10"], home)
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.read_bytes()[:8] == PNG_MAGIC
    import cv2
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 300 and img.std() > 10
    # the same through the CLI's subcommand
    shot2 = home / "shot2.png"
    res = run([unpacked / "vbg", "gui", "--source", "demo", "--screenshot", shot2, "--quit-after-frames", "3"], home)
    assert res.returncode == 0 and shot2.read_bytes()[:8] == PNG_MAGIC, res.stderr[-3000:]


def test_left_out_commands_say_so_in_one_line(unpacked, tmp_path):
    res = run([unpacked / "vbg", "train", "--config", "x.yaml"], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "PyTorch" in res.stderr and "Traceback" not in res.stderr


def test_install_and_uninstall_for_the_user(unpacked, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    res = run(["/bin/sh", unpacked / "install.sh"], home)
    assert res.returncode == 0, res.stdout + res.stderr
    dest = home / ".local" / "lib" / "vbg"
    bin_vbg = home / ".local" / "bin" / "vbg"
    desktop = home / ".local" / "share" / "applications" / "vbg.desktop"
    icon = home / ".local" / "share" / "icons" / "hicolor" / "256x256" / "apps" / "vbg.png"
    assert bin_vbg.is_symlink() and os.readlink(bin_vbg) == str(dest / "vbg")
    assert (home / ".local" / "bin" / "vbg-gui").is_symlink()
    assert icon.read_bytes()[:8] == PNG_MAGIC
    entry = desktop.read_text()
    assert f'Exec="{dest}/vbg-gui"' in entry and "Icon=vbg" in entry and "Type=Application" in entry
    # the installed app runs through the link (the bootloader finds _internal beside the real file)
    res = run([bin_vbg, "run", "--source", "demo", "--sink", "null", "--frames", "3", "--quiet"], home)
    assert res.returncode == 0, res.stderr[-3000:]
    # the user's own data (vbg's data folder, ~/.local/share/vbg) survives reinstall and uninstall
    user_bg = home / ".local" / "share" / "vbg" / "backgrounds" / "mine.jpg"
    user_bg.parent.mkdir(parents=True)
    user_bg.write_bytes(b"x")
    res = run(["/bin/sh", unpacked / "install.sh"], home)
    assert res.returncode == 0, res.stdout + res.stderr
    res = run(["/bin/sh", dest / "uninstall.sh"], home)
    assert res.returncode == 0, res.stdout + res.stderr
    for gone in (dest, bin_vbg, home / ".local" / "bin" / "vbg-gui", desktop, icon):
        assert not os.path.lexists(gone), gone
    assert user_bg.is_file()


@pytest.fixture
def xvfb_display():
    """A throw-away X server (Xvfb) for the xcb platform plugin, which real Linux desktops use; skips without."""
    import shutil
    exe = shutil.which("Xvfb")
    if not exe:
        pytest.skip("Xvfb is not installed (apt install xvfb): the xcb platform plugin is not exercised")
    proc = subprocess.Popen([exe, "-displayfd", "1", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line.isdigit():
            pytest.skip(f"Xvfb did not start ({line!r})")
        yield f":{line}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_gui_runs_on_x11_through_the_bundled_xcb_plugin(unpacked, tmp_path, xvfb_display):
    shot = tmp_path / "xcb.png"
    env = clean_env(tmp_path, DISPLAY=xvfb_display)
    del env["QT_QPA_PLATFORM"]  # Qt picks xcb from DISPLAY, as on a desktop
    res = subprocess.run([str(unpacked / "vbg-gui"), "--source", "demo", "--screenshot", str(shot),
                          "--quit-after-frames", "5"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    # (Qt aborts when the platform plugin from DISPLAY does not load: there is no silent fallback)
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.read_bytes()[:8] == PNG_MAGIC
