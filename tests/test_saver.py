"""The battery saver (vbg_app/saver.py): the model runs on change and at least every Nth frame, the masks in
between are the last one, and it is wired into vbg run and vbg bench."""
import json

import cv2
import numpy as np
import pytest

from tests.tinymodel import make_model
from vbg_app.tools import bench
from vbg_app.config import PipelineConfig
from vbg_app.errors import BadInput
from vbg_app.pipeline import build_pipeline
from vbg_app.saver import BatterySaver


class CountingSegmenter:
    name, provider, fallback_reason = "counting", "cpu", ""

    def __init__(self):
        self.calls, self.closed = 0, False

    def segment(self, frame):
        self.calls += 1
        return np.full((9, 16), self.calls / 100, np.float32)  # a new mask every call

    def close(self):
        self.closed = True


def _frame(shift=0, noise=0.0, seed=0):
    """A 1280x720 scene with a bright square ``shift`` px right of its place, plus sensor noise."""
    f = np.full((720, 1280, 3), 90, np.uint8)
    f[240:480, 400 + shift:640 + shift] = 220
    if noise:
        n = np.random.default_rng(seed).normal(0, noise, f.shape)
        f = np.clip(f + n, 0, 255).astype(np.uint8)
    return f


def test_still_frames_reuse_the_mask_and_the_model_still_runs_every_nth():
    inner = CountingSegmenter()
    s = BatterySaver(inner, every=3)
    masks = [s.segment(_frame(noise=2.0, seed=k)) for k in range(9)]  # a still scene with sensor noise
    assert inner.calls == 3 and s.inferences == 3 and s.reused == 6  # frames 0, 3, 6
    assert [float(m[0, 0]) for m in masks] == pytest.approx([0.01] * 3 + [0.02] * 3 + [0.03] * 3)
    masks[7][:] = 5  # a reused mask is a copy: changing it changes neither the next one nor the saver's
    assert float(masks[8][0, 0]) == pytest.approx(0.03) and float(s._prob[0, 0]) == pytest.approx(0.03)
    assert float(s.segment(_frame())[0, 0]) == pytest.approx(0.04)  # the 3rd frame since: the model again


def test_motion_runs_the_model_on_every_frame_without_carrying():
    inner = CountingSegmenter()
    s = BatterySaver(inner, every=5, carry=False)
    for k in range(8):  # the square moves 8 px per frame (one thumbnail pixel): a person moving
        s.segment(_frame(shift=8 * k))
    assert inner.calls == 8 and s.reused == 0 and s.last_change > s.calm_level


def test_a_slow_drift_adds_up_against_the_last_segmented_frame():
    inner = CountingSegmenter()
    s = BatterySaver(inner, every=30, carry=False)
    for k in range(30):  # 1 px per frame: calm from one frame to the next, not over many
        s.segment(_frame(shift=k))
    assert 2 <= inner.calls < 30


def test_every_1_is_off_and_bad_settings_are_refused():
    inner = CountingSegmenter()
    s = BatterySaver(inner, every=1)
    for _ in range(4):
        s.segment(_frame())
    assert inner.calls == 4
    with pytest.raises(BadInput):
        BatterySaver(inner, every=0)
    with pytest.raises(BadInput):
        BatterySaver(inner, calm_level=-1)
    for bad in ({"carry_level": 300}, {"carry_px": -0.5}, {"interior_px": 50}):
        with pytest.raises(BadInput):
            BatterySaver(inner, **bad)


TEXTURE = np.random.default_rng(7).integers(40, 120, (720 + 64, 1280 + 64, 3)).astype(np.uint8)
SQUARE = np.random.default_rng(8).integers(150, 250, (240, 240, 3)).astype(np.uint8)
MASK_WH = (320, 180)  # the mask's resolution: 1/4 of the frame


def _scene(dx=0, dy=0, visitor=False):
    """A room with soft texture (a wall, a shelf out of focus) and a textured square (the person) at (400 + dx,
    240 + dy); its true mask at MASK_WH; ``visitor``: a bright square appears in the room, far from the first."""
    f = cv2.GaussianBlur(TEXTURE[:720, :1280], (31, 31), 0)
    f[240 + dy:480 + dy, 400 + dx:640 + dx] = cv2.GaussianBlur(SQUARE, (31, 31), 0)
    if visitor:
        f[100:260, 1000:1160] = 250
    m = np.zeros((720, 1280), np.float32)
    m[240 + dy:480 + dy, 400 + dx:640 + dx] = 1.0
    return f, cv2.resize(m, MASK_WH, interpolation=cv2.INTER_AREA)


class TruthSegmenter(CountingSegmenter):
    """Returns the scene's true mask (the test sets ``mask`` before each frame)."""
    name, mask = "truth", None

    def segment(self, frame):
        self.calls += 1
        return self.mask.copy()


def _iou(a, b):
    a, b = a > 0.5, b > 0.5
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def test_motion_the_flow_explains_carries_the_mask_along_it():
    inner = TruthSegmenter()
    s = BatterySaver(inner, every=3)
    for k in range(9):  # the square slides 4 px right and 2 px down per frame: a body swaying
        frame, inner.mask = _scene(4 * k, 2 * k)
        out = s.segment(frame)
        # carried masks follow it: the flow may be off by up to carry_px = 0.5 thumbnail px (4 px of the frame,
        # 1 px of this mask), which on a 60 px square is an IoU of 0.95 at worst
        assert out.shape == inner.mask.shape and _iou(out, inner.mask) > 0.95
    assert s.carried >= 3 and inner.calls == 9 - s.reused and inner.calls >= 3  # every 3rd frame at least
    frozen = BatterySaver(TruthSegmenter(), every=3, carry=False)  # the same frames: the model on each one
    for k in range(9):
        frame, frozen.inner.mask = _scene(4 * k, 2 * k)
        frozen.segment(frame)
    assert frozen.inner.calls == 9


def test_change_the_flow_does_not_explain_runs_the_model():
    inner = TruthSegmenter()
    s = BatterySaver(inner, every=30)
    frame, inner.mask = _scene()
    s.segment(frame)
    frame, inner.mask = _scene(8, 0)
    s.segment(frame)
    assert s.carried == 1 and inner.calls == 1
    frame, inner.mask = _scene(16, 0, visitor=True)  # somebody walks in: not motion of the last frame's content
    s.segment(frame)
    assert inner.calls == 2 and s.carried == 1
    frame, inner.mask = _scene(16, 0, visitor=True)
    s.segment(cv2.GaussianBlur(frame, (31, 31), 0))  # a blur of the whole picture (focus, fast motion): the model
    assert inner.calls == 3


def test_attributes_and_close_are_the_segmenters():
    inner = CountingSegmenter()
    s = BatterySaver(inner)
    assert s.provider == "cpu" and s.name == "counting" and s.fallback_reason == ""
    s.close()
    assert inner.closed


def test_vbg_run_builds_the_saver_and_bench_reports_how_often_the_model_ran(tmp_path):
    model = make_model(tmp_path / "m.onnx", size_wh=(32, 16))
    img = tmp_path / "still.png"
    import cv2
    cv2.imwrite(str(img), _frame())
    cfg = PipelineConfig(source=f"image:{img}", sink="null", model=str(model), provider="cpu", threads=1,
                         realtime=False, battery_saver=True)
    with build_pipeline(cfg) as pipe:
        assert isinstance(pipe.segmenter, BatterySaver)
        pipe.run(frames=9, threaded=False)
        assert pipe.segmenter.inferences == 3 and pipe.stats.frames == 9
    with build_pipeline(PipelineConfig(source=f"image:{img}", sink="null", model=str(model), provider="cpu",
                                       threads=1, realtime=False)) as pipe:
        assert not isinstance(pipe.segmenter, BatterySaver)
    js = tmp_path / "b.json"
    assert bench.main(["--engines", "none", "--model", str(model), "--sizes", "160x120", "--frames", "6",
                       "--warmup", "1", "--threads", "1", "--no-progress", "--paced-fps", "0", "--battery-saver",
                       "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["settings"]["battery_saver"] is True
    share = doc["results"][0]["pipeline"]["model_run_share"]
    assert 0 < share <= 1  # the demo moves: the model runs on most frames
