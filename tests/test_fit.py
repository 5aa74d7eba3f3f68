"""Letterbox fitting (vbg_app/engines/fit.py) and the engine's vbg.fit = letterbox path."""
import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model, red_person_frame
from vbg_app.engines.fit import PAD_VALUE, letterbox_box
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
