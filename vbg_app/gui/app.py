"""Start-up of the desktop app: Qt environment, logging, exception hooks, folders, then the window.

Order matters: the Qt environment fix (``qtenv``) runs before PySide6 creates the application; the checks in
``qtcheck`` (missing xcb libraries before the application exists, PySide6's paint bug before the window is
built) end start-up with one line and exit code 3 instead of an abort; logging and the exception hooks are in
place before the window exists, so nothing can crash silently: an uncaught exception in the GUI thread or any
other thread is logged with its traceback to ``<data_dir>/logs/vbg-gui.log`` and shown in a dialog.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6)

import logging
import logging.handlers
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from vbg_app.errors import BadInput, VbgError
from vbg_app.gui.settings import SettingsStore, config_dir, data_dir, log_dir

log = logging.getLogger("vbg.gui")
LOG_FILE = "vbg-gui.log"


def setup_logging(verbose: bool = False) -> str:
    """Log to ``<data_dir>/logs/vbg-gui.log`` (rotated) and stderr; returns the log file's path ("" if none)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        stream = logging.StreamHandler()
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    path = log_dir() / LOG_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not any(isinstance(h, logging.FileHandler) and getattr(h, "baseFilename", "") == str(path)
                   for h in root.handlers):
            fh = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
            fh.setLevel(logging.DEBUG if verbose else logging.INFO)
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
            root.addHandler(fh)
    except OSError as exc:
        log.warning("cannot write the log file %s: %s", path, exc)
        return ""
    return str(path)


class CrashReporter(QObject):
    """Uncaught exceptions → log + a dialog (in the GUI thread, one at a time, never a silent crash)."""

    _show = Signal(str, str)

    def __init__(self, log_path: str, interactive: bool = True) -> None:
        super().__init__()
        self.log_path = log_path
        self.interactive = interactive
        self._showing = False
        self._show.connect(self._dialog)
        self.count = 0

    def install(self) -> None:
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook

    def excepthook(self, etype, value, tb) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        self._report(etype, value, tb, "the GUI thread")

    def thread_excepthook(self, args) -> None:
        if args.exc_type is SystemExit:
            return
        self._report(args.exc_type, args.exc_value, args.exc_traceback, f"thread {args.thread.name if args.thread else '?'}")

    def _report(self, etype, value, tb, where: str) -> None:
        self.count += 1
        text = "".join(traceback.format_exception(etype, value, tb))
        log.critical("uncaught exception in %s:\n%s", where, text)
        summary = value.one_line() if isinstance(value, VbgError) else f"{etype.__name__}: {value}"
        self._show.emit(summary, text)

    def _dialog(self, summary: str, details: str) -> None:
        if not self.interactive or self._showing:
            return
        self._showing = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, "vbg: unexpected error",
                              f"Something went wrong: {summary}\n\nvbg keeps running. If it misbehaves, restart it. "
                              f"Details are in the log{': ' + self.log_path if self.log_path else ''}.")
            box.setDetailedText(details)
            box.exec()
        finally:
            self._showing = False


def _absolute(spec: str | None) -> str | None:
    """``image:rel/path`` → ``image:/abs/path`` (settings outlive the working folder)."""
    if not spec:
        return spec
    kind, sep, arg = spec.partition(":")
    if sep and kind in ("image", "video") and arg:
        return f"{kind}:{_resolved(arg)}"
    return spec


def _resolved(path: str) -> str:
    """``path`` made absolute; a symbolic link loop stays as given (the worker then says what it is)."""
    p = Path(path).expanduser()
    try:
        return str(p.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        return os.path.abspath(p)


def _parse_window_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    from vbg_app.config import parse_size
    return parse_size(text)


def run_app(args) -> int:
    verbose = bool(getattr(args, "verbose", False))
    log_path = setup_logging(verbose)
    screenshot = getattr(args, "screenshot", None)
    quit_after = getattr(args, "quit_after_frames", None)
    if quit_after is not None and quit_after < 1:
        raise BadInput(f"--quit-after-frames {quit_after} must be at least 1", "use e.g. --quit-after-frames 30")
    win_size = _parse_window_size(getattr(args, "size", None))
    if getattr(args, "provider", None) is not None:
        from vbg_app.engines.onnx_engine import PROVIDERS
        if args.provider not in ("auto", *PROVIDERS):  # the saved settings would only reset it at the next start
            raise BadInput(f"unknown provider {args.provider!r}", f"use one of auto, {', '.join(PROVIDERS)}")
    if getattr(args, "background", None):
        from vbg_app.compose import parse_background
        parse_background(args.background).close()  # a typo is reported now, like `vbg run` does

    from vbg_app.gui import qtcheck

    app = QApplication.instance()
    if app is None:
        try:
            qtcheck.check_xcb_libraries()  # Qt would abort (only "Aborted") without them
        except qtcheck.QtUnusable as exc:
            log.info("refused to start: %s", exc.one_line())  # the file only: guarded() prints the line
            raise
        app = QApplication(sys.argv[:1])
    try:
        qtcheck.check_paint_refcount()  # PySide6 6.12.0 on Python < 3.12 would crash within a minute (issue #13)
    except qtcheck.QtUnusable as exc:
        log.info("refused to start: %s", exc.one_line())
        if not (screenshot or quit_after):  # started from a menu, stderr is nowhere: say it in a dialog too
            QMessageBox.critical(None, "vbg cannot start", exc.one_line())
        raise
    app.setApplicationName("vbg")
    app.setApplicationDisplayName("vbg")
    app.setDesktopFileName("vbg")
    reporter = CrashReporter(log_path, interactive=not screenshot)
    reporter.install()
    log.info("vbg gui starting; settings in %s, data in %s, Qt platform %s", config_dir(), data_dir(),
             app.platformName())

    from vbg_app.gui.main_window import MainWindow
    from vbg_app.gui.tray import app_icon, tray_available

    app.setWindowIcon(app_icon())
    overrides = {"source": _absolute(args.source), "background": _absolute(args.background), "engine": args.engine,
                 "provider": args.provider, "model": _resolved(args.model) if args.model else None}
    if getattr(args, "show_original", False):
        overrides["show_original"] = True
    if overrides["background"] and overrides["background"].startswith("blur:"):
        overrides["blur_strength"] = int(overrides["background"][5:])
    use_tray = False if (screenshot or quit_after or args.no_tray) else tray_available()
    win = MainWindow(SettingsStore(), overrides=overrides, use_tray=use_tray, persist=not screenshot,
                     scan_cameras=not screenshot, probe_virtual_camera=not screenshot)
    app.setQuitOnLastWindowClosed(not use_tray)
    win.quitRequested.connect(app.quit)
    app.aboutToQuit.connect(win.shutdown)  # also on logout / session end
    result = {"rc": 0}

    if screenshot:
        if win_size:
            win.resize(*win_size)
        frames = quit_after or 30

        def saved(path: str) -> None:
            if path:
                print(f"vbg gui: screenshot saved to {path}", file=sys.stderr)
            else:
                result["rc"] = 1
            win.quit_app()

        win.screenshotSaved.connect(saved)
        win.screenshot_after(frames, screenshot)

        limit_s = max(120, frames // 10)  # slower than 10 fps on average: something is wrong

        def too_slow() -> None:  # (nearly) no frames: save what is there (with the messages) and fail
            if win.frames_shown < frames:
                print(f"vbg gui: only {win.frames_shown} of {frames} frames after {limit_s} s; saving anyway",
                      file=sys.stderr)
                result["rc"] = 1
                win.save_screenshot(screenshot)

        QTimer.singleShot(limit_s * 1000, too_slow)
    elif quit_after:
        def check() -> None:
            if win.frames_shown >= quit_after:
                win.quit_app()
            else:
                QTimer.singleShot(50, check)
        QTimer.singleShot(50, check)

    # Ctrl+C in the terminal quits cleanly (Python only sees the signal when the event loop yields to it)
    signal.signal(signal.SIGINT, lambda *_: win.quit_app())
    keepalive = QTimer()
    keepalive.start(250)
    keepalive.timeout.connect(lambda: None)

    win.show()
    app.exec()
    win.shutdown()
    keepalive.stop()
    if reporter.count and not result["rc"] and screenshot:
        result["rc"] = 1
    return result["rc"]
