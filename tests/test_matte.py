"""Matte stage (vbg_app/matte.py): no rim of the old background, solid person, the outline kept."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg_app.compose import Compositor
from vbg_app.errors import BadInput
from vbg_app.matte import Matte, smoothstep_lut

H, W = 360, 640
MODEL_WH = (398, 224)
GREEN = np.array([0, 255, 0], np.float32)


def _edge_scene():
    """A dark person filling the left half over a saturated magenta wall, and a segmenter's soft answer:
    the true mask blurred over ~2 model px (its 0.5 level on the true edge)."""
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = (255, 0, 255)           # saturated magenta wall (BGR)
    frame[:, : W // 2] = (70, 60, 50)  # the person
    truth = np.zeros((H, W), np.float32)
    truth[:, : W // 2] = 1.0
    prob = cv2.GaussianBlur(cv2.resize(truth, MODEL_WH, interpolation=cv2.INTER_AREA), (0, 0), 2.0)
    return frame, prob


def _magenta_outside(out: np.ndarray, d_from: int, d_to: int) -> float:
    """Mean level of the old wall's colour left in the output d_from..d_to px outside the true edge
    (over a green background: the red channel is 0 there unless the wall shows through)."""
    cols = out[:, W // 2 + d_from: W // 2 + d_to].astype(np.float32)
    return float(cols[:, :, 2].mean())


def test_no_rim_of_the_old_background_on_a_saturated_wall():
    frame, prob = _edge_scene()
    plain = Compositor("color:#00FF00", matte=False).compose(frame, prob)
    matte = Compositor("color:#00FF00", matte=True).compose(frame, prob)
    # the soft segmenter edge leaves a magenta rim about 5 px wide without the matte ...
    assert _magenta_outside(plain, 1, 4) > 25
    # ... and with the matte the wall is gone 1 px past the edge
    assert _magenta_outside(matte, 1, 4) < 5
    assert _magenta_outside(matte, 4, 12) < 1
    # and the new background does not eat into the person: 2-4 px inside the edge it is the person
    inside = lambda out: np.abs(out[:, W // 2 - 4: W // 2 - 2].astype(np.float32) - (70, 60, 50)).mean()
    assert inside(matte) < 5 < inside(plain)


@pytest.mark.parametrize("bg", ["color:#FFFFFF", "image"])
def test_the_rim_is_gone_on_other_backgrounds_too(bg, tmp_path):
    frame, prob = _edge_scene()
    if bg == "image":  # a gray gradient: no magenta of its own
        ramp = np.tile(np.linspace(40, 220, W, dtype=np.float32)[None, :, None], (H, 1, 3)).astype(np.uint8)
        cv2.imwrite(str(tmp_path / "bg.png"), ramp)
        bg = f"image:{tmp_path / 'bg.png'}"
    # the old wall shows as magenta: B and R high, G low; the new background never is magenta far out
    def rim(out):
        c = out[:, W // 2 + 1: W // 2 + 5].astype(np.float32)
        return float((np.minimum(c[:, :, 0], c[:, :, 2]) - c[:, :, 1]).mean())
    plain = Compositor(bg, matte=False).compose(frame, prob)
    matte = Compositor(bg, matte=True).compose(frame, prob)
    assert rim(matte) < 0.3 * rim(plain)


def test_the_outline_stays_where_the_segmenter_put_it():
    lut = smoothstep_lut(0.2, 0.8)
    assert lut[0] == 0 and lut[255] == 255 and abs(int(lut[128]) - 128) <= 1
    assert np.all(np.diff(lut.astype(int)) >= 0)  # monotone: a mask thresholded at 0.5 is unchanged
    assert lut[int(0.2 * 255)] == 0 and lut[int(np.ceil(0.8 * 255))] == 255
    with pytest.raises(BadInput):
        smoothstep_lut(0.6, 0.9)


def _person_with_holes():
    """A person (ellipse) at model resolution with: a small confident pinhole, a large unsure patch (a
    held object at 0.35-0.45) and a large confident gap (background between arm and body)."""
    w, h = MODEL_WH
    p = np.zeros((h, w), np.float32)
    cv2.ellipse(p, (w // 2, h), (150, 200), 0, 180, 360, 1.0, -1)
    pin = (slice(150, 153), slice(190, 193))
    p[pin] = 0.0
    unsure = (slice(120, 150), slice(120, 170))
    p[unsure] = np.linspace(0.35, 0.45, 50, dtype=np.float32)[None, :]
    gap = (slice(130, 200), slice(240, 275))
    p[gap] = 0.02
    return cv2.GaussianBlur(p, (0, 0), 1.0), pin, unsure, gap


def _outer_outline() -> np.ndarray:
    """The 2 px on either side of the person's outer outline (the ellipse without its holes)."""
    w, h = MODEL_WH
    e = np.zeros((h, w), np.uint8)
    cv2.ellipse(e, (w // 2, h), (150, 200), 0, 180, 360, 1, -1)
    k = np.ones((5, 5), np.uint8)
    return (cv2.dilate(e, k) - cv2.erode(e, k)).astype(bool)


def test_a_hole_inside_the_person_is_filled_and_a_real_gap_stays():
    p, pin, unsure, gap = _person_with_holes()
    out = Matte().solidify(p)
    assert out.shape == p.shape and out.dtype == np.float32
    assert out[pin].min() > 0.99                       # pinhole filled
    assert out[unsure].min() > 0.99                    # the held object the model half believed in: solid
    inner_gap = (slice(gap[0].start + 4, gap[0].stop - 4), slice(gap[1].start + 4, gap[1].stop - 4))
    assert out[inner_gap].max() < 0.1                  # the sure gap between arm and body stays open
    # the outline of the person is untouched
    outline = _outer_outline()
    assert np.array_equal(out[outline], p[outline])


def test_solid_object_through_the_whole_compositor():
    p, pin, unsure, gap = _person_with_holes()
    frame = np.full((H, W, 3), 128, np.uint8)
    key = lambda out: (out[:, :, 1].astype(np.float32) - 128) / 127  # green share: 1 = background shows
    sy, sx = H / MODEL_WH[1], W / MODEL_WH[0]
    box = (slice(int(125 * sy), int(145 * sy)), slice(int(125 * sx), int(165 * sx)))
    plain = Compositor("color:#00FF00", matte=False).compose(frame, p)
    matte = Compositor("color:#00FF00", matte=True).compose(frame, p)
    assert key(plain)[box].mean() > 0.5   # see-through without the matte
    assert key(matte)[box].max() < 0.02   # solid with it


def test_matte_on_empty_full_and_odd_masks():
    m = Matte()
    for p in (np.zeros((5, 7), np.float32), np.ones((5, 7), np.float32), np.full((1, 1), 0.6, np.float32),
              np.random.default_rng(0).random((31, 17), dtype=np.float32)):
        out = m.solidify(p)
        assert out.shape == p.shape and np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    a = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert m.tighten(a.copy()).shape == a.shape
