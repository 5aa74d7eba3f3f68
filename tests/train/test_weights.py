"""Import of the released PP-HumanSegV1-Lite ONNX weights into ConnectNet, matched by graph structure."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from vbg_app.errors import BadInput  # noqa: E402
from vbg_app.train.model import ConnectNet  # noqa: E402
from tests.train.common import SHARED, RELEASED, TOL, lively_model  # noqa: E402
from vbg_app.train.weights import import_onnx_weights, load_released_onnx, recalibrate_bn  # noqa: E402


def real_images(n_per_set=2):
    import cv2

    files = []
    for d in sorted((SHARED / "data" / "portraits").glob("*/val/images")):
        files += sorted(d.glob("*.jpg"))[:n_per_set]
    out = []
    for f in files:
        rgb = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (398, 224), interpolation=cv2.INTER_AREA)
        out.append(((rgb.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy())
    return out


@pytest.fixture(scope="module")
def released():
    if not RELEASED.is_file():
        pytest.skip(f"{RELEASED} absent (../shared not available)")
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(RELEASED), providers=["CPUExecutionProvider"])
    return load_released_onnx(RELEASED), sess


@pytest.mark.shared
def test_import_report_and_structure():
    if not RELEASED.is_file():
        pytest.skip("../shared absent")
    m = ConnectNet()
    report = import_onnx_weights(m, RELEASED)
    assert report == {"convs": 48, "bn_folded": 48, "bn_separate": 0}  # the release has BN folded into conv
    bn = m.conv_bn0.bn
    assert torch.equal(bn.weight, torch.ones(36)) and torch.equal(bn.running_mean, torch.zeros(36))
    # sqrt(running_var + eps) is exactly 1 in float32, so eval-mode BN adds the folded bias and nothing else
    assert torch.equal(bn.running_var + bn.eps, torch.ones(36))


@pytest.mark.shared
def test_parity_random_inputs(released):
    model, sess = released
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 3, 224, 398)).astype(np.float32)
        ref = sess.run(None, {"x": x})[0]
        ours = model.predict(torch.from_numpy(x)).numpy()
        assert np.abs(ours - ref).max() <= TOL


@pytest.mark.shared
def test_parity_real_images(released):
    model, sess = released
    images = real_images()
    if not images:
        pytest.skip("no portrait images in ../shared")
    person = []
    for x in images:
        ref = sess.run(None, {"x": x})[0]
        ours = model.predict(torch.from_numpy(x)).numpy()
        assert np.abs(ours - ref).max() <= TOL
        person.append((ours[0, 1] > 0.5).mean())
    assert 0.05 < np.mean(person) < 0.9  # it segments people, not nothing or everything


def _export_unfolded(model, path):
    """An ONNX file with separate BatchNormalization nodes (and Identity-fed weights), unlike the release."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 64, 96),), str(path), dynamo=False, opset_version=17,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)


def test_import_with_separate_batchnorm_nodes_is_exact(tmp_path):
    src = lively_model(3)
    _export_unfolded(src, tmp_path / "bn.onnx")
    assert any(n.op_type == "BatchNormalization" for n in onnx.load(str(tmp_path / "bn.onnx")).graph.node)
    dst = ConnectNet()
    report = import_onnx_weights(dst, tmp_path / "bn.onnx")
    assert report == {"convs": 48, "bn_folded": 0, "bn_separate": 48}
    for (name, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), name
    x = torch.randn(1, 3, 96, 160)
    assert torch.equal(src.eval().predict(x), dst.eval().predict(x))


def test_rejects_a_different_network(tmp_path):
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(other, (torch.zeros(1, 3, 16, 16),), str(tmp_path / "other.onnx"), dynamo=False,
                          opset_version=17)
    with pytest.raises(BadInput, match="conv layers"):
        import_onnx_weights(ConnectNet(), tmp_path / "other.onnx")


def test_rejects_a_swapped_layer(tmp_path):
    """Same conv count, one layer with a different shape: the structural check names it."""
    m = lively_model(4)
    m.depthwise_separable2.pointwise.relu = False  # the ReLU test must catch a missing ReLU
    _export_unfolded(m, tmp_path / "norelu.onnx")
    with pytest.raises(BadInput, match=r"conv #47"):
        import_onnx_weights(ConnectNet(), tmp_path / "norelu.onnx")


def test_missing_or_garbage_file(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        import_onnx_weights(ConnectNet(), tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(BadInput, match="not a readable ONNX"):
        import_onnx_weights(ConnectNet(), tmp_path / "junk.onnx")


def test_recalibrate_bn_keeps_eval_output_and_makes_train_mode_match():
    m = lively_model(5)
    x = torch.randn(4, 3, 64, 96)
    before = m.eval()(x)
    recalibrate_bn(m, [x[:2], x[2:]])
    after = m.eval()(x)
    assert torch.allclose(before, after, atol=1e-4 * before.abs().max().item())
    # batch statistics now equal the running ones on the calibration data: train-mode output = eval-mode output
    m.train()
    with torch.no_grad():
        train_out = m(x)
    assert torch.allclose(train_out, after, atol=1e-3 * after.abs().max().item())
    # ...which was far from true before recalibration
    fresh = lively_model(5).train()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), before, atol=1e-2 * before.abs().max().item())
