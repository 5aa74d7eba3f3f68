"""Meeting-domain synthesis (issue #14 item 2), cached soft labels through the synthesis and the dataset, the
distillation towards them in training, and checkpoints by wall time."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vbg_app.engines.fit import PAD_VALUE, letterbox_box
from vbg_app.errors import BadInput
from vbg_app.train.data import Photometric, Synthesizer
from vbg_app.train.data.datasets import PortraitDataset
from vbg_app.train.data.meeting import HELD_KINDS, backlight, draw_held_object, office_background
from vbg_app.train.data.plates import make_plate
from tests.train.test_data import NO_PHOTO, full_body, write_folder

STILL = dict(p_composite=0.0, center_jitter=0.0, scale_jitter=0.0, max_rotation=0.0, p_flip=0.0, p_occluder=0.0)


def synth(**kw) -> Synthesizer:
    opts = {**STILL, **kw}
    return Synthesizer(out_wh=opts.pop("out_wh", (256, 144)), photometric=Photometric(**NO_PHOTO), **opts)


def test_office_background_is_deterministic_and_holds_bright_windows_or_clutter():
    a = office_background(144, 256, np.random.default_rng(5))
    assert np.array_equal(a, office_background(144, 256, np.random.default_rng(5)))
    assert not np.array_equal(a, office_background(144, 256, np.random.default_rng(6)))
    stds = [office_background(144, 256, np.random.default_rng(s)).std() for s in range(8)]
    assert min(stds) > 3.0  # never a bare wall


@pytest.mark.parametrize("kind", HELD_KINDS)
def test_held_objects_are_drawn_where_the_label_says_person(kind):
    """Rendered with and without a held object (same seed, no photometric changes): every pixel whose
    label changed was drawn on, and the label is person wherever the image changed."""
    img, lab = full_body()
    plain = synth(p_held=0.0, p_webcam=1.0)
    held = synth(p_held=1.0, held_kinds=(kind,), p_webcam=1.0)
    changed_any = False
    outside_any = False
    for seed in range(6):
        i0, l0 = plain(img, lab, np.random.default_rng(seed))
        i1, l1 = held(img, lab, np.random.default_rng(seed))
        drawn = (i0 != i1).any(2)
        changed_any |= bool(drawn.any())
        assert (l1[drawn] == 1).all(), kind  # what is drawn is person
        assert not ((l1 != l0) & ~drawn).any(), kind  # the label changes only where something was drawn
        outside_any |= bool((drawn & (l0 == 0)).any())
    assert changed_any, kind
    if kind in ("headset", "helmet", "mug", "phone"):  # these reach past the body's outline
        assert outside_any, kind


def test_draw_held_object_without_a_person_draws_nothing():
    img = np.zeros((60, 80, 3), np.uint8)
    for kind in HELD_KINDS:
        assert not draw_held_object(img, np.zeros((60, 80), np.uint8), np.random.default_rng(0), kind).any()
    assert not img.any()
    with pytest.raises(ValueError):
        _, lab = full_body()
        draw_held_object(np.zeros(lab.shape + (3,), np.uint8), lab, np.random.default_rng(0), "sword")


def test_four_by_three_frames_are_letterboxed_like_the_engine():
    img, lab = full_body()
    soft = lab.astype(np.float32)
    s = synth(frame_aspects=((4, 3, 1.0),), p_webcam=1.0)
    out, olab, osoft = s.render(img, lab, np.random.default_rng(0), soft=soft)
    x0, y0, nw, nh = letterbox_box((4000, 3000), (256, 144))
    assert (x0, y0, nh) == (32, 0, 144) and nw == 192
    assert (out[:, :x0] == PAD_VALUE).all() and (out[:, x0 + nw:] == PAD_VALUE).all()
    assert (olab[:, :x0] == 0).all() and (osoft[:, x0 + nw:] == 0).all()
    assert (olab[:, x0:x0 + nw] == 1).any()
    # a 16:9 camera at a 16:9 output: no bars
    out169, _ = synth(frame_aspects=((16, 9, 1.0),), p_webcam=1.0)(img, lab, np.random.default_rng(0))
    assert not (out169[:, :4] == PAD_VALUE).all()
    with pytest.raises(BadInput):
        synth(frame_aspects=((4, 3, 0.0),))


def test_side_cuts_put_the_person_against_the_left_or_right_edge():
    img, lab = full_body()
    cut = synth(p_side_cut=1.0, side_cut=(0.3, 0.45), p_webcam=1.0, max_outside=0.05, p_folder_background=0.0)
    centred = synth(p_side_cut=0.0, p_webcam=1.0)
    sides = set()
    for seed in range(8):
        _, l1 = cut(img, lab, np.random.default_rng(seed))
        _, l0 = centred(img, lab, np.random.default_rng(seed))
        left, right = (l1[:, 0] == 1).any(), (l1[:, -1] == 1).any()
        assert left != right, seed
        sides.add("left" if left else "right")
        assert not (l0[:, 0] == 1).any() and not (l0[:, -1] == 1).any()
    assert sides == {"left", "right"}


def test_far_people_are_small_and_composited_not_mirrored():
    img, lab = full_body()
    far = synth(p_far=1.0, far_fill=(0.35, 0.5), p_composite=0.0, p_folder_background=0.0)
    for seed in range(4):
        out, l1 = far(img, lab, np.random.default_rng(seed))
        rows = np.flatnonzero((l1 == 1).any(1))
        assert 0.3 * 144 <= len(rows) <= 0.55 * 144, seed
        n, _ = cv2.connectedComponents((l1 == 1).astype(np.uint8))
        assert n - 1 <= 2, seed  # the person (head, body), not mirrored copies of it
        assert not (out == (40, 200, 40)).all(2)[l1 == 0].mean() > 0.5  # the green photo is not the background


def test_frames_reaching_past_the_photo_are_composited_when_max_outside_says_so():
    img, lab = full_body()
    wide = dict(p_webcam=0.0, person_fill=(0.5, 0.5), p_folder_background=0.0)  # a crop 2x the person's height
    _, l_reflect = synth(**wide)(img, lab, np.random.default_rng(0))
    _, l_comp = synth(max_outside=0.05, **wide)(img, lab, np.random.default_rng(0))
    count = lambda m: cv2.connectedComponents((m == 1).astype(np.uint8))[0] - 1  # noqa: E731
    assert count(l_reflect) > 2  # mirrored copies of the person at the photo's borders
    assert count(l_comp) <= 2


def test_soft_labels_follow_the_geometry_and_the_composite_alpha():
    img, lab = full_body()
    soft = cv2.GaussianBlur(lab.astype(np.float32), (0, 0), 2.0)
    whole = synth(p_webcam=1.0, soft_label_edges=True, max_rotation=10.0)
    for seed in range(3):
        out, l1, s1 = whole.render(img, lab, np.random.default_rng(seed), soft=soft)
        assert s1.shape == l1.shape == out.shape[:2] and s1.dtype == np.float32
        assert np.array_equal(l1, (s1 >= 0.5).astype(np.uint8))  # the hard label from the teachers' edges
        assert 0.0 <= s1.min() and s1.max() <= 1.0
        # the soft label is warped like the image: the red person is where the soft label is high
        red = (out[..., 2] > 150) & (out[..., 1] < 100)
        assert (s1[red] > 0.5).mean() > 0.95
    comp = synth(p_composite=1.0, p_webcam=1.0, p_folder_background=0.0)
    out, l2, s2 = comp.render(img, lab, np.random.default_rng(1), soft=np.zeros_like(soft))
    # a composite's target is its own alpha (the ground-truth cut), not the source's soft label
    assert (s2[l2 == 1] > 0.5).mean() > 0.97 and (s2[l2 == 0] < 0.5).mean() > 0.97
    # without a soft input the render gives none, and draws the same sample as __call__
    o3, l3, s3 = comp.render(img, lab, np.random.default_rng(1))
    o4, l4 = comp(img, lab, np.random.default_rng(1))
    assert s3 is None and np.array_equal(o3, o4) and np.array_equal(l3, l4)
    # held objects are person in the soft target too
    held = synth(p_held=1.0, held_kinds=("helmet",), p_webcam=1.0)
    _, l5, s5 = held.render(img, lab, np.random.default_rng(2), soft=soft)
    _, l6, s6 = synth(p_webcam=1.0).render(img, lab, np.random.default_rng(2), soft=soft)
    drawn = (l5 == 1) & (l6 == 0)
    assert drawn.any() and (s5[drawn] == 1.0).all()


def test_meeting_samples_are_deterministic_per_seed():
    img, lab = full_body()
    s = synth(p_composite=0.5, frame_aspects=((16, 9, 1), (4, 3, 1)), p_side_cut=0.3, p_far=0.2, p_held=0.5,
              p_backlight=0.3, background_kinds=("office", "shelves"), max_outside=0.05, max_rotation=8.0,
              p_flip=0.5)
    soft = lab.astype(np.float32)
    for seed in range(4):
        a = s.render(img, lab, np.random.default_rng(seed), soft=soft)
        b = s.render(img, lab, np.random.default_rng(seed), soft=soft)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    outs = [s.render(img, lab, np.random.default_rng(seed))[0] for seed in range(4)]
    assert not np.array_equal(outs[0], outs[1])


def test_backlight_brightens_the_background_and_darkens_the_person():
    img = np.full((72, 128, 3), 120, np.uint8)
    person = np.zeros((72, 128), bool)
    person[20:, 40:90] = True
    out = backlight(img, person, np.random.default_rng(0))
    assert out[5, 5].mean() > 150 and out[60, 65].mean() < 110


def test_plates_fill_the_person_away():
    img, lab = full_body()
    plate = make_plate(img, lab)
    assert plate.shape == img.shape
    red = (plate[..., 2] > 150) & (plate[..., 1] < 100)
    assert red.mean() < 0.001  # the red person is gone, filled from the green around it


def test_background_weights_choose_the_folder(tmp_path):
    from vbg_app.train.data import BackgroundBank

    for name, col in (("a", (0, 0, 255)), ("b", (255, 0, 0))):
        (tmp_path / name).mkdir()
        for i in range(1 if name == "a" else 5):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), np.full((90, 160, 3), col, np.uint8))
    bank = BackgroundBank([tmp_path / "a", tmp_path / "b"], p_folder=1.0, weights=[1.0, 0.0])
    for s in range(5):
        assert tuple(bank.sample(36, 64, np.random.default_rng(s))[18, 32]) == (0, 0, 255)
    with pytest.raises(BadInput):
        BackgroundBank([tmp_path / "a", tmp_path / "b"], weights=[1.0])


# -- datasets with cached soft labels ------------------------------------------------------------------------------
def test_folder_sources_read_cached_soft_labels(tmp_path):
    torch = pytest.importorskip("torch")
    root = write_folder(tmp_path / "d", 3, size=(120, 80))
    soft_dir = tmp_path / "soft"
    soft_dir.mkdir()
    for i in range(3):
        m = cv2.imread(str(root / "masks" / f"im{i}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(soft_dir / f"im{i}.png"), cv2.GaussianBlur(m, (0, 0), 1.0))
    ds = PortraitDataset([{"path": str(root), "soft": str(soft_dir)}], (96, 64), {"p_composite": 0.0}, seed=0)
    assert ds.has_soft_targets
    item = ds[(0, 1)]
    soft = item["soft"].numpy()
    assert np.isfinite(soft).all() and soft.shape == (64, 96)
    agree = ((soft >= 0.5) == (item["label"].numpy() == 1)).mean()
    assert agree > 0.97
    # without soft: NaN targets and no cached soft
    plain = PortraitDataset([str(root)], (96, 64), {}, seed=0)
    assert not plain.has_soft_targets and torch.isnan(plain[(0, 1)]["soft"]).all()
    # a missing label is refused up front, a label of another size when read
    (soft_dir / "im2.png").unlink()
    with pytest.raises(BadInput, match="no soft label"):
        PortraitDataset([{"path": str(root), "soft": str(soft_dir)}], (96, 64), {})
    cv2.imwrite(str(soft_dir / "im2.png"), np.zeros((10, 10), np.uint8))
    bad = PortraitDataset([{"path": str(root), "soft": str(soft_dir)}], (96, 64), {})
    with pytest.raises(BadInput, match="not this image's label"):
        bad.sample(2, 0)


# -- training --------------------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("yaml")

from vbg_app.train.loop import load_config, train  # noqa: E402
from tests.train.test_loop import SMOKE, read_log  # noqa: E402

SMOKE_V4 = SMOKE.with_name("smoke_v4.yaml")


@pytest.mark.slow  # a training burst
def test_smoke_v4_distils_towards_cached_soft_labels_without_a_live_teacher(tmp_path):
    """The v4 paths (meeting synthesis, cached soft labels, distillation) train: every term is logged, the
    loss goes down, and the checkpoint holds the samples seen."""
    cfg = load_config(SMOKE_V4, ["iters=30", "val_every=30", f"output={tmp_path / 'm'}"])
    res = train(cfg, progress=False, log=lambda s: None)
    assert res["iterations"] == 30
    rows = [r for r in read_log(tmp_path / "m" / "log.csv") if r["loss"]]
    kd = [float(r["loss/distillation"]) for r in rows]
    assert len(kd) == 6 and all(np.isfinite(kd)) and all(v > 0 for v in kd)
    assert all(r["loss/semantic_connectivity"] for r in rows)
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-2:]) < 0.85 * losses[0], losses
    assert torch.load(tmp_path / "m" / "last.pt", weights_only=True)["samples_seen"] == 30 * 8
    # the same loss without any soft source and without a teacher is refused
    plain = load_config(SMOKE, [f"loss={cfg['loss']}", "iters=2", f"output={tmp_path / 'p'}"])
    with pytest.raises(BadInput, match="distillation"):
        train(plain, progress=False, log=lambda s: None)


@pytest.mark.slow  # a training burst
def test_checkpoints_by_wall_time_resume_exactly(tmp_path):
    """checkpoint_every_s writes last.pt between validations; resuming from such a mid-run checkpoint ends
    where an uninterrupted run ends."""
    over = ["iters=6", "val_every=6", "log_every=3", "loss=[cross_entropy, lovasz_softmax, distillation]"]
    msgs: list[str] = []
    straight = train(load_config(SMOKE_V4, over + [f"output={tmp_path / 'a'}", "checkpoint_every_s=1e-9"]),
                     progress=False, log=msgs.append)
    assert any(m.startswith("checkpoint @1:") for m in msgs) and any(m.startswith("checkpoint @5:") for m in msgs)
    assert not any(m.startswith("checkpoint @6:") for m in msgs)  # the validation's last.pt covers it
    # a run stopped at 4 by a time checkpoint (stop_at), continued with --resume
    train(load_config(SMOKE_V4, over + [f"output={tmp_path / 'b'}", "checkpoint_every_s=1e-9"]), progress=False,
          log=lambda s: None, stop_at=4)
    ck = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert ck["iteration"] == 4 and ck["samples_seen"] == 4 * 8 and {"optimizer", "scheduler", "rng"} <= set(ck)
    resumed = train(load_config(SMOKE_V4, over + [f"output={tmp_path / 'b'}"]), resume="auto", progress=False,
                    log=lambda s: None)
    sa, sb = straight["model"].state_dict(), resumed["model"].state_dict()
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k


def test_v4_configs_train_on_the_cached_labels_if_present():
    """The v4 recipes load; with the shared data and runs/labels_train present, their dataset makes samples
    with soft targets (skipped on machines without them)."""
    from pathlib import Path

    from tests.train.test_loop import CONFIGS as CONFIGS_DIR
    from vbg_app.train.loop import build_datasets

    for name in ("connectnet_v4_256x144", "connectnet_v4_256x144_nosc", "connectnet_v4", "connectnet_v4_nosc"):
        cfg = load_config(CONFIGS_DIR / f"{name}.yaml")
        assert cfg["iters"] * cfg["batch_size"] >= 48_000 and cfg["checkpoint_every_s"] <= 600
    cfg = load_config(CONFIGS_DIR / "connectnet_v4_256x144.yaml")
    assert cfg["iters"] * cfg["batch_size"] >= 160_000
    root = Path(__file__).resolve().parents[2]
    need = [root / "runs/labels_train/labels/fused_gt/train", root / "runs/plates_train",
            root.parent / "shared/data/portraits/ccp/train"]
    if not all(p.is_dir() for p in need):
        pytest.skip("shared data, runs/labels_train or runs/plates_train absent")
    train_ds, _ = build_datasets({**cfg, "data": {**cfg["data"], "val": []}})
    assert train_ds.has_soft_targets and len(train_ds) == 702 + 3 * 203
    item = train_ds[(0, 0)]
    assert item["image"].shape == (3, 144, 256) and torch.isfinite(item["soft"]).all()


# -- anchor_cuts: the photo's own cut of the person stays outside the frame -------------------------------------------
def _half_body(h=300, w=200):
    lab = np.zeros((h, w), np.uint8)
    lab[90:h, 50:150] = 1  # head and torso, cut by the photo's bottom edge
    lab[60:90, 80:120] = 1
    return lab


@pytest.mark.parametrize("angle,flip", [(0, False), (7, False), (-7, True), (3, True)])
def test_anchor_cut_edges_moves_the_photo_bottom_out_of_frame(angle, flip):
    from vbg_app.train.data.augment import anchor_cut_edges, similarity

    lab = _half_body()
    M = similarity((100, 260), 260, (256, 144), angle, flip)  # framed low: the photo ends inside the frame
    bottom = np.array([[50, 300, 1], [150, 300, 1]], np.float64)
    assert (bottom @ M.T)[:, 1].min() < 144 - 1
    A = anchor_cut_edges(M, lab, (256, 144))
    assert (bottom @ A.T)[:, 1].min() >= 144 - 1e-6
    assert np.allclose(A[:, :2], M[:, :2])  # only moved, never scaled or turned
    # already outside: unchanged
    M2 = similarity((100, 150), 120, (256, 144), angle, flip)
    assert np.allclose(anchor_cut_edges(M2, lab, (256, 144)), M2)


def test_anchor_cut_edges_ignores_people_inside_the_photo():
    from vbg_app.train.data.augment import anchor_cut_edges, similarity

    lab = np.zeros((300, 200), np.uint8)
    lab[60:280, 50:150] = 1  # whole person, 20 px above the photo's bottom edge
    M = similarity((100, 260), 260, (256, 144))
    assert np.allclose(anchor_cut_edges(M, lab, (256, 144)), M)


def test_synthesizer_anchor_cuts_keeps_the_torso_to_the_bottom_edge():
    """With anchor_cuts no rendered frame of a half-body photo shows background under the torso's middle."""
    lab = _half_body(240, 320)
    img = np.full((240, 320, 3), 120, np.uint8)
    opts = dict(out_wh=(128, 72), p_composite=1.0, backgrounds=[], p_webcam=1.0, full_body_aspect=0.5,
                webcam_height=(0.9, 1.6), p_occluder=0.0, max_rotation=0.0, scale_jitter=0.0)
    rng = np.random.default_rng(0)
    floating = 0
    for _ in range(20):
        _, out = Synthesizer(**opts, anchor_cuts=False)(img, lab, rng)
        floating += bool(out[-1].max() == 0 and out.max() == 1)
    assert floating > 0  # the setting really produces floating torsos without the option
    for _ in range(20):
        _, out = Synthesizer(**opts, anchor_cuts=True)(img, lab, rng)
        if out.max() == 1:
            assert out[-1].max() == 1, "the torso ends above the bottom edge"


@pytest.mark.parametrize("size", [(144, 256), (97, 61), (8, 8)])
def test_drape_background_is_deterministic_bold_and_fills_the_frame(size):
    from vbg_app.train.data.meeting import drape_background

    h, w = size
    a = drape_background(h, w, np.random.default_rng(3))
    b = drape_background(h, w, np.random.default_rng(3))
    assert a.shape == (h, w, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    if h >= 64:
        # a bold pattern over the whole frame: high contrast in every quarter, unlike a plain wall
        for q in (a[: h // 2, : w // 2], a[: h // 2, w // 2:], a[h // 2:, : w // 2], a[h // 2:, w // 2:]):
            assert float(q.astype(np.float32).std()) > 20


def test_drape_is_a_background_kind():
    from vbg_app.train.data.synthesis import GENERATORS, BackgroundBank

    bank = BackgroundBank(kinds=("drape",))
    img = bank.sample(72, 128, np.random.default_rng(0))
    assert img.shape == (72, 128, 3) and "drape" in GENERATORS


def _bystander_folder(root, color=(200, 40, 200)):
    """A labelled folder of one magenta "person" on black (a colour no other part of the sample has)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    img, lab = full_body(color=color, bg=(0, 0, 0))
    cv2.imwrite(str(root / "images" / "p.png"), img)
    cv2.imwrite(str(root / "masks" / "p.png"), lab * 255)
    return root


def test_a_bystander_is_painted_behind_the_person_and_labelled_background(tmp_path):
    folder = _bystander_folder(tmp_path / "people")
    img, lab = full_body()
    opts = dict(p_composite=1.0, background_kinds=("gradient",), p_webcam=0.0, out_wh=(256, 144))
    seen = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        out, out_lab = synth(**opts, p_bystander=1.0, bystanders=[str(folder)])(img, lab, rng)
        magenta = (np.abs(out.astype(int) - (200, 40, 200)).sum(-1) < 40)
        if magenta.sum() > 30:
            seen += 1
            assert (out_lab[magenta] == 0).mean() > 0.99  # the bystander is background
            assert (out_lab == 1).sum() > 0  # and the main person is still there, labelled person
        # behind the main person: the same draw without a bystander has the same label and the same person
        plain, plain_lab = synth(**opts)(img, lab, np.random.default_rng(seed))
        inside = cv2.erode((plain_lab == 1).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert np.array_equal(out_lab, plain_lab) and np.array_equal(out[inside], plain[inside])
    assert seen >= 6
    # same rng -> same sample (a function of rng only), and without the option no magenta at all
    a, _ = synth(**opts, p_bystander=1.0, bystanders=[str(folder)])(img, lab, np.random.default_rng(3))
    b, _ = synth(**opts, p_bystander=1.0, bystanders=[str(folder)])(img, lab, np.random.default_rng(3))
    assert np.array_equal(a, b)
    c, _ = synth(**opts)(img, lab, np.random.default_rng(3))
    assert not (np.abs(c.astype(int) - (200, 40, 200)).sum(-1) < 40).any()


def test_bystanders_need_labelled_folders(tmp_path):
    with pytest.raises(BadInput, match="bystanders"):
        synth(p_bystander=0.5)
    with pytest.raises(BadInput, match="images/ and masks/"):
        synth(p_bystander=0.5, bystanders=[str(tmp_path)])


def test_a_soft_composite_alpha_pastes_no_halo_of_a_generous_mask():
    """humanseg290-style masks run a few px outside the person: cut with the mask, the photo's own (green)
    background comes along as a halo labelled person; cut with the soft label, it does not."""
    img, lab = full_body()  # red person on green
    generous = cv2.dilate(lab, np.ones((9, 9), np.uint8))  # the annotation: 4 px outside all round
    soft = lab.astype(np.float32)  # the teachers: the person itself
    opts = dict(p_composite=1.0, background_kinds=("gradient",), p_webcam=0.0, feather=0.0)
    green = lambda im: (np.abs(im.astype(int) - (40, 200, 40)).sum(-1) < 30)  # noqa: E731
    for seed in range(4):
        hard, hard_lab, _ = synth(**opts).render(img, generous, np.random.default_rng(seed), soft=soft)
        tight, tight_lab, tight_soft = synth(**opts, composite_alpha="soft").render(
            img, generous, np.random.default_rng(seed), soft=soft)
        assert green(hard).sum() > 20 and (hard_lab[green(hard)] == 1).all()  # the halo, called person
        assert green(tight).sum() <= 2  # no halo
        assert np.array_equal(tight_lab, (tight_soft >= 0.5).astype(np.uint8))  # label and target agree
        red = (np.abs(tight.astype(int) - (40, 40, 220)).sum(-1) < 30)
        assert red.sum() > 100 and (tight_lab[red] == 1).mean() > 0.97
    with pytest.raises(BadInput, match="composite_alpha"):
        synth(composite_alpha="gt")
