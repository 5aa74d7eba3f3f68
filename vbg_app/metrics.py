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
