"""Temporal filters: pass-through, flicker reduction, motion lag, resets, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg_app.errors import BadInput
from vbg_app.stagebench import edge_lag, evaluate_filters, flicker, make_moving_square, run_filter
from vbg_app.temporal import EmaFilter, FlowFilter, NoFilter, create_filter


@pytest.fixture(scope="module")
def moving():
    return make_moving_square(n_frames=40, seed=3)


@pytest.fixture(scope="module")
def static():
    return make_moving_square(n_frames=30, speed=0.0, seed=4)


def test_none_returns_input_unchanged(moving):
    f = create_filter("none")
    assert isinstance(f, NoFilter)
    for p, frame in zip(moving.noisy[:3], moving.frames[:3]):
        out = f.update(p, frame)
        assert out.dtype == np.float32 and np.array_equal(out, p)


def test_unknown_filter_lists_the_choices():
    with pytest.raises(BadInput) as exc:
        create_filter("kalman")
    msg = str(exc.value)
    assert "kalman" in msg and all(name in msg for name in ("none", "ema", "flow"))


def test_ema_weight_is_validated():
    with pytest.raises(BadInput):
        EmaFilter(0.0)
    with pytest.raises(BadInput):
        EmaFilter(1.5)


@pytest.mark.parametrize("name", ["ema", "flow"])
def test_filters_reduce_flicker_while_moving(moving, name):
    raw = flicker(moving.noisy)
    out, _ = run_filter(create_filter(name), moving)
    motion = flicker(moving.truth)  # flips the motion itself causes: no filter can go below
    assert flicker(out) - motion < 0.3 * (raw - motion)
    lead, trail = edge_lag(out, moving)
    assert lead <= 1.0 and trail <= 1.0


def test_flow_is_steadier_than_ema_on_a_still_person(static):
    raw = flicker(static.noisy)
    ema, _ = run_filter(create_filter("ema"), static)
    flow, _ = run_filter(create_filter("flow"), static)
    assert flicker(ema) < 0.5 * raw
    assert flicker(flow) < 0.1 * raw and flicker(flow) < 0.5 * flicker(ema)


def test_flow_follows_a_moving_square():
    clean = make_moving_square(n_frames=30, noise=0.0, blob_rate=0.0, seed=5, speed=4.0)
    out, _ = run_filter(FlowFilter(), clean)
    lead, trail = edge_lag(out, clean)
    assert abs(lead) <= 1.0 and abs(trail) <= 1.0
    # and it does not smear: the last mask still matches the square
    inter = np.logical_and(out[-1] > 0.5, clean.truth[-1] > 0.5).sum()
    assert inter / np.logical_or(out[-1] > 0.5, clean.truth[-1] > 0.5).sum() > 0.9


def test_flow_carries_mask_detail_along_with_the_motion():
    """A moving square whose mask has a hole (a ring): the hole's edges, inside the moving region,
    are followed because the past mask is warped along the flow, not just averaged in place."""
    clip = make_moving_square(n_frames=20, noise=0.0, blob_rate=0.0, seed=5, speed=4.0)
    kernel = np.ones((61, 61), np.uint8)
    rings = [t * (1 - cv2.erode(t, kernel)) for t in clip.truth]
    f = FlowFilter()
    for ring, frame in zip(rings, clip.frames):
        out = f.update(ring, frame)
    a, b = out > 0.5, rings[-1] > 0.5
    assert np.logical_and(a, b).sum() / np.logical_or(a, b).sum() > 0.97


def test_flow_is_steady_on_a_flat_wall():
    """Textureless background: DIS flow is arbitrary there; the still-pixel test keeps it steady."""
    clip = make_moving_square(n_frames=30, speed=0.0, seed=4, textured_background=False)
    ema, _ = run_filter(create_filter("ema"), clip)
    flow, _ = run_filter(create_filter("flow"), clip)
    assert flicker(flow) < 0.5 * flicker(ema)


def test_flow_takes_the_new_mask_after_a_scene_cut():
    """Nothing in the new frame matches the old one (camera switched): no blending with the past."""
    a = make_moving_square(n_frames=5, speed=0.0, seed=1, noise=0.0, blob_rate=0.0)
    b = make_moving_square(n_frames=1, speed=0.0, seed=2, noise=0.0, blob_rate=0.0)
    new = np.roll(b.truth[0], 120, axis=1)
    flow, ema = FlowFilter(), EmaFilter(0.6)
    for t in range(5):
        flow.update(a.truth[t], a.frames[t])
        ema.update(a.truth[t], a.frames[t])
    assert np.abs(flow.update(new, b.frames[0]) - new).mean() < 0.01
    assert np.abs(ema.update(new, b.frames[0]) - new).mean() > 0.05  # (what blending would do)


@pytest.mark.parametrize("name", ["none", "ema", "flow"])
def test_size_changes_reset_without_error(moving, name):
    f = create_filter(name)
    for p, frame in zip(moving.noisy[:3], moving.frames[:3]):
        f.update(p, frame)
    # a new model resolution
    p_small = cv2.resize(moving.noisy[3], (199, 112))
    out = f.update(p_small, moving.frames[3])
    assert out.shape == (112, 199) and np.allclose(out, p_small)
    # a new camera mode, same model
    frame_big = cv2.resize(moving.frames[4], (1280, 720))
    out = f.update(cv2.resize(moving.noisy[4], (199, 112)), frame_big)
    assert out.shape == (112, 199)
    out = f.update(cv2.resize(moving.noisy[5], (199, 112)), cv2.resize(moving.frames[5], (1280, 720)))
    assert out.shape == (112, 199) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    # gray frames and a missing frame are tolerated too
    gray = cv2.cvtColor(moving.frames[6], cv2.COLOR_BGR2GRAY)
    assert f.update(moving.noisy[6], gray).shape == moving.noisy[6].shape
    assert f.update(moving.noisy[7], None).shape == moving.noisy[7].shape


def test_reset_forgets_the_past(moving):
    for f in (EmaFilter(0.5), FlowFilter()):
        f.update(np.ones_like(moving.noisy[0]), moving.frames[0])
        f.reset()
        assert np.array_equal(f.update(moving.noisy[1], moving.frames[1]), moving.noisy[1])


def test_evaluate_filters_reports_every_filter():
    rows = evaluate_filters(n_frames=20, seeds=(0,), verbose=False)
    assert set(rows) == {"truth", "none", "ema", "flow"}
    assert rows["truth"]["flicker"] < rows["flow"]["flicker"] < rows["none"]["flicker"]
    assert rows["none"]["lag"] == pytest.approx(0.0, abs=0.3)
