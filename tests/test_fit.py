"""Frame fitting (vbg_app/engines/fit.py) and the engine's vbg.fit = letterbox and aspect paths."""
import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model, red_person_frame
from vbg_app.engines.fit import PAD_VALUE, fit_size, letterbox_box
from vbg_app.engines.meta import parse_meta
from vbg_app.engines.onnx_engine import OnnxSegmenter
from vbg_app.errors import BadInput


@pytest.mark.parametrize("frame_wh, model_wh, box", [
    ((1280, 720), (398, 224), (0, 0, 398, 224)),    # 16:9 into 16:9: no bars
    ((640, 480), (398, 224), (49, 0, 299, 224)),     # 4:3 webcam: bars left and right
    ((550, 839), (398, 224), (125, 0, 147, 224)),    # 2:3 portrait photo
    ((1000, 200), (398, 224), (0, 72, 398, 80)),     # a very wide frame: bars above and below
])
def test_letterbox_box_keeps_the_aspect_and_centres(frame_wh, model_wh, box):
    assert letterbox_box(frame_wh, model_wh) == box
    x0, y0, w, h = box
    assert abs(w / h - frame_wh[0] / frame_wh[1]) < 0.02 * frame_wh[0] / frame_wh[1] + 1 / h
    assert abs((model_wh[0] - w) - 2 * x0) <= 1 and abs((model_wh[1] - h) - 2 * y0) <= 1


def test_letterbox_box_rejects_empty_sizes():
    with pytest.raises(ValueError):
        letterbox_box((0, 10), (398, 224))


def test_fit_metadata_is_optional_and_checked(tmp_path):
    plain = make_model(tmp_path / "plain.onnx", (64, 36))
    assert OnnxSegmenter(plain, provider="cpu", threads=1).meta.fit == "stretch"  # absent = stretch
    props = {"vbg.input_size_wh": "[64, 36]", "vbg.layout": "NCHW", "vbg.color": "RGB", "vbg.mean": "[0.5,0.5,0.5]",
             "vbg.std": "[0.5,0.5,0.5]", "vbg.output": "softmax2"}
    assert parse_meta({**props, "vbg.fit": "letterbox"}).fit == "letterbox"
    with pytest.raises(BadInput, match="vbg.fit"):
        parse_meta({**props, "vbg.fit": "crop"})


def test_letterbox_engine_returns_the_frame_region_at_its_aspect(tmp_path):
    path = make_model(tmp_path / "lb.onnx", (64, 36), props={"vbg.fit": "letterbox"})
    seg = OnnxSegmenter(path, provider="cpu", threads=1)
    frame, mask = red_person_frame(h=150, w=100)  # portrait 2:3
    prob = seg.segment(frame)
    x0, y0, w, h = letterbox_box((100, 150), (64, 36))
    assert prob.shape == (h, w) == (36, 24) and seg.crop == (x0, y0, w, h)
    # the grey bars are in the model input, around the frame, and are not returned
    rgb = seg._small
    assert (rgb[:, :x0] == PAD_VALUE).all() and (rgb[:, x0 + w:] == PAD_VALUE).all()
    # undistorted: the red "person" keeps its place and shape when the output is resized to the frame
    full = cv2.resize(prob, (100, 150)) > 0.5
    iou = (full & mask).sum() / (full | mask).sum()
    assert iou > 0.85
    # a 16:9 frame afterwards: whole input, full output, bars gone
    wide, _ = red_person_frame(h=72, w=128)
    assert seg.segment(wide).shape == (36, 64) and seg.crop == (0, 0, 64, 36)
    # and back to portrait: the bars are grey again (not left over from the wide frame)
    seg.segment(frame)
    assert (seg._small[:, :x0] == PAD_VALUE).all()


def test_stretch_engine_is_unchanged_for_other_aspects(tmp_path):
    seg = OnnxSegmenter(make_model(tmp_path / "st.onnx", (64, 36)), provider="cpu", threads=1)
    frame, _ = red_person_frame(h=150, w=100)
    assert seg.segment(frame).shape == (36, 64) and seg.crop == (0, 0, 64, 36)


# -- vbg.fit = aspect -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frame_wh", [(1280, 720), (640, 480), (550, 839), (720, 720), (480, 640), (720, 1280),
                                      (1920, 1080), (3000, 2000), (123, 457)])
def test_fit_size_aspect_keeps_the_pixel_budget_and_the_frame_aspect(frame_wh):
    w, h = fit_size(frame_wh, (398, 224), "aspect")
    assert w % 16 == 0 and h % 16 == 0
    assert abs(w * h / (398 * 224) - 1) < 0.08  # about the same cost per frame as the nominal size
    a = min(398 / 224, max(224 / 398, frame_wh[0] / frame_wh[1]))  # clamped to 16:9 .. 9:16
    assert abs(w / h / a - 1) < 0.05
    # the frame then fills the input to within the rounding (bars of a few pixels at most) unless clamped
    x0, y0, cw, ch = letterbox_box(frame_wh, (w, h))
    if a == frame_wh[0] / frame_wh[1]:
        assert cw * ch >= 0.95 * w * h


def test_fit_size_other_fits_keep_the_model_size():
    for fit in ("stretch", "letterbox"):
        assert fit_size((550, 839), (398, 224), fit) == (398, 224)
    assert fit_size((4000, 500), (398, 224), "aspect") == (400, 224)  # beyond 16:9: clamped (then letterboxed)
    with pytest.raises(ValueError):
        fit_size((0, 5), (398, 224), "aspect")


def test_aspect_engine_runs_each_frame_at_its_own_aspect(tmp_path):
    path = make_model(tmp_path / "asp.onnx", (64, 36), props={"vbg.fit": "aspect"}, dynamic=True)
    seg = OnnxSegmenter(path, provider="cpu", threads=1)
    assert seg.meta.fit == "aspect" and seg._free_dims == ("height", "width")
    frame, mask = red_person_frame(h=150, w=100)  # portrait 2:3
    prob = seg.segment(frame)
    w, h = fit_size((100, 150), (64, 36), "aspect")
    assert h > w and seg.run_size_wh == (w, h)
    # more of the model's pixels go to the frame than with the letterbox (24x36 inside 64x36)
    assert prob.shape[0] * prob.shape[1] > 1.5 * 24 * 36
    assert abs(prob.shape[1] / prob.shape[0] - 100 / 150) < 0.1
    full = cv2.resize(prob, (100, 150)) > 0.5
    assert (full & mask).sum() / (full | mask).sum() > 0.85
    # the session for this size has the free dimensions fixed (onnxruntime plans it as a static graph)
    assert seg._session.get_inputs()[0].shape == [1, 3, h, w]
    wide, wmask = red_person_frame(h=72, w=128)
    pw = seg.segment(wide)
    assert seg.run_size_wh == fit_size((128, 72), (64, 36), "aspect") and pw.shape[1] > pw.shape[0]
    full = cv2.resize(pw, (128, 72)) > 0.5
    assert (full & wmask).sum() / (full | wmask).sum() > 0.85
    assert len(seg._sized) == 2
    seg.segment(frame)  # back to the first size: its session is reused, not made again
    assert len(seg._sized) == 2 and seg.run_size_wh == (w, h)


def test_aspect_metadata_on_a_fixed_size_model_is_refused_with_the_fix(tmp_path):
    path = make_model(tmp_path / "fixed.onnx", (64, 36), props={"vbg.fit": "aspect"})
    with pytest.raises(BadInput, match="dynamic size") as err:
        OnnxSegmenter(path, provider="cpu", threads=1)
    assert "--fit aspect" in err.value.fix or "--fit aspect" in str(err.value)


def test_speed_check_times_a_dynamic_model_at_the_size_the_app_runs(tmp_path):
    from vbg_app.train.speed_check import time_models

    fixed = make_model(tmp_path / "fixed.onnx", (64, 36))
    dyn = make_model(tmp_path / "dyn.onnx", (64, 36), props={"vbg.fit": "aspect"}, dynamic=True)
    for frame in [(1280, 720), (480, 640)]:
        rows = time_models([fixed, dyn], threads=1, runs=3, warmup=1, frame_wh=frame)
        assert rows[0]["input_wh"] == (64, 36)  # a fixed model: its own size, whatever the frame
        assert rows[1]["input_wh"] == fit_size(frame, (64, 36), "aspect")  # never a 1x1 placeholder
