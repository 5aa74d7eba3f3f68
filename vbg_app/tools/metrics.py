"""Segmentation quality metrics for binary person masks: IoU, mIoU, Semantic Connectivity (SC), flicker.

numpy + OpenCV only (no torch): used by ``vbg eval``, ``vbg bench`` and by training, whose SC loss is tested
against :func:`sc_metric`.

Inputs
------
``pred_bin``: the prediction, HxW. ``bool`` (True = person) or integer (non-zero = person); a float array is
taken as a person probability and binarised with ``prob > 0.5``.

``gt``: the label, HxW. ``bool`` (True = person), or an integer mask in the dataset convention
``255 = person, 128 = ignore, 0 = background`` (values above 128 count as person, below 128 as background;
a mask whose maximum is 1 is read as 0/1 labels).

``ignore``: optional ``bool`` HxW, True = pixel not scored; it is OR-ed with the ``128`` pixels of ``gt``.
Ignored pixels count in neither intersections nor unions.

Definitions
-----------
Per image, with TP/FP/FN/TN counted over the non-ignored pixels:

* person IoU = TP / (TP + FP + FN); 1.0 when that union is empty (no person in label nor prediction).
* mIoU = mean of the person IoU and the background IoU TN / (TN + FP + FN), over the classes whose union is
  non-empty (NaN when every pixel is ignored).
* SC: see :func:`sc_metric`.
* flicker: see :func:`flicker`.
* on exact-ground-truth video (``vbg_app.tools.gt_video``, docs/gt_videos.md): motion-compensated flicker
  (:func:`mc_flicker`), far-blob flicker (:func:`far_blob_flicker`), composite error (:func:`composite_error`),
  pooled by :class:`GTVideoAccumulator` and :class:`CompositeAccumulator`.

Dataset level (:class:`SegAccumulator`): ``person_iou`` = ΣTP / Σ(TP + FP + FN) over all images (pixels of all
images pooled, the usual "dataset IoU"), ``miou`` = mean over the two classes of Σ∩/Σ∪, ``sc`` = mean of the
per-image SC (images where SC is undefined are skipped). The means of the per-image IoU / mIoU are reported
too (``person_iou_per_image``, ``miou_per_image``).
"""
from __future__ import annotations

import math
from typing import Iterable

import cv2
import numpy as np

IGNORE_VALUE = 128
THRESHOLD = 0.5

__all__ = [
    "IGNORE_VALUE", "THRESHOLD", "decode_label", "binarize", "confusion", "person_iou", "miou", "sc_metric",
    "class_connectivity", "flicker", "FlickerAccumulator", "SegAccumulator",
    "MC_LAYER_PX", "MC_TOL_PX", "FAR_BLOB_PX", "EDGE_BAND_PX", "distance_to", "signed_distance", "affine_between",
    "mc_flicker", "mc_flicker_map", "far_blob_flicker", "edge_band", "ideal_composite", "composite_error",
    "alpha_from_key", "GTVideoAccumulator", "CompositeAccumulator",
]


# -- input normalisation ---------------------------------------------------------------------------------
def binarize(pred: np.ndarray) -> np.ndarray:
    """A bool person mask from a bool / integer (non-zero) / float probability (> 0.5) array."""
    pred = np.asarray(pred)
    if pred.dtype == bool:
        return pred
    if np.issubdtype(pred.dtype, np.floating):
        return pred > THRESHOLD
    return pred != 0


def decode_label(gt: np.ndarray, ignore: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(person, ignore)`` bool masks from a label (see the module docstring); ``ignore`` is None if empty.

    The returned ``person`` never contains an ignored pixel.
    """
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise ValueError(f"label must be HxW, got shape {gt.shape}")
    if gt.dtype == bool:
        person, ign = gt, None
    else:
        ign = gt == IGNORE_VALUE
        if not ign.any():
            ign = None
        person = gt > IGNORE_VALUE if gt.max(initial=0) > 1 else gt == 1
    if ignore is not None:
        ignore = np.asarray(ignore, dtype=bool)
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore mask shape {ignore.shape} differs from label shape {gt.shape}")
        ign = ignore if ign is None else (ign | ignore)
    if ign is not None:
        person = person & ~ign
    return person, ign


def _prepare(pred_bin, gt, ignore):
    pred = binarize(pred_bin)
    person, ign = decode_label(gt, ignore)
    if pred.shape != person.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {person.shape}")
    return pred, person, ign


# -- IoU ---------------------------------------------------------------------------------------------------
def confusion(pred_bin, gt, ignore=None) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` pixel counts over the non-ignored pixels."""
    pred, person, ign = _prepare(pred_bin, gt, ignore)
    return _confusion(pred, person, ign)


def _confusion(pred, person, ign):
    valid = pred.size if ign is None else pred.size - int(np.count_nonzero(ign))
    pred_v = pred if ign is None else pred & ~ign
    tp = int(np.count_nonzero(pred_v & person))
    p = int(np.count_nonzero(pred_v))
    g = int(np.count_nonzero(person))
    fp, fn = p - tp, g - tp
    return tp, fp, fn, valid - tp - fp - fn


def _iou_pair(tp, fp, fn, tn) -> tuple[float, float]:
    """(person IoU, background IoU); NaN for a class whose union is empty."""
    u_p, u_b = tp + fp + fn, tn + fp + fn
    return (tp / u_p if u_p else math.nan), (tn / u_b if u_b else math.nan)


def _mean_defined(values) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return sum(vals) / len(vals) if vals else math.nan


def person_iou(pred_bin, gt, ignore=None) -> float:
    """Person IoU of one image; 1.0 when neither label nor prediction has a (non-ignored) person pixel."""
    iou, _ = _iou_pair(*confusion(pred_bin, gt, ignore))
    return 1.0 if math.isnan(iou) else iou


def miou(pred_bin, gt, ignore=None) -> float:
    """2-class (background, person) mean IoU of one image, over the classes with a non-empty union."""
    return _mean_defined(_iou_pair(*confusion(pred_bin, gt, ignore)))


# -- Semantic Connectivity ----------------------------------------------------------------------------------
_DENSE_PAIRS = 1 << 22  # n_label_components * n_pred_components up to which a dense bincount is used


def class_connectivity(pred_c: np.ndarray, label_c: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Connectivity C of one class (see :func:`sc_metric`); NaN when neither mask has a component.

    ``pred_c``: bool, the predicted pixels of the class over the whole image (ignored pixels included, so
    components are those of the prediction as the user sees it). ``label_c``: bool, the labelled pixels of
    the class (ignored pixels excluded). ``valid``: bool, the non-ignored pixels (None = all); component
    areas, intersections and unions are counted over valid pixels only.
    """
    n_p, lab_p = cv2.connectedComponents(np.ascontiguousarray(pred_c, dtype=np.uint8), connectivity=8)
    n_g, lab_g = cv2.connectedComponents(np.ascontiguousarray(label_c, dtype=np.uint8), connectivity=8)
    if n_p <= 1 and n_g <= 1:
        return math.nan
    if valid is None:
        lp, lg = lab_p.ravel(), lab_g.ravel()
    else:
        lp, lg = lab_p[valid], lab_g[valid]
    area_p = np.bincount(lp, minlength=n_p)[1:]  # valid area of each predicted component
    area_g = np.bincount(lg, minlength=n_g)[1:]
    both = (lp > 0) & (lg > 0)
    key = lg[both].astype(np.int64) * n_p + lp[both]
    if n_g * n_p <= _DENSE_PAIRS:
        counts = np.bincount(key, minlength=n_g * n_p)
        pairs = np.flatnonzero(counts)
        inter = counts[pairs]
    else:
        pairs, inter = np.unique(key, return_counts=True)
    gi, pi = pairs // n_p - 1, pairs % n_p - 1  # 0-based component indices of each intersecting pair
    iou = inter / (area_g[gi] + area_p[pi] - inter)
    iou_sum = np.bincount(gi, weights=iou, minlength=n_g - 1)
    n_pairs = np.bincount(gi, minlength=n_g - 1)
    per_label = np.divide(iou_sum, n_pairs, out=np.zeros(n_g - 1), where=n_pairs > 0)
    paired_p = np.bincount(pi, minlength=n_p - 1) > 0
    lone = int(np.count_nonzero(~paired_p & (area_p > 0)))  # a component wholly inside ignore is not scored
    denom = (n_g - 1) + lone
    if denom == 0:
        return math.nan
    return float(per_label.sum() / denom)


def sc_metric(pred_bin, gt, ignore=None) -> float:
    """Semantic Connectivity (SC) of one image, as defined in the PP-HumanSeg paper (Chu et al., WACV-W 2022,
    arXiv:2112.07146, Sec. "Semantic Connectivity-aware Learning").

    For each class c in {background, person}:

    1. connected components (8-connectivity, ``cv2.connectedComponents``) of the predicted mask of c,
       p_1..p_M, and of the label mask of c, g_1..g_N;
    2. a pair (g_i, p_k) is formed when the two components share at least one (non-ignored) pixel;
       IoU(g_i, p_k) = |g_i ∩ p_k| / |g_i ∪ p_k| is the component-vs-component IoU (pixel sets of the two
       single components, not of the whole class masks), counted over non-ignored pixels;
    3. for each label component, c_i = mean of IoU(g_i, p_k) over the predicted components paired with it,
       0 if none;
    4. K = number of lone predicted components (paired with no label component; a predicted component lying
       wholly in ignored pixels is dropped, neither paired nor lone);
    5. C_c = Σ_i c_i / (N + K).

    SC = mean of C_c over the classes with N + K > 0 (present in the label or the prediction); NaN when
    there is none (every pixel ignored). Range 0..1, 1 = each label component is matched exactly by one
    predicted component and nothing else is predicted.

    This is the paper's formula (PaddleSeg's training loss ``SemanticConnectivityLoss`` = 1 − SC per image).
    It differs from PaddleSeg's implementation in three ways on purpose: PaddleSeg multiplies each
    predicted component by the class index (which zeroes every IoU of class 0, the background); it keeps
    only the first ``max_pred_num_conn`` predicted components; and it scores only classes present in the
    label. Dataset-level SC (``SegAccumulator``) is the mean of the per-image SC.
    """
    pred, person, ign = _prepare(pred_bin, gt, ignore)
    valid = None if ign is None else ~ign
    background = ~person if ign is None else ~person & valid
    cs = (class_connectivity(~pred, background, valid), class_connectivity(pred, person, valid))
    return _mean_defined(cs)


# -- flicker -------------------------------------------------------------------------------------------------
class FlickerAccumulator:
    """Streaming :func:`flicker`: ``update(mask)`` per frame, then ``value``."""

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None
        self._sum = 0.0
        self.pairs = 0
        self.frames = 0

    def update(self, mask) -> float | None:
        """Add the next frame's mask/probability; returns its flip fraction vs the previous frame."""
        cur = binarize(mask)
        self.frames += 1
        prev, self._prev = self._prev, cur.copy()
        if prev is None:
            return None
        if prev.shape != cur.shape:
            raise ValueError(f"mask shape changed from {prev.shape} to {cur.shape} between frames")
        frac = np.count_nonzero(prev != cur) / cur.size
        self._sum += frac
        self.pairs += 1
        return frac

    @property
    def value(self) -> float:
        return self._sum / self.pairs if self.pairs else math.nan


def flicker(masks: Iterable) -> float:
    """Mean over consecutive frame pairs of the fraction of all mask pixels whose binarised value flips.

    ``masks`` yields HxW bool / integer / probability arrays of one shape (probabilities are binarised with
    ``> 0.5``). 0 = perfectly stable; NaN for fewer than two frames. Measured on raw model output at model
    resolution it mixes true motion with instability, so compare models on the same clips.
    """
    acc = FlickerAccumulator()
    for m in masks:
        acc.update(m)
    return acc.value


# -- dataset accumulator ---------------------------------------------------------------------------------------
class SegAccumulator:
    """Dataset-level IoU / mIoU / SC. ``update()`` per image, ``result()`` at the end (see module docstring)."""

    def __init__(self, with_sc: bool = True) -> None:
        self.with_sc = with_sc
        self.inter = np.zeros(2, np.int64)  # [background, person]
        self.union = np.zeros(2, np.int64)
        self.iou_images: list[float] = []
        self.miou_images: list[float] = []
        self.sc_images: list[float] = []

    def update(self, pred_bin, gt, ignore=None) -> dict:
        """Score one image; returns its ``{"person_iou", "miou", "sc"}``."""
        pred, person, ign = _prepare(pred_bin, gt, ignore)
        tp, fp, fn, tn = _confusion(pred, person, ign)
        self.inter += (tn, tp)
        self.union += (tn + fp + fn, tp + fp + fn)
        iou_p, iou_b = _iou_pair(tp, fp, fn, tn)
        one = {"person_iou": 1.0 if math.isnan(iou_p) else iou_p, "miou": _mean_defined((iou_b, iou_p))}
        self.iou_images.append(one["person_iou"])
        self.miou_images.append(one["miou"])
        if self.with_sc:
            valid = None if ign is None else ~ign
            background = ~person if ign is None else ~person & valid
            one["sc"] = _mean_defined((class_connectivity(~pred, background, valid),
                                       class_connectivity(pred, person, valid)))
            self.sc_images.append(one["sc"])
        return one

    @property
    def n_images(self) -> int:
        return len(self.iou_images)

    def result(self) -> dict:
        ious = [self.inter[c] / self.union[c] if self.union[c] else math.nan for c in (0, 1)]
        return {
            "n_images": self.n_images,
            "person_iou": ious[1] if self.union[1] else (1.0 if self.n_images else math.nan),
            "miou": _mean_defined(ious),
            "sc": _mean_defined(self.sc_images) if self.with_sc else math.nan,
            "person_iou_per_image": _mean_defined(self.iou_images),
            "miou_per_image": _mean_defined(self.miou_images),
        }


# -- exact-ground-truth video: motion-compensated measures ----------------------------------------------------
# (see docs/gt_videos.md; the clips are made by vbg_app.tools.gt_video)
MC_LAYER_PX = 4.0    # the person layer = GT person dilated by this many px: prediction there moves with the person
MC_TOL_PX = 1.0      # a change within this many px of the boundary the motion predicts is resampling, not flicker
FAR_BLOB_PX = 8.0    # far-blob flicker: flips farther than this from the GT person in both frames
EDGE_BAND_PX = 10.0  # composite error: the band within this many px of the true edge

_FAR = 1e4  # "no boundary anywhere" for signed distances


def _bool_mask(x, name: str) -> np.ndarray:
    """A GT/prediction argument as bool: bool as is, float > 0.5, uint8 0/255 or 0/1 (> 128 or == 1)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be HxW, got shape {x.shape}")
    if x.dtype == bool:
        return x
    if np.issubdtype(x.dtype, np.floating):
        return x > THRESHOLD
    return x > IGNORE_VALUE if x.max(initial=0) > 1 else x == 1


def distance_to(mask: np.ndarray) -> np.ndarray:
    """float32 HxW: Euclidean distance (px, pixel centre to pixel centre) to the nearest True pixel of ``mask``;
    0 on the mask, ``_FAR`` everywhere when the mask is empty. The frame border is no boundary."""
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.full(m.shape, _FAR, np.float32)
    return cv2.distanceTransform(np.ascontiguousarray(~m, dtype=np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """float32 HxW signed distance to the boundary of ``mask`` in px, positive inside.

    The boundary is taken half-way between a mask pixel and its nearest non-mask pixel: a pixel on the
    mask's rim is +0.5, its outside neighbour -0.5, two pixels further out -2.5. An empty mask is -``_FAR``
    everywhere, a full one +``_FAR``.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        return np.full(m.shape, -_FAR, np.float32)
    if m.all():
        return np.full(m.shape, _FAR, np.float32)
    d_out = distance_to(m)    # outside: distance to the nearest mask pixel
    d_in = distance_to(~m)    # inside: distance to the nearest non-mask pixel
    return np.where(m, d_in - 0.5, 0.5 - d_out).astype(np.float32)


def affine_between(a_prev, a_cur) -> np.ndarray:
    """The 2x3 affine from previous-frame to current-frame coordinates, given the two 2x3 affines from the
    person's source coordinates to each frame: ``A_cur @ inverse(A_prev)``."""
    p = np.vstack([np.asarray(a_prev, np.float64).reshape(2, 3), (0.0, 0.0, 1.0)])
    c = np.vstack([np.asarray(a_cur, np.float64).reshape(2, 3), (0.0, 0.0, 1.0)])
    return (c @ np.linalg.inv(p))[:2]


def _warp(img: np.ndarray, m: np.ndarray, border: int, value: float = 0.0) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=value)


def mc_flicker_map(prev_pred, pred, affine_prev_to_cur, person_prev, person_cur=None,
                   layer_px: float = MC_LAYER_PX, tol_px: float = MC_TOL_PX) -> tuple[np.ndarray, np.ndarray]:
    """``(unexplained, scored)`` bool HxW maps of :func:`mc_flicker`: the pixels counted as flicker, and the
    pixels where an expectation exists (``~scored`` = person layer that came from outside the previous frame)."""
    prev = _bool_mask(prev_pred, "prev_pred")
    cur = _bool_mask(pred, "pred")
    gt_prev = _bool_mask(person_prev, "person_prev")
    if not (prev.shape == cur.shape == gt_prev.shape):
        raise ValueError(f"shapes differ: prev_pred {prev.shape}, pred {cur.shape}, person_prev {gt_prev.shape}")
    m = np.asarray(affine_prev_to_cur, np.float64).reshape(2, 3)
    h, w = cur.shape

    layer_prev = distance_to(gt_prev) <= layer_px            # the person layer in the previous frame
    background_exp = prev & ~layer_prev                        # the rest of the previous prediction: held still
    # the layer's part of the previous prediction, carried along the motion as a signed distance (sub-pixel)
    lim = np.float32(layer_px + tol_px + 4.0)
    sdf = np.clip(signed_distance(prev & layer_prev), -lim, lim)
    scale = math.sqrt(abs(np.linalg.det(m[:, :2]))) or 1.0
    sdf_cur = _warp(sdf, m, cv2.BORDER_REPLICATE) * np.float32(scale)
    footprint = _warp(layer_prev.astype(np.float32), m, cv2.BORDER_CONSTANT) >= 0.5
    inside_prev = _warp(np.ones((h, w), np.float32), m, cv2.BORDER_CONSTANT) >= 0.999
    in_layer = footprint & inside_prev
    # layer pixels whose source lay outside the previous frame (a person coming back in): no expectation
    if person_cur is not None:
        gt_cur = _bool_mask(person_cur, "person_cur")
        if gt_cur.shape != cur.shape:
            raise ValueError(f"person_cur shape {gt_cur.shape} differs from pred {cur.shape}")
        unknown = ~inside_prev & (distance_to(gt_cur) <= layer_px)
    else:
        unknown = ~inside_prev
    unexplained = np.where(in_layer, (cur & (sdf_cur < -tol_px)) | (~cur & (sdf_cur > tol_px)),
                           cur != background_exp)
    unexplained &= ~unknown
    return unexplained, ~unknown


def mc_flicker(prev_pred, pred, affine_prev_to_cur, person_prev, person_cur=None,
               layer_px: float = MC_LAYER_PX, tol_px: float = MC_TOL_PX) -> float:
    """Motion-compensated flicker of one frame pair: the fraction of the frame's pixels whose predicted mask
    changes in a way the person's known motion does not explain.

    ``prev_pred``/``pred``: the previous and current predicted masks (bool, integer non-zero, or probability
    > 0.5). ``affine_prev_to_cur``: 2x3, previous-frame to current-frame coordinates of the person
    (:func:`affine_between` of the builder's per-frame affines). ``person_prev``/``person_cur``: the GT person
    masks of the two frames (``person_cur`` optional, see below).

    The expectation for the current frame:

    * the *person layer* is the GT person of the previous frame dilated by ``layer_px`` (so a steady halo or
      bias that sticks to the person moves with it); the previous prediction inside it is carried along the
      motion: its signed distance to its own boundary is warped by the affine (bilinear, scaled by the
      affine's scale) to the current frame, over the layer's new footprint;
    * everything else of the previous prediction stays where it was (the background is still);
    * disocclusion: pixels the layer uncovered are expected to be background;
    * frame borders: layer pixels whose source lies outside the previous frame (a person re-entering after a
      partial exit) have no expectation and are not counted (with ``person_cur``: only within ``layer_px``
      of the current GT person; without it: every such pixel).

    A pixel counts when the current prediction disagrees with that expectation: in the carried layer, a
    person pixel whose centre is more than ``tol_px`` outside the carried boundary or a background pixel more
    than ``tol_px`` inside it; elsewhere any change (no resampling there, so no tolerance). The tolerance
    absorbs the resampling of a binary mask (both masks are known to +-0.5 px): the exact GT and a mask with
    a constant 1-px bias that moves with the person score ~0, a boundary that jitters by +-1 px from frame to
    frame scores each stretch where it moved 2 px, a blob appearing or vanishing away from the person counts
    in full. Denominator: all pixels of the frame.
    """
    unexplained, _ = mc_flicker_map(prev_pred, pred, affine_prev_to_cur, person_prev, person_cur,
                                    layer_px=layer_px, tol_px=tol_px)
    return float(np.count_nonzero(unexplained)) / unexplained.size


def far_blob_flicker(prev_pred, pred, person_prev, person_cur, far_px: float = FAR_BLOB_PX) -> float:
    """Fraction of the frame's pixels that flip between two predicted masks while lying farther than
    ``far_px`` from the GT person in both frames (blobs that come and go in the background)."""
    prev = _bool_mask(prev_pred, "prev_pred")
    cur = _bool_mask(pred, "pred")
    far = (distance_to(_bool_mask(person_prev, "person_prev")) > far_px) & (
        distance_to(_bool_mask(person_cur, "person_cur")) > far_px)
    if not (prev.shape == cur.shape == far.shape):
        raise ValueError(f"shapes differ: prev_pred {prev.shape}, pred {cur.shape}, person {far.shape}")
    return float(np.count_nonzero((prev != cur) & far)) / cur.size


def edge_band(person, band_px: float = EDGE_BAND_PX) -> np.ndarray:
    """bool HxW: pixels within ``band_px`` of the GT person's edge, on either side (the frame border is not
    an edge; an empty or full mask has no band)."""
    p = _bool_mask(person, "person")
    if not p.any() or p.all():
        return np.zeros(p.shape, bool)
    return (distance_to(p) <= band_px) & (distance_to(~p) <= band_px)


def ideal_composite(frame: np.ndarray, background: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """float32 HxWx3 ``alpha * frame + (1 - alpha) * background``; ``alpha``: float 0..1, or uint8 0..255,
    or bool."""
    a = np.asarray(alpha)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32) / 255.0
    a = a.astype(np.float32)[:, :, None]
    return a * frame.astype(np.float32) + (1.0 - a) * background.astype(np.float32)


def composite_error(out: np.ndarray, ideal: np.ndarray, person, band_px: float = EDGE_BAND_PX) -> dict:
    """Mean absolute difference (0..255 levels, mean over pixels and the 3 channels) between an output frame
    and the ideal composite, in the band within ``band_px`` of the true edge (``band``) and over the rest of
    the frame (``rest``); with the sums and pixel counts (``band_sum``, ``band_px``, ...) for pooling."""
    if out.shape != ideal.shape:
        raise ValueError(f"output shape {out.shape} differs from the ideal composite's {ideal.shape}")
    err = np.abs(out.astype(np.float32) - ideal.astype(np.float32)).mean(axis=2)
    band = edge_band(person, band_px)
    if band.shape != err.shape:
        raise ValueError(f"person mask shape {band.shape} differs from the frame's {err.shape}")
    b_sum, b_n = float(err[band].sum()), int(np.count_nonzero(band))
    r_sum, r_n = float(err.sum()) - b_sum, err.size - b_n
    return {"band": b_sum / b_n if b_n else math.nan, "rest": r_sum / r_n if r_n else math.nan,
            "band_sum": b_sum, "band_px": b_n, "rest_sum": r_sum, "rest_px": r_n}


def alpha_from_key(out: np.ndarray, frame: np.ndarray, key_bgr=(0, 255, 0),
                   min_contrast: float = 24.0) -> tuple[np.ndarray, np.ndarray]:
    """Recover the compositing alpha from an output made over a plain key colour:
    ``out = a * frame + (1 - a) * key`` solved per pixel by least squares over the three channels
    (``a = Σ (out - key)(frame - key) / Σ (frame - key)²``, i.e. led by the channels with the most contrast),
    clipped to 0..1. Returns ``(alpha float32, ambiguous bool)``: ``ambiguous`` = pixels whose colour is within
    ``min_contrast`` levels (Euclidean, BGR) of the key, where the alpha is not recoverable (set to 0.5)."""
    if out.shape != frame.shape:
        raise ValueError(f"output shape {out.shape} differs from the frame's {frame.shape}")
    key = np.asarray(key_bgr, np.float32).reshape(1, 1, 3)
    d = frame.astype(np.float32) - key
    o = out.astype(np.float32) - key
    den = (d * d).sum(axis=2)
    ambiguous = den < float(min_contrast) ** 2
    a = (o * d).sum(axis=2) / np.maximum(den, 1e-6)
    a[ambiguous] = 0.5
    return np.clip(a, 0.0, 1.0).astype(np.float32), ambiguous


class GTVideoAccumulator:
    """Scores of a prediction on exact-ground-truth video: ``update(pred, gt, affine, fast)`` per frame in
    order (``new_clip()`` between clips, so no pair spans two clips), then ``result()``.

    ``affine``: the frame's 2x3 affine from the person's source coordinates to frame coordinates (the
    builder's ``affine``); ``fast``: the frame is in the fast move. Results:

    * ``person_iou``: pooled ΣTP / Σ(TP + FP + FN) over all frames; ``iou_fast``: the same over fast frames;
    * ``iou_fast_prev_gt``: fast frames scored against the *previous* frame's GT (an alignment check: a mask
      that lags by one frame scores higher here than in ``iou_fast``);
    * ``mc_flicker``: mean over frame pairs of :func:`mc_flicker`; ``far_blob_flicker``: mean of
      :func:`far_blob_flicker`; ``flicker``: mean raw flip fraction (:func:`flicker`); all fractions of the
      frame's pixels.
    """

    def __init__(self, layer_px: float = MC_LAYER_PX, tol_px: float = MC_TOL_PX, far_px: float = FAR_BLOB_PX):
        self.layer_px, self.tol_px, self.far_px = layer_px, tol_px, far_px
        self.iou = np.zeros(2, np.int64)        # [intersection, union]
        self.iou_fast = np.zeros(2, np.int64)
        self.iou_lag = np.zeros(2, np.int64)
        self.mc: list[float] = []
        self.far: list[float] = []
        self.raw: list[float] = []
        self.frames = 0
        self.fast_frames = 0
        self._prev: tuple | None = None

    def new_clip(self) -> None:
        self._prev = None

    def update(self, pred, gt, affine, fast: bool = False) -> dict:
        p = _bool_mask(pred, "pred")
        g = _bool_mask(gt, "gt")
        if p.shape != g.shape:
            raise ValueError(f"prediction shape {p.shape} differs from GT shape {g.shape}")
        inter, union = int(np.count_nonzero(p & g)), int(np.count_nonzero(p | g))
        self.iou += (inter, union)
        one: dict = {"person_iou": inter / union if union else 1.0}
        self.frames += 1
        if fast:
            self.fast_frames += 1
            self.iou_fast += (inter, union)
        if self._prev is not None:
            pp, gp, ap = self._prev
            if pp.shape != p.shape:
                raise ValueError(f"mask shape changed from {pp.shape} to {p.shape} within a clip")
            m = affine_between(ap, affine)
            one["mc_flicker"] = mc_flicker(pp, p, m, gp, g, self.layer_px, self.tol_px)
            one["far_blob_flicker"] = far_blob_flicker(pp, p, gp, g, self.far_px)
            one["flicker"] = float(np.count_nonzero(pp != p)) / p.size
            self.mc.append(one["mc_flicker"])
            self.far.append(one["far_blob_flicker"])
            self.raw.append(one["flicker"])
            if fast:
                self.iou_lag += (int(np.count_nonzero(p & gp)), int(np.count_nonzero(p | gp)))
        self._prev = (p, g, np.asarray(affine, np.float64).reshape(2, 3))
        return one

    def result(self) -> dict:
        ratio = lambda a: float(a[0] / a[1]) if a[1] else math.nan
        mean = lambda v: float(sum(v) / len(v)) if v else math.nan
        return {"n_frames": self.frames, "n_fast": self.fast_frames, "person_iou": ratio(self.iou),
                "iou_fast": ratio(self.iou_fast), "iou_fast_prev_gt": ratio(self.iou_lag),
                "mc_flicker": mean(self.mc), "far_blob_flicker": mean(self.far), "flicker": mean(self.raw)}


class CompositeAccumulator:
    """Pooled :func:`composite_error`: ``update(out, ideal, person)`` per frame; ``result()`` gives
    ``composite_band`` / ``composite_rest`` (mean abs error in 0..255 levels over all pooled pixels)."""

    def __init__(self, band_px: float = EDGE_BAND_PX) -> None:
        self.band_px = band_px
        self.sums = np.zeros(2)
        self.counts = np.zeros(2, np.int64)

    def update(self, out, ideal, person) -> dict:
        e = composite_error(out, ideal, person, self.band_px)
        self.sums += (e["band_sum"], e["rest_sum"])
        self.counts += (e["band_px"], e["rest_px"])
        return e

    def result(self) -> dict:
        v = [self.sums[i] / self.counts[i] if self.counts[i] else math.nan for i in (0, 1)]
        return {"composite_band": float(v[0]), "composite_rest": float(v[1])}
