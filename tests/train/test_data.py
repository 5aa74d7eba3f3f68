"""Training data: sources, label conventions, synthesis (framing, compositing, occluders), determinism."""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg_app.engines.fit import PAD_VALUE, letterbox_box
from vbg_app.errors import BadInput
from vbg_app.train.data import (GENERATORS, BackgroundBank, Photometric, Synthesizer, draw_occluder, folder_source,
                                list_source, open_source, read_label)
from vbg_app.train.data.datasets import PortraitDataset, ValDataset, label_to_metric, synthetic_portrait

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NO_PHOTO = {"p_color": 0, "p_lighting": 0, "p_blur": 0, "p_motion_blur": 0, "p_noise": 0, "p_jpeg": 0}


def full_body(h=400, w=300, color=(40, 40, 220), bg=(40, 200, 40)):
    """A BGR photo of a tall red "person" (head + body ellipses, 60x330 px) on green; its 0/1 label."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = bg
    lab = np.zeros((h, w), np.uint8)
    cv2.circle(lab, (150, 60), 22, 1, -1)
    cv2.ellipse(lab, (150, 230), (30, 150), 0, 0, 360, 1, -1)
    img[lab == 1] = color
    return img, lab


def write_folder(root: Path, n=3, masks=True, size=(120, 80)):
    (root / "images").mkdir(parents=True)
    if masks:
        (root / "masks").mkdir()
    for i in range(n):
        img, lab = synthetic_portrait(0, i, size)
        cv2.imwrite(str(root / "images" / f"im{i}.jpg"), img)
        if masks:
            cv2.imwrite(str(root / "masks" / f"im{i}.png"), lab * 255)
    return root


# -- labels and sources ---------------------------------------------------------------------------------------------
def test_read_label_conventions(tmp_path):
    m = np.array([[0, 255, 128], [200, 10, 255]], np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), m)
    lab = read_label(tmp_path / "a.png")
    assert lab.tolist() == [[0, 1, 255], [1, 0, 1]]  # >128 person, 128 ignore, else background
    assert label_to_metric(lab).tolist() == [[0, 255, 128], [255, 0, 255]]
    cv2.imwrite(str(tmp_path / "b.png"), np.array([[0, 1], [1, 0]], np.uint8))  # a 0/1 mask
    assert read_label(tmp_path / "b.png").tolist() == [[0, 1], [1, 0]]
    # resized with nearest neighbour to the image's shape: no in-between values appear
    big = read_label(tmp_path / "a.png", shape=(8, 12))
    assert big.shape == (8, 12) and set(np.unique(big)) <= {0, 1, 255}


def test_folder_source_pairs_images_and_masks(tmp_path):
    src = folder_source(write_folder(tmp_path / "d", 3))
    assert len(src) == 3 and src.labeled
    img, lab, name = src.load(1)
    assert img.shape == (80, 120, 3) and lab.shape == (80, 120) and name == "im1"
    assert set(np.unique(lab)) <= {0, 1}
    (tmp_path / "d" / "masks" / "im2.png").unlink()
    with pytest.raises(BadInput, match="no mask"):
        folder_source(tmp_path / "d")
    with pytest.raises(BadInput):
        folder_source(tmp_path / "nowhere")
    unl = folder_source(write_folder(tmp_path / "u", 2, masks=False))
    assert not unl.labeled and unl.load(0)[1] is None


def test_paddleseg_list_file(tmp_path):
    write_folder(tmp_path / "ds", 3)
    (tmp_path / "ds" / "train.txt").write_text("images/im0.jpg masks/im0.png\n\nimages/im1.jpg masks/im1.png\n"
                                               "images/im2.jpg\n")
    src, repeat = open_source({"path": str(tmp_path / "ds" / "train.txt"), "repeat": 2})
    assert repeat == 2 and len(src) == 3
    assert src.load(0)[1] is not None and src.load(2)[1] is None  # a line with only an image is unlabeled
    # paths relative to an explicit root
    (tmp_path / "list.txt").write_text("ds/images/im0.jpg ds/masks/im0.png\n")
    assert len(list_source(tmp_path / "list.txt", root=tmp_path)) == 1
    (tmp_path / "bad.txt").write_text("images/im0.jpg masks/missing.png\n")
    with pytest.raises(BadInput, match="does not exist"):
        list_source(tmp_path / "bad.txt", root=tmp_path / "ds")
    (tmp_path / "bad2.txt").write_text("a b c\n")
    with pytest.raises(BadInput, match="fields"):
        list_source(tmp_path / "bad2.txt")


def test_video_source_reads_frames(tmp_path):
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not vw.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for i in range(9):
        vw.write(np.full((48, 64, 3), i * 20, np.uint8))
    vw.release()
    src, _ = open_source({"path": str(path), "step": 3})
    assert len(src) == 3 and not src.labeled
    img, lab, _ = src.load(1)
    assert lab is None and img.shape == (48, 64, 3) and abs(int(img.mean()) - 60) < 8  # frame 3


# -- synthesis ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_generated_backgrounds_are_deterministic_and_textured(kind):
    a = GENERATORS[kind](72, 128, np.random.default_rng(3))
    b = GENERATORS[kind](72, 128, np.random.default_rng(3))
    c = GENERATORS[kind](72, 128, np.random.default_rng(4))
    assert a.shape == (72, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() > 2.0


def test_background_bank_uses_image_folders(tmp_path):
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"bg{i}.png"), np.full((300, 500, 3), (i * 200, 50, 50), np.uint8))
    bank = BackgroundBank([tmp_path], p_folder=1.0)
    out = bank.sample(72, 128, np.random.default_rng(0))
    assert out.shape == (72, 128, 3)
    assert tuple(int(v) for v in out[36, 64]) in ((0, 50, 50), (200, 50, 50))
    with pytest.raises(BadInput):
        BackgroundBank([tmp_path / "missing"])


def test_webcam_framing_of_a_full_body_photo():
    img, lab = full_body()
    syn = Synthesizer(out_wh=(256, 144), p_composite=0.0, p_webcam=1.0, center_jitter=0.0, scale_jitter=0.0,
                      max_rotation=0.0, p_flip=0.0, p_occluder=0.0, photometric=Photometric(**NO_PHOTO))
    for seed in range(5):
        out, olab = syn(img, lab, np.random.default_rng(seed))
        assert out.shape == (144, 256, 3) and olab.shape == (144, 256)
        rows = np.flatnonzero((olab == 1).any(1))
        cols = np.flatnonzero((olab == 1).any(0))
        # head near the top (3-15 % headroom of the crop), body cut by the bottom edge (40-60 % of the person)
        assert 0.02 * 144 <= rows[0] <= 0.16 * 144
        assert rows[-1] == 143
        # centred horizontally (no jitter), and it really is a crop: the person fills much of the height
        assert abs((cols[0] + cols[-1]) / 2 - 128) < 6
        assert (olab == 1).mean() > 0.05
        # image and label agree: person pixels are red, background pixels green (photometric off)
        inner = cv2.erode((olab == 1).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert out[inner][:, 2].mean() > 180 and out[inner][:, 1].mean() < 80


def test_letterbox_samples_are_the_whole_photo_on_the_engines_bars():
    img, lab = full_body()  # 300x400 portrait
    syn = Synthesizer(out_wh=(256, 144), p_letterbox=1.0, letterbox_fill=(1.0, 1.0), p_composite=0.0,
                      max_rotation=0.0, p_flip=0.0, p_occluder=0.0, photometric=Photometric(**NO_PHOTO))
    out, olab = syn(img, lab, np.random.default_rng(0))
    x0, y0, w, h = letterbox_box((300, 400), (256, 144))
    assert out.shape == (144, 256, 3) and olab.shape == (144, 256)
    # bars: the engine's grey, label background; the photo in between, whole and undistorted
    assert (out[:, :x0] == PAD_VALUE).all() and (out[:, x0 + w:] == PAD_VALUE).all()
    assert (olab[:, :x0] == 0).all() and (olab[:, x0 + w:] == 0).all()
    expect = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
    got = olab[y0:y0 + h, x0:x0 + w] == 1
    assert (got & (expect == 1)).sum() / (got | (expect == 1)).sum() > 0.9
    near_green = (abs(out[y0:y0 + h, x0:x0 + w][~got].astype(int) - np.array([40, 200, 40])).max(1) < 40)
    assert near_green.mean() > 0.97  # the photo's own green background (edge pixels are blended)
    # with fill < 1 the photo is smaller than its fitted box and still centred on the bars
    syn.letterbox_fill = (0.8, 0.8)
    out, olab = syn(img, lab, np.random.default_rng(1))
    cols = np.flatnonzero((out != PAD_VALUE).any(axis=(0, 2)))
    assert abs((cols[0] + cols[-1]) / 2 - 128) <= 2 and cols[-1] - cols[0] + 1 <= round(0.8 * w) + 2


def test_a_sample_can_be_made_at_another_size_than_the_synthesizers():
    """The loop's per-batch aspect (data.aspects): out_wh per call, for crops and for whole photos."""
    img, lab = full_body()
    for p_lb in (0.0, 1.0):
        syn = Synthesizer(out_wh=(256, 144), p_letterbox=p_lb, p_composite=0.0)
        out, olab = syn(img, lab, np.random.default_rng(0), out_wh=(96, 128))
        assert out.shape == (128, 96, 3) and olab.shape == (128, 96)
        assert 0.02 < (olab == 1).mean() < 0.9  # the person is in it
    # a portrait photo in a portrait batch: no bars when its fitted box is the whole output
    syn = Synthesizer(out_wh=(256, 144), p_letterbox=1.0, letterbox_fill=(1.0, 1.0), p_composite=0.0,
                      max_rotation=0.0, p_occluder=0.0, photometric=Photometric(**NO_PHOTO))
    out, _ = syn(img, lab, np.random.default_rng(0), out_wh=(96, 128))  # 3:4 photo, 3:4 output
    assert not (out == PAD_VALUE).all(axis=2).any(axis=0).all()  # no all-grey column


def test_compositing_replaces_the_background_and_keeps_the_person():
    img, lab = full_body()
    syn = Synthesizer(out_wh=(160, 96), p_composite=1.0, p_occluder=0.0, photometric=Photometric(**NO_PHOTO))
    greens = 0
    for seed in range(6):
        out, olab = syn(img, lab, np.random.default_rng(seed))
        assert set(np.unique(olab)) <= {0, 1}
        inner = cv2.erode((olab == 1).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        outer = cv2.erode((olab == 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        assert inner.any() and outer.any()
        assert np.abs(out[inner].astype(int) - (40, 40, 220)).max() <= 3  # the person is untouched
        bg = out[outer].astype(int)
        greens += float(np.mean(np.all(np.abs(bg - (40, 200, 40)) < 10, axis=1))) > 0.5
    assert greens == 0  # the photo's green background never survives a composite


def test_occluder_changes_label_only_where_it_draws():
    img, lab = full_body(200, 150)
    lab_small = cv2.resize(lab, (150, 200), interpolation=cv2.INTER_NEAREST)
    img = cv2.resize(img, (150, 200), interpolation=cv2.INTER_NEAREST)
    kinds = set()
    for seed in range(12):
        im2, lab2 = img.copy(), lab_small.copy()
        kinds.add(draw_occluder(im2, lab2, np.random.default_rng(seed), p_foreground=0.5))
        changed_lab = lab2 != lab_small
        changed_img = np.any(im2 != img, axis=2)
        assert not (changed_lab & ~changed_img).any()  # a label never changes without a drawn pixel
        drawn = changed_img
        if drawn.any():
            vals = np.unique(lab2[drawn])
            assert len(vals) == 1  # the whole occluder is one class: consistently person or background
    assert kinds == {"hand", "mug", "blob"}
    empty = np.zeros((50, 50), np.uint8)
    assert draw_occluder(np.zeros((50, 50, 3), np.uint8), empty, np.random.default_rng(0)) == ""


def test_synthesizer_config_is_checked():
    s = Synthesizer.from_config((128, 72), {"p_webcam": 0.5, "webcam_height": [0.4, 0.5],
                                            "photometric": {"p_noise": 0.0}})
    assert s.webcam_height == (0.4, 0.5) and s.photometric.p_noise == 0.0
    with pytest.raises(BadInput):
        Synthesizer.from_config((128, 72), {"p_wobble": 1})
    with pytest.raises(BadInput):
        Synthesizer.from_config((128, 72), {"photometric": {"p_wobble": 1}})


# -- datasets ----------------------------------------------------------------------------------------------------------
def test_samples_are_deterministic_per_seed_epoch_and_index(tmp_path):
    torch = pytest.importorskip("torch")
    root = write_folder(tmp_path / "d", 4)
    ds = PortraitDataset([str(root), {"kind": "synthetic", "count": 4}], (96, 64), {"p_occluder": 0.5}, seed=7)
    assert len(ds) == 8
    a, b = ds[(0, 5)], ds[(0, 5)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    c = ds[(1, 5)]
    assert not torch.equal(a["image"], c["image"])  # another epoch, another augmentation
    other = PortraitDataset([str(root), {"kind": "synthetic", "count": 4}], (96, 64), {"p_occluder": 0.5}, seed=8)
    assert not torch.equal(a["image"], other[(0, 5)]["image"])
    assert a["image"].shape == (3, 64, 96) and a["image"].dtype == torch.float32
    assert -1.0 <= float(a["image"].min()) and float(a["image"].max()) <= 1.0
    assert a["label"].dtype == torch.int64 and set(a["label"].unique().tolist()) <= {0, 1, 255}
    assert torch.isnan(a["soft"]).all()  # no teacher
    # the same items through a DataLoader with 2 worker processes
    from torch.utils.data import DataLoader

    keys = [(0, i) for i in range(8)]
    batch = next(iter(DataLoader(ds, batch_size=8, sampler=keys, num_workers=2)))
    for j, k in enumerate(keys):
        assert torch.equal(batch["image"][j], ds[k]["image"])


def test_unlabeled_frames_get_teacher_targets(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from tests.tinymodel import make_model

    root = write_folder(tmp_path / "u", 2, masks=False)
    with pytest.raises(BadInput, match="teacher"):
        PortraitDataset([str(root)], (64, 48))
    teacher = make_model(tmp_path / "t.onnx", size_wh=(32, 16))
    ds = PortraitDataset([str(root)], (64, 48), {}, teacher=str(teacher))
    item = ds[0]
    assert (item["label"] == 255).all()  # nothing labeled: only the teacher supervises
    soft = item["soft"].numpy()
    assert soft.shape == (48, 64) and np.isfinite(soft).all() and 0 <= soft.min() <= soft.max() <= 1


def test_val_dataset_resizes_to_the_training_size(tmp_path):
    pytest.importorskip("torch")
    root = write_folder(tmp_path / "v", 2, size=(100, 150))  # portrait images
    for resize in ("stretch", "pad"):
        v = ValDataset(str(root), (64, 36), resize)
        img, lab, _ = v.sample(0)
        assert img.shape == (36, 64, 3) and lab.shape == (36, 64)
        if resize == "pad":  # the engine's letterbox: grey bars, ignored by the metrics
            assert (lab[:, 0] == 255).all() and (lab[:, 32] != 255).all()
            assert (img[:, 0] == PAD_VALUE).all()
    # aspect: each image at its own fit_size (a portrait input for a portrait image), label ignored only
    # in the few pixels of rounding bars
    from vbg_app.engines.fit import fit_size
    img, lab, _ = ValDataset(str(root), (192, 108), "aspect").sample(0)
    w, h = fit_size((100, 150), (192, 108), "aspect")
    assert img.shape == (h, w, 3) and h > w and (lab != 255).mean() > 0.9
    with pytest.raises(BadInput, match="no masks"):
        ValDataset(str(write_folder(tmp_path / "nv", 1, masks=False)), (64, 36))


@pytest.mark.shared
def test_data_pipeline_throughput_on_shared_portraits():
    """Prints the pipeline's samples/s on one core at 256x144; training consumes ~15 img/s on 2 cores."""
    pytest.importorskip("torch")
    ccp = SHARED / "data" / "portraits" / "ccp" / "train"
    if not ccp.is_dir():
        pytest.skip("../shared is absent")
    import torch

    from vbg_app.train.data.datasets import benchmark

    threads = torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        ds = PortraitDataset([str(ccp), str(SHARED / "data" / "portraits" / "humanseg290" / "train")], (256, 144),
                             {"p_occluder": 0.2})
        t0 = time.process_time()
        rate = benchmark(ds, 60)
        cpu_rate = 61 / (time.process_time() - t0)
    finally:
        cv2.setNumThreads(0)
        torch.set_num_threads(threads)
    print(f"\ndata pipeline: {rate:.1f} samples/s wall, {cpu_rate:.1f} samples/s per CPU-second, 1 core, 256x144")
    assert cpu_rate > 30  # at least 2x what training consumes, measured in CPU time (robust to a busy box)
