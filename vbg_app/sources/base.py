"""What every source shares: the end of a finite source, frame-rate checks, the pacing clock, the base class."""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path


from vbg_app.errors import BadInput
from vbg_app.imagefile import check_path
from vbg_app.stage import ClosingStage

log = logging.getLogger("vbg_app.sources")

# FFmpeg inside OpenCV prints its own errors for every corrupt file ("moov atom not found" ...); vbg reports
# them itself, with the fix. Takes effect if set before OpenCV first opens a video; the user's value wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


class SourceEnded(Exception):
    """A finite source (a video with ``loop=False``) has no more frames. Not a user error."""


def _valid_fps(value, default: float = 30.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and 1.0 <= v <= 240.0 else default


class _Pacer:
    """Sleeps until the next frame slot of a ``fps`` clock (never spins).

    ``wait()`` returns the slot index of the frame to show. With ``skip=True`` a late caller jumps to the
    slot of *now* (the demo can render any slot); otherwise it gets the next slot and, when more than one
    interval late, the clock restarts from now so a slow consumer gets no burst of catch-up frames.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._t0: float | None = None
        self.index = -1

    def wait(self, skip: bool = False) -> int:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self.index = now, 0
            return 0
        target = self.index + 1
        due = self._t0 + target * self.period
        if due > now:
            time.sleep(due - now)
            self.index = target
        elif skip:
            self.index = max(target, int((now - self._t0) / self.period))
        else:
            self.index = target
            if now - due > self.period:
                self._t0 = now - target * self.period
        return self.index


class _SourceBase(ClosingStage):
    fps: float = 30.0
    size_wh: tuple[int, int] = (0, 0)
    live: bool = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} {self.size_wh[0]}x{self.size_wh[1]}@{self.fps:g}>"


def _check_file(path, kind: str) -> Path:
    """The path of an existing, non-empty regular file; else BadInput saying what ``path`` is instead (missing,
    a folder, a symbolic link loop, a pipe: see :func:`~vbg_app.imagefile.check_path`; never opened here, so a
    pipe cannot block)."""
    if not str(path):
        raise BadInput(f"no {kind} file given", f"write {kind}:PATH")
    return check_path(path, f"{kind} file", noun=f"{kind} file")
