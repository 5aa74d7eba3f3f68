"""The exact-ground-truth video builder (vbg_app.tools.gt_video) and `vbg eval --gt-video` on a tiny synthetic val
folder and a tiny ONNX model (no ../shared)."""
import json

import cv2
import numpy as np
import pytest

from tests.gtsynth import make_val
from tests.tinymodel import make_model
from vbg_app.tools import gt_video
from vbg_app.tools.evaluate import main as eval_main
from vbg_app.tools.gt_clips import open_gt_videos
from vbg_app.tools.gt_video import build

SIZE = (160, 90)
FRAMES = 30


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gt")
    val = make_val(root / "syn" / "val")
    manifest = build(root / "clips", [val], clips=1, frames=FRAMES, size_wh=SIZE, seed=3, progress=False)
    return root, val, manifest


def test_clip_files_and_frames(built):
    root, _, manifest = built
    (clip,) = open_gt_videos(root / "clips")
    assert manifest["schema"] == "vbg.gt_videos/1" and manifest["seed"] == 3 and manifest["clips"][0]["name"] == "clip_00"
    assert clip.n_frames == FRAMES and clip.size_wh == SIZE and clip.meta["codec"].endswith("(lossless)")
    frames = list(clip.frames())  # each one checked against the md5 of what was rendered: the codec is lossless
    assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3)
    cap = cv2.VideoCapture(str(clip.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    cap.release()
    assert len(list((clip.path / "masks").glob("*.png"))) == FRAMES == len(list((clip.path / "alpha").glob("*.png")))
    for k in (0, 10, FRAMES - 1):
        raw = cv2.imread(str(clip.path / "masks" / f"{k:06d}.png"), cv2.IMREAD_GRAYSCALE)
        assert set(np.unique(raw)) <= {0, 255}
        assert np.array_equal(raw > 127, clip.alpha(k) >= 0.5)  # the GT mask is alpha >= 0.5
    assert clip.plate().shape == frames[0].shape
    # the person is the room's foreground: outside the person (alpha 0) the frame is the plate plus noise
    a0 = clip.alpha(0)
    diff = np.abs(frames[0].astype(int) - clip.plate().astype(int))[a0 == 0]
    assert diff.mean() < 4 and diff.max() <= 16


def _affine_ious(clip):
    meta = clip.meta["person"]
    src = cv2.imread(meta["mask"], cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    if meta["prescale"] != 1:
        src = cv2.resize(src, None, fx=meta["prescale"], fy=meta["prescale"], interpolation=cv2.INTER_AREA)
    for k, a in enumerate(clip.affines):
        warped = cv2.warpAffine(src, a, SIZE, flags=cv2.INTER_LINEAR) >= 0.5
        gt = clip.mask(k)
        yield k, (warped & gt).sum() / (warped | gt).sum()


def test_affine_maps_the_source_mask_onto_every_frame_mask(built, tmp_path):
    root, val, _ = built
    (blurred,) = open_gt_videos(root / "clips")
    # motion blur averages the shutter's poses: the mid pose's mask is still within a pixel or two of the GT
    # (this tiny clip's lean moves ~27 px per frame of a 160-px frame, far more than a real clip's)
    for k, iou in _affine_ious(blurred):
        assert iou >= (0.99 if blurred.meta["frames"][k]["blur_samples"] == 1 else 0.97), (k, iou)
    build(tmp_path / "sharp", [val], clips=1, frames=FRAMES, size_wh=SIZE, seed=3, progress=False, shutter=0)
    (sharp,) = open_gt_videos(tmp_path / "sharp")
    assert all(f["blur_samples"] == 1 for f in sharp.meta["frames"])
    for k, iou in _affine_ious(sharp):
        assert iou >= 0.99, (k, iou)


def test_motion_phases_fast_lean_and_partial_exit(built):
    root, _, _ = built
    (clip,) = open_gt_videos(root / "clips")
    frames = clip.meta["frames"]
    phases = [f["phase"] for f in frames]
    assert phases[0] == "sway" and phases[-1] == "exit" and {"lean", "zoom"} <= set(phases)
    fast = [f for f in frames if f["fast"]]
    assert len(fast) >= 2 and all(f["phase"] == "lean" and f["speed_px"] > 0.5 for f in fast)
    assert clip.fast.sum() == len(fast) == json.loads((root / "clips" / "manifest.json").read_text())["clips"][0]["n_fast"]
    lean_speed = max(f["speed_px"] for f in fast)
    sway_speed = max(f["speed_px"] for f in frames if f["phase"] == "sway")
    assert lean_speed > 2 * sway_speed
    # the torso is cut by the bottom edge in every frame; in the exit the person leaves at a side
    assert all(clip.mask(k)[-1].any() for k in range(FRAMES))
    exits = [k for k, f in enumerate(frames) if f["phase"] == "exit"]
    assert any(clip.mask(k)[:, 0].any() or clip.mask(k)[:, -1].any() for k in exits)
    assert any(f["touches_border"][0] or f["touches_border"][1] for f in frames)
    # the zoom makes the person larger than at rest
    scale = np.sqrt(np.abs(np.linalg.det(clip.affines[:, :, :2])))
    zoom = [k for k, f in enumerate(frames) if f["phase"] == "zoom"]
    assert scale[zoom].max() > 1.14 * scale[0] and clip.mask(zoom[len(zoom) // 2]).sum() > clip.mask(0).sum()


def test_deterministic_given_the_seed(built, tmp_path):
    root, val, _ = built
    build(tmp_path / "again", [val], clips=1, frames=FRAMES, size_wh=SIZE, seed=3, progress=False)
    build(tmp_path / "other", [val], clips=1, frames=FRAMES, size_wh=SIZE, seed=4, progress=False)
    md5 = lambda d: [f["md5"] for f in json.loads((d / "clip_00" / "clip.json").read_text())["frames"]]
    assert md5(tmp_path / "again") == md5(root / "clips")
    assert md5(tmp_path / "other") != md5(root / "clips")


def test_command_line_and_bad_input(built, tmp_path, capsys):
    _, val, _ = built
    out = tmp_path / "cli"
    rc = gt_video.main(["--out", str(out), "--data", str(val), "--clips", "1", "--frames", "20", "--size", "96x54",
                        "--noise", "0"])
    assert rc == 0, capsys.readouterr().err
    assert "clip_00: 20 frames" in capsys.readouterr().out
    (clip,) = open_gt_videos(out / "clip_00")  # one clip folder works too
    assert clip.size_wh == (96, 54) and clip.meta["render"]["noise_sigma"] == 0
    for argv, needle in ((["--out", str(out), "--data", str(val)], "already holds"),
                         (["--out", str(tmp_path / "x"), "--data", str(val), "--frames", "5"], "--frames"),
                         (["--out", str(tmp_path / "z"), "--data", str(val), "--clips", "3"], "no usable person"),
                         (["--out", str(tmp_path / "y"), "--data", str(tmp_path / "nope")], "not found")):
        rc = gt_video.main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and "Traceback" not in err


def test_eval_gt_video_raw_and_pipeline_modes(built, tmp_path, capsys):
    root, _, _ = built
    model = make_model(tmp_path / "tiny.onnx", size_wh=(32, 16))  # red = person: the synthetic person is red
    js = tmp_path / "r.json"
    rc = eval_main(["--gt-video", str(root / "clips"), "--model", str(model), "--threads", "1",
                    "--pipeline", "none,ema,flow", "--gt-background", "plate", "--json", str(js)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "mc flicker %" in out and "far-blob %" in out and "comp. edge" in out
    res = json.loads(js.read_text())
    (clip,) = res["gt_videos"]
    assert clip["n_frames"] == FRAMES and clip["n_fast"] >= 2 and clip["gt_mc_flicker"] < 1e-3
    (raw,) = res["gt_video"]
    assert raw["model"] == "tiny" and raw["n_frames"] == FRAMES
    for key in ("person_iou", "iou_fast", "iou_fast_prev_gt", "mc_flicker", "far_blob_flicker", "flicker"):
        assert raw[key] is not None and np.isfinite(raw[key]), key
    assert raw["person_iou"] > 0.8 and 0 <= raw["mc_flicker"] < 0.05
    assert [r["smoothing"] for r in res["pipeline"]] == ["none", "ema", "flow"]
    assert res["pipeline_settings"]["background"] == "plate" and res["pipeline_settings"]["refine"] is True
    for r in res["pipeline"]:
        for key in ("person_iou", "iou_fast", "mc_flicker", "far_blob_flicker", "composite_band", "composite_rest"):
            assert r[key] is not None and np.isfinite(r[key]), (r["smoothing"], key)
        assert r["person_iou"] > 0.7 and r["n_frames"] == FRAMES and r["ambiguous_px"] < 0.01 * FRAMES * SIZE[0] * SIZE[1]
        assert r["composite_band"] > r["composite_rest"] >= 0
    # the unfiltered pipeline's mask is the raw model's, refined: close to the raw model's IoU
    none = res["pipeline"][0]
    assert abs(none["person_iou"] - raw["person_iou"]) < 0.08


@pytest.mark.parametrize("argv,needle", [
    (["--pipeline", "none"], "need --gt-video"),
    (["--gt-video", "{clips}", "--pipeline", "none,blur"], "unknown filters blur"),
    (["--gt-video", "{missing}"], "not found"),
    (["--gt-video", "{clips}", "--pipeline", "none", "--gt-background", "blur"], "--gt-background"),
])
def test_eval_gt_video_bad_input(built, tmp_path, capsys, argv, needle):
    root, _, _ = built
    model = make_model(tmp_path / "tiny.onnx", size_wh=(32, 16))
    argv = [a.format(clips=root / "clips", missing=tmp_path / "nope") for a in argv]
    rc = eval_main(argv + ["--model", str(model)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err, err


SHARED_VAL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "portraits"


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED_VAL / "ccp" / "val").is_dir(), reason="../shared data absent")
def test_real_val_photos_make_a_webcam_clip(tmp_path):
    build(tmp_path / "real", [SHARED_VAL / "ccp" / "val", SHARED_VAL / "humanseg290" / "val"], clips=2, frames=20,
          seed=0, progress=False)
    for clip in open_gt_videos(tmp_path / "real"):
        assert clip.size_wh == (640, 360) and len(list(clip.frames())) == 20
        assert clip.meta["person"]["dataset"] in ("ccp/val", "humanseg290/val")
        masks = [clip.mask(k) for k in range(20)]
        assert all(m[-1].any() and not m[0].any() for m in masks)  # torso cut by the bottom edge, head inside
        assert 0.05 < np.mean([m.mean() for m in masks]) < 0.6
        assert clip.fast.sum() >= 1
