"""Temporal filters: steady the segmenter's mask between consecutive frames.

Stage protocol (see docs/ARCHITECTURE.md)::

    update(prob, frame) -> prob   # prob: float32 (h, w) in 0..1 at model resolution; same shape out
    reset()

``frame`` is the camera frame the mask belongs to, BGR (H, W, 3) or gray (H, W) uint8, at any size:
a filter that needs it resizes it to ``prob``'s size itself.  A change of ``prob``'s size (a new
model) or of the frame's size (a new camera mode) resets the filter; it never raises.

* :class:`NoFilter` returns the segmenter's output unchanged.
* :class:`EmaFilter` is a per-pixel exponential moving average: cheap, but it trails motion.
* :class:`FlowFilter` follows the idea of PP-HumanSeg's "optic_flow_process": the previous (already
  filtered) mask is carried along dense DIS optical flow, and blended with the new prediction only where
  forward and backward flow agree; static pixels lean on the past, inconsistent ones (occlusions,
  fast motion) take the new prediction as is.  It smooths like a strong EMA without the motion lag.
"""
from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np

from .errors import BadInput

FILTER_NAMES = ("none", "ema", "flow")
DEFAULT_FILTER = "flow"


class TemporalFilter(Protocol):
    def update(self, prob: np.ndarray, frame_bgr: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


def _as_prob(prob: np.ndarray) -> np.ndarray:
    prob = np.asarray(prob)
    if prob.ndim == 3 and prob.shape[2] == 1:
        prob = prob[:, :, 0]
    if prob.ndim != 2:
        raise BadInput(f"the mask given to the temporal filter has shape {prob.shape}",
                       "pass a single-channel (h, w) probability map")
    if prob.dtype != np.float32:
        prob = prob.astype(np.float32)
    return prob


def small_gray(frame: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """``frame`` (BGR, BGRA or gray uint8, any size) as gray uint8 of exactly ``size_wh``.

    Halves with INTER_AREA (OpenCV's fast path for factor 2) while that stays above the target, then
    a bilinear step: about 10x cheaper than one non-integer INTER_AREA resize, with little aliasing.
    """
    if frame.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        frame = cv2.cvtColor(frame, code) if frame.shape[2] in (3, 4) else frame[:, :, 0]
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    w, h = size_wh
    while frame.shape[1] >= 2 * w and frame.shape[0] >= 2 * h:
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if frame.shape[:2] != (h, w):
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    return frame


class NoFilter:
    """Pass-through: the segmenter's mask as is."""

    name = "none"

    def update(self, prob: np.ndarray, frame_bgr: np.ndarray | None = None) -> np.ndarray:
        return _as_prob(prob)

    def reset(self) -> None:
        pass


class EmaFilter:
    """``out = alpha * new + (1 - alpha) * previous_out`` per pixel.

    ``alpha`` is the weight of the new prediction (1 = no smoothing).  Below 0.5 a moving edge trails
    by more than a frame; see ``python -m vbg_app.stagebench filters``.
    """

    name = "ema"

    def __init__(self, alpha: float = 0.6) -> None:
        if not 0.0 < alpha <= 1.0:
            raise BadInput(f"EMA weight {alpha} is out of range", "use a value in (0, 1], e.g. 0.6")
        self.alpha = float(alpha)
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def update(self, prob: np.ndarray, frame_bgr: np.ndarray | None = None) -> np.ndarray:
        prob = _as_prob(prob)
        if self._state is None or self._state.shape != prob.shape:
            self._state = prob.copy()
        else:
            cv2.addWeighted(prob, self.alpha, self._state, 1.0 - self.alpha, 0.0, dst=self._state)
        return self._state.copy()


class FlowFilter:
    """Optical-flow guided temporal fusion (after PP-HumanSeg's optic_flow_process).

    Per frame, at model resolution (the frame is converted to gray and resized to ``prob``'s size):

    1. DIS optical flow (ultrafast preset) current->previous and previous->current;
    2. the previous *filtered* mask is warped to the current frame with ``cv2.remap``;
    3. a pixel is *tracked* when the forward-backward check closes to within ``consistency_px``,
       its source lies inside the image, and the warped previous gray matches the current one to
       within ``photo_thresh`` levels (the flow must carry the image, not only agree with itself);
    4. a pixel is *still* when the image around it did not change (5x5 mean abs difference below
       ``still_thresh``): it keeps its own previous value whatever the flow says -- in flat,
       textureless areas DIS returns arbitrary flow, and those are where false blobs live;
    5. weight of the new prediction: ``w_static`` where still or tracked with flow below
       ``static_px``; ``w_moving`` where tracked and moving; raised to ``w_boundary`` near motion
       boundaries (the flow's spread over ``boundary_win`` px exceeds ``boundary_px``: DIS mixes
       both motions there and the warped past would trail the edge); raised to ``w_certain`` where
       the new prediction is confident (< 0.1 or > 0.9); 1 where not tracked (occlusion, appearance).

    ``out = warped_previous + w * (new - warped_previous)``.
    """

    name = "flow"

    def __init__(self, w_static: float = 0.1, w_moving: float = 0.35, w_certain: float = 0.35,
                 w_boundary: float = 0.7, consistency_px: float = 1.0, static_px: float = 0.3,
                 photo_thresh: float = 16.0, still_thresh: float = 3.0, boundary_px: float = 1.0,
                 boundary_win: int = 7, finest_scale: int | None = None) -> None:
        self.w_static = float(w_static)
        self.w_moving = float(w_moving)
        self.w_certain = float(w_certain)
        self.w_boundary = float(w_boundary)
        self.consistency_px = float(consistency_px)
        self.static_px = float(static_px)
        self.photo_thresh = float(photo_thresh)
        self.still_thresh = float(still_thresh)
        self.boundary_px = float(boundary_px)
        self.finest_scale = finest_scale
        self._kernel = np.ones((int(boundary_win), int(boundary_win)), np.uint8)
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._prev_gray: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._frame_shape: tuple[int, ...] | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._prev_gray = None
        self._prev_out = None
        self._frame_shape = None

    def _start(self, prob: np.ndarray, gray: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
        h, w = prob.shape
        if self.finest_scale is not None:
            self._dis.setFinestScale(int(self.finest_scale))
        else:  # 2 (flow at 1/4 of model res) is plenty for a mask; tiny inputs need a finer level
            self._dis.setFinestScale(1 if min(h, w) <= 64 else 2)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self._grid = (gx, gy)
        self._prev_gray = gray
        self._prev_out = prob.copy()
        self._frame_shape = tuple(frame_shape)
        return prob.copy()

    def update(self, prob: np.ndarray, frame_bgr: np.ndarray | None) -> np.ndarray:
        prob = _as_prob(prob)
        if frame_bgr is None:  # nothing to track with: restart from this mask
            self.reset()
            return prob.copy()
        frame_bgr = np.asarray(frame_bgr)
        h, w = prob.shape
        gray = small_gray(frame_bgr, (w, h))
        if (self._prev_out is None or self._prev_out.shape != prob.shape
                or self._frame_shape != frame_bgr.shape):
            return self._start(prob, gray, frame_bgr.shape)
        prev_gray, prev_out = self._prev_gray, self._prev_out

        flow_cp = self._dis.calc(gray, prev_gray, None)   # cur(x) ~ prev(x + flow_cp(x))
        flow_pc = self._dis.calc(prev_gray, gray, None)   # prev(y) ~ cur(y + flow_pc(y))
        gx, gy = self._grid
        map_x = gx + flow_cp[:, :, 0]
        map_y = gy + flow_cp[:, :, 1]
        remap = lambda img: cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warped = remap(prev_out)
        back = remap(flow_pc)
        fx, fy = flow_cp[:, :, 0], flow_cp[:, :, 1]
        err2 = np.square(fx + back[:, :, 0]) + np.square(fy + back[:, :, 1])
        tracked = (err2 < self.consistency_px ** 2) & (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        if self.photo_thresh > 0:
            tracked &= cv2.absdiff(gray, remap(prev_gray)) < self.photo_thresh

        moving = (np.square(fx) + np.square(fy)) >= self.static_px ** 2
        wnew = np.where(moving, np.float32(self.w_moving), np.float32(self.w_static))
        if self.w_boundary > 0:
            spread = cv2.dilate(flow_cp, self._kernel) - cv2.erode(flow_cp, self._kernel)
            boundary = (spread[:, :, 0] + spread[:, :, 1]) > self.boundary_px
            wnew[boundary] = max(self.w_boundary, self.w_static)
        if self.still_thresh > 0:
            still = cv2.blur(cv2.absdiff(gray, prev_gray), (5, 5)) < self.still_thresh
            warped[still] = prev_out[still]
            wnew[still] = self.w_static
            tracked |= still
        certain = (prob > 0.9) | (prob < 0.1)
        wnew[certain] = np.maximum(wnew[certain], np.float32(self.w_certain))
        wnew[~tracked] = 1.0

        out = warped + wnew * (prob - warped)
        np.clip(out, 0.0, 1.0, out=out)
        self._prev_gray = gray
        self._prev_out = out
        return out.copy()


def create_filter(name: str, **kwargs) -> TemporalFilter:
    """``none`` | ``ema`` | ``flow`` -> a fresh filter; unknown name -> :class:`BadInput`."""
    key = (name or "").strip().lower()
    if key == "none":
        return NoFilter()
    if key == "ema":
        return EmaFilter(**kwargs)
    if key == "flow":
        return FlowFilter(**kwargs)
    raise BadInput(f"unknown temporal filter '{name}'", f"choose one of: {', '.join(FILTER_NAMES)}")
