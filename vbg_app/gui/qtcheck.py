"""Start-up checks that turn a Qt install that cannot run the window into one clear line (exit code 3).

* :func:`check_xcb_libraries` (before the QApplication exists): on Linux, when Qt would use its xcb platform
  plugin, ``ldd`` the plugin and list the system libraries it cannot find. Without them Qt prints "could not
  load the Qt platform plugin xcb" (or only ``Aborted``) and the process dies; we say which Debian/Ubuntu
  packages to install instead.
* :func:`check_paint_refcount` (before the window is built): PySide6-Essentials 6.12.0 lowers ``None``'s
  reference count on every ``QPainter.setBrush``/``setPen``/``fillRect``/``drawRoundedRect``... call. Before
  Python 3.12 ``None`` is an ordinary object, so it gets freed and the app aborts with
  ``Fatal Python error: none_dealloc`` within a minute (issue #13). We paint a few hundred times on a QImage,
  see whether the count fell, and refuse to start if it did.

The decisions are pure functions of their inputs (ldd's text, the environment, measured numbers), so tests
can check them without the broken library or a bare system.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

from vbg_app.errors import DeviceUnavailable

log = logging.getLogger(__name__)


class QtUnusable(DeviceUnavailable):
    """Qt cannot run vbg's window on this system as installed (exit code 3)."""


# -- xcb platform plugin: missing system libraries ---------------------------------------------------------
# shared library (as ldd names it) -> the Debian/Ubuntu package that ships it
APT_PACKAGES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}


def uses_xcb(env: Mapping[str, str], system: str) -> bool:
    """Whether Qt will try its xcb (X11) platform plugin: Linux, and QT_QPA_PLATFORM asks for xcb first, or is
    unset in an X11 session (DISPLAY set, no WAYLAND_DISPLAY). Offscreen, Wayland, Windows, macOS: False."""
    if system != "Linux":
        return False
    wanted = env.get("QT_QPA_PLATFORM", "").strip()
    if wanted:
        return wanted.split(";")[0].split(":")[0].strip() == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries ldd reports as ``NAME => not found``, each once, in ldd's order."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, sep, where = line.strip().partition("=>")
        if sep and where.strip() == "not found" and name.strip() and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def apt_packages(libraries: list[str]) -> tuple[list[str], list[str]]:
    """(Debian/Ubuntu packages to install, libraries without a known package), both without repeats."""
    packages: list[str] = []
    unknown: list[str] = []
    for lib in libraries:
        pkg = APT_PACKAGES.get(lib)
        if pkg is None:
            unknown.append(lib)
        elif pkg not in packages:
            packages.append(pkg)
    return packages, unknown


def xcb_plugin_files() -> list[Path]:
    """Qt's xcb platform plugin and its integration library, those that exist (PySide6 wheel or system Qt)."""
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    libs = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.LibrariesPath))
    files = [plugins / "platforms" / "libqxcb.so"]
    files += sorted(libs.glob("libQt6XcbQpa.so*"))[:1]
    return [f for f in files if f.is_file()]


def run_ldd(path: Path) -> str | None:
    """ldd's output for ``path``; None when ldd is not there or fails to run."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        return subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("ldd %s failed: %s", path, exc)
        return None


def xcb_error(libraries: list[str]) -> QtUnusable:
    """The error for an xcb plugin that misses ``libraries`` (what is missing, and the apt command)."""
    packages, unknown = apt_packages(libraries)
    fix = []
    if packages:
        fix.append(f"install them: sudo apt install {' '.join(packages)}")
    if unknown:
        fix.append(f"find the package for {', '.join(unknown)} with apt-file search (or your distribution's "
                   "package search)")
    return QtUnusable(f"the Qt platform plugin xcb cannot load: the system lacks {', '.join(libraries)} "
                      "(the window would only print 'Aborted')", "; ".join(fix))


def check_xcb_libraries(env: Mapping[str, str] | None = None, system: str | None = None,
                        files: list[Path] | None = None, ldd: Callable[[Path], str | None] | None = None) -> None:
    """Raise :class:`QtUnusable` when Qt would use xcb and ldd finds its libraries missing; otherwise (not xcb,
    no ldd, no plugin file) do nothing. Call before the QApplication is created. The defaults (this process's
    environment and OS, :func:`xcb_plugin_files`, :func:`run_ldd`) are looked up at call time."""
    env = os.environ if env is None else env
    system = platform.system() if system is None else system
    ldd = run_ldd if ldd is None else ldd
    if not uses_xcb(env, system):
        return
    missing: list[str] = []
    for path in xcb_plugin_files() if files is None else files:
        out = ldd(path)
        if out is None:
            return
        missing += [lib for lib in missing_libraries(out) if lib not in missing]
    if missing:
        raise xcb_error(missing)


# -- PySide6 6.12.0 on Python < 3.12: None's reference count falls while painting ------------------------------
PAINT_CALLS = 200


def paint_probe(rounds: int = PAINT_CALLS // 4, warmup: int = 10) -> int:
    """How far ``None``'s reference count fell over ``rounds`` x (setBrush, setPen, fillRect, drawRoundedRect)
    on a small QImage: about 0 on a sound PySide6, about one per call on a broken one.

    ``warmup`` rounds go first, unmeasured: PySide6's first calls fill caches that hold ``None`` and would hide
    part of the fall. The probe holds extra references to ``None`` while it paints and gives back the ones it
    saw lost (:func:`restore_none_refs`), so it never brings ``None`` closer to being freed.
    """
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QImage, QPainter

    def paint(n: int) -> int:
        before = sys.getrefcount(None)
        for k in range(n):
            painter.setBrush(QColor(40, 120, k % 256))
            painter.setPen(QColor(k % 256, 40, 120))
            painter.fillRect(QRectF(0, 0, 16, 16), QColor(200, 200, k % 256))
            painter.drawRoundedRect(QRectF(1, 1, 12, 12), 3, 3)
        return before - sys.getrefcount(None)

    ballast = [None] * 10_000  # noqa: F841  (a margin while painting)
    image = QImage(16, 16, QImage.Format.Format_ARGB32_Premultiplied)
    painter = QPainter(image)
    try:
        restore_none_refs(paint(warmup))
        drop = paint(rounds)
    finally:
        painter.end()
    restore_none_refs(drop)
    return drop


def restore_none_refs(count: int) -> None:
    """Give ``None`` back ``count`` references that a broken extension took (no-op for count <= 0 and on
    Python 3.12+, where ``None`` is immortal)."""
    if count <= 0 or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    import ctypes

    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    for _ in range(count):
        incref(None)


def paint_verdict(drop: int, calls: int, python: tuple[int, int], pyside_version: str) -> QtUnusable | None:
    """The error to refuse start-up with when ``None``'s count fell by ``drop`` over ``calls`` paint calls on
    Python ``python``; None when that is harmless (no real fall, or Python 3.12+ where None is immortal)."""
    if tuple(python) >= (3, 12) or drop < max(10, calls // 4):
        return None
    py = f"{python[0]}.{python[1]}"
    return QtUnusable(
        f"PySide6 {pyside_version} on Python {py} has a bug that crashes the app within a minute (None's "
        f"reference count falls on every paint: {drop} over {calls} calls)",
        f'install another PySide6: pip install "PySide6-Essentials>=6.6,{_before(pyside_version)}" '
        "(or run vbg on Python 3.12 or newer)")


def _before(version: str) -> str:
    """A pip constraint that leaves out ``version``'s whole minor series ("6.12.0" -> "<6.12", as vbg's own
    requirements do for 6.12 on Python < 3.12), or just ``version`` when it does not parse."""
    parts = version.split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"<{parts[0]}.{parts[1]}"
    return f"!={version}"


def check_paint_refcount(probe: Callable[[], int] | None = None, python: tuple[int, int] | None = None,
                         pyside_version: str | None = None) -> None:
    """Raise :class:`QtUnusable` when painting lowers ``None``'s reference count on a Python where that is
    fatal. Needs a QGuiApplication; on Python 3.12+ it does not paint at all. The defaults
    (:func:`paint_probe`, this Python, the installed PySide6) are looked up at call time."""
    probe = paint_probe if probe is None else probe
    python = tuple(sys.version_info[:2]) if python is None else tuple(python)
    if python >= (3, 12):
        return
    if pyside_version is None:
        import PySide6
        pyside_version = PySide6.__version__
    drop = probe()
    log.debug("paint probe: None's reference count changed by %d over %d calls", -drop, PAINT_CALLS)
    error = paint_verdict(drop, PAINT_CALLS, python, pyside_version)
    if error is not None:
        raise error
