"""Losses: registry/factory, cross-entropy, Lovász-softmax, the differentiable SC loss, distillation."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vbg_app.errors import BadInput  # noqa: E402
from vbg_app.tools.metrics import sc_metric  # noqa: E402
from vbg_app.train.losses import (LOSSES, CrossEntropyLoss, DistillationLoss, LovaszSoftmaxLoss,  # noqa: E402
                                  MixedLoss, SemanticConnectivityLoss, build_loss)

pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
IGN = 255


# -- helpers --------------------------------------------------------------------------------------------------
def canvas(h=12, w=12):
    return np.zeros((h, w), bool)


def square(m, y, x, s):
    m[y:y + s, x:x + s] = True
    return m


def one_hot(pred: np.ndarray) -> torch.Tensor:
    """[1,2,H,W] hard probabilities (0/1) of a bool person mask."""
    p = torch.from_numpy(pred.astype(np.float32))
    return torch.stack([1 - p, p])[None]


def labels_of(gt: np.ndarray, ignore: np.ndarray | None = None) -> torch.Tensor:
    lab = torch.from_numpy(gt.astype(np.int64))
    if ignore is not None:
        lab[torch.from_numpy(ignore)] = IGN
    return lab[None]


def soft_logits(pred: np.ndarray, margin: float = 2.0) -> torch.Tensor:
    """[1,2,H,W] logits whose argmax is ``pred`` and whose softmax is soft (|logit difference| = 2·margin)."""
    z = torch.from_numpy(np.where(pred, margin, -margin).astype(np.float32))
    return torch.stack([-z, z])[None].clone().requires_grad_(True)


def sc_loss_hard(pred, gt, ignore=None, **kw) -> float:
    fn = SemanticConnectivityLoss(max_pred_components=None, **kw)
    return float(fn.from_probs(one_hot(pred), labels_of(gt, ignore)))


# -- registry / factory ------------------------------------------------------------------------------------------
def test_registry_and_factory_build_a_weighted_sum():
    assert set(LOSSES) == {"cross_entropy", "lovasz_softmax", "semantic_connectivity", "distillation"}
    loss = build_loss({"terms": [{"type": "cross_entropy", "weight": 0.8}, {"type": "lovasz", "weight": 0.2},
                                 {"type": "sc", "weight": 0.5, "max_pred_components": 5}]})
    assert isinstance(loss, MixedLoss)
    assert loss.names == ["cross_entropy", "lovasz_softmax", "semantic_connectivity"]
    assert loss.term("semantic_connectivity").max_pred_components == 5
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 16, 24, requires_grad=True)
    labels = (torch.rand(2, 16, 24) > 0.5).long()
    total, parts = loss(logits, labels)
    expected = 0.8 * parts["cross_entropy"] + 0.2 * parts["lovasz_softmax"] + 0.5 * parts["semantic_connectivity"]
    assert float(total) == pytest.approx(expected, rel=1e-5)
    total.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_factory_rejects_unknown_names_and_options_and_honours_start_iter():
    with pytest.raises(BadInput, match="cross_entropy"):
        build_loss([{"type": "dice"}])
    with pytest.raises(BadInput):
        build_loss([{"type": "cross_entropy", "no_such_option": 1}])
    with pytest.raises(BadInput):
        build_loss([{"weight": 1.0}])
    loss = build_loss([{"type": "cross_entropy"}, {"type": "semantic_connectivity", "start_iter": 100}])
    logits = torch.zeros(1, 2, 8, 8)
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    assert set(loss(logits, labels)[1]) == {"cross_entropy"}
    loss.set_iteration(100)
    assert set(loss(logits, labels)[1]) == {"cross_entropy", "semantic_connectivity"}


# -- cross-entropy / Lovász ------------------------------------------------------------------------------------------
def test_cross_entropy_ignores_255_and_handles_all_ignored():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]], requires_grad=True)  # [1,2,1,2]
    labels = torch.tensor([[[0, IGN]]])
    # only pixel 0 counts: -log softmax([2, 0])[0] = log(1 + e^-2)
    assert float(CrossEntropyLoss()(logits, labels)) == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)
    out = CrossEntropyLoss()(logits, torch.full((1, 1, 2), IGN))
    assert float(out) == 0.0
    out.backward()  # still part of the graph


def test_lovasz_on_hard_predictions_is_one_minus_iou():
    # 1x6 image. label:      person on pixels 0..2 (3 px)
    #            prediction: person on pixels 1..4 (4 px)
    # person IoU = |{1,2}| / |{0..4}| = 2/5; background: label {3,4,5}, pred {0,5}: IoU = 1/4
    # Lovász-softmax on one-hot = mean(1 - 2/5, 1 - 1/4) = (0.6 + 0.75) / 2 = 0.675
    gt = np.array([[1, 1, 1, 0, 0, 0]], bool)
    pred = np.array([[0, 1, 1, 1, 1, 0]], bool)
    probs = one_hot(pred)
    from vbg_app.train.losses._functional import lovasz_softmax
    assert float(lovasz_softmax(probs, labels_of(gt))) == pytest.approx(0.675)
    # perfect prediction: 0; an ignored pixel is left out (pixel 0 ignored: person IoU 2/4, bg 1/3)
    assert float(lovasz_softmax(one_hot(gt), labels_of(gt))) == pytest.approx(0.0)
    ign = np.zeros_like(gt)
    ign[0, 0] = True
    assert float(lovasz_softmax(probs, labels_of(gt, ign))) == pytest.approx(((1 - 2 / 4) + (1 - 1 / 3)) / 2)
    logits = soft_logits(pred)
    LovaszSoftmaxLoss()(logits, labels_of(gt)).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# -- SC loss: hard predictions equal the metric (hand-computed) --------------------------------------------------------
def test_sc_hard_square_plus_stray_blob_equals_metric():
    # 12x12 = 144 px. label: one 4x4 square (16 px). prediction: the square + a lone 2x2 blob (4 px).
    gt = square(canvas(), 2, 2, 4)
    pred = square(gt.copy(), 8, 8, 2)
    # person:     g1 = the square, paired with p1 = the square: IoU 16/16 = 1; the blob is lone ->
    #             C = 1 / (1 + 1) = 0.5
    # background: label bg = 144 - 16 = 128 px (1 component); predicted bg = 144 - 20 = 124 px (1 component,
    #             the blob does not cut it) inside it: IoU = 124/128 = 0.96875 -> C = 0.96875
    # SC = (0.5 + 0.96875) / 2 = 0.734375 -> loss 0.265625
    assert sc_metric(pred, gt) == pytest.approx(0.734375)
    assert 1 - sc_loss_hard(pred, gt) == pytest.approx(0.734375, abs=1e-6)


def test_sc_hard_label_split_into_two_predictions_equals_metric():
    # label: 4x5 rectangle (20 px) at rows 2..5, cols 2..6; prediction: its columns 2-3 and 5-6 (8 px each).
    gt = canvas()
    gt[2:6, 2:7] = True
    pred = canvas()
    pred[2:6, 2:4] = True
    pred[2:6, 5:7] = True
    # person:     g1 pairs with p1 (IoU 8/20) and p2 (8/20): mean 0.4; no lone -> C = 0.4
    # background: label bg 124 px; predicted bg = 124 + the 4-px gap column = 128 px, one component
    #             (the gap touches the outside above and below) -> IoU 124/128 -> C = 0.96875
    # SC = (0.4 + 0.96875) / 2 = 0.684375
    assert sc_metric(pred, gt) == pytest.approx(0.684375)
    assert 1 - sc_loss_hard(pred, gt) == pytest.approx(0.684375, abs=1e-6)


def test_sc_hard_bridge_and_diagonal_8_connectivity_equal_metric():
    # label: two 3x3 squares at (1,1) and (1,7); prediction: one 3x9 bar at rows 1..3, cols 1..9 (27 px).
    gt = square(square(canvas(), 1, 1, 3), 1, 7, 3)
    pred = canvas()
    pred[1:4, 1:10] = True
    # person:     g1 ∩ bar = 9, union 27 -> 1/3; g2 the same -> C = (1/3 + 1/3) / 2 = 1/3
    # background: label bg 126 px, predicted bg 117 px inside it -> IoU 117/126
    expected = (1 / 3 + 117 / 126) / 2
    assert sc_metric(pred, gt) == pytest.approx(expected)
    assert 1 - sc_loss_hard(pred, gt) == pytest.approx(expected, abs=1e-6)
    # 8-connectivity: label = two 2x2 squares touching at a corner = ONE component of 8 px;
    # prediction = the first square only (4 px): person IoU 4/8 = 0.5, C = 0.5
    # background: label bg 136 px (one comp), predicted bg 140 px containing it -> 136/140
    gt2 = square(square(canvas(), 2, 2, 2), 4, 4, 2)
    pred2 = square(canvas(), 2, 2, 2)
    expected2 = (0.5 + 136 / 140) / 2
    assert sc_metric(pred2, gt2) == pytest.approx(expected2)
    assert 1 - sc_loss_hard(pred2, gt2) == pytest.approx(expected2, abs=1e-6)


def test_sc_hard_ignore_ring_equals_metric():
    # label: 4x4 square at (2,2) inside a 1-px ignore ring (rows/cols 1..6); the ring is 255 in training labels
    # (the metric's file convention is 128).
    person = square(canvas(), 2, 2, 4)
    ring = square(canvas(), 1, 1, 6) & ~person
    gt_metric = np.where(person, 255, np.where(ring, 128, 0)).astype(np.uint8)
    # prediction: 2x2 inside the square (4 px) + a lone pixel at (1,5) in the ring, not touching the 2x2
    pred = square(canvas(), 3, 3, 2)
    pred[1, 5] = True
    # person:     the ring pixel's component has no valid pixel: dropped. g1 (16 px) pairs with the 2x2:
    #             IoU 4/16 -> C = 0.25
    # background: valid label bg = 144 - 36 = 108 px; predicted bg = everything but the 2x2 and the pixel,
    #             one component; its valid part = 108 + 12 (square pixels not predicted) = 120 px;
    #             intersection 108 -> IoU 108/120 = 0.9 -> C = 0.9
    # SC = (0.25 + 0.9) / 2 = 0.575
    assert sc_metric(pred, gt_metric) == pytest.approx(0.575)
    assert 1 - sc_loss_hard(pred, person, ignore=ring) == pytest.approx(0.575, abs=1e-6)


def test_sc_cold_start_term_is_union_over_image():
    gt = square(canvas(), 2, 2, 4)  # 16 px
    # nothing predicted: person has no pair -> |P ∪ G| / |I| = 16/144;
    # background: label bg 128 px, predicted bg = all 144 px -> IoU 128/144 -> 1 - C = 16/144
    assert sc_loss_hard(canvas(), gt) == pytest.approx(16 / 144, abs=1e-6)
    # prediction disjoint from the label: a 2x2 blob at (8,8): person |P ∪ G| / |I| = 20/144;
    # background: predicted bg = 140 px (one comp) ⊇ label bg ∩ ... : ∩ = 124, ∪ = 144 -> 1 - C = 20/144
    assert sc_loss_hard(square(canvas(), 8, 8, 2), gt) == pytest.approx(20 / 144, abs=1e-6)


def test_sc_batch_mean_and_metric_on_random_blobs():
    import cv2

    preds, gts, expected = [], [], []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        noise = rng.random((40, 48))
        gt = cv2.GaussianBlur(noise, (0, 0), 3) > 0.5
        pred = cv2.GaussianBlur(noise + 0.1 * rng.standard_normal((40, 48)), (0, 0), 2.5) > 0.5
        preds.append(pred)
        gts.append(gt)
        expected.append(sc_metric(pred, gt))
    probs = torch.cat([one_hot(p) for p in preds])
    labels = torch.cat([labels_of(g) for g in gts])
    fn = SemanticConnectivityLoss(max_pred_components=None)
    fn.from_probs(probs, labels)
    # the hard connectivity reported by the loss is the metric, image by image (averaged)
    assert fn.last_connectivity == pytest.approx(float(np.mean(expected)))


# -- SC loss: gradients and behaviour on soft predictions --------------------------------------------------------------
def test_sc_gradient_reaches_logits_and_points_the_right_way():
    gt = canvas(24, 24)
    gt[4:16, 6:14] = True
    pred = gt.copy()
    pred[4:16, 6:9] = False  # the left part of the person is missed...
    pred = square(pred, 18, 18, 3)  # ...and there is a stray blob
    logits = soft_logits(pred, margin=1.0)
    loss = SemanticConnectivityLoss()(logits, labels_of(gt))
    loss.backward()
    g = logits.grad[0, 1]  # d loss / d person logit
    assert torch.isfinite(logits.grad).all()
    assert g.abs().sum() > 0
    # descent direction: raise the person logit in the predicted label part and in the missed label part,
    # lower it in the stray blob
    assert g[10, 10] < 0
    assert g[10, 7] < 0
    assert g[19, 19] > 0


def test_sc_stray_blobs_score_a_higher_loss_than_a_clean_prediction():
    gt = canvas(36, 64)
    gt[6:36, 20:44] = True
    clean = gt.copy()
    stray = gt.copy()
    for y, x in ((2, 2), (2, 56), (28, 4), (30, 56), (14, 50)):
        square(stray, y, x, 3)
    fn = SemanticConnectivityLoss()
    l_clean = float(fn(soft_logits(clean), labels_of(gt)))
    l_stray = float(fn(soft_logits(stray), labels_of(gt)))
    assert l_stray > l_clean + 0.2
    # soft probability matters: the same stray blobs held with less confidence cost less
    l_stray_weak = float(fn(soft_logits(stray, margin=2.0) * torch.from_numpy(
        np.where(stray & ~gt, 0.1, 1.0).astype(np.float32)), labels_of(gt)))
    assert l_clean < l_stray_weak < l_stray


def test_sc_component_cap_keeps_the_largest():
    gt = canvas(40, 40)
    gt[10:30, 10:30] = True
    pred = gt.copy()
    for i in range(12):  # 12 lone single pixels along the top and bottom rows
        pred[1 if i < 6 else 38, 3 + 6 * (i % 6)] = True
    # uncapped: person C = 1 / (1 + 12); background C = 1188/1200 -> SC = (1/13 + 1188/1200) / 2
    assert 1 - sc_loss_hard(pred, gt) == pytest.approx((1 / 13 + 1188 / 1200) / 2, abs=1e-6)
    assert sc_metric(pred, gt) == pytest.approx((1 / 13 + 1188 / 1200) / 2)
    # cap 5: the square + the 4 largest blobs (ties kept in scan order) -> person C = 1 / (1 + 4)
    fn = SemanticConnectivityLoss(max_pred_components=5)
    loss = float(fn.from_probs(one_hot(pred), labels_of(gt)))
    assert 1 - loss == pytest.approx((1 / 5 + 1188 / 1200) / 2, abs=1e-6)


def test_sc_ignores_fully_ignored_images_and_returns_a_graph():
    logits = torch.zeros(2, 2, 8, 8, requires_grad=True)
    labels = torch.full((2, 8, 8), IGN)
    out = SemanticConnectivityLoss()(logits, labels)
    assert float(out) == 0.0
    out.backward()


# -- distillation ------------------------------------------------------------------------------------------------------
def test_distillation_is_zero_at_the_teacher_and_skips_nan_samples():
    torch.manual_seed(0)
    teacher = torch.rand(2, 6, 6) * 0.98 + 0.01
    z = torch.logit(teacher)
    logits = torch.stack([torch.zeros_like(z), z], 1).requires_grad_(True)
    for mode in ("kl", "bce"):
        fn = DistillationLoss(mode=mode)
        val = float(fn(logits, teacher))
        if mode == "kl":
            assert val == pytest.approx(0.0, abs=1e-6)
        # BCE's minimum is the teacher's entropy: moving away from the teacher increases it
        worse = torch.stack([torch.zeros_like(z), z + 1.0], 1)
        assert float(fn(worse, teacher)) > val
    soft = teacher.clone()
    soft[1] = float("nan")  # second sample has no teacher
    bad = logits.detach().clone()
    bad[1] = 10.0 * torch.randn_like(bad[1])  # whatever it predicts does not count
    assert float(DistillationLoss("kl")(bad, soft)) == pytest.approx(0.0, abs=1e-6)
    mixed = build_loss([{"type": "cross_entropy"}, {"type": "distillation", "weight": 0.5}])
    labels = torch.full((2, 6, 6), IGN)
    _, parts = mixed(logits, labels, soft=torch.full((2, 6, 6), float("nan")))
    assert "distillation" not in parts
    total, parts = mixed(logits, labels, soft=soft)
    assert "distillation" in parts


def test_onnx_teacher_on_a_tiny_model(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from tests.tinymodel import make_model, red_person_frame
    from vbg_app.train.losses.distillation import OnnxTeacher

    teacher = OnnxTeacher(make_model(tmp_path / "tiny.onnx", size_wh=(32, 16)))
    frame, mask = red_person_frame(60, 100)
    prob = teacher.predict(frame)
    assert prob.shape == (60, 100) and prob.dtype == np.float32
    assert prob[mask].mean() > 0.9 and prob[~mask].mean() < 0.1
    with pytest.raises(BadInput):
        OnnxTeacher(tmp_path / "missing.onnx")


@pytest.mark.shared
def test_reference_teachers_run_if_shared_present():
    pytest.importorskip("onnxruntime")
    ref = SHARED / "models" / "reference"
    if not ref.is_dir():
        pytest.skip("../shared is absent")
    from vbg_app.train.losses.distillation import OnnxTeacher

    img = np.full((144, 256, 3), 128, np.uint8)
    for name in ("pphumanseg_v1_lite_398x224.onnx", "mediapipe_selfie_256.onnx"):
        t = OnnxTeacher(ref / name)
        p = t.predict(img)
        assert p.shape == (144, 256) and np.isfinite(p).all() and 0 <= p.min() <= p.max() <= 1
