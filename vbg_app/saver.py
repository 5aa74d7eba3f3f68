"""Battery saver: run the model only as often as the picture changes (``vbg run --battery-saver``).

A segmenter wrapper with the segmenter's interface (``segment(frame) -> prob``)::

    seg = BatterySaver(create_segmenter("connectnet"), every=3)
    prob = seg.segment(frame)      # the model's mask, or the last one again while nothing moved

Per frame it makes a thumbnail (gray, long side :data:`THUMB_SIDE` px, one bilinear resize: about 0.1 ms at
720p) and compares it with the thumbnail of the frame the model last ran on: the 3x3-averaged absolute
difference's maximum is the *change* (8-bit levels). When the change is below ``calm_level`` and the last
mask is younger than ``every`` frames, that mask is returned again (a copy) and the model does not run;
otherwise the model runs. So on motion (a change of about half a thumbnail pixel at an edge: ~4 px of
movement at 720p, less for contrasty edges) every frame is segmented, and a still scene still gets a
fresh mask every ``every`` frames (10 per second at 30 fps with the default 3). The comparison is with the
frame of the last inference, not the previous frame, so a slow drift adds up and triggers the model too.

The mask is reused as it is, not moved: within ``calm_level`` nothing has moved by much more than a pixel,
and the temporal filter after this stage still runs every frame on the real frame.
Measured in docs/bench.md (CPU per frame, and IoU / flicker on the exact-ground-truth clips).
"""
from __future__ import annotations

import cv2
import numpy as np

from vbg_app.errors import BadInput

THUMB_SIDE = 160
DEFAULT_EVERY = 3
DEFAULT_CALM_LEVEL = 4.0


class BatterySaver:
    """See the module docstring. Attributes the pipeline and the GUI read (``provider``, ``fallback_reason``,
    ``input_size_wh``, ``path``, ``meta``, ...) are the wrapped segmenter's."""

    def __init__(self, segmenter, every: int = DEFAULT_EVERY, calm_level: float = DEFAULT_CALM_LEVEL) -> None:
        if not 1 <= int(every) <= 30:
            raise BadInput(f"battery saver: every {every} is out of range", "use 1 (off) to 30 frames, e.g. 3")
        if not 0.0 <= float(calm_level) <= 255.0:
            raise BadInput(f"battery saver: calm level {calm_level} is out of range", "use 0 to 255, e.g. 4")
        self.inner = segmenter
        self.every = int(every)
        self.calm_level = float(calm_level)
        self.inferences = 0   # frames the model ran on
        self.reused = 0       # frames that got the last mask again
        self.last_change = float("nan")  # the change measured on the last frame (levels)
        self._ref: np.ndarray | None = None     # thumbnail of the frame the model last ran on
        self._prob: np.ndarray | None = None    # the model's mask for it
        self._age = 0                           # frames since then

    def __getattr__(self, name):  # only for attributes this class does not have
        if name == "inner":  # not set yet (a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @staticmethod
    def thumbnail(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        s = THUMB_SIDE / max(h, w)
        size = (max(8, round(w * s)), max(8, round(h * s)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR if s < 1 else cv2.INTER_NEAREST)
        return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small

    def change(self, thumb: np.ndarray) -> float:
        """How much ``thumb`` differs from the reference thumbnail (inf when there is none to compare)."""
        if self._ref is None or self._ref.shape != thumb.shape:
            return float("inf")
        diff = cv2.blur(cv2.absdiff(thumb, self._ref), (3, 3))
        return float(cv2.minMaxLoc(diff)[1])

    def segment(self, frame_bgr: np.ndarray) -> np.ndarray:
        thumb = self.thumbnail(frame_bgr) if isinstance(frame_bgr, np.ndarray) and frame_bgr.ndim in (2, 3) \
            and frame_bgr.dtype == np.uint8 and min(frame_bgr.shape[:2]) >= 2 else None
        if thumb is not None and self._prob is not None and self._age + 1 < self.every:
            self.last_change = self.change(thumb)
            if self.last_change < self.calm_level:
                self._age += 1
                self.reused += 1
                return self._prob.copy()
        prob = self.inner.segment(frame_bgr)  # bad frames raise here, as without the saver
        self.inferences += 1
        self._ref, self._prob, self._age = thumb, np.array(prob, np.float32, copy=True), 0
        return prob

    def reset(self) -> None:
        """Forget the last mask (the next frame is segmented)."""
        self._ref = self._prob = None
        self._age = 0

    def close(self) -> None:
        self.reset()
        self.inner.close()

    def __repr__(self) -> str:
        return f"BatterySaver({self.inner!r}, every={self.every}, calm_level={self.calm_level:g})"
