"""The sources of an exact-ground-truth clip (:mod:`vbg_app.tools.gt_video`): val photos with their masks, the
person cut out of one (colours pushed past the mask, placed like a webcam shows a meeting participant) and the
room made of another (cropped to 16:9, its own person filled by a push-pull pyramid, :func:`fill_holes`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput

ROOM_HOLE_PX = 7          # the room photo's own person is dilated by this much before it is filled
ROOM_MAX_PERSON = 0.3     # a room photo whose person covers more of the crop is not used
TOP_MARGIN = 0.12         # head top at this fraction of the frame height


@dataclass
class Photo:
    image: Path
    mask: Path
    dataset: str


def _read(photo: Photo) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.imread(str(photo.image), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(photo.mask), cv2.IMREAD_GRAYSCALE)
    if img is None or mask is None:
        raise BadInput(f"cannot read {photo.image} or its mask {photo.mask}", "replace or remove the file")
    if mask.shape != img.shape[:2]:
        mask = cv2.resize(mask, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    return img, mask > 127


def find_photos(folders: list[Path]) -> list[list[Photo]]:
    from vbg_app.tools.evaluate import find_pairs

    out = []
    for folder in folders:
        label = "/".join(Path(folder).resolve().parts[-2:])
        out.append([Photo(i, m, label) for i, m in find_pairs(Path(folder))])
    return out


@dataclass
class Person:
    photo: Photo
    color: np.ndarray        # float32 HxWx3, person colours pushed past the mask edge
    alpha: np.ndarray        # float32 HxW 0/1, the source mask
    prescale: float          # the source was resized by this before use (1 = not)
    scale: float             # source (after prescale) -> frame, at rest
    visible: float           # fraction of the person's bbox height shown at rest (from the top)
    pivot: tuple[float, float]   # source point placed on the frame's bottom edge
    border_pts: np.ndarray   # Nx2 source points where the person touches the source border
    width_px: float          # person width in the frame at rest


def extend_colors(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 copy of ``img`` whose pixels just outside ``mask`` take the nearby person colours (normalised
    convolution at growing scales), so bilinear warping and the soft edge mix no photo background in."""
    out = img.astype(np.float32)
    m = mask.astype(np.float32)
    done = mask.copy()
    premult = out * m[:, :, None]
    for sigma in (1.5, 3.0, 6.0):
        num = cv2.GaussianBlur(premult, (0, 0), sigma)
        den = cv2.GaussianBlur(m, (0, 0), sigma)
        fill = (den > 1e-3) & ~done
        out[fill] = num[fill] / den[fill][:, None]
        done |= fill
    return out


def _border_points(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    pts = []
    for y in (0, h - 1):
        xs = np.flatnonzero(mask[y])
        pts += [(x, y) for x in xs[::2]]
    for x in (0, w - 1):
        ys = np.flatnonzero(mask[:, x])
        pts += [(x, y) for y in ys[::2]]
    return np.asarray(pts, np.float64).reshape(-1, 2)


def prepare_person(photo: Photo, size_wh: tuple[int, int], visible: float | None = None) -> Person | None:
    """The person of ``photo`` framed like a webcam (head near the top, torso cut by the bottom edge), or
    None when it is unusable (too small, several people, head cut by the photo's top edge)."""
    img, mask = _read(photo)
    w_f, h_f = size_wh
    if mask.mean() < 0.03:
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.max() < 0.85 * areas.sum():
        return None  # several people or a fragmented mask
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if y0 < 2:
        return None  # head cut by the photo's top edge
    bh, bw = y1 - y0, x1 - x0
    if visible is None:
        visible = 0.38 if bh / bw >= 1.7 else 0.75  # full body: head to chest; half body: most of it
    cut = y0 + visible * bh
    rows = mask[y0:int(round(cut))]
    cols = np.flatnonzero(rows.any(axis=0))
    vis_w = cols[-1] - cols[0] + 1
    scale = (1.0 - TOP_MARGIN) * h_f / (visible * bh)
    scale = min(scale, 0.8 * w_f / vis_w)
    cx = float(np.nonzero(rows)[1].mean())
    width_px = float(vis_w * scale)
    prescale = 1.0
    if scale < 0.8:  # shrink the source first (area interpolation) so the warp never aliases
        prescale = scale
        img = cv2.resize(img, None, fx=prescale, fy=prescale, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.float32), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA) >= 0.5
        scale, cx, cut = 1.0, cx * prescale, cut * prescale
    return Person(photo=photo, color=extend_colors(img, mask), alpha=mask.astype(np.float32), prescale=prescale,
                  scale=float(scale), visible=float(visible), pivot=(cx, float(cut)),
                  border_pts=_border_points(mask), width_px=width_px)


def fill_holes(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``img`` with the ``hole`` pixels filled by push-pull interpolation of the known pixels (a pyramid of
    them, normalised, coarse levels filling what finer ones lack): smooth, without cv2.inpaint's streaks.
    (Adding back texture mirrored from beside the hole was tried: it echoed the photo's person fringe as
    ghost outlines.)"""
    known = (~hole).astype(np.float32)
    levels = [(img.astype(np.float32) * known[:, :, None], known)]
    while min(levels[-1][1].shape) > 4:
        c, k = levels[-1]
        size = (max(1, c.shape[1] // 2), max(1, c.shape[0] // 2))
        levels.append((cv2.resize(c, size, interpolation=cv2.INTER_AREA), cv2.resize(k, size, interpolation=cv2.INTER_AREA)))
    c, k = levels[-1]
    fill = c / np.maximum(k, 1e-6)[:, :, None]
    for c, k in reversed(levels[:-1]):
        up = cv2.resize(fill, (c.shape[1], c.shape[0]), interpolation=cv2.INTER_LINEAR)
        wk = np.clip(k * 4.0, 0.0, 1.0)[:, :, None]  # trust a level where enough known pixels fell
        fill = wk * (c / np.maximum(k, 1e-6)[:, :, None]) + (1.0 - wk) * up
    out = img.astype(np.float32)
    out[hole] = fill[hole]
    return out


def make_room(photo: Photo, size_wh: tuple[int, int]) -> tuple[np.ndarray, dict] | None:
    """The room plate: ``photo`` cropped to the frame's aspect where its person covers least (the upper crop
    on a near tie), the person filled in, resized to ``size_wh``. None when the person covers over
    ``ROOM_MAX_PERSON`` of the chosen crop. (Upper crops look more like a room but hold more of the photo's
    own person and of unlabelled passers-by; the least-person crop keeps the plate clean.)"""
    img, mask = _read(photo)
    w_f, h_f = size_wh
    h, w = mask.shape
    if w * h_f > h * w_f:  # wider than the frame: full height
        ch, cw = h, int(round(h * w_f / h_f))
    else:
        cw, ch = w, int(round(w * h_f / w_f))
    best = None
    step_x, step_y = max(1, (w - cw) // 8), max(1, (h - ch) // 8)
    for y in range(0, h - ch + 1, step_y):
        for x in range(0, w - cw + 1, step_x):
            f = float(mask[y:y + ch, x:x + cw].mean())
            score = f + 0.02 * y / max(1, h - ch)  # ties go to the upper crop
            if best is None or score < best[0] - 1e-9:
                best = (score, f, x, y)
    _, frac, x, y = best
    if frac > ROOM_MAX_PERSON:
        return None
    crop, hole = img[y:y + ch, x:x + cw], mask[y:y + ch, x:x + cw]
    k = 2 * ROOM_HOLE_PX + 1
    hole = cv2.dilate(hole.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    filled = fill_holes(crop, hole)
    interp = cv2.INTER_AREA if cw > w_f else cv2.INTER_LINEAR
    plate = np.clip(np.rint(cv2.resize(filled, (w_f, h_f), interpolation=interp)), 0, 255).astype(np.uint8)
    return plate, {"image": str(photo.image), "mask": str(photo.mask), "dataset": photo.dataset,
                   "crop_xywh": [int(x), int(y), int(cw), int(ch)], "person_fraction_filled": round(frac, 4),
                   "fill": f"GT mask dilated {ROOM_HOLE_PX} px, push-pull pyramid fill"}
