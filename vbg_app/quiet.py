"""Keep native libraries' own messages off the user's terminal.

vbg reports every problem itself, on one line with the fix; the C libraries under OpenCV and MediaPipe print
theirs too, straight to file descriptor 2 ("libpng warning: iCCP: known incorrect sRGB profile", TFLite's
"Created TensorFlow Lite XNNPACK delegate"), which Python's logging cannot catch. Two tools:

* :func:`quiet_opencv` sets OpenCV's own log level to silent for a block (its ``[ WARN:0@...]`` lines);
* :func:`native_stderr_quiet` points fd 2 at the null device for a block, for libraries that print with
  ``fprintf(stderr, ...)`` (libpng, libjpeg, glog). Python exceptions raised in the block keep their messages.

Use the fd mute only around one-shot work (opening or decoding a file), never per frame: while it is on, a
line that another thread writes to stderr is lost too. Nested and concurrent uses are safe: fd 2 is muted by
the first block to enter and restored by the last to leave.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None


def _mute() -> bool:
    global _depth, _saved_fd
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            try:
                saved = os.dup(2)
            except OSError:  # no real fd 2 (some GUI launches): nothing to hide
                return False
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(devnull, 2)
                finally:
                    os.close(devnull)
            except OSError:
                os.close(saved)
                return False
            _saved_fd = saved
        _depth += 1
        return True


def _unmute() -> None:
    global _depth, _saved_fd
    with _lock:
        _depth -= 1
        if _depth == 0 and _saved_fd is not None:
            saved, _saved_fd = _saved_fd, None
            try:
                sys.stderr.flush()
            except (AttributeError, OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def native_stderr_quiet():
    """Send file descriptor 2 to the null device for the block (see the module docstring)."""
    muted = _mute()
    try:
        yield
    finally:
        if muted:
            _unmute()


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own log lines (probing a missing camera prints several WARN/ERROR lines)."""
    import cv2

    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None:
        yield
        return
    old = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging_mod.setLogLevel(old)


@contextlib.contextmanager
def quiet_decoding():
    """Both at once: around opening or decoding a user's file (an image, the first frame of a video)."""
    with quiet_opencv(), native_stderr_quiet():
        yield
