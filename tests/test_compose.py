"""Compositor: refinement, clean-up, backgrounds, blend, mirror, live settings, user-facing errors."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from vbg_app.compose import (BlurBackground, Compositor, ImageBackground, aspect_fill, cleanup_mask,
                             parse_background)
from vbg_app.errors import BadInput
from vbg_app.tools.stagebench import person_scene

H, W = 720, 1280
MODEL_WH = (398, 224)


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels outside ``mask`` at a distance in (inner, outer] (square metric, px)."""
    grow = lambda r: cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    return grow(outer) & ~grow(inner)


def _lap_var(img: np.ndarray, where: np.ndarray) -> float:
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(cv2.Laplacian(gray, cv2.CV_32F)[where].var())


@pytest.fixture(scope="module")
def scene():
    frame, truth, _ = person_scene((W, H), MODEL_WH)
    prob = cv2.resize(truth, MODEL_WH, interpolation=cv2.INTER_AREA)  # a clean segmenter output
    return frame, truth > 0.5, prob


# -- blur ------------------------------------------------------------------------------------------

def test_blur_keeps_person_and_removes_background_detail(scene):
    frame, person, prob = scene
    out = Compositor("blur:15").compose(frame, prob)
    inside = cv2.erode(person.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    diff = np.abs(out.astype(np.int16) - frame.astype(np.int16))[inside]
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3
    outside = ~_ring(person, 0, 30) & ~person  # background farther than 30 px from the person
    assert _lap_var(frame, outside) / _lap_var(out, outside) > 100


def test_blur_has_no_halo_of_the_person():
    """A bright person on a dark wall: the wall next to the outline stays dark (a naive blur bleeds)."""
    _, truth, _ = person_scene((W, H), MODEL_WH)
    person = truth > 0.5
    frame = np.where(person[:, :, None], 250, 20).astype(np.uint8).repeat(1, axis=2)
    frame = np.ascontiguousarray(np.broadcast_to(frame, (H, W, 3)))
    prob = cv2.resize(truth, MODEL_WH, interpolation=cv2.INTER_AREA)
    near = _ring(person, 3, 12)
    naive = cv2.GaussianBlur(frame, (0, 0), 15)
    assert naive[near].mean() > 60  # the test can tell a halo apart
    out = Compositor("blur:15").compose(frame, prob)
    assert out[near].max() <= 30
    bg = BlurBackground(15).render(H, W, frame, prob)  # the background layer itself, right at the edge
    assert bg[_ring(person, 0, 12)].max() <= 35


# -- other backgrounds -----------------------------------------------------------------------------

def test_image_background_is_aspect_filled_not_stretched(tmp_path):
    img = np.zeros((200, 400, 3), np.uint8)  # 2:1 into 16:9
    cv2.circle(img, (200, 100), 80, (255, 255, 255), -1)
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), img)
    frame = np.full((H, W, 3), 128, np.uint8)
    out = Compositor(f"image:{path}").compose(frame, np.zeros(MODEL_WH[::-1], np.float32))
    ys, xs = np.nonzero(out[:, :, 0] > 127)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert abs(width / height - 1.0) < 0.02  # round, not an ellipse (stretching would give 0.89)
    assert abs(height - 2 * 80 * 3.6) < 6  # scaled by max(1280/400, 720/200) = 3.6, height fills
    assert abs((xs.min() + xs.max()) / 2 - W / 2) < 2 and abs((ys.min() + ys.max()) / 2 - H / 2) < 2


def test_aspect_fill_covers_any_shape():
    img = np.random.default_rng(0).integers(0, 255, (37, 101, 3), dtype=np.uint8)
    for h, w in ((720, 1280), (1280, 720), (7, 5), (37, 101)):
        assert aspect_fill(img, h, w).shape == (h, w, 3)


def test_color_background_and_full_person(scene):
    frame, _, prob = scene
    comp = Compositor("color:#102030")
    out = comp.compose(frame, np.zeros_like(prob))
    assert (out.reshape(-1, 3) == (0x30, 0x20, 0x10)).all()  # BGR
    assert np.array_equal(comp.compose(frame, np.ones_like(prob)), frame)


def test_none_returns_the_frame(scene):
    frame, _, prob = scene
    out = Compositor("none").compose(frame, prob)
    assert np.array_equal(out, frame) and out is not frame


def test_video_background_loops(tmp_path):
    path = tmp_path / "bg.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 36))
    if not writer.isOpened():
        pytest.skip("no video encoder in this OpenCV build")
    colors = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    for c in colors:
        writer.write(np.full((36, 64, 3), c, np.uint8))
    writer.release()
    comp = Compositor(f"video:{path}", refine=False)
    frame = np.zeros((90, 160, 3), np.uint8)
    seen = [np.argmax(comp.compose(frame, np.zeros((45, 80), np.float32))[45, 80]) for _ in range(7)]
    assert seen == [2, 1, 0, 2, 1, 0, 2]  # red, green, blue, then again from the start
    comp.close()


# -- mirror, clean-up ------------------------------------------------------------------------------

def test_mirror_flips(scene):
    frame, _, prob = scene
    assert np.array_equal(Compositor("none", mirror=True).compose(frame, prob), frame[:, ::-1])
    mirrored = Compositor("blur", mirror=True).compose(frame, prob)
    by_hand = Compositor("blur").compose(np.ascontiguousarray(frame[:, ::-1]), np.ascontiguousarray(prob[:, ::-1]))
    assert np.abs(mirrored.astype(np.int16) - by_hand).max() <= 1


def test_mirror_does_not_flip_a_background_image(tmp_path):
    img = np.zeros((72, 128, 3), np.uint8)
    img[:, :64] = 255  # left half white
    path = tmp_path / "half.png"
    cv2.imwrite(str(path), img)
    out = Compositor(f"image:{path}", mirror=True).compose(np.zeros((H, W, 3), np.uint8),
                                                          np.zeros(MODEL_WH[::-1], np.float32))
    assert out[:, : W // 2 - 20].min() == 255 and out[:, W // 2 + 20:].max() == 0


def test_cleanup_removes_detached_blob_keeps_person():
    prob = np.zeros((224, 398), np.float32)
    cv2.ellipse(prob, (200, 224), (110, 150), 0, 180, 360, 1.0, -1)  # the person
    cv2.circle(prob, (40, 40), 6, 0.9, -1)  # a false blob
    prob = cv2.GaussianBlur(prob, (0, 0), 1.0)
    clean = cleanup_mask(prob, 0.1)
    assert clean[30:51, 30:51].max() < 0.05  # blob and its fringe gone
    assert np.array_equal(clean[100:, 100:300], prob[100:, 100:300])  # person untouched
    # through the compositor, over a flat color: the blob shows the background only with clean-up
    frame = np.full((H, W, 3), 200, np.uint8)
    bx, by = int(40 * W / 398), int(40 * H / 224)
    assert (Compositor("color:#000000", cleanup=True).compose(frame, prob)[by, bx] == 0).all()
    assert (Compositor("color:#000000", cleanup=False).compose(frame, prob)[by, bx] > 150).all()


def test_cleanup_keeps_two_people():
    prob = np.zeros((224, 398), np.float32)
    cv2.circle(prob, (100, 150), 60, 1.0, -1)
    cv2.circle(prob, (300, 150), 40, 1.0, -1)  # a second, smaller person (44 % of the first)
    assert cleanup_mask(prob, 0.1) is prob


# -- errors ----------------------------------------------------------------------------------------

def test_missing_background_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "beach.jpg"
    with pytest.raises(BadInput, match="not found") as exc:
        parse_background(f"image:{missing}")
    assert str(missing) in str(exc.value) and "check the path" in str(exc.value).lower()
    with pytest.raises(BadInput, match="not found") as exc:
        parse_background(f"video:{missing}")
    assert str(missing) in str(exc.value)


def test_corrupt_background_file_is_bad_input(tmp_path):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"this is not a JPEG at all")
    with pytest.raises(BadInput) as exc:
        parse_background(f"image:{bad}")
    assert str(bad) in str(exc.value)
    with pytest.raises(BadInput) as exc:
        parse_background(f"video:{bad}")
    assert str(bad) in str(exc.value)


@pytest.mark.parametrize("spec, words", [
    ("color:green", "#RRGGBB"), ("color:#12345", "#RRGGBB"), ("blur:abc", "1 to 100"),
    ("blur:0", "1 to 100"), ("blur:101", "1 to 100"), ("sparkles", "blur"), ("image:", "image:PATH"),
])
def test_bad_specs_say_how_to_fix(spec, words):
    with pytest.raises(BadInput) as exc:
        parse_background(spec)
    assert words in str(exc.value)


def test_color_error_gives_an_example():
    with pytest.raises(BadInput, match=r"color:#[0-9A-F]{6}"):
        parse_background("color:#GG0000")


# -- live settings, sizes, buffers -----------------------------------------------------------------

def test_bad_set_background_keeps_the_current_one(scene, tmp_path):
    frame, _, prob = scene
    comp = Compositor("color:#FF0000")
    with pytest.raises(BadInput):
        comp.set_background(f"image:{tmp_path / 'missing.png'}")
    assert comp.background.spec == "color:#FF0000"
    comp.set_background("none")
    assert np.array_equal(comp.compose(frame, prob), frame)
    comp.set_background(BlurBackground(30))  # a Background object is accepted as is
    assert comp.background.spec == "blur:30"


def test_settings_change_while_composing_from_another_thread(scene):
    frame, _, prob = scene
    small = cv2.resize(frame, (320, 180))
    comp = Compositor("blur")
    stop, errors = threading.Event(), []

    def toggle():
        i = 0
        while not stop.is_set():
            comp.refine, comp.mirror, comp.cleanup = i % 2 == 0, i % 3 == 0, i % 5 == 0
            comp.set_background(["blur", "color:#00FF00", "none", "blur:40"][i % 4])
            i += 1

    t = threading.Thread(target=toggle)
    t.start()
    try:
        for _ in range(150):
            out = comp.compose(small, prob)
            assert out.shape == small.shape
    except Exception as exc:  # pragma: no cover - reported below
        errors.append(exc)
    finally:
        stop.set()
        t.join()
    assert not errors


def test_properties_take_effect(scene):
    frame, _, prob = scene
    comp = Compositor("none")
    comp.mirror = True
    assert comp.mirror and np.array_equal(comp.compose(frame, prob), frame[:, ::-1])
    comp.mirror = False
    comp.refine = False
    comp.cleanup = False
    assert not comp.refine and not comp.cleanup


def test_frame_size_changes_and_outputs_are_fresh(scene):
    frame, _, prob = scene
    comp = Compositor("blur")
    first = comp.compose(frame, prob)
    keep = first.copy()
    for w, h in ((640, 360), (333, 197), (64, 36), (1920, 1080), (W, H)):
        f = cv2.resize(frame, (w, h))
        assert comp.compose(f, prob).shape == (h, w, 3)
    assert np.array_equal(first, keep)  # a returned frame is never reused as a buffer


def test_refine_snaps_the_mask_to_image_edges():
    """A blurry low-res mask of a dark shape on a light wall: refined edges are sharper and closer."""
    _, truth, _ = person_scene((W, H), MODEL_WH)
    frame = np.where(truth[:, :, None] > 0, 40, 210).astype(np.uint8)
    frame = np.ascontiguousarray(np.broadcast_to(frame, (H, W, 3)))
    prob = cv2.GaussianBlur(cv2.resize(truth, MODEL_WH, interpolation=cv2.INTER_AREA), (0, 0), 1.5)
    band = _ring(truth > 0, 0, 12) | _ring(truth == 0, 0, 12)  # 12 px either side of the outline
    errs = {}
    for refine in (False, True):
        out = Compositor("color:#FFFFFF", refine=refine, cleanup=False).compose(frame, prob)
        # alpha from the result: white background (255) vs person (40)
        alpha = (255.0 - out[:, :, 0]) / (255.0 - 40.0)
        errs[refine] = np.abs(alpha - truth)[band].mean()
    assert errs[True] < 0.5 * errs[False]


def test_gray_and_bgra_frames_are_accepted(scene):
    frame, _, prob = scene
    comp = Compositor("blur")
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert comp.compose(gray, prob).shape == (H, W, 3)
    assert comp.compose(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA), prob).shape == (H, W, 3)
    with pytest.raises(BadInput):
        comp.compose(frame.astype(np.float32), prob)


def test_image_background_cached_per_size(tmp_path):
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), np.full((50, 80, 3), 99, np.uint8))
    bg = ImageBackground(str(path))
    a = bg.render(H, W, None, None)
    assert bg.render(H, W, None, None) is a and bg.render(360, 640, None, None).shape == (360, 640, 3)


def test_cleanup_labels_blobs_as_the_default_labelling_does(monkeypatch):
    """cleanup_mask uses Grana's labelling (faster); on masks with many blobs, diagonal touches and holes it
    erases exactly what OpenCV's default labelling would."""
    rng = np.random.default_rng(3)
    masks = []
    for _ in range(20):
        m = (cv2.GaussianBlur(rng.random((60, 100)).astype(np.float32), (0, 0), 2.0) > 0.52).astype(np.float32)
        m[10:40, 30:70] = 1.0  # one big blob so the small ones are dropped
        m[rng.random((60, 100)) < 0.02] = 1.0  # single pixels, some touching diagonally
        masks.append(cv2.GaussianBlur(m, (3, 3), 0.7))
    fast = [cleanup_mask(m, 0.1) for m in masks]
    monkeypatch.setattr(cv2, "connectedComponentsWithStatsWithAlgorithm",
                        lambda img, conn, ltype, alg: cv2.connectedComponentsWithStats(img, connectivity=conn, ltype=ltype))
    slow = [cleanup_mask(m, 0.1) for m in masks]
    assert sum((f != m).any() for f, m in zip(fast, masks)) >= 10  # blobs were erased in most masks
    for f, s in zip(fast, slow):
        np.testing.assert_array_equal(f, s)


# -- the fast paths against plain references (issue #16) ---------------------------------------------

def _smooth_image(rng, shape, coarse=8) -> np.ndarray:
    """A smooth random uint8 image (like a blurred background): random values at 1/coarse, cubic-enlarged."""
    small = rng.random((max(2, shape[0] // coarse), max(2, shape[1] // coarse)) + shape[2:]).astype(np.float32)
    return np.clip(cv2.resize(small, shape[1::-1], interpolation=cv2.INTER_CUBIC) * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("src_shape, out_wh, smooth", [
    ((360, 640), (1280, 720), False),        # the alpha, 1/2 -> full (exact 2x): any content
    ((540, 960), (1920, 1080), False),
    ((112, 199, 3), (1280, 720), True),      # the blurred background at 1/8 of the mask size -> full
    ((112, 199, 3), (1920, 1080), True),
    ((37, 61, 3), (333, 197), True),         # odd sizes, scale not the same on both axes
])
def test_upscale_matches_bilinear_resize(src_shape, out_wh, smooth):
    """compose.upscale (warpAffine) samples where cv2.resize(INTER_LINEAR) does: within 1 level of it and of
    exact bilinear interpolation in float64, edges included (no shift, no dark border)."""
    from vbg_app.compose import upscale

    rng = np.random.default_rng(sum(src_shape))
    src = _smooth_image(rng, src_shape) if smooth else rng.integers(0, 256, src_shape, dtype=np.uint8)
    fast = upscale(src, *out_wh).astype(np.int16)
    plain = cv2.resize(src, out_wh, interpolation=cv2.INTER_LINEAR).astype(np.int16)
    exact = cv2.resize(src.astype(np.float64), out_wh, interpolation=cv2.INTER_LINEAR)
    assert fast.shape == plain.shape
    assert np.abs(fast - plain).max() <= 1
    assert np.abs(fast - exact).max() <= 1.0
    dst = np.empty_like(plain, dtype=np.uint8)
    assert upscale(src, *out_wh, dst=dst) is dst


def test_blend_matches_the_plain_formula():
    """_blend (8-bit products in strips) = round(a * frame + (1 - a) * bg) within 1 level, exact at a = 0 and 255,
    on random frames, backgrounds and alphas of sizes that do and do not fill the last strip."""
    from vbg_app.compose import _blend, _Pool

    rng = np.random.default_rng(16)
    pool = _Pool()
    for h, w in ((H, W), (1080, 1920), (101, 77)):
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
        alpha[: h // 4] = 0
        alpha[-h // 4:] = 255
        a = alpha[:, :, None] / 255.0
        plain = np.rint(a * frame + (1 - a) * bg)
        out = _blend(frame, bg, alpha, pool)
        assert np.abs(out - plain).max() <= 1
        np.testing.assert_array_equal(out[: h // 4], bg[: h // 4])
        np.testing.assert_array_equal(out[-h // 4:], frame[-h // 4:])


def test_compose_matches_the_resize_reference(scene, monkeypatch):
    """The whole compose with the fast upscale against the same compose with cv2.resize in its place (the plain
    implementation before #16): random frames and masks and the person scene, output within 2 levels (each of
    alpha and background within 1; the background's 1-level rounding differences reach about 5 % of the
    values, so the mean difference stays under 0.1 level)."""
    import vbg_app.compose as compose

    rng = np.random.default_rng(7)
    frame, _, prob = scene
    cases = [(frame, prob)]
    for _ in range(3):
        f = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        p = cv2.GaussianBlur(rng.random((MODEL_WH[1], MODEL_WH[0])).astype(np.float32), (0, 0), 6)
        cases.append((f, np.clip((p - p.mean()) * 8 + 0.5, 0, 1).astype(np.float32)))
    fast = [Compositor("blur").compose(f, p) for f, p in cases]
    monkeypatch.setattr(compose, "upscale", lambda img, w, h, dst=None: cv2.resize(
        img, (w, h), dst=dst, interpolation=cv2.INTER_LINEAR))
    plain = [Compositor("blur").compose(f, p) for f, p in cases]
    for a, b in zip(fast, plain):
        d = np.abs(a.astype(np.int16) - b)
        assert d.max() <= 2 and d.mean() < 0.1, (d.max(), d.mean())


def test_compose_allocates_no_full_frame_but_its_output(scene):
    """After the first frame, compose allocates one full-size array per call (the returned frame, fresh by
    contract) and no other frame-sized scratch: the alpha, the background and the blend strips are reused."""
    import tracemalloc

    frame, _, prob = scene
    comp = Compositor("blur")
    for _ in range(2):
        comp.compose(frame, prob)
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(3):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            out = comp.compose(frame, prob)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
            assert out.nbytes == H * W * 3
    finally:
        tracemalloc.stop()
    # tracemalloc counts every thread: the least of three calls, so a thread left by another test cannot fail it
    assert min(peaks) < out.nbytes + H * W // 2, f"compose allocated {peaks} bytes at its peak, the output {out.nbytes}"
    blur = BlurBackground()  # its full-size result is one buffer, reused while the size stays
    first = blur.render(H, W, frame, prob)
    assert blur.render(H, W, frame, prob) is first
