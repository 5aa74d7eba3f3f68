import math

import numpy as np
import pytest

from vbg_app.tools.metrics import (FlickerAccumulator, SegAccumulator, class_connectivity, confusion, decode_label,
                             flicker, miou, person_iou, sc_metric)


def canvas(h=12, w=12):
    return np.zeros((h, w), bool)


def square(m, y, x, s):
    m[y:y + s, x:x + s] = True
    return m


# -- IoU / mIoU ------------------------------------------------------------------------------------------------
def test_iou_and_miou_on_a_small_array():
    # 4x4 image. label: left half person (8 px). prediction: left 3 columns (12 px)
    gt = np.zeros((4, 4), np.uint8)
    gt[:, :2] = 255
    pred = np.zeros((4, 4), bool)
    pred[:, :3] = True
    # TP = 8, FP = 4, FN = 0, TN = 4
    assert confusion(pred, gt) == (8, 4, 0, 4)
    assert person_iou(pred, gt) == pytest.approx(8 / 12)
    # background IoU = TN / (TN + FP + FN) = 4 / 8
    assert miou(pred, gt) == pytest.approx((8 / 12 + 4 / 8) / 2)


def test_perfect_and_empty_cases():
    gt = np.zeros((5, 5), np.uint8)
    assert person_iou(np.zeros((5, 5), bool), gt) == 1.0  # nothing to find, nothing found
    assert miou(np.zeros((5, 5), bool), gt) == 1.0  # only background is defined, and it is perfect
    assert person_iou(np.ones((5, 5), bool), gt) == 0.0
    gt[1:3, 1:3] = 255
    assert person_iou(gt == 255, gt) == 1.0 and miou(gt == 255, gt) == 1.0


def test_float_prediction_is_thresholded_at_half_and_01_labels_are_read():
    gt = np.array([[0, 1, 1, 0]], np.uint8)  # 0/1 labels
    prob = np.array([[0.2, 0.51, 0.5, 0.9]], np.float32)  # > 0.5 -> [0, 1, 0, 1]
    # TP 1, FP 1, FN 1
    assert person_iou(prob, gt) == pytest.approx(1 / 3)


def test_ignore_128_and_explicit_ignore_are_excluded():
    gt = np.zeros((4, 4), np.uint8)
    gt[:, :2] = 255
    gt[:, 2] = 128  # ignore column
    pred = np.zeros((4, 4), bool)
    pred[:, :3] = True  # the extra column is inside the ignore band: no penalty
    assert person_iou(pred, gt) == 1.0 and miou(pred, gt) == 1.0
    person, ign = decode_label(gt)
    assert ign.sum() == 4 and not (person & ign).any()
    # the same through an explicit ignore mask on a bool label
    ignore = np.zeros((4, 4), bool)
    ignore[:, 2] = True
    assert person_iou(pred, gt == 255, ignore=ignore) == 1.0
    # explicit ignore is OR-ed with the 128 pixels: ignore the last column too -> only 8 scored pixels
    ignore2 = np.zeros((4, 4), bool)
    ignore2[:, 3] = True
    assert confusion(pred, gt, ignore2) == (8, 0, 0, 0)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        person_iou(np.zeros((3, 3), bool), np.zeros((3, 4), np.uint8))


# -- SC, hand-computed -------------------------------------------------------------------------------------------
def test_sc_square_plus_stray_blob():
    # 12x12 = 144 px. label: one 4x4 square (16 px). prediction: the same square + a lone 2x2 blob.
    gt = square(canvas(), 2, 2, 4)
    pred = square(gt.copy(), 8, 8, 2)
    # person: g1 pairs with the square, IoU 16/16 = 1; the blob is a lone component ->
    #   C_person = 1 / (1 label component + 1 lone) = 0.5
    # background: label bg = 128 px, one component; predicted bg = 124 px, one component (the blob does not
    #   cut it), inside the label bg -> IoU = 124 / 128; no lone -> C_bg = 0.96875
    # SC = (0.5 + 0.96875) / 2 = 0.734375
    assert class_connectivity(pred, gt) == pytest.approx(0.5)
    assert class_connectivity(~pred, ~gt) == pytest.approx(124 / 128)
    assert sc_metric(pred, gt) == pytest.approx(0.734375)


def test_sc_one_of_two_squares_found():
    # label: two 3x3 squares (9 px each); prediction: only the first.
    gt = square(square(canvas(), 1, 1, 3), 7, 7, 3)
    pred = square(canvas(), 1, 1, 3)
    # person: g1 -> IoU 1, g2 -> no partner -> 0; no lone -> C_person = (1 + 0) / 2 = 0.5
    # background: label bg 126 px (1 comp), predicted bg 135 px (1 comp) containing it: IoU = 126 / 135
    assert sc_metric(pred, gt) == pytest.approx((0.5 + 126 / 135) / 2)


def test_sc_one_component_bridging_two_label_squares():
    # label: 3x3 squares at (1,1) and (1,7); prediction: one 3x9 bar from column 1 to 9 covering both (27 px)
    gt = square(square(canvas(), 1, 1, 3), 1, 7, 3)
    pred = canvas()
    pred[1:4, 1:10] = True
    # person: g1 ∩ bar = 9, union = 27 -> 1/3; g2 the same -> C_person = (1/3 + 1/3) / 2 = 1/3
    # background: label bg = 126 px, pred bg = 117 px inside it -> IoU = 117 / 126
    assert class_connectivity(pred, gt) == pytest.approx(1 / 3)
    assert sc_metric(pred, gt) == pytest.approx((1 / 3 + 117 / 126) / 2)


def test_sc_label_split_into_two_predicted_halves():
    # label: a 4x5 rectangle (20 px); prediction: its left and right 4x2 parts (8 px each), the middle
    # column not predicted.
    gt = canvas()
    gt[2:6, 2:7] = True  # 20 px
    pred = canvas()
    pred[2:6, 2:4] = True
    pred[2:6, 5:7] = True
    # person: g1 pairs with p1 (8/20) and p2 (8/20) -> mean 0.4; no lone -> C_person = 0.4
    # background: label bg = 124 px; predicted bg = 128 px = label bg + the 4-px gap column, one component
    #   (the gap touches the outside above and below) -> IoU = 124 / 128
    assert class_connectivity(pred, gt) == pytest.approx(0.4)
    assert sc_metric(pred, gt) == pytest.approx((0.4 + 124 / 128) / 2)


def test_sc_empty_prediction_and_empty_everything():
    gt = square(canvas(), 2, 2, 4)
    # person: N = 1, nothing paired, K = 0 -> 0; background: 128 / 144 -> SC = (0 + 128/144) / 2
    assert sc_metric(canvas(), gt) == pytest.approx((128 / 144) / 2)
    # no person anywhere: the person class is absent from both -> SC = C_bg = 1
    assert sc_metric(canvas(), canvas()) == 1.0
    # a prediction with a person where the label has none: C_person = 0 / (0 + 1) = 0; bg 128/144
    assert sc_metric(gt, canvas()) == pytest.approx((0 + 128 / 144) / 2)


def test_sc_uses_8_connectivity():
    # two squares touching only at a corner are ONE component with 8-connectivity
    gt = square(square(canvas(), 2, 2, 2), 4, 4, 2)
    assert class_connectivity(gt, gt) == 1.0
    pred = square(canvas(), 2, 2, 2)  # only the first square: one label comp of 8 px, pred 4 px -> IoU 0.5
    assert class_connectivity(pred, gt) == pytest.approx(0.5)


def test_sc_background_is_not_zeroed_like_paddleseg():
    # PaddleSeg's loss multiplies components by the class index, which zeroes every background IoU; a
    # perfect prediction must score SC = 1 here, background included.
    gt = square(canvas(), 3, 3, 5)
    assert sc_metric(gt, gt) == 1.0
    assert class_connectivity(~gt, ~gt) == 1.0


def test_sc_ignore_band():
    # label: 4x4 square with a 1-px ignore ring around it (128); the prediction covers square + ring.
    gt = np.zeros((12, 12), np.uint8)
    gt[1:7, 1:7] = 128
    gt[2:6, 2:6] = 255
    pred = np.zeros((12, 12), bool)
    pred[1:7, 1:7] = True
    # person: the ring pixels are not counted -> IoU 16/16 -> C_person = 1; background: predicted bg equals
    # the valid label bg -> 1. SC = 1.
    assert sc_metric(pred, gt) == 1.0
    # a predicted pixel in the ring next to the square joins the square's component and adds no area
    pred2 = gt == 255
    pred2[1, 4] = True
    assert sc_metric(pred2, gt) == 1.0
    # a predicted component lying wholly inside ignored pixels is dropped (neither paired nor lone)
    pred3 = np.zeros((12, 12), bool)
    pred3[3:5, 3:5] = True  # 4 px inside the square: IoU 4/16
    pred3[1, 5] = True      # a lone pixel in the ignore ring, not adjacent to pred3's square: dropped
    assert class_connectivity(pred3, gt == 255, valid=gt != 128) == pytest.approx(4 / 16)
    # without the ignore mask the same pixel is a lone component: 0.25 / (1 + 1)
    assert class_connectivity(pred3, gt == 255) == pytest.approx(4 / 16 / 2)


def _reference_sc(pred, gt):
    """Direct, loop-based transcription of the definition (no ignore), for cross-checking."""
    import cv2
    cs = []
    for p_c, g_c in ((~pred, ~gt), (pred, gt)):
        n_p, lp = cv2.connectedComponents(p_c.astype(np.uint8), connectivity=8)
        n_g, lg = cv2.connectedComponents(g_c.astype(np.uint8), connectivity=8)
        if n_p == 1 and n_g == 1:
            continue
        total, paired_preds = 0.0, set()
        for i in range(1, n_g):
            gi = lg == i
            ious = []
            for k in range(1, n_p):
                pk = lp == k
                inter = np.logical_and(gi, pk).sum()
                if inter:
                    ious.append(inter / np.logical_or(gi, pk).sum())
                    paired_preds.add(k)
            total += np.mean(ious) if ious else 0.0
        lone = (n_p - 1) - len(paired_preds)
        cs.append(total / ((n_g - 1) + lone))
    return float(np.mean(cs)) if cs else math.nan


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_sc_matches_loop_reference_on_random_blobs(seed, dense, monkeypatch):
    import cv2

    import vbg_app.tools.metrics as metrics
    if not dense:  # force the sparse (np.unique) pairing path
        monkeypatch.setattr(metrics, "_DENSE_PAIRS", 0)
    rng = np.random.default_rng(seed)
    noise = rng.random((40, 48))
    gt = cv2.GaussianBlur(noise, (0, 0), 3) > 0.5
    pred = cv2.GaussianBlur(noise + 0.3 * rng.random((40, 48)), (0, 0), 2.5) > 0.5
    assert sc_metric(pred, gt) == pytest.approx(_reference_sc(pred, gt))


# -- flicker ------------------------------------------------------------------------------------------------------
def test_flicker_on_a_known_sequence():
    f0 = np.zeros((4, 4), bool)
    f1 = f0.copy()
    f1[0] = True  # 4 of 16 pixels flip -> 0.25
    f2 = f1.copy()  # no flip -> 0
    f3 = f0.copy()  # 4 flip back -> 0.25
    assert flicker([f0, f1, f2, f3]) == pytest.approx((0.25 + 0 + 0.25) / 3)
    # probabilities are binarised first: jitter below 0.5 is no flicker
    probs = [np.full((4, 4), 0.1, np.float32), np.full((4, 4), 0.4, np.float32), np.full((4, 4), 0.6, np.float32)]
    assert flicker(probs) == pytest.approx(0.5)  # 0 then 1 -> mean 0.5
    assert math.isnan(flicker([f0]))
    acc = FlickerAccumulator()
    acc.update(f0)
    with pytest.raises(ValueError):
        acc.update(np.zeros((4, 5), bool))


# -- accumulator ------------------------------------------------------------------------------------------------------
def test_accumulator_pools_pixels_and_averages_sc():
    acc = SegAccumulator()
    # image A (4x4): label left half (8 px), prediction left 3 columns -> TP 8, FP 4, FN 0, TN 4
    gt_a = np.zeros((4, 4), np.uint8)
    gt_a[:, :2] = 255
    pred_a = np.zeros((4, 4), bool)
    pred_a[:, :3] = True
    one = acc.update(pred_a, gt_a)
    assert one["person_iou"] == pytest.approx(8 / 12)
    # image B (2x2): perfect, 2 person px -> TP 2, TN 2
    gt_b = np.array([[255, 0], [255, 0]], np.uint8)
    acc.update(gt_b == 255, gt_b)
    r = acc.result()
    assert r["n_images"] == 2
    # dataset person IoU = ΣTP / Σ(TP+FP+FN) = (8 + 2) / (12 + 2)
    assert r["person_iou"] == pytest.approx(10 / 14)
    # background: ΣTN / Σ(TN+FP+FN) = (4 + 2) / (8 + 2)
    assert r["miou"] == pytest.approx((10 / 14 + 6 / 10) / 2)
    assert r["person_iou_per_image"] == pytest.approx((8 / 12 + 1) / 2)
    assert r["sc"] == pytest.approx((sc_metric(pred_a, gt_a) + 1.0) / 2)
    assert math.isnan(SegAccumulator().result()["miou"])
