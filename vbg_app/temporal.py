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
* :class:`SteadyFilter` (issue #15) is the flow filter with a colour still test and a long memory for
  pixels whose image did not change; measured on the exact-GT clips in docs/temporal.md.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import framecache
from .errors import BadInput
from .protocols import TemporalFilter
from .specs import FILTERS

FILTER_NAMES = FILTERS.names  # the one list: vbg_app.specs registers them; the default: config.DEFAULT_SMOOTHING
FILTER_TITLES = {"none": "Off", "ema": "Light (average over time)", "flow": "Motion-aware (optical flow)",
                 "steady": "Steady (recommended)"}  # what users read (the GUI); short: the side panel is narrow
FILTER_HINTS = {"none": "The outline as the model sees each frame: quickest, flickers most",
                "ema": "An average over the last frames: cheap, but the outline trails fast moves",
                "flow": "Follows motion with optical flow: steady outline without trailing",
                "steady": "Motion-aware, and holds a still background still: the least flicker (the default)"}
DIS_MIN_SIDE = 12  # OpenCV's DIS flow refuses images under 12 px wide or high (measured, OpenCV 5.1)


def dis_shape(h: int, w: int) -> tuple[int, int] | None:
    """The size to run DIS flow at for an (h, w) image: (h, w) itself, a square to pad it to, or None (no flow).

    OpenCV 5.1's DIS *crashes the process* (segfault) on some thin images, e.g. 12x40 or 20x80 at finest
    scale 2.  Run here without a crash: short side 64..299 with the long side up to 3x (every 5th width,
    finest scale 2 and 3: the usual model sizes 398x224, 256x144 and 256x256 are in this range) and every
    square from 12 to 699 px (finest scale 1 up to 64 px, 2 or 3 above).  Images of 300 px and more a side are left as
    they are; other sizes are padded to a square, or get no flow when that square would be 700 px or more."""
    lo, hi = min(h, w), max(h, w)
    if (64 <= lo and hi <= 3 * lo) or lo >= 300:
        return h, w
    side = max(hi, DIS_MIN_SIDE)
    return (side, side) if side < 700 else None


def dis_finest_scale(shape: tuple[int, int], coarse: int = 2) -> int:
    """``coarse`` (2: flow at 1/4 of model res, plenty for a mask) unless the image is small (64 px or less
    a side), which needs level 1."""
    return 1 if min(shape) <= 64 else coarse


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32: each pixel's own (x, y); a flow added to it is a ``cv2.remap`` map."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.merge([gx, gy])


def dis_flow(dis, a: np.ndarray, b: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    """DIS flow a -> b (``a(x) ~ b(x + flow(x))``) for two gray uint8 images of one size, run at ``shape``
    (:func:`dis_shape` of their size): as they are, padded to it, or zero flow when ``shape`` is None or
    OpenCV refuses the size."""
    h, w = a.shape
    if shape is None:
        return np.zeros((h, w, 2), np.float32)
    try:
        if shape == (h, w):
            return dis.calc(a, b, None)
        pad = lambda img: cv2.copyMakeBorder(img, 0, max(0, shape[0] - h), 0, max(0, shape[1] - w),
                                             cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(dis.calc(pad(a), pad(b), None)[:h, :w])
    except cv2.error:  # a size DIS refuses (e.g. under 12 px when steady's flow runs at 1/8): no motion
        return np.zeros((h, w, 2), np.float32)


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


def small_frame(frame: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` (BGR, BGRA or gray uint8, any size) at exactly ``size_wh``: (colour or gray uint8, gray uint8).

    Resized the way :func:`small_gray` does (halvings, then one bilinear step), before the gray conversion,
    so the colour comes almost for free: a colour change of equal brightness (a red shirt over gray
    asphalt) is still a change.

    The ONNX engine made this very image of this frame object for the model (same halvings, same bilinear
    step: vbg_app/framecache.py); it is taken from there when it did (0.8 ms of a 720p frame), computed here
    otherwise (another engine, a mirrored frame, a filter used alone)."""
    w, h = size_wh
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        fit = framecache.get(frame, ("fit", (w, h)))
        if fit is not None and fit.shape == (h, w, 3):
            return fit, cv2.cvtColor(fit, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] not in (3, 4):
        frame = frame[:, :, 0]
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    while frame.shape[1] >= 2 * w and frame.shape[0] >= 2 * h:
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if frame.shape[:2] != (h, w):
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return frame, gray


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
    by more than a frame; see ``python -m vbg_app.tools.stagebench filters``.
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
    coarse_scale = 2  # DIS finest scale for images over 64 px a side (see dis_finest_scale)

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
        self._dis_shape: tuple[int, int] | None = None

    def reset(self) -> None:
        self._prev_gray = None
        self._prev_out = None
        self._frame_shape = None

    def _start(self, prob: np.ndarray, gray: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
        h, w = prob.shape
        self._dis_shape = dis_shape(h, w)
        if self._dis_shape is not None:
            self._dis.setFinestScale(int(self.finest_scale) if self.finest_scale is not None
                                     else dis_finest_scale(self._dis_shape, self.coarse_scale))
        self._grid = pixel_grid(h, w)  # + flow = where each pixel comes from
        # scratch for _fuse_weights and update, reused frame after frame (nothing of it is kept by the caller:
        # update returns a new array). The element-wise steps are OpenCV calls into these planes (the same float32
        # operations NumPy did, bit for bit; masks are uint8 0/255): about half the filter's NumPy time at 398x224
        f32 = lambda: np.empty((h, w), np.float32)
        u8 = lambda: np.empty((h, w), np.uint8)
        self._buf = {"src": np.empty((h, w, 2), np.float32), "gray_f": f32(), "cur_f": f32(),
                     "stack": np.empty((h, w, 4), np.float32), "moved": np.empty((h, w, 4), np.float32),
                     "planes": [f32() for _ in range(4)], "flow": [f32(), f32()], "a": f32(), "b": f32(),
                     "tmp": f32(), "wnew": f32(), "tracked": u8(), "m1": u8(), "m2": u8(), "certain": u8(),
                     "dil": np.empty((h, w, 2), np.float32), "ero": np.empty((h, w, 2), np.float32)}
        self._const: dict[float, np.ndarray] = {}
        self._prev_gray = gray
        self._prev_out = prob.copy()
        self._frame_shape = tuple(frame_shape)
        return prob.copy()

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return dis_flow(self._dis, a, b, self._dis_shape)

    def _plane(self, value: float) -> np.ndarray:
        """A float32 plane of the mask's size filled with ``value`` (kept: cv2.copyTo's source for a constant)."""
        plane = self._const.get(value)
        if plane is None:
            plane = self._const[value] = np.full(self._buf["a"].shape, value, np.float32)
        return plane

    def _fuse_weights(self, prob: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps 1-5 of the class docstring: (the previous output carried to this frame, the new prediction's
        weight per pixel, where the new prediction is confident as a uint8 0/255 mask). The first two are the
        filter's scratch planes, valid until the next call."""
        h, w = prob.shape
        prev_gray, prev_out = self._prev_gray, self._prev_out

        flow_cp = self._flow(gray, prev_gray)   # cur(x) ~ prev(x + flow_cp(x))
        flow_pc = self._flow(prev_gray, gray)   # prev(y) ~ cur(y + flow_pc(y))
        buf = self._buf
        src = cv2.add(flow_cp, self._grid, dst=buf["src"])  # where each pixel comes from in the previous frame
        # the previous output, the backward flow and the previous gray carried along the flow in ONE remap of
        # a 4-channel float image: OpenCV 5.1 interpolates 1- and 4-channel float images in float (a 2-channel
        # one, the flow alone, on its old 1/32-px fixed-point path), so this is the previous output bit for bit,
        # the backward flow within 1e-3 px (closer to exact bilinear), the gray unrounded (docs/bench.md, #16)
        np.copyto(buf["gray_f"], prev_gray)
        stack = cv2.merge([prev_out, flow_pc, buf["gray_f"]], dst=buf["stack"])
        moved = cv2.remap(stack, src, None, cv2.INTER_LINEAR, dst=buf["moved"], borderMode=cv2.BORDER_REPLICATE)
        warped, bx, by, carried_gray = cv2.split(moved, buf["planes"])
        fx, fy = cv2.split(flow_cp, buf["flow"])
        a, b, tmp, wnew, tracked, m1 = buf["a"], buf["b"], buf["tmp"], buf["wnew"], buf["tracked"], buf["m1"]
        # forward-backward check: (fx + bx)^2 + (fy + by)^2 < consistency^2, and the source inside the image
        cv2.add(fx, bx, dst=a)
        cv2.multiply(a, a, dst=a)
        cv2.add(fy, by, dst=b)
        cv2.multiply(b, b, dst=b)
        cv2.add(a, b, dst=a)
        cv2.compare(a, self.consistency_px ** 2, cv2.CMP_LT, dst=tracked)
        cv2.bitwise_and(tracked, cv2.inRange(src, (0, 0), (w - 1, h - 1), dst=m1), dst=tracked)
        if self.photo_thresh > 0:
            # |gray - round(carried gray)| < t for whole levels  <=>  |gray - carried gray| < ceil(t) - 0.5
            np.copyto(buf["cur_f"], gray)
            cv2.absdiff(carried_gray, buf["cur_f"], dst=a)
            cv2.bitwise_and(tracked, cv2.compare(a, math.ceil(self.photo_thresh) - 0.5, cv2.CMP_LT, dst=m1),
                            dst=tracked)

        cv2.multiply(fx, fx, dst=a)
        cv2.multiply(fy, fy, dst=b)
        cv2.add(a, b, dst=a)
        np.copyto(wnew, self._plane(self.w_static))
        cv2.copyTo(self._plane(self.w_moving), cv2.compare(a, self.static_px ** 2, cv2.CMP_GE, dst=m1), wnew)
        if self.w_boundary > 0:  # the flow's spread over the window: dilate - erode, both channels summed
            spread = cv2.subtract(cv2.dilate(flow_cp, self._kernel, dst=buf["dil"]),
                                  cv2.erode(flow_cp, self._kernel, dst=buf["ero"]), dst=buf["dil"])
            sx, sy = cv2.split(spread, [a, b])
            cv2.add(sx, sy, dst=a)
            cv2.copyTo(self._plane(max(self.w_boundary, self.w_static)),
                       cv2.compare(a, self.boundary_px, cv2.CMP_GT, dst=m1), wnew)
        if self.still_thresh > 0:
            still = cv2.compare(cv2.blur(cv2.absdiff(gray, prev_gray), (5, 5)), self.still_thresh, cv2.CMP_LT,
                                dst=m1)
            cv2.copyTo(prev_out, still, warped)
            cv2.copyTo(self._plane(self.w_static), still, wnew)
            cv2.bitwise_or(tracked, still, dst=tracked)
        certain = cv2.compare(prob, 0.9, cv2.CMP_GT, dst=buf["certain"])
        cv2.bitwise_or(certain, cv2.compare(prob, 0.1, cv2.CMP_LT, dst=m1), dst=certain)
        cv2.copyTo(np.maximum(wnew, np.float32(self.w_certain), out=tmp), certain, wnew)
        cv2.copyTo(self._plane(1.0), cv2.bitwise_not(tracked, dst=m1), wnew)

        return warped, wnew, certain

    def _blend(self, prob: np.ndarray, warped: np.ndarray, wnew: np.ndarray) -> np.ndarray:
        """``clip(warped + wnew * (prob - warped), 0, 1)`` as a new array."""
        out = cv2.subtract(prob, warped)
        cv2.multiply(wnew, out, dst=out)
        cv2.add(warped, out, dst=out)
        np.clip(out, 0.0, 1.0, out=out)
        return out

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
        warped, wnew, _ = self._fuse_weights(prob, gray)
        out = self._blend(prob, warped, wnew)
        self._prev_gray = gray
        self._prev_out = out
        return out.copy()


class SteadyFilter(FlowFilter):
    """Flow fusion with a long memory where the image stands still (issue #15); see ``docs/temporal.md``.

    The :class:`FlowFilter` steps (forward-backward checked DIS flow, photometric check, weights by motion,
    motion boundary and confidence), changed where the exact-GT clips showed them short:

    * *still* is decided on the frame in colour, box-blurred over ``blur_px`` at model resolution: a pixel
      is still when no channel moved by ``still_thresh`` levels or more.  The blur averages sensor noise
      out (a still wall no longer looks changed); the colour sees a red shirt sliding over gray asphalt of
      the same brightness, which the flow filter's gray test took for still -- and kept the shirt's mask
      behind it as a ghost;
    * a still pixel keeps its own previous value; the new prediction gets ``w_still`` where it is higher
      (a blob the segmenter makes up for a frame or two over a still background never reaches 0.5: about
      1 / w_still frames of memory) and ``w_still_down`` where it is lower (a ghost left behind by motion
      fades faster).  The flow filter let any confident prediction in with 0.35;
    * the flow is computed at 1/8 of model resolution (``coarse_scale``; the flow filter: 1/4).
    * where the image changed and the new prediction is confident (< 0.1 or > 0.9) but over 0.5 away from
      the carried past, the past is wrong (an occlusion the flow check missed): weight ``w_disagree``;
    * a *cut* (more than ``cut_frac`` of the pixels changed: another scene, the camera moved, the lights
      switched) drops the history: the frame's own mask is returned and ``last_cut`` is set;
    * what is shown is the fused mask opened (erode, then dilate) with an ``open_px`` ellipse *where the
      image changed*: thin slivers there -- the segmenter's smear trailing a fast move, a wisp left behind
      by the hair -- do not show; where the picture stands still (a still hair strand, a cable) the mask is
      shown as fused.  The fused mask, not the opened one, is what the next frame builds on.  On the exact-GT
      clips this took the far-blob flicker from 0.23x to 0.16x ``none``'s (docs/temporal.md).  5 model px
      is about 16 px of a 720p frame with the 398x224 model: a finger waved fast can thin out; ``open_px=0``
      turns it off.

    ``out = carried_past + w * (new - carried_past)``; the output is this frame's mask (no frame is held).
    """

    name = "steady"
    coarse_scale = 3  # flow at 1/8 of model res: on the GT clips no worse than 1/4, and 1 ms cheaper at 720p

    def __init__(self, w_still: float = 0.05, w_still_down: float = 0.1, w_disagree: float = 1.0,
                 still_thresh: float = 3.0, blur_px: int = 5, cut_frac: float = 0.6, open_px: int = 5,
                 **flow_kwargs) -> None:
        for label, v in (("w_still", w_still), ("w_still_down", w_still_down), ("w_disagree", w_disagree)):
            if not 0.0 < v <= 1.0:
                raise BadInput(f"steady filter weight {label}={v} is out of range", "use a value in (0, 1]")
        super().__init__(**{**flow_kwargs, "still_thresh": 0.0})  # FlowFilter's gray still test: off
        self.w_still = np.float32(w_still)
        self.w_still_down = np.float32(w_still_down)
        self.w_disagree = np.float32(w_disagree)
        self.still_level = float(still_thresh)
        self.blur = (max(1, int(blur_px)),) * 2
        self.cut_frac = float(cut_frac)
        self.last_cut = False  # the last update returned the frame's own mask (first frame, cut, new size)
        self._prev_blur: np.ndarray | None = None
        self._open_kernel = (cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(open_px),) * 2)
                             if int(open_px) > 1 else None)

    def reset(self) -> None:
        super().reset()
        self._prev_blur = None
        self.last_cut = False

    def _restart(self, prob, gray, blurred, frame_shape) -> np.ndarray:
        self._prev_blur = blurred
        self.last_cut = True
        return self._start(prob, gray, frame_shape)

    def update(self, prob: np.ndarray, frame_bgr: np.ndarray | None) -> np.ndarray:
        prob = _as_prob(prob)
        if frame_bgr is None:  # nothing to compare with: restart from this mask
            self.reset()
            self.last_cut = True
            return prob.copy()
        frame_bgr = np.asarray(frame_bgr)
        h, w = prob.shape
        color, gray = small_frame(frame_bgr, (w, h))
        blurred = cv2.blur(color, self.blur)
        if (self._prev_out is None or self._prev_out.shape != prob.shape
                or self._frame_shape != frame_bgr.shape):
            return self._restart(prob, gray, blurred, frame_bgr.shape)
        diff = cv2.absdiff(blurred, self._prev_blur)
        if diff.ndim == 3:
            c = cv2.split(diff)
            diff = cv2.max(cv2.max(c[0], c[1]), c[2])
        still = cv2.compare(diff, self.still_level, cv2.CMP_LT)  # uint8 0/255
        if still.size - cv2.countNonZero(still) > self.cut_frac * still.size:
            return self._restart(prob, gray, blurred, frame_bgr.shape)
        self.last_cut = False

        warped, wnew, certain = self._fuse_weights(prob, gray)
        buf, prev = self._buf, self._prev_out
        a, tmp, m1, m2 = buf["a"], buf["tmp"], buf["m1"], buf["m2"]
        # confident now and over 0.5 from the carried past: the past is wrong (w_disagree)
        flip = cv2.bitwise_and(certain, cv2.compare(cv2.absdiff(prob, warped, dst=a), 0.5, cv2.CMP_GT, dst=m1),
                               dst=m1)
        cv2.copyTo(np.maximum(wnew, self.w_disagree, out=tmp), flip, wnew)
        # a still pixel keeps its own previous value; the new prediction gets w_still going up, w_still_down going down
        cv2.copyTo(prev, still, warped)
        up = cv2.compare(prob, prev, cv2.CMP_GE, dst=m1)
        cv2.copyTo(self._plane(float(self.w_still)), cv2.bitwise_and(still, up, dst=m2), wnew)
        cv2.copyTo(self._plane(float(self.w_still_down)), cv2.bitwise_and(still, cv2.bitwise_not(up, dst=m1), dst=m2),
                   wnew)
        out = self._blend(prob, warped, wnew)
        self._prev_gray, self._prev_blur, self._prev_out = gray, blurred, out
        if self._open_kernel is None:
            return out.copy()
        shown = cv2.morphologyEx(out, cv2.MORPH_OPEN, self._open_kernel)  # thin slivers where it moved go
        cv2.copyTo(out, still, shown)
        return shown


def create_filter(name: str, **kwargs) -> TemporalFilter:
    """``none`` | ``ema`` | ``flow`` | ``steady`` -> a fresh filter; unknown name -> :class:`BadInput`."""
    key = (name or "").strip().lower()
    if key == "none":
        return NoFilter()
    if key == "ema":
        return EmaFilter(**kwargs)
    if key == "flow":
        return FlowFilter(**kwargs)
    if key == "steady":
        return SteadyFilter(**kwargs)
    raise BadInput(f"unknown temporal filter '{name}'", f"choose one of: {', '.join(FILTER_NAMES)}")
