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

Within ``calm_level`` nothing has moved by much more than a pixel, so the mask is reused as it is. When the
picture did change, the change may still be plain motion -- a head turning, a body swaying -- that the last
mask can follow (``carry``, on by default): DIS optical flow between the two thumbnails carries the last
segmented frame's thumbnail to this one, and when that explains the change outside the person, the last mask
is carried along the same flow instead of running the model. *Explains* means: the 3x3-averaged difference
between the carried thumbnail and this frame's stays below ``carry_level`` levels on flat ground and below
``carry_px`` times the local gradient at edges (a flow error of d px at an edge leaves about d x the gradient),
at every pixel outside the carried mask (eroded by ``interior_px`` thumbnail pixels; 0: the whole mask) --
a mouth or a hand moving in front of the body does not change the mask. Anything the flow does not explain
at the person's outline or in the room (a hand leaving the body, somebody walking in, a fast move that
blurs) runs the model. The flow is always from the frame the model ran on, so nothing drifts from frame
to frame, and the age limit ``every`` holds for carried masks too.

The temporal filter after this stage still runs every frame on the real frame.
Measured in docs/bench.md (CPU per frame, and IoU / flicker on the exact-ground-truth clips).
"""
from __future__ import annotations

import cv2
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.temporal import dis_flow, dis_shape, pixel_grid

THUMB_SIDE = 160
DEFAULT_EVERY = 3
DEFAULT_CALM_LEVEL = 4.0
DEFAULT_CARRY_LEVEL = 4.0
DEFAULT_CARRY_PX = 0.5
DEFAULT_INTERIOR_PX = 0


class BatterySaver:
    """See the module docstring. Attributes the pipeline and the GUI read (``provider``, ``fallback_reason``,
    ``input_size_wh``, ``path``, ``meta``, ...) are the wrapped segmenter's."""

    def __init__(self, segmenter, every: int = DEFAULT_EVERY, calm_level: float = DEFAULT_CALM_LEVEL,
                 carry: bool = True, carry_level: float = DEFAULT_CARRY_LEVEL,
                 carry_px: float = DEFAULT_CARRY_PX, interior_px: int = DEFAULT_INTERIOR_PX) -> None:
        if not 1 <= int(every) <= 30:
            raise BadInput(f"battery saver: every {every} is out of range", "use 1 (off) to 30 frames, e.g. 3")
        for label, v, eg in (("calm level", calm_level, 4), ("carry level", carry_level, 4)):
            if not 0.0 <= float(v) <= 255.0:
                raise BadInput(f"battery saver: {label} {v} is out of range", f"use 0 to 255, e.g. {eg}")
        if not 0.0 <= float(carry_px) <= 8.0:
            raise BadInput(f"battery saver: carry tolerance {carry_px} px is out of range", "use 0 to 8, e.g. 0.5")
        if not 0 <= int(interior_px) <= 20:
            raise BadInput(f"battery saver: interior {interior_px} px is out of range", "use 0 to 20, e.g. 0")
        self.inner = segmenter
        self.every = int(every)
        self.calm_level = float(calm_level)
        self.carry = bool(carry)
        self.carry_level = float(carry_level)
        self.interior_px = int(interior_px)
        self.carry_px = float(carry_px)
        self.finest_scale = 2  # DIS flow at 1/4 of the thumbnail's resolution: as good here as 1/2, 0.4 ms less
        self.inferences = 0   # frames the model ran on
        self.reused = 0       # frames that got the last mask again (as it was, or carried along the flow)
        self.carried = 0      # of those, the ones carried along the flow
        self.last_change = float("nan")  # the change measured on the last frame (levels)
        self._ref: np.ndarray | None = None     # thumbnail of the frame the model last ran on
        self._prob: np.ndarray | None = None    # the model's mask for it
        self._age = 0                           # frames since then
        self._dis = None                        # DIS flow, made on the first carry
        self._grids: dict[tuple[int, int], np.ndarray] = {}  # (h, w) -> each pixel's own (x, y)

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
            moved = self._carry(thumb) if self.carry and self.last_change < float("inf") else None
            if moved is not None:
                self._age += 1
                self.reused += 1
                self.carried += 1
                return moved
        prob = self.inner.segment(frame_bgr)  # bad frames raise here, as without the saver
        self.inferences += 1
        self._ref, self._prob, self._age = thumb, np.array(prob, np.float32, copy=True), 0
        return prob

    def _grid(self, h: int, w: int) -> np.ndarray:
        grid = self._grids.get((h, w))
        if grid is None:
            grid = self._grids[(h, w)] = pixel_grid(h, w)
        return grid

    def _carry(self, thumb: np.ndarray) -> np.ndarray | None:
        """The last mask carried along the flow from the last segmented frame to this one, or None when the
        flow does not explain the change outside the person (the model must run)."""
        th, tw = thumb.shape
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            self._dis.setFinestScale(self.finest_scale)
        flow = dis_flow(self._dis, thumb, self._ref, dis_shape(th, tw))  # thumb(x) ~ ref(x + flow(x))
        src = cv2.add(flow, self._grid(th, tw))
        moved_ref = cv2.remap(self._ref, src, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        residual = cv2.blur(cv2.absdiff(thumb, moved_ref), (3, 3)).astype(np.float32)
        # what the flow may leave: carry_level levels on flat ground; at an edge a flow error of d px leaves
        # about d x the gradient, so there up to carry_px x the gradient (levels per thumbnail px)
        gx = cv2.Sobel(thumb, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(thumb, cv2.CV_32F, 0, 1, ksize=3)
        allowed = cv2.blur(cv2.magnitude(gx, gy), (3, 3))
        allowed *= np.float32(self.carry_px / 8.0)  # Sobel's 3x3 kernel is 8x the gradient
        np.maximum(allowed, np.float32(self.carry_level), out=allowed)
        excess = cv2.subtract(residual, allowed)
        prob = self._prob
        small = cv2.resize(prob, (tw, th), interpolation=cv2.INTER_LINEAR)
        person = (cv2.remap(small, src, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) > 0.5)
        if self.interior_px > 0:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * self.interior_px + 1,) * 2)
            person = cv2.erode(person.view(np.uint8), k) > 0
        excess[person] = -1.0  # inside the person: a mouth or a hand moving there does not change the mask
        if float(cv2.minMaxLoc(excess)[1]) >= 0.0:
            return None
        h, w = prob.shape
        fm = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        cv2.multiply(fm, (w / tw, h / th, 0.0, 0.0), dst=fm)  # thumbnail px -> mask px
        cv2.add(fm, self._grid(h, w), dst=fm)
        return cv2.remap(prob, fm, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def reset(self) -> None:
        """Forget the last mask (the next frame is segmented)."""
        self._ref = self._prob = None
        self._age = 0

    def close(self) -> None:
        self.reset()
        self.inner.close()

    def __repr__(self) -> str:
        return (f"BatterySaver({self.inner!r}, every={self.every}, calm_level={self.calm_level:g}, "
                f"carry={self.carry}, carry_level={self.carry_level:g}, carry_px={self.carry_px:g}, "
                f"interior_px={self.interior_px})")
