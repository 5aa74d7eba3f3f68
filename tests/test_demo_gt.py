"""The demo portrait's ground truth (vbg_app/tools/demo_gt.py, assets/demo/astronaut_gt.json) and `vbg eval --demo`."""
import json

import cv2
import numpy as np
import pytest

from vbg_app import resources
from vbg_app.tools import demo_gt
from vbg_app.errors import BadInput
from vbg_app.tools.evaluate import main
from vbg_app.sources import DEMO_PORTRAIT, DemoSource, read_image
from tests.tinymodel import make_model


def test_masks_are_the_person_and_the_flag_beside_it():
    person, flag = demo_gt.load()
    assert person.shape == flag.shape == (512, 512)
    assert 0.45 < person.mean() < 0.6            # head, suit and the held helmet
    assert not (person & flag).any() and flag.sum() > 20_000
    assert person[480, 420] and person[60, 230]  # the helmet held at the bottom right; the hair
    assert not person[20, 20] and not person[150, 420]  # the flag's stars; the rocket model
    # the person is one region (the suit's hardware at the bottom edge is filled in)
    n, _ = cv2.connectedComponents(person.astype(np.uint8))
    assert n == 2
    assert flag[20, 20] and not flag[20, 200]


def test_masks_on_demo_frames_cover_where_the_portrait_person_is_drawn():
    """Paint the photo's person pure green and render it through the demo: the frame's mask must be green."""
    person, flag = demo_gt.load()
    photo = read_image(resources.asset_path("demo", DEMO_PORTRAIT), "demo portrait")
    green = photo.copy()
    green[person] = (0, 255, 0)
    painted = DemoSource(640, 360, realtime=False, portrait=green)
    plain = DemoSource(640, 360, realtime=False)
    for i, (frame, p, f) in enumerate(demo_gt.demo_frames(3, (640, 360), step=50)):
        k = i * 50
        assert np.array_equal(frame, plain.frame_at(k))   # the frames are the demo's own
        g = painted.frame_at(k).astype(int)
        is_green = (g[:, :, 1] > 200) & (g[:, :, 2] < 60) & (g[:, :, 0] < 60)
        assert p.sum() > 0.2 * p.size
        assert is_green[p].mean() > 0.97                   # the mask lies on the person...
        assert is_green[~p].mean() < 0.01                  # ...and nowhere else
        assert not (p & f).any() and f.sum() > 1000


def test_score_pools_iou_and_counts_the_flag():
    person, flag = demo_gt.load()
    perfect = demo_gt.score(person.astype(np.float32), person, flag)
    assert demo_gt.pooled([perfect]) == {"person_iou": 1.0, "flag_as_person": 0.0}
    keeps_flag = demo_gt.score((person | flag).astype(np.float32), person, flag)
    r = demo_gt.pooled([perfect, keeps_flag])
    assert r["flag_as_person"] == pytest.approx(0.5)
    assert r["person_iou"] == pytest.approx(2 * person.sum() / (person.sum() * 2 + flag.sum()))
    # a low-resolution probability is scaled up to the mask
    small = cv2.resize(person.astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA)
    assert demo_gt.pooled([demo_gt.score(small, person, flag)])["person_iou"] > 0.97


def test_unreadable_ground_truth_is_one_clear_error(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text("{\"size_wh\": [4, 4]}")
    with pytest.raises(BadInput, match="unreadable"):
        demo_gt.load(bad)
    with pytest.raises(BadInput, match="missing"):
        demo_gt.load(tmp_path / "none.json")


def test_vbg_eval_demo_rows(tmp_path, capsys):
    model = make_model(tmp_path / "tiny.onnx", (48, 32))
    out = tmp_path / "r.json"
    assert main(["--demo", "2", "--model", str(model), "--json", str(out), "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "demo photo IoU" in text and "flag as person %" in text
    rows = json.loads(out.read_text())["demo"]
    assert len(rows) == 1 and rows[0]["n_frames"] == 2
    # the tiny model calls red pixels person: the orange suit and the flag's red stripes both count
    assert 0 < rows[0]["photo_iou"] < 1 and 0 < rows[0]["demo_person_iou"] < 1
    assert rows[0]["photo_flag_as_person"] > 0


def test_vbg_eval_negative_demo_is_refused(capsys):
    assert main(["--demo", "-1"]) == 2
    assert "--demo -1" in capsys.readouterr().err
