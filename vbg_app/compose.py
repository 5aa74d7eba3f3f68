"""Compositor: low-res person mask + camera frame -> frame with a virtual background.

Stage interface (see docs/ARCHITECTURE.md)::

    c = Compositor("blur", refine=True, mirror=False, cleanup=True)
    out = c.compose(frame_bgr, prob_lowres)      # (H, W, 3) uint8, a new array every call
    c.set_background("image:beach.jpg")          # or blur[:N], video:PATH, color:#RRGGBB, none
    c.refine = False; c.mirror = True            # live, from any thread

Per frame, in order (everything except the final blend works at low resolution):

1. *mirror*: the frame and mask are flipped first, so a background image is never mirrored;
2. *clean-up* (PP-HumanSeg's connectivity idea): connected components of the binarised mask at
   model resolution; foreground blobs smaller than ``cleanup_min_frac`` of the largest one are erased;
3. *refine*: a fast guided filter (detail form, see :class:`_FastGuidedFilter`) -- coefficients at
   model resolution with the gray frame as guide, applied at half resolution, then a bilinear
   upscale -- snaps the mask to the frame's edges at a fraction of a full-resolution filter's cost;
   The *matte* stage (``vbg_app/matte.py``, ``matte=True``) fills holes in the person at model resolution
   after the clean-up and tightens the refined alpha's edge ramp before the blend (no rim of the old
   background, no see-through held object); the background renderer still gets the untightened alpha;
4. *background*: rendered at frame size (the blur is a normalised convolution of background pixels
   only, at model resolution or coarser, so the person never bleeds into it as a halo);
5. *blend*: ``out = a * frame + (1 - a) * bg`` with 8-bit alpha in OpenCV's saturating SIMD ops,
   in cache-sized strips of rows.

Settings live in one immutable snapshot; a setter swaps the whole snapshot, ``compose`` reads it once
per frame, so a change from the GUI thread lands between two frames, never in the middle of one.
A replaced background (e.g. a video with an open decoder) is closed by the compositing thread at
the start of its next frame, after it is certainly no longer in use.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np

from . import framecache
from .errors import BadInput
from .frames import check_mask, to_bgr8
from .specs import DEFAULT_BLUR, BlurSpec



# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

def _halve(img: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Half size with INTER_AREA: OpenCV's fast path for an exact factor of 2 (a 2x2 box)."""
    return cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), dst=dst, interpolation=cv2.INTER_AREA)


def upscale(img: np.ndarray, w: int, h: int, dst: np.ndarray | None = None) -> np.ndarray:
    """Bilinear enlargement to (h, w) with ``cv2.resize``'s pixel-centre alignment and edge clamping.

    One ``warpAffine`` instead of ``cv2.resize(..., INTER_LINEAR)``: the same sampling positions, and at
    these sizes about half the CPU time for uint8 images (720p: alpha 640x360 -> 1280x720 0.72 -> 0.33 ms,
    blurred background 199x112x3 -> 1280x720 1.0 -> 0.6 ms, OpenCV 5.1, one thread). Within 1 level of
    ``cv2.resize`` and within 0.52 of exact bilinear interpolation in float (``cv2.resize`` itself: 0.76)
    on the app's images; tests/test_compose.py checks both. For enlarging only (shrinking needs INTER_AREA).
    """
    ih, iw = img.shape[:2]
    sx, sy = iw / w, ih / h
    m = np.float64([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    return cv2.warpAffine(img, m, (w, h), dst=dst, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def aspect_fill(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Scale ``img`` to cover (h, w) keeping its aspect ratio, then crop the centre: never stretched."""
    ih, iw = img.shape[:2]
    # crop the source first (the centred region with the target's aspect), then one resize: scaling the
    # whole image up first would allocate gigabytes for a very thin image (1 x 60000 px into 720p)
    if iw * h > w * ih:  # wider than the target: keep the full height
        cw, ch = min(iw, max(1, round(ih * w / h))), ih
    else:
        cw, ch = iw, min(ih, max(1, round(iw * h / w)))
    x0, y0 = (iw - cw) // 2, (ih - ch) // 2
    crop = img[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if cw > w else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, (w, h), interpolation=interp))


class _Pool:
    """Named scratch arrays, reused from frame to frame while the shape stays the same.

    Not a micro-optimisation: a fresh 0.2-3 MB numpy/OpenCV result is mmap'ed and page-faulted every
    time, which on this path cost more than the arithmetic (the guided filter ran 2x slower).
    """

    def __init__(self) -> None:
        self._d: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple, dtype=np.uint8) -> np.ndarray:
        b = self._d.get(name)
        if b is None or b.shape != tuple(shape) or b.dtype != dtype:
            b = self._d[name] = np.empty(shape, dtype)
        return b

    def clear(self) -> None:
        self._d.clear()


def _read_image(path: str) -> np.ndarray:
    """Decode a background image (also with a non-ASCII path, which cv2.imread cannot open on Windows).

    Its size is read from the header first: over 40 megapixels it is refused before decoding (a JPEG is
    decoded at 1/2, 1/4 or 1/8 size instead when that fits), so a small file declaring 30000x30000 pixels
    cannot take gigabytes (see vbg_app/imagefile.py). libpng's own warnings are kept off the terminal."""
    from vbg_app.imagefile import read_image

    return read_image(path, "background image",
                      missing_fix="check the path, or pick another background (blur, color:#RRGGBB)")


# --------------------------------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------------------------------

class Background(Protocol):
    spec: str

    def render(self, h: int, w: int, frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """The background for one frame: (h, w, 3) uint8 BGR.  Treat the result as read-only.

        ``frame`` is the (already mirrored) camera frame (h, w, 3); ``alpha`` the person mask,
        float32 0..1 at any (usually low) resolution.
        """
        ...

    def close(self) -> None: ...


class NoneBackground:
    """No replacement: the output is the camera frame."""

    spec = "none"

    def render(self, h, w, frame, alpha):
        return frame

    def close(self) -> None:
        pass


class ColorBackground:
    def __init__(self, bgr: tuple[int, int, int], spec: str = "") -> None:
        self.bgr = tuple(int(c) for c in bgr)
        self.spec = spec or "color:#%02X%02X%02X" % (self.bgr[2], self.bgr[1], self.bgr[0])
        self._cache: np.ndarray | None = None

    def render(self, h, w, frame, alpha):
        if self._cache is None or self._cache.shape[:2] != (h, w):
            self._cache = np.empty((h, w, 3), np.uint8)
            self._cache[:] = self.bgr
        return self._cache

    def close(self) -> None:
        self._cache = None


class ImageBackground:
    """A still image, aspect-filled (scaled to cover, centre-cropped); cached per output size."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.spec = f"image:{path}"
        self.image = _read_image(path)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def render(self, h, w, frame, alpha):
        img = self._cache.get((h, w))
        if img is None:
            if len(self._cache) > 4:
                self._cache.clear()
            img = self._cache[(h, w)] = aspect_fill(self.image, h, w)
        return img

    def close(self) -> None:
        self._cache.clear()


class VideoBackground:
    """A video file, looped, aspect-filled; advances one frame per ``render`` call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.spec = f"video:{path}"
        from vbg_app.imagefile import check_path
        from vbg_app.quiet import quiet_decoding

        check_path(path, "background video", "check the path, or pick another background (blur, image:PATH)",
                   noun="video file")
        self._cap = cv2.VideoCapture()
        try:
            with quiet_decoding():
                ok, first = self._cap.read() if self._cap.open(path) else (False, None)
        except cv2.error:  # a decoder that gives up with an exception instead of a failed read
            ok, first = False, None
        if not ok or first is None or not first.size:
            self._cap.release()
            raise BadInput(f"background video {path} cannot be decoded",
                           "use a video OpenCV can read (e.g. MP4/H.264 or AVI/MJPEG)")
        self._last = first
        self._pending: np.ndarray | None = first  # the first frame is shown first

    def _next(self) -> np.ndarray:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        ok, frame = self._cap.read()
        if not ok:  # end of the file: loop
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        if ok and frame is not None:
            self._last = frame
        return self._last

    def render(self, h, w, frame, alpha):
        src = self._next()
        if src.shape[:2] == (h, w):
            return src
        return aspect_fill(src, h, w)

    def close(self) -> None:
        self._cap.release()


class BlurBackground:
    """The camera frame blurred from background pixels only (normalised convolution).

    ``bg = G * (frame . w) / G * w`` with ``w = 1 - dilate(a)``: the mask dilated by one low-res pixel,
    so pixels that are even partly person carry no weight -- no halo of the person around its outline.
    Runs at the coarsest power-of-2 level where the blur's sigma is still >= 2 px (small kernels,
    few pixels), then one bilinear upscale.  ``strength`` 1..100 is the blur's sigma in pixels of a
    720-line frame (scaled with the frame's height).
    """

    def __init__(self, strength: int = DEFAULT_BLUR) -> None:
        self.strength = BlurSpec(int(strength)).value  # BadInput out of 1..100
        self.spec = f"blur:{self.strength}"
        self._kernel = np.ones((3, 3), np.uint8)
        self._pool = _Pool()

    def render(self, h, w, frame, alpha, small: np.ndarray | None = None):
        """``small``: optional downscaled copy of ``frame`` to start from (the compositor has one)."""
        pool = self._pool
        sigma_full = self.strength * h / 720.0
        if small is None or small.shape[0] > h:
            small = frame
        k = 0  # halve while the blur stays above ~2 px there: same look, less work
        while sigma_full * small.shape[0] / h > 4.0 and min(small.shape[:2]) >= 16:
            small = _halve(small, pool(f"lv{k}", (small.shape[0] // 2, small.shape[1] // 2, 3)))
            k += 1
        sh, sw = small.shape[:2]
        sigma = max(sigma_full * sh / h, 0.5)
        a = alpha if alpha.shape[:2] == (sh, sw) else cv2.resize(
            alpha, (sw, sh), dst=pool("a", (sh, sw), np.float32),
            interpolation=cv2.INTER_AREA if alpha.shape[1] > sw else cv2.INTER_LINEAR)
        wgt = cv2.dilate(a, self._kernel, dst=pool("wgt", (sh, sw), np.float32))
        np.clip(wgt, 0.0, 1.0, out=wgt)
        np.subtract(np.float32(1.0 + 1e-3), wgt, out=wgt)  # 1e-3: the division stays defined inside the person
        w3 = cv2.cvtColor(wgt, cv2.COLOR_GRAY2BGR, dst=pool("w3", (sh, sw, 3), np.float32))
        num = cv2.multiply(small, w3, dst=pool("num", (sh, sw, 3), np.float32), dtype=cv2.CV_32F)
        buf = cv2.cvtColor(num, cv2.COLOR_BGR2BGRA, dst=pool("buf", (sh, sw, 4), np.float32))
        buf[:, :, 3] = wgt
        # StackBlur: a near-Gaussian whose cost does not grow with the kernel (2.5x faster here);
        # ksize ~ 4.7 sigma matches the Gaussian's sigma within ~5 %
        k = 2 * int(round(sigma * 2.35)) + 1
        blurred = cv2.stackBlur(buf, (k, k), dst=pool("blur", (sh, sw, 4), np.float32))
        num = cv2.cvtColor(blurred, cv2.COLOR_BGRA2BGR, dst=num)
        den = cv2.cvtColor(cv2.extractChannel(blurred, 3, dst=wgt), cv2.COLOR_GRAY2BGR, dst=w3)
        bg_small = cv2.divide(num, den, dst=pool("bgs", (sh, sw, 3)), dtype=cv2.CV_8U)
        return upscale(bg_small, w, h, dst=pool("out", (h, w, 3)))

    def close(self) -> None:
        self._pool.clear()


def parse_background(spec) -> Background:
    """``blur[:N]`` | ``image:PATH`` | ``video:PATH`` | ``color:#RRGGBB`` | ``none`` (text or a
    :mod:`vbg_app.specs` dataclass; None or "" is the default blur) -> a Background.

    A Background object is returned as is.  Raises :class:`BadInput` for an unknown spec, a missing or
    undecodable file, a bad color or blur strength.
    """
    from vbg_app.specs import BACKGROUNDS, parse_background as parse_spec

    if spec is not None and not isinstance(spec, str) and callable(getattr(spec, "render", None)):
        return spec
    return BACKGROUNDS.open(parse_spec(spec))


# --------------------------------------------------------------------------------------------------
# mask clean-up and refinement
# --------------------------------------------------------------------------------------------------

def cleanup_mask(prob: np.ndarray, min_frac: float = 0.1) -> np.ndarray:
    """Erase foreground blobs (8-connected, > 0.5) smaller than ``min_frac`` of the largest one.

    Works at the mask's (model) resolution.  Returns ``prob`` itself when nothing is erased, else a
    copy; erased blobs are dilated by two pixels first so their soft fringe goes too.
    """
    binary = cv2.compare(prob, 0.5, cv2.CMP_GT)
    # Grana's (BBDT) labelling: the same labels and stats as the default (Spaghetti here), in half the CPU time
    # (0.34 vs 0.64 ms on 398x224 masks of the 720p demo, measured interleaved)
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(binary, 8, cv2.CV_32S, cv2.CCL_GRANA)
    if n <= 2:  # background + at most one blob
        return prob
    areas = stats[1:, cv2.CC_STAT_AREA]
    drop = np.flatnonzero(areas < min_frac * areas.max()) + 1
    if drop.size == 0:
        return prob
    out = prob.copy()
    h, w = prob.shape
    kernel = np.ones((5, 5), np.uint8)
    for lab in drop:  # erase inside each blob's bounding box (+2 px): blobs are small, boxes cheap
        x, y, bw, bh = stats[lab, :4]
        x0, y0, x1, y1 = max(x - 2, 0), max(y - 2, 0), min(x + bw + 2, w), min(y + bh + 2, h)
        blob = cv2.dilate((labels[y0:y1, x0:x1] == lab).view(np.uint8), kernel)
        out[y0:y1, x0:x1][blob.view(bool)] = 0.0
    return out


class _FastGuidedFilter:
    """Edge-aware upsampling of the mask: a fast guided filter (He & Sun) in "detail" form.

    The guided filter's linear model ``q = a * I + b`` is fitted per window at low resolution (gray
    guide ``I`` in 0..1, ``radius`` in low-res px, regulariser ``eps``) and applied at a finer level.
    Plain, it also box-blurs the mask wherever the guide does not explain it (person and background of
    similar brightness): on synthetic scenes that made it *worse* than bilinear upsampling.  So only
    the part the guide explains is used: ``q = up(p - mean(a * mean(I))) + up(mean(a)) * I``, i.e. the plain
    filter's output minus what it gives with ``a = 0``.  Where the guide has an edge, the mask snaps
    to it; elsewhere the result is the bilinear upsampling.  Measured on synthetic head-and-shoulders
    scenes (MAE in a 24 px band around the outline): 0.094 bilinear -> 0.032..0.081 (plain: 0.10..0.20).
    """

    def __init__(self, radius: int = 2, eps: float = 4e-3) -> None:
        self.ksize = (2 * radius + 1, 2 * radius + 1)
        self.eps = float(eps)
        self._pool = _Pool()

    def __call__(self, guide_low: np.ndarray, p_low: np.ndarray, guide_hi: np.ndarray,
                 out: np.ndarray | None = None) -> np.ndarray:
        """guide_* gray uint8; p_low float32 0..1 of guide_low's size -> uint8 alpha at guide_hi's size."""
        b, sh = self._pool, guide_low.shape[:2]
        f = lambda name: b(name, sh, np.float32)
        box = lambda x, name: cv2.boxFilter(x, -1, self.ksize, dst=f(name), borderType=cv2.BORDER_REFLECT)
        i = cv2.multiply(guide_low, 1 / 255, dst=f("i"), dtype=cv2.CV_32F)
        mi, mp = box(i, "mi"), box(p_low, "mp")
        mip = box(cv2.multiply(i, p_low, dst=f("t")), "mip")
        mii = box(cv2.multiply(i, i, dst=f("t")), "mii")
        var = cv2.subtract(mii, cv2.multiply(mi, mi, dst=f("t")), dst=f("var"))
        cov = cv2.subtract(mip, cv2.multiply(mi, mp, dst=f("t")), dst=f("cov"))
        a = cv2.divide(cov, cv2.add(var, self.eps, dst=var), dst=f("a"))
        ma = box(a, "ma")
        c = box(cv2.multiply(a, mi, dst=f("t")), "c")
        c = cv2.subtract(p_low, c, dst=c)
        c = cv2.multiply(c, 255.0, dst=c)  # q is computed in 0..255 units below
        hh, hw = guide_hi.shape[:2]
        ha = cv2.resize(ma, (hw, hh), dst=b("ha", (hh, hw), np.float32), interpolation=cv2.INTER_LINEAR)
        hc = cv2.resize(c, (hw, hh), dst=b("hc", (hh, hw), np.float32), interpolation=cv2.INTER_LINEAR)
        q = cv2.multiply(ha, guide_hi, dst=ha, dtype=cv2.CV_32F)
        if out is None:
            out = b("q8", (hh, hw), np.uint8)
        return cv2.add(q, hc, dst=out, dtype=cv2.CV_8U)  # rounds and saturates: alpha clamped to 0..255


# --------------------------------------------------------------------------------------------------
# compositor
# --------------------------------------------------------------------------------------------------

_STRIP = 96  # rows per blend strip: the scratch strips stay in cache (~0.4 MB at 1280 px wide)


def _blend(frame: np.ndarray, bg: np.ndarray, alpha: np.ndarray, pool: _Pool) -> np.ndarray:
    """``out = a * frame + (1 - a) * bg`` with 8-bit ``a``, in OpenCV's saturating 8-bit SIMD ops.

    Exact where a is 0 or 255.  Done in strips of rows so the 3-channel alpha and the two products
    never leave the cache: only frame, bg and out cross main memory (15-20 % faster when a
    neighbour saturates the memory bus, which is the usual state of a meeting laptop).
    """
    h, w = alpha.shape
    out = np.empty((h, w, 3), np.uint8)
    s = min(_STRIP, h)
    a3, inv, inv1 = pool("a3", (s, w, 3)), pool("inv", (s, w, 3)), pool("inv1", (s, w))
    for y0 in range(0, h, s):
        y1 = min(y0 + s, h)
        n = y1 - y0
        a, i3, i1 = a3[:n], inv[:n], inv1[:n]
        cv2.cvtColor(alpha[y0:y1], cv2.COLOR_GRAY2BGR, dst=a)
        cv2.cvtColor(cv2.bitwise_not(alpha[y0:y1], dst=i1), cv2.COLOR_GRAY2BGR, dst=i3)
        cv2.multiply(frame[y0:y1], a, dst=a, scale=1 / 255)
        cv2.multiply(bg[y0:y1], i3, dst=i3, scale=1 / 255)
        cv2.add(a, i3, dst=out[y0:y1])
    return out


@dataclass(frozen=True)
class _Settings:
    background: Background
    refine: bool
    mirror: bool
    cleanup: bool


class Compositor:
    """See the module docstring.  ``compose`` must be called from one thread at a time.

    ``cleanup_min_frac``: blobs below this fraction of the largest are erased.  ``guided_radius`` (in
    ~model-res px) and ``guided_eps``: the guided filter's window and regulariser.  ``refine_level``:
    the pyramid level the guided filter's output is computed at (1 = half resolution, then a bilinear
    upscale; 0 = full resolution: crisper edges -- outline error 0.035 -> 0.018 on a synthetic
    high-contrast scene -- for ~0.7 ms more at 720p, over the 6 ms budget on a busy 2-core machine).  ``cv_threads``: if not None, ``cv2.setNumThreads`` (process-wide!) -- 1 by
    default: at these image sizes OpenCV's own threading gained nothing here (2 cores), and the
    pipeline already runs capture+inference and compositing on two threads of its own.  ``matte``: True
    (the default: a :class:`vbg_app.matte.Matte`), a ``Matte`` of your own, or False (none).
    """

    def __init__(self, background="blur", refine: bool = True, mirror: bool = False, cleanup: bool = True,
                 cleanup_min_frac: float = 0.1, guided_radius: int = 2, guided_eps: float = 4e-3,
                 refine_level: int = 1, cv_threads: int | None = 1, matte=True) -> None:
        if cv_threads is not None:
            cv2.setNumThreads(int(cv_threads))
        self._lock = threading.Lock()
        self._settings = _Settings(parse_background(background), bool(refine), bool(mirror), bool(cleanup))
        self._retired: list = []
        self.cleanup_min_frac = float(cleanup_min_frac)
        self.refine_level = int(refine_level)
        self._gf = _FastGuidedFilter(guided_radius, guided_eps)
        if matte is True:  # the matte stage (vbg_app/matte.py): holes filled, edge ramp tightened
            from .matte import Matte
            matte = Matte()
        self.matte = matte or None
        self._pool = _Pool()
        self.last_timings: dict[str, float] | None = None  # filled when compose(..., timing=True): wall ms
        self.last_cpu_timings: dict[str, float] | None = None  # the same steps' CPU ms (calling thread)

    # -- live settings ----------------------------------------------------------------------------
    def _update(self, **changes) -> None:
        with self._lock:
            old = self._settings
            self._settings = replace(old, **changes)
            if "background" in changes and changes["background"] is not old.background:
                self._retired.append(old.background)

    @property
    def background(self) -> Background:
        return self._settings.background

    def set_background(self, spec) -> None:
        """Swap the background; a bad spec raises :class:`BadInput` and leaves the current one."""
        self._update(background=parse_background(spec))

    @property
    def refine(self) -> bool:
        return self._settings.refine

    @refine.setter
    def refine(self, value: bool) -> None:
        self._update(refine=bool(value))

    @property
    def mirror(self) -> bool:
        return self._settings.mirror

    @mirror.setter
    def mirror(self, value: bool) -> None:
        self._update(mirror=bool(value))

    @property
    def cleanup(self) -> bool:
        return self._settings.cleanup

    @cleanup.setter
    def cleanup(self, value: bool) -> None:
        self._update(cleanup=bool(value))

    def close(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for bg in retired + [self._settings.background]:
            bg.close()
        self._pool.clear()

    # -- per frame --------------------------------------------------------------------------------
    def compose(self, frame_bgr: np.ndarray, prob_lowres: np.ndarray, timing: bool = False) -> np.ndarray:
        """Composite one frame: (H, W, 3) uint8, a fresh array (safe to keep after the next call).

        ``prob_lowres``: float32 (h, w) person probability at any resolution (model resolution).
        ``timing=True`` records per-sub-step milliseconds in ``last_timings`` (for the benchmark).
        """
        if self._retired:  # backgrounds swapped out since the last frame: safe to close now
            with self._lock:
                retired, self._retired = self._retired, []
            for old in retired:
                old.close()
        s = self._settings  # one snapshot for the whole frame
        pool = self._pool
        clock = _Clock(timing)
        frame = to_bgr8(np.asarray(frame_bgr))
        prob = np.asarray(prob_lowres)
        prob = check_mask(prob[:, :, 0] if prob.ndim == 3 else prob, repair=False, who="the compositor got")
        h, w = frame.shape[:2]

        if isinstance(s.background, NoneBackground):
            out = cv2.flip(frame, 1) if s.mirror else frame.copy()
            clock.done("mirror")
            self.last_timings, self.last_cpu_timings = clock.ms, clock.cpu_ms
            return out
        if s.mirror:  # flip the inputs, not the output: a background image is never mirrored
            frame = cv2.flip(frame, 1, dst=pool("mirror", frame.shape))
            prob = cv2.flip(prob, 1)
        clock.done("mirror")

        if s.cleanup:
            prob = cleanup_mask(prob, self.cleanup_min_frac)
        if self.matte is not None:
            prob = self.matte.solidify(prob)
        clock.done("cleanup")

        # pyramid: exact halvings (cheap, alias-free) down to >= the mask's size, then one bilinear step
        # to exactly the mask's size: `low` is where the guided filter's coefficients are fitted. The ONNX
        # engine made the same images of this frame object for the model (vbg_app/framecache.py): taken from
        # there when it did (not for a mirrored frame, a new object), computed here otherwise
        ph, pw = prob.shape
        levels = [frame]
        while levels[-1].shape[0] // 2 >= ph and levels[-1].shape[1] // 2 >= pw:
            lh, lw = levels[-1].shape[0] // 2, levels[-1].shape[1] // 2
            level = framecache.get(frame, ("half", len(levels)))
            if level is None or level.shape != (lh, lw, 3):
                level = _halve(levels[-1], pool(f"lv{len(levels)}", (lh, lw, 3)))
            levels.append(level)
        low = levels[-1]
        if low.shape[0] > ph and low.shape[1] > pw:
            fit = framecache.get(frame, ("fit", (pw, ph)))
            low = fit if fit is not None and fit.shape == (ph, pw, 3) else cv2.resize(
                low, (pw, ph), dst=pool("low", (ph, pw, 3)), interpolation=cv2.INTER_LINEAR)
        lh, lw = low.shape[:2]
        hi = levels[min(self.refine_level, len(levels) - 1)]
        hh, hw = hi.shape[:2]
        clock.done("pyramid")

        if s.refine:
            p_low = prob if (lh, lw) == (ph, pw) else cv2.resize(
                prob, (lw, lh), dst=pool("p_low", (lh, lw), np.float32), interpolation=cv2.INTER_AREA)
            g_low = cv2.cvtColor(low, cv2.COLOR_BGR2GRAY, dst=pool("g_low", (lh, lw)))
            g_hi = cv2.cvtColor(hi, cv2.COLOR_BGR2GRAY, dst=pool("g_hi", (hh, hw)))
            a_hi = self._gf(g_low, p_low, g_hi, out=pool("a_hi", (hh, hw)))
        else:
            a_hi = cv2.resize(prob, (hw, hh), dst=pool("a_hif", (hh, hw), np.float32), interpolation=cv2.INTER_LINEAR)
            a_hi = cv2.multiply(a_hi, 255.0, dst=pool("a_hi", (hh, hw)), dtype=cv2.CV_8U)
        a_blend = a_hi if self.matte is None else self.matte.tighten(a_hi, out=pool("a_tight", (hh, hw)))
        alpha = a_blend if (hh, hw) == (h, w) else upscale(a_blend, w, h, dst=pool("alpha", (h, w)))
        clock.done("refine")

        # the background renderer gets the refined alpha as float at `low` resolution
        a_low = a_hi if (hh, hw) == (lh, lw) else cv2.resize(a_hi, (lw, lh), dst=pool("a_low8", (lh, lw)),
                                                             interpolation=cv2.INTER_LINEAR)
        a_low = cv2.multiply(a_low, 1 / 255, dst=pool("a_low", (lh, lw), np.float32), dtype=cv2.CV_32F)
        bgobj = s.background
        if isinstance(bgobj, BlurBackground):
            bg = bgobj.render(h, w, frame, a_low, small=low)
        else:
            bg = bgobj.render(h, w, frame, a_low)
        if getattr(bg, "shape", None) != frame.shape or bg.dtype != np.uint8:
            raise BadInput(f"background {getattr(bgobj, 'spec', bgobj)!r} rendered {getattr(bg, 'shape', bg)!r}",
                           f"a Background must return a ({h}, {w}, 3) uint8 image")
        clock.done("background")

        out = _blend(frame, bg, alpha, pool)
        clock.done("blend")
        self.last_timings, self.last_cpu_timings = clock.ms, clock.cpu_ms
        return out


class _Clock:
    """Per-sub-step wall time and calling-thread CPU time, only when asked (skipped otherwise). The CPU time
    is all of a step's work while OpenCV runs in the calling thread (``cv_threads=1``, the default)."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.ms: dict[str, float] | None = {} if on else None
        self.cpu_ms: dict[str, float] | None = {} if on else None
        if on:
            import time
            self._now, self._cpu = time.perf_counter, time.thread_time
            self._t, self._c = self._now(), self._cpu()

    def done(self, step: str) -> None:
        if self.on:
            t, c = self._now(), self._cpu()
            self.ms[step] = self.ms.get(step, 0.0) + (t - self._t) * 1e3
            self.cpu_ms[step] = self.cpu_ms.get(step, 0.0) + (c - self._c) * 1e3
            self._t, self._c = t, c
