"""Augmentations in numpy/OpenCV: geometry (one affine warp per sample) and photometric changes.

Everything takes an explicit ``rng`` (``numpy.random.Generator``), so a sample is a pure function of its
seed. Images are BGR uint8 HxWx3; labels are uint8 HxW with 0 = background, 1 = person, 255 = ignore.

Example::

    rng = np.random.default_rng(0)
    M = similarity(src_center=(300, 200), src_height=400, out_wh=(256, 144), angle=5, flip=True)
    img, lab = warp_pair(image, label, M, (256, 144))
    img = Photometric()(img, rng)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

IGNORE = 255


# -- geometry ---------------------------------------------------------------------------------------------------
def similarity(src_center, src_height: float, out_wh, angle: float = 0.0, flip: bool = False) -> np.ndarray:
    """2x3 matrix mapping a box of height ``src_height`` centred at ``src_center`` onto the whole output
    (``out_wh``), rotated by ``angle`` degrees (counter-clockwise) and mirrored when ``flip``."""
    out_w, out_h = out_wh
    s = out_h / float(src_height)
    a = math.radians(angle)
    cos, sin = s * math.cos(a), s * math.sin(a)
    fx = -1.0 if flip else 1.0
    # out = F · R · S · (p - c) + out_center
    m = np.array([[fx * cos, fx * sin], [-sin, cos]], np.float64)
    cx, cy = src_center
    t = np.array([out_w / 2.0, out_h / 2.0]) - m @ np.array([cx, cy], np.float64)
    return np.hstack([m, t[:, None]]).astype(np.float64)


def _prescale(image: np.ndarray, label: np.ndarray | None, M: np.ndarray):
    """Shrink the source with INTER_AREA when the warp would shrink it more than 2x (bilinear warps alias)."""
    scale = math.sqrt(abs(np.linalg.det(M[:, :2])))
    if scale >= 0.5:
        return image, label, M
    f = min(1.0, 2.0 * scale)
    h, w = image.shape[:2]
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    fx, fy = nw / w, nh / h
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    if label is not None:
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
    M = M.copy()
    M[:, 0] /= fx
    M[:, 1] /= fy
    return image, label, M


def warp_pair(image: np.ndarray, label: np.ndarray | None, M: np.ndarray, out_wh, border: str = "reflect",
              label_border: int = 0):
    """Warp an image (bilinear) and its label (nearest) with the same 2x3 matrix onto ``out_wh``.

    ``border``: ``reflect`` (image and label mirrored at the edges, so they stay consistent) or ``constant``
    (zeros; the label gets ``label_border``). Returns ``(image, label)``; label None stays None.
    """
    image, label, M = _prescale(image, label, M)
    mode = cv2.BORDER_REFLECT_101 if border == "reflect" else cv2.BORDER_CONSTANT
    out = cv2.warpAffine(image, M, tuple(out_wh), flags=cv2.INTER_LINEAR, borderMode=mode)
    lab = None
    if label is not None:
        lab = cv2.warpAffine(label, M, tuple(out_wh), flags=cv2.INTER_NEAREST, borderMode=mode,
                             borderValue=int(label_border))
    return out, lab


# -- photometric ----------------------------------------------------------------------------------------------------
def adjust_color(img: np.ndarray, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
                 hue_shift: float = 0.0) -> np.ndarray:
    """Brightness/contrast/saturation factors (1 = unchanged) and a hue shift in degrees, on BGR uint8."""
    out = img
    if hue_shift:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(round(hue_shift / 2))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    f = out.astype(np.float32)
    if saturation != 1.0:
        gray = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).astype(np.float32)[..., None]
        f = gray + (f - gray) * saturation
    if contrast != 1.0:
        f = (f - f.mean()) * contrast + f.mean()
    if brightness != 1.0:
        f = f * brightness
    return np.clip(f, 0, 255).astype(np.uint8)


def lighting_gradient(img: np.ndarray, strength: float, angle: float) -> np.ndarray:
    """Multiply by a linear ramp ``1 ± strength`` across the frame in direction ``angle`` (a lamp to one side)."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (xs / max(w - 1, 1) - 0.5) * math.cos(angle) + (ys / max(h - 1, 1) - 0.5) * math.sin(angle)
    gain = 1.0 + 2.0 * strength * d
    return np.clip(img.astype(np.float32) * gain[..., None], 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.05 else img


def motion_blur(img: np.ndarray, length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    s = k.sum()
    return cv2.filter2D(img, -1, k / s) if s > 0 else img


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian sensor noise (luma-heavy, slight chroma), sigma in 0..255 units."""
    h, w = img.shape[:2]
    luma = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
    chroma = rng.standard_normal((h, w, 3), dtype=np.float32) * (sigma * 0.3)
    return np.clip(img.astype(np.float32) + luma + chroma, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else img


@dataclass
class Photometric:
    """Random photometric augmentation of a whole frame (applied after compositing).

    Each ``p_*`` is the probability that the change is applied; ranges are uniform.
    """

    p_color: float = 0.8
    brightness: tuple = (0.6, 1.4)
    contrast: tuple = (0.7, 1.3)
    saturation: tuple = (0.6, 1.4)
    hue: tuple = (-12.0, 12.0)
    p_lighting: float = 0.4
    lighting: tuple = (0.1, 0.45)
    p_blur: float = 0.25
    blur_sigma: tuple = (0.4, 1.6)
    p_motion_blur: float = 0.1
    motion_length: tuple = (3, 9)
    p_noise: float = 0.35
    noise_sigma: tuple = (2.0, 9.0)
    p_jpeg: float = 0.25
    jpeg_quality: tuple = (35, 90)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform
        if rng.random() < self.p_color:
            img = adjust_color(img, u(*self.brightness), u(*self.contrast), u(*self.saturation), u(*self.hue))
        if rng.random() < self.p_lighting:
            img = lighting_gradient(img, u(*self.lighting), u(0, 2 * math.pi))
        if rng.random() < self.p_blur:
            img = gaussian_blur(img, u(*self.blur_sigma))
        elif rng.random() < self.p_motion_blur:
            img = motion_blur(img, int(rng.integers(self.motion_length[0], self.motion_length[1] + 1)), u(0, 180))
        if rng.random() < self.p_noise:
            img = add_noise(img, u(*self.noise_sigma), rng)
        if rng.random() < self.p_jpeg:
            img = jpeg(img, int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1)))
        return img

    @classmethod
    def from_config(cls, cfg: dict | None) -> "Photometric":
        cfg = dict(cfg or {})
        fields = cls.__dataclass_fields__
        unknown = set(cfg) - set(fields)
        if unknown:
            from vbg_app.errors import BadInput
            raise BadInput(f"unknown photometric options {sorted(unknown)}", f"use: {', '.join(fields)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})


# -- tensors --------------------------------------------------------------------------------------------------------
def to_input(img_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 3xHxW RGB in ConnectNet's normalisation ``(x/255 - 0.5) / 0.5``."""
    rgb = img_bgr[..., ::-1].astype(np.float32)
    return np.ascontiguousarray((rgb * (2.0 / 255.0) - 1.0).transpose(2, 0, 1))


def cut_edges(label: np.ndarray, band: int = 2, min_px: int = 4):
    """Where the photo cuts its person: ``[(p0, p1, outward normal)]`` per photo edge that person pixels
    (label 1) touch within ``band`` px, ``p0``/``p1`` the ends of the touching run on that edge (x, y)."""
    h, w = label.shape[:2]
    person = label == 1
    out = []
    for run, edge in ((person[h - band:].any(0), "bottom"), (person[:band].any(0), "top"),
                      (person[:, :band].any(1), "left"), (person[:, w - band:].any(1), "right")):
        idx = np.flatnonzero(run)
        if len(idx) < min_px:
            continue
        a, b = float(idx[0]), float(idx[-1] + 1)
        if edge == "bottom":
            out.append(((a, h), (b, h), (0.0, 1.0)))
        elif edge == "top":
            out.append(((a, 0.0), (b, 0.0), (0.0, -1.0)))
        elif edge == "left":
            out.append(((0.0, a), (0.0, b), (-1.0, 0.0)))
        else:
            out.append(((w, a), (w, b), (1.0, 0.0)))
    return out


def anchor_cut_edges(M: np.ndarray, label: np.ndarray, out_wh) -> np.ndarray:
    """``M`` shifted (in the output) so that every photo edge cutting the person (:func:`cut_edges`) lies on or
    outside the output frame, moved along that edge's outward direction: the person runs out of the frame
    where the photo cut it, instead of ending inside the frame. Each output axis is settled by the first cut edge
    that maps onto it (bottom, top, left, right in that order); a later edge on the same axis is left as it is."""
    M = np.array(M, np.float64)
    W, H = float(out_wh[0]), float(out_wh[1])
    moved = set()
    for p0, p1, n in cut_edges(label):
        d = M[:, :2] @ np.array(n)
        axis = int(abs(d[1]) > abs(d[0]))  # 1: the edge maps to the output's bottom/top, 0: left/right
        if axis in moved:
            continue
        pts = np.array([M @ np.array([p0[0], p0[1], 1.0]), M @ np.array([p1[0], p1[1], 1.0])])
        lim = (W, H)[axis]
        # every point's coordinate on `axis` must end >= lim (the edge maps outward to +) or <= 0 (to -)
        if d[axis] > 0:
            shift = max(0.0, lim - float(pts[:, axis].min()))
        else:
            shift = min(0.0, -float(pts[:, axis].max()))
        M[axis, 2] += shift
        moved.add(axis)  # the first edge on an axis (bottom before top, left before right) keeps it
    return M
