import json

import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model, red_person_frame
from vbg_app.engines import create_segmenter
from vbg_app.engines.meta import ModelMeta, parse_meta
from vbg_app.engines.onnx_engine import OnnxSegmenter, _provider_list
from vbg_app.errors import BadInput, DeviceUnavailable


@pytest.fixture
def tiny(tmp_path):
    return make_model(tmp_path / "tiny.onnx")


def test_segment_follows_metadata_and_finds_the_red_person(tiny):
    seg = OnnxSegmenter(tiny, provider="cpu", threads=1)
    assert seg.input_size_wh == (32, 16)
    assert seg.provider == "cpu" and seg.fallback_reason == ""
    frame, mask = red_person_frame()
    prob = seg.segment(frame)
    assert prob.shape == (16, 32) and prob.dtype == np.float32
    small = cv2.resize(mask.astype(np.uint8), (32, 16), interpolation=cv2.INTER_NEAREST)
    inner = cv2.erode(small, np.ones((3, 3), np.uint8)).astype(bool)  # edge pixels are interpolated
    outer = ~cv2.dilate(small, np.ones((3, 3), np.uint8)).astype(bool)
    assert prob[inner].min() > 0.99
    assert prob[outer].max() < 0.01


def test_bgr_metadata_swaps_channels(tmp_path):
    # same weights but declared BGR: the engine now feeds B where the model expects "R" -> inverted answer
    path = make_model(tmp_path / "bgr.onnx", props={"vbg.color": "BGR"})
    frame, mask = red_person_frame()
    prob = OnnxSegmenter(path, provider="cpu").segment(frame)
    assert prob.mean() > 0.7 and prob[6:10, 13:19].max() < 0.01  # background (5/6 of the frame) is "person"


def test_normalisation_matches_formula(tiny):
    seg = OnnxSegmenter(tiny, provider="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (16, 32, 3), dtype=np.uint8)
    blob = seg.preprocess(frame)
    rgb = frame[:, :, ::-1].astype(np.float32)
    expect = ((rgb / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(blob, expect, atol=1e-5)


def test_model_without_metadata_is_refused(tmp_path):
    path = make_model(tmp_path / "bare.onnx", meta=False)
    with pytest.raises(BadInput, match="no vbg metadata"):
        OnnxSegmenter(path)


def test_model_with_wrong_rank_is_refused(tmp_path):
    path = make_model(tmp_path / "rank3.onnx", layout_rank=3)
    with pytest.raises(BadInput, match="rank 4"):
        OnnxSegmenter(path)


def test_metadata_that_contradicts_the_graph_is_refused(tmp_path):
    path = make_model(tmp_path / "lying.onnx", props={"vbg.input_size_wh": "[64, 64]"})
    with pytest.raises(BadInput, match="does not match its metadata"):
        OnnxSegmenter(path)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x08\x07\x12\x03abc" * 10])
def test_garbage_and_truncated_files_are_refused(tmp_path, tiny, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    with pytest.raises(BadInput, match="not a loadable ONNX model"):
        OnnxSegmenter(bad)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny.read_bytes()[: len(tiny.read_bytes()) // 2])
    with pytest.raises(BadInput):
        OnnxSegmenter(truncated)


def test_missing_model_file(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        OnnxSegmenter(tmp_path / "nope.onnx")


def test_bad_frames_are_refused_with_the_fix(tiny):
    seg = OnnxSegmenter(tiny)
    for bad in (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), "frame"):
        with pytest.raises(BadInput, match="to_bgr8"):
            seg.segment(bad)


def test_unknown_and_uninstalled_providers():
    with pytest.raises(BadInput, match="unknown provider"):
        _provider_list("gpu")
    with pytest.raises(DeviceUnavailable, match="pip"):
        _provider_list("openvino")  # not in the CPU wheel
    assert _provider_list("cpu") == ["CPUExecutionProvider"]
    assert _provider_list("auto")[-1] == "CPUExecutionProvider"


class _FlakySession:
    """Stands in for an onnxruntime session on a GPU that dies at run time."""

    def run(self, *a, **k):
        raise RuntimeError("CUDA failure 700: an illegal memory access was encountered")


def test_runtime_provider_failure_falls_back_to_cpu_once(tiny):
    seg = OnnxSegmenter(tiny, provider="cpu")
    seg._session, seg.provider = _FlakySession(), "cuda"
    frame, _ = red_person_frame()
    prob = seg.segment(frame)  # falls back and still answers
    assert seg.provider == "cpu" and "cuda failed while running" in seg.fallback_reason
    assert prob.shape == (16, 32)
    assert isinstance(seg._session, type(OnnxSegmenter(tiny)._session))


def test_parse_meta_rejects_malformed_values():
    good = ModelMeta(input_size_wh=(398, 224)).to_props()
    assert parse_meta(good).input_size_wh == (398, 224)
    for key, value in [("vbg.input_size_wh", "[398]"), ("vbg.mean", "oops"), ("vbg.layout", "CHW"),
                       ("vbg.std", json.dumps([0.5, 0, 0.5])), ("vbg.output", "logits")]:
        with pytest.raises(BadInput, match=key.split(".")[1]):
            parse_meta({**good, key: value})


def test_factory_rejects_unknown_engine():
    with pytest.raises(BadInput, match="connectnet, mediapipe"):
        create_segmenter("yolo")


def test_mediapipe_engine_segments_a_portrait():
    pytest.importorskip("mediapipe")
    from vbg_app import resources

    seg = create_segmenter("mediapipe")
    try:
        frame = cv2.imread(str(resources.asset_path("demo", "astronaut.png")))  # the shipped demo portrait
        prob = seg.segment(frame)
        assert prob.shape == (256, 256) and prob.dtype == np.float32
        # the astronaut fills the centre-bottom; the top corners are background (flag, sky)
        assert prob[200:, 100:160].mean() > 0.7
        assert prob[:30, :30].mean() < 0.3
        first = prob.copy()
        seg.segment(np.zeros_like(frame))
        np.testing.assert_array_equal(first, prob)  # results were copied out of MediaPipe's buffer
    finally:
        seg.close()


def test_mediapipe_engine_keeps_native_log_lines_off_the_console_but_not_errors(capfd, tmp_path):
    pytest.importorskip("mediapipe")
    import os

    seg = create_segmenter("mediapipe")
    seg.close()
    err = capfd.readouterr().err
    assert "XNNPACK" not in err and "InitGoogle" not in err, err
    os.write(2, b"fd 2 works again\n")  # the descriptor was restored
    assert "fd 2 works again" in capfd.readouterr().err
    bad = tmp_path / "not_a_model.tflite"
    bad.write_bytes(b"garbage")
    with pytest.raises(BadInput, match="is not a MediaPipe segmentation model"):
        create_segmenter("mediapipe", model=str(bad))


@pytest.mark.parametrize("frame_wh, fit", [((1280, 720), "stretch"), ((1920, 1080), "stretch"),
                                           ((640, 960), "letterbox"), ((2000, 900), "letterbox")])
def test_large_frames_reach_the_model_as_an_area_average(tmp_path, frame_wh, fit):
    """Frames 2x or more the model's size are halved (2x2 boxes) and then bilinearly resized: the input is the
    area average of the frame to within a few levels (a direct INTER_AREA resize by a non-integer factor cost
    6x the CPU); letterbox bars stay grey and the frame's part is really written (a non-contiguous target)."""
    from vbg_app.engines.fit import PAD_VALUE, letterbox_box

    path = make_model(tmp_path / "m.onnx", size_wh=(64, 36), props={"vbg.fit": fit, "vbg.color": "BGR",
                                                                    "vbg.mean": "[0, 0, 0]", "vbg.std": "[1, 1, 1]"})
    seg = OnnxSegmenter(path, provider="cpu", threads=1)
    rng = np.random.default_rng(1)
    w, h = frame_wh
    # smooth content (a camera's), plus a sharp bright square the average must keep at its place
    frame = cv2.resize(rng.integers(0, 256, (h // 40, w // 40, 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    frame[h // 3:h // 2, w // 3:w // 2] = 250
    blob = seg.preprocess(frame)
    got = (blob[0].transpose(1, 2, 0) * 255).round()  # mean 0, std 1, BGR: the input is the pixels / 255
    x0, y0, cw, ch = letterbox_box((w, h), (64, 36)) if fit == "letterbox" else (0, 0, 64, 36)
    want = cv2.resize(frame, (cw, ch), interpolation=cv2.INTER_AREA).astype(np.float32)
    part = got[y0:y0 + ch, x0:x0 + cw]
    assert np.abs(part - want).mean() < 4 and np.abs(part - want).max() < 80
    if (cw, ch) != (64, 36):
        bars = np.ones((36, 64), bool)
        bars[y0:y0 + ch, x0:x0 + cw] = False
        assert bars.any() and (got[bars] == PAD_VALUE).all()
    prob = seg.segment(frame)
    assert prob.shape == (ch, cw)
