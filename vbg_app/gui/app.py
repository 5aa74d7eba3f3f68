"""Start-up of the desktop app: Qt environment, logging, exception hooks, folders, then the window.

Order matters: the Qt environment fix (``qtenv``) runs before PySide6 creates the application; the checks in
``qtcheck`` (missing xcb libraries before the application exists, PySide6's paint bug before the window is
built) end start-up with one line and exit code 3 instead of an abort; logging and the exception hooks are in
place before the window exists, so nothing can crash silently: an uncaught exception in the GUI thread or any
other thread is logged with its traceback to ``<data_dir>/logs/vbg-gui.log``, written to the crash log, and
the user is told where that is (one line on stderr and a dialog; vbg keeps running). An exception while the
window is being built ends start-up the same way, with exit code 1.

The crash log (:class:`CrashLog`, ``<data_dir>/logs/vbg-gui-crash.log``; a second GUI running at the same time
gets ``vbg-gui-crash-2.log``, and so on) is where ``faulthandler`` writes the
native stack of every thread when the process dies of a fatal signal (a crash inside Qt or onnxruntime,
which no Python hook sees), and where the Python tracebacks go (at most 256 KB a run; all of them are in
``vbg-gui.log`` too). Each start begins it afresh; a start that finds the previous run's log holding a report
keeps it as ``vbg-gui-crash.log.1`` (replacing an older one), and when that report is a native crash the
window says where it is, since nothing could say so at the time.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6)

import faulthandler
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QLockFile, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from vbg_app.errors import BadInput, VbgError
from vbg_app.specs import BlurSpec, ImageSpec, VideoSpec, parse_background
from vbg_app.gui.settings import SettingsStore, config_dir, data_dir, log_dir

log = logging.getLogger("vbg.gui")
LOG_FILE = "vbg-gui.log"
CRASH_FILE = "vbg-gui-crash.log"
CRASH_SLOTS = 8  # GUIs running at once that each get their own crash log (vbg-gui-crash.log, -2.log, ...)
CRASH_LIMIT = 256_000  # characters of Python tracebacks a run writes to the crash log
_NATIVE = "Fatal Python error"  # how faulthandler starts its report


def setup_logging(verbose: bool = False) -> str:
    """Log to ``<data_dir>/logs/vbg-gui.log`` (rotated) and stderr; returns the log file's path ("" if none)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in root.handlers):
        stream = logging.StreamHandler()
        stream.setLevel(logging.DEBUG if verbose else logging.WARNING)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream.addFilter(lambda record: not getattr(record, "files_only", False))  # tracebacks: one line instead
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


def say(line: str) -> None:
    """One line on stderr, if there is one (``pythonw`` on Windows has none)."""
    try:
        if sys.stderr is not None:
            print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class CrashLog:
    """``<folder>/vbg-gui-crash.log``: faulthandler's native stacks and the Python tracebacks of one run."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / CRASH_FILE
        self.previous = self.path.with_name(CRASH_FILE + ".1")
        self._lock_file: QLockFile | None = None
        self._fh = None
        self._written = 0
        self._lock = threading.Lock()
        self._native = False   # faulthandler writes here
        self._others = False   # faulthandler was on before open() (it then gets stderr back at finish())

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def open(self, native: bool = True) -> str:
        """Start this run's log (keeping the last one that holds a report) and, with ``native``, point
        faulthandler at it. Returns a notice for the window when the previous run died of a fatal signal."""
        notice = ""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._claim_slot()
            report = self._report_in(self.path)
            if report:
                try:
                    os.replace(self.path, self.previous)
                    kept = True
                except OSError as exc:  # (Windows: another vbg has it open) this run's log replaces it
                    log.warning("cannot keep the last crash log as %s: %s", self.previous, exc)
                    kept = False
                if _NATIVE in report and kept:
                    first = next(line for line in report.splitlines() if _NATIVE in line)
                    notice = (f"vbg stopped unexpectedly last time ({first.strip()}). The report is in "
                              f"{self.previous}; please attach it to a bug report.")
            self._fh = open(self.path, "w", encoding="utf-8", errors="backslashreplace")
            header = (f"vbg gui crash log: run started {time.strftime('%Y-%m-%d %H:%M:%S')}, pid {os.getpid()}, "
                      f"Python {sys.version.split()[0]} on {sys.platform}. Empty below this line: no crash.\n")
            self._fh.write(header)
            self._fh.flush()
        except OSError as exc:
            log.warning("cannot write the crash log %s: %s", self.path, exc)
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            if self._lock_file is not None:
                self._lock_file.unlock()
                self._lock_file = None
            return notice
        if native:
            self._others = faulthandler.is_enabled()  # python -X faulthandler, a test runner
            faulthandler.enable(self._fh, all_threads=True)
            self._native = True
        return notice

    def _claim_slot(self) -> None:
        """Two GUIs at once (two users' sessions, a second start while the first is still closing) must not
        write one file: each takes the first crash log that no running vbg holds (``vbg-gui-crash.log``, then
        ``vbg-gui-crash-2.log`` ...), held by a ``.lock`` beside it for the whole run. Qt's QLockFile notices a
        lock left by a vbg that died (its process is gone), so a crashed run's slot is taken over -- and its
        report kept -- by the next start. With every slot held, a file named after this process."""
        folder = self.path.parent
        for n in range(1, CRASH_SLOTS + 1):
            name = CRASH_FILE if n == 1 else CRASH_FILE.replace(".log", f"-{n}.log")
            lock = QLockFile(str(folder / (name + ".lock")))
            lock.setStaleLockTime(0)  # held for hours: only a dead owner makes it stale
            if lock.tryLock(0):
                self._lock_file = lock
                break
        else:
            name = CRASH_FILE.replace(".log", f"-pid{os.getpid()}.log")
        self.path = folder / name
        self.previous = folder / (name + ".1")

    @staticmethod
    def _report_in(path: Path) -> str:
        """What the log at ``path`` holds below its header line ("" when nothing, or no file)."""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                fh.readline()
                return fh.read(64_000)
        except OSError:
            return ""

    def write(self, text: str) -> bool:
        """Append a Python traceback; False when it was not written (no log, or this run wrote enough)."""
        with self._lock:
            if self._fh is None or self._written > CRASH_LIMIT:
                return False
            entry = f"\n{time.strftime('%Y-%m-%d %H:%M:%S')} {text.rstrip()}\n"
            if self._written + len(entry) > CRASH_LIMIT:
                entry = entry[:CRASH_LIMIT - self._written] + f"\n[cut: the rest is in {LOG_FILE}]\n"
            try:
                self._fh.write(entry)
                self._fh.flush()
            except (OSError, ValueError):
                return False
            self._written += len(entry)
            return True

    def finish(self) -> None:
        """The window is gone: no more Python tracebacks here. faulthandler keeps writing here until the process
        ends (Qt's and onnxruntime's teardown can crash too), unless it was on before :meth:`open` (a test
        runner calling the app in its own process): then the file is closed and that handler is on stderr."""
        with self._lock:
            keep = self._native and not self._others
            self._written = CRASH_LIMIT + 1
        if not keep:
            self.close()

    def close(self) -> None:
        """Close the file; faulthandler stops writing to it (back on stderr if it was on before open())."""
        with self._lock:
            if self._fh is None:
                return
            try:
                if self._native:
                    faulthandler.disable()
                    if self._others and sys.stderr is not None:
                        faulthandler.enable(sys.stderr, all_threads=True)
            except (OSError, ValueError, AttributeError):  # a stderr without a file descriptor
                pass
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
            self._native = False
            if self._lock_file is not None:
                self._lock_file.unlock()
                self._lock_file = None


class CrashReporter(QObject):
    """Uncaught exceptions → log, crash log, one stderr line and a dialog naming the crash log (in the GUI
    thread, one at a time, not modal: vbg keeps running). Never a silent crash."""

    _show = Signal(str, str)

    def __init__(self, log_path: str, interactive: bool = True, crash_log: CrashLog | None = None) -> None:
        super().__init__()
        self.log_path = log_path
        self.interactive = interactive
        self.crash_log = crash_log
        self._show.connect(self._dialog, Qt.ConnectionType.QueuedConnection)  # built outside the hook
        self.count = 0
        self.box: QMessageBox | None = None
        self._said: set[str] = set()

    def where(self) -> str:
        """The file that holds the details: the crash log, else vbg-gui.log ("" when neither could be written)."""
        if self.crash_log is not None and self.crash_log.is_open:
            return str(self.crash_log.path)
        return self.log_path

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

    def _record(self, etype, value, tb, where: str) -> tuple[str, str]:
        """Log the traceback and write it to the crash log; (one-line summary, traceback)."""
        self.count += 1
        text = "".join(traceback.format_exception(etype, value, tb))
        log.critical("uncaught exception in %s:\n%s", where, text, extra={"files_only": True})
        if self.crash_log is not None:
            self.crash_log.write(f"uncaught exception in {where}:\n{text}")
        summary = value.one_line() if isinstance(value, VbgError) else f"{etype.__name__}: {value}"
        summary = summary.splitlines()[0][:200] if summary.strip() else etype.__name__
        return summary, text

    def _details(self) -> str:
        where = self.where()
        return f"the details are in {where}" if where else "no log file could be written"

    def _report(self, etype, value, tb, where: str) -> None:
        summary, text = self._record(etype, value, tb, where)
        if summary not in self._said:  # one line per distinct error, not one per frame
            self._said.add(summary)
            say(f"vbg gui: unexpected error ({summary}); vbg keeps running; {self._details()}")
        try:
            self._show.emit(summary, text)
        except RuntimeError:  # the reporter is gone (the app is exiting; the hook outlives it)
            pass

    def fatal(self, etype, value, tb) -> None:
        """An exception that ends start-up: recorded like any other, then one line and a dialog that waits."""
        summary, text = self._record(etype, value, tb, "start-up")
        say(f"vbg gui: could not start ({summary}); {self._details()}")
        if self.interactive and QApplication.instance() is not None:
            where = self.where()
            box = QMessageBox(QMessageBox.Icon.Critical, "vbg cannot start",
                              f"vbg could not start: {summary}\n\n"
                              + (f"The details are in {where}; please attach that file to a bug report." if where
                                 else "No log file could be written."))
            box.setDetailedText(text)
            box.exec()

    def _dialog(self, summary: str, details: str) -> None:
        if not self.interactive or (self.box is not None and self.box.isVisible()):
            return
        where = self.where()
        box = QMessageBox(QMessageBox.Icon.Critical, "vbg: unexpected error",
                          f"Something went wrong: {summary}\n\nvbg keeps running. If it misbehaves, restart it. "
                          + (f"The details are in {where}; please attach that file to a bug report." if where
                             else "No log file could be written."))
        box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.NonModal)  # the preview and the virtual camera go on
        # kept until the next dialog replaces it: dropping it when it closes would delete the box inside its own
        # close event (a segmentation fault when the application quits with the box open)
        self.box = box
        box.show()


def _absolute(spec: str | None) -> str | None:
    """``image:rel/path`` → ``image:/abs/path`` (settings outlive the working folder)."""
    if not spec:
        return spec
    try:
        parsed = parse_background(spec)  # image:PATH and video:PATH are the same specs as sources and backgrounds
    except BadInput:
        return spec
    return str(type(parsed)(_resolved(parsed.path))) if isinstance(parsed, (ImageSpec, VideoSpec)) else spec


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
    crash_log = CrashLog(log_dir())
    crash_notice = crash_log.open()  # faulthandler from here on: a Qt abort at start-up leaves a stack too
    try:
        return _run_app(args, log_path, crash_log, crash_notice)
    finally:
        crash_log.finish()


def _run_app(args, log_path: str, crash_log: CrashLog, crash_notice: str) -> int:
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
        from vbg_app.assembly import check_background
        check_background(args.background)  # a typo or a missing file is reported now, like `vbg run` does

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
    reporter = CrashReporter(log_path, interactive=not screenshot, crash_log=crash_log)
    reporter.install()
    log.info("vbg gui starting; settings in %s, data in %s, Qt platform %s", config_dir(), data_dir(),
             app.platformName())
    try:
        return _run_window(app, args, reporter, crash_notice, screenshot, quit_after, win_size)
    except VbgError:
        raise
    except Exception as exc:  # a bug while building the window: recorded and said, never only a traceback
        reporter.fatal(type(exc), exc, exc.__traceback__)
        return 1


def _run_window(app, args, reporter: CrashReporter, crash_notice: str, screenshot, quit_after, win_size) -> int:
    from vbg_app.gui.main_window import MainWindow
    from vbg_app.gui.tray import app_icon, tray_available

    app.setWindowIcon(app_icon())
    overrides = {"source": _absolute(args.source), "background": _absolute(args.background), "engine": args.engine,
                 "provider": args.provider, "model": _resolved(args.model) if args.model else None}
    if getattr(args, "show_original", False):
        overrides["show_original"] = True
    background = parse_background(overrides["background"]) if overrides["background"] else None  # checked above
    if isinstance(background, BlurSpec) and background.strength is not None:
        overrides["blur_strength"] = background.strength
    use_tray = False if (screenshot or quit_after or args.no_tray) else tray_available()
    win = MainWindow(SettingsStore(), overrides=overrides, use_tray=use_tray, persist=not screenshot,
                     scan_cameras=not screenshot, probe_virtual_camera=not screenshot)
    if crash_notice:
        win.show_message("warning", crash_notice)
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
