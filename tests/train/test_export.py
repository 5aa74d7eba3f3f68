"""ONNX export of ConnectNet: parity, metadata, single file, graph hygiene, the shipped models/connectnet.onnx."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxslim")

from vbg_app.engines.meta import ModelMeta, parse_meta  # noqa: E402
from vbg_app.train.export import (DeployConnectNet, default_meta, export_onnx, main,  # noqa: E402
                                  resize_bilinear_matmul)
from vbg_app.train.model import ConnectNet  # noqa: E402
from tests.train.common import REPO, SHARED, RELEASED, TOL, lively_model  # noqa: E402

SHIPPED = REPO / "models" / "connectnet.onnx"


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = lively_model()
    d = tmp_path_factory.mktemp("export")
    path = export_onnx(model, d / "connectnet.onnx", input_size_wh=(398, 224))
    return model, path


def test_onnx_matches_pytorch(exported):
    model, path = exported
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 3, 224, 398)).astype(np.float32)
        ref = model.predict(torch.from_numpy(x)).numpy()
        out = run_onnx(path, x)
        assert out.shape == (1, 2, 224, 398)
        assert np.abs(out - ref).max() <= TOL
        assert np.allclose(out.sum(1), 1.0, atol=1e-5)


def test_metadata_contract(exported):
    _, path = exported
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    assert set(props) == set(ModelMeta(input_size_wh=(1, 1)).to_props())
    meta = parse_meta(props, str(path))
    assert meta.input_size_wh == (398, 224)
    assert (meta.layout, meta.color, meta.output, meta.name, meta.version) == ("NCHW", "RGB", "softmax2", "ConnectNet", "0")
    assert meta.mean == (0.5, 0.5, 0.5) and meta.std == (0.5, 0.5, 0.5)
    assert props["vbg.input_size_wh"] == "[398, 224]"
    assert "PaddleSeg" in meta.source and "Apache-2.0" in meta.source
    # onnxruntime sees the same keys
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert parse_meta(sess.get_modelmeta().custom_metadata_map) == meta


def test_single_file_opset_and_clean_graph(exported):
    _, path = exported
    assert sorted(p.name for p in path.parent.iterdir()) == ["connectnet.onnx"]  # no .onnx.data, no temp file
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    opset = {o.domain: o.version for o in proto.opset_import}
    assert opset.get("", opset.get("ai.onnx")) >= 17
    assert proto.ir_version <= 9  # loadable by onnxruntime >= 1.17 (pyproject's floor)
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops
    assert not ops & {"Shape", "Gather", "ConstantOfShape"}, ops  # sizes and shapes are constants
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 224, 398]
    onnx.checker.check_model(proto, full_check=True)


def test_other_size(tmp_path):
    model = lively_model(1)
    path = export_onnx(model, tmp_path / "m.onnx", input_size_wh=(256, 144), meta=default_meta((256, 144)))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 144, 256)).astype(np.float32)
    assert np.abs(run_onnx(path, x) - model.predict(torch.from_numpy(x)).numpy()).max() <= TOL
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["vbg.input_size_wh"] == "[256, 144]"


def test_aspect_export_has_a_dynamic_size_and_matches_pytorch_at_each(tmp_path):
    """vbg.fit = aspect: height and width are free; the graph equals the network at every fit_size."""
    from vbg_app.engines.fit import fit_size
    from vbg_app.engines.onnx_engine import OnnxSegmenter

    model = lively_model(3)
    path = export_onnx(model, tmp_path / "asp.onnx", input_size_wh=(398, 224),
                       meta=default_meta((398, 224), fit="aspect"))
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[:2]] == [1, 3] and [d.dim_param for d in dims[2:]] == ["height", "width"]
    rng = np.random.default_rng(3)
    for frame_wh in [(1280, 720), (640, 480), (550, 839), (720, 720)]:
        w, h = fit_size(frame_wh, (398, 224), "aspect")
        x = rng.uniform(-1, 1, (1, 3, h, w)).astype(np.float32)
        out = run_onnx(path, x)
        assert out.shape == (1, 2, h, w)
        assert np.abs(out - model.predict(torch.from_numpy(x)).numpy()).max() <= TOL
    seg = OnnxSegmenter(path, provider="cpu", threads=1)
    assert seg.segment(np.zeros((839, 550, 3), np.uint8)).shape[0] > 300  # 366 rows: the portrait at its aspect


def test_plain_export_matches_too(tmp_path):
    model = lively_model(2)
    path = export_onnx(model, tmp_path / "plain.onnx", optimize=False)
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 224, 398)).astype(np.float32)
    assert np.abs(run_onnx(path, x) - model.predict(torch.from_numpy(x)).numpy()).max() <= TOL
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Softmax" in ops and "Shape" not in ops and "BatchNormalization" not in ops


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)))
def test_each_deploy_rewrite_is_exact(flags):
    model = lively_model(3)
    deploy = DeployConnectNet(model, **dict(zip(("pad", "split_decoder", "matmul_resize", "sigmoid_head"), flags)))
    x = torch.randn(1, 3, 112, 200)
    with torch.no_grad():
        assert (deploy(x) - model.predict(x)).abs().max().item() <= TOL
    assert model.conv_bn0.conv.out_channels == 36  # the rewrites work on a copy


@pytest.mark.parametrize("widths", [{"stem": 32, "shortcut": 16, "decoder": 32}, {"stem": 20, "shortcut": 7,
                                                                                   "decoder": 5},
                                    {"stem": 32, "shortcut": 16, "decoder": 32, "edge_head": 1}, {"edge_head": 3}])
def test_slim_models_export_exactly(tmp_path, widths):
    """Slim widths (vbg_app/train/slim.py) and the edge head go through every rewrite, padded or not, and the
    --checkpoint CLI."""
    model = lively_model(4, **widths)
    x = torch.randn(1, 3, 112, 200)
    if model.edge is not None:  # a trained head's scale (lively_model's logits are in the hundreds), one that matters
        model.edge.conv.weight.data *= 0.03
        edge, model.edge = model.edge, None
        without = model.predict(x)
        model.edge = edge
        assert (model.predict(x) - without).abs().max().item() > 0.05
    # lively_model's logits are in the hundreds: float32 rounding (thread count, op order) then moves a steep sigmoid
    # by up to ~2e-4; a wrong rewrite moves it by far more (the edge head alone by > 0.05, checked above)
    tol = 10 * TOL
    with torch.no_grad():
        for sigmoid_head in (True, False):
            assert (DeployConnectNet(model, sigmoid_head=sigmoid_head)(x) - model.predict(x)).abs().max().item() <= tol
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "iteration": 5}, ckpt)
    out = tmp_path / "slim.onnx"
    assert main(["--checkpoint", str(ckpt), "--out", str(out), "--size", "200x112", "--fit", "aspect"]) == 0
    assert np.abs(run_onnx(out, x.numpy()) - model.predict(x).numpy()).max() <= tol


@pytest.mark.parametrize("src,dst", [((14, 25), (112, 199)), ((7, 9), (14, 18)), ((20, 30), (7, 11)), ((5, 5), (5, 12))])
def test_matmul_resize_equals_bilinear(src, dst):
    x = torch.randn(2, 3, *src)
    ref = torch.nn.functional.interpolate(x, size=dst, mode="bilinear", align_corners=False)
    assert torch.allclose(resize_bilinear_matmul(x, dst), ref, atol=1e-5)


def test_cli_reports_a_missing_file(tmp_path, capsys):
    assert main(["--from-released", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "o.onnx")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o.onnx").exists()
    with pytest.raises(SystemExit):
        main(["--from-released", "x.onnx", "--size", "398by224"])


@pytest.mark.shared
def test_cli_from_released(tmp_path):
    if not RELEASED.is_file():
        pytest.skip("../shared absent")
    out = tmp_path / "sub" / "connectnet.onnx"
    assert main(["--from-released", str(RELEASED), "--out", str(out), "--size", "398x224"]) == 0
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 224, 398)).astype(np.float32)
    assert np.abs(run_onnx(out, x) - run_onnx(RELEASED, x)).max() <= TOL


def test_shipped_model_is_self_describing():
    if not SHIPPED.is_file():
        pytest.fail(f"{SHIPPED} is missing: see models/README.md, Reproduce")
    proto = onnx.load(str(SHIPPED))
    meta = parse_meta({p.key: p.value for p in proto.metadata_props}, str(SHIPPED))
    assert (meta.name, meta.input_size_wh, meta.output, meta.fit) == ("ConnectNet", (398, 224), "softmax2", "letterbox")
    assert not (SHIPPED.parent / (SHIPPED.name + ".data")).exists()
    assert not {n.op_type for n in proto.graph.node} & {"BatchNormalization", "Shape"}


def test_shipped_model_names_a_config_in_the_repo_that_reproduces_it():
    """vbg.version is CONFIG-itN: the config exists, exports with the same fit and size, and runs N iterations."""
    import yaml

    meta = parse_meta({p.key: p.value for p in onnx.load(str(SHIPPED)).metadata_props}, str(SHIPPED))
    name, _, it = meta.version.rpartition("-it")
    config = REPO / "vbg_app" / "train" / "configs" / f"{name}.yaml"
    assert config.is_file(), f"vbg.version {meta.version!r} names no config in vbg_app/train/configs/"
    cfg = yaml.safe_load(config.read_text())
    assert cfg["name"] == name and int(it) == cfg["iters"]
    assert cfg["export"]["fit"] == meta.fit and tuple(cfg["input_size"]) == meta.input_size_wh
    assert cfg["export"]["checkpoint"] == "last"  # no choice by val score: the val sets are the card's test sets
    assert any(t["type"] == "semantic_connectivity" for t in cfg["loss"])
    assert f"config {name}, iteration {it}" in meta.source


@pytest.mark.slow
@pytest.mark.shared
def test_shipped_model_is_not_slower_than_the_release():
    if not RELEASED.is_file():
        pytest.skip("../shared absent")
    from vbg_app.train.speed_check import time_models

    for threads in (1, 2):
        ours, theirs = time_models([SHIPPED, RELEASED], threads=threads, runs=60, warmup=5)
        assert ours["median_ms"] <= theirs["median_ms"], (ours, theirs)
