"""Measure person IoU, mIoU, Semantic Connectivity and flicker of several models side by side.

Example::

    vbg eval --data ../shared/data/portraits/ccp/val --data ../shared/data/portraits/humanseg290/val \\
             --video ../shared/data/videos/talking_head_1.mp4 \\
             --model models/connectnet.onnx --model other.onnx --engine mediapipe --json eval.json

Inputs
------
``--data DIR`` (repeatable): ``DIR/images/*.jpg|*.jpeg|*.png`` and ``DIR/masks/<same stem>.png``
(255 = person, 128 = ignore, 0 = background). ``--video PATH`` (repeatable): clips without labels, for
flicker. ``--gt-video DIR`` (repeatable): exact-ground-truth meeting videos made by ``python -m
vbg_app.tools.gt_video`` (a folder with manifest.json, or one clip_NN folder); see docs/gt_videos.md. ``--model PATH`` (repeatable): ONNX models carrying the ``vbg.*`` metadata, run by the connectnet
engine; ``--engine mediapipe`` adds MediaPipe's selfie model. Without ``--model`` and ``--engine`` the shipped
``models/connectnet.onnx`` is evaluated.

Method
------
Every image is read once and given to every model. The model's probability map (model resolution) is resized
bilinearly to the mask's size and thresholded at 0.5 (``prob > 0.5``); IoU, mIoU and SC are those of
:mod:`vbg_app.tools.metrics` (dataset IoU = Σ∩/Σ∪ over all pixels of the folder; SC = mean of per-image SC).
Flicker = mean fraction of pixels that flip between consecutive frames of the raw model output at model
resolution, thresholded at 0.5 (no temporal filter).

Agreement with the teachers (``--teacher-labels DIR``, a ``vbg label`` output made with ``--video`` for the
same clips, any ``--every``): on every ``--video`` frame that has labels (``DIR/labels/fused/<clip stem>/<frame
index, 5 digits>.png``), the model's mask (probability resized bilinearly to the frame, > 0.5) is compared with
the teacher fusion (> 0.5): ``teacher_iou`` = pooled person IoU against the fusion; ``contradiction`` = of the
pixels where every teacher of the manifest says person, or every one says background (each > 0.5, or each
< 0.5), the share where the model says the opposite, as a fraction of the unanimous person pixels (issue
#14's "contradicts them on about 1.6 % of the person area").

GT videos, raw model: each frame's probability is resized bilinearly to the frame (640x360 for the
builder's default) and thresholded at 0.5, then scored by :class:`vbg_app.tools.metrics.GTVideoAccumulator`: pooled
person IoU, IoU over the frames flagged ``fast`` (the lean), motion-compensated flicker, far-blob flicker
and raw flicker (all at frame resolution, fractions of the frame's pixels per frame pair), per clip and
pooled over all clips. The GT masks themselves are scored too (``gt_videos[].gt_mc_flicker``): the floor the
metric gives the exact answer (0 but for resampling of the blurred fast frames).

GT videos, pipeline mode (``--pipeline none,ema,flow``, ``--no-refine``): for each model and smoothing the
real ``vbg run`` path is built by :func:`vbg_app.pipeline.build_pipeline` from a
:class:`~vbg_app.config.PipelineConfig` (source ``video:CLIP`` with ``realtime=False``, the model's engine,
``--provider``/``--threads``, defaults otherwise: clean-up on, no mirror), its sink swapped for one that keeps
the last frame, and stepped one frame at a time (``Pipeline.step``: the same stages as ``run()``'s two
threads, in one). Twice per clip: over ``color:#00FF00``, whose output gives the pipeline's alpha per pixel
(least squares of ``out = a * frame + (1 - a) * green`` over the channels, :func:`vbg_app.tools.metrics.alpha_from_key`;
mask = alpha > 0.5), scored like the raw model; and over ``--gt-background`` (default: the shipped
``living_room.jpg``; ``plate`` = the clip's own clean plate), compared with the ideal composite
``alpha_gt * frame + (1 - alpha_gt) * background`` (the builder's soft alpha, the background fitted as
compose.py fits it) in the 10-px band round the true edge and elsewhere (mean abs error, 0..255 levels).
Alignment: after each step the frame the pipeline composited (``last_input``) must equal the clip's frame
of that index, and the sink must have received exactly one frame per step, or the run stops with an error;
``iou_fast_prev_gt`` (fast frames scored against the previous frame's GT) shows a mask that lags. ``ms`` = median wall time of one ``segment()`` call
(resize + normalise + inference), over all calls of that model (and per input in the JSON).

JSON (``--json PATH``), schema version 1; NaN is written as null::

    {
      "schema": "vbg.eval/1",
      "threshold": 0.5,
      "limit": null | N,
      "models":   [{"label", "engine", "path", "name", "provider", "input_size_wh": [W, H],
                    "median_ms", "n_inferences"}],        # mediapipe: input of the last frame (long side 256,
                                                          # the frame's aspect kept)
      "datasets": [{"label", "path", "n_images"}],
      "videos":   [{"label", "path", "n_frames"}],
      "images": [{"model", "data", "n_images", "person_iou", "miou", "sc",
                  "person_iou_per_image", "miou_per_image", "median_ms"}],     # one per model x dataset
      "flicker": [{"model", "video", "n_frames", "flicker", "median_ms"}],       # one per model x video
      # with --teacher-labels (one per model x video, + "all" pooled):
      "teacher_agreement": [{"model", "video", "n_frames", "teacher_iou", "contradiction"}],
      # with --gt-video (fractions of the frame's pixels; "gt_video" is a clip label or "all" = pooled):
      "gt_videos": [{"label", "path", "n_frames", "n_fast", "size_wh", "gt_mc_flicker", "gt_far_blob_flicker"}],
      "gt_video": [{"model", "gt_video", "n_frames", "n_fast", "person_iou", "iou_fast", "iou_fast_prev_gt",
                    "mc_flicker", "far_blob_flicker", "flicker", "median_ms"}],   # one per model x clip (+ all)
      # with --pipeline:
      "pipeline_settings": {"smoothing": [...], "refine", "key_background", "background"},
      "pipeline": [{"model", "gt_video", "smoothing", "refine", <the gt_video measures>, "composite_band",
                    "composite_rest", "ambiguous_px"}]       # one per model x smoothing x clip (+ all)
    }

``model`` / ``data`` / ``video`` fields refer to the ``label`` of the entries above.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, run_command
from vbg_app.imagefile import IMAGE_EXTS
from vbg_app.specs import ENGINES
from vbg_app.tools.eval_gt import (KEY_BACKGROUND, _eval_gt_videos, _eval_pipeline, _gt_background, _median_ms,
                                   _parse_smoothing_list)
from vbg_app.tools.eval_report import format_table
from vbg_app.tools.metrics import THRESHOLD, FlickerAccumulator, SegAccumulator

MASK_HINT = "masks/<stem>.png with 255 = person, 128 = ignore, 0 = background"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="labelled folder with images/ and masks/ (repeatable)")
    parser.add_argument("--video", action="append", default=[], metavar="PATH",
                        help="video clip for the flicker measure (repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="ONNX model with vbg.* metadata (repeatable; default: models/connectnet.onnx "
                             "unless --engine is given)")
    parser.add_argument("--engine", action="append", default=[], choices=ENGINES.names,
                        help="add a built-in engine: mediapipe (selfie model) or connectnet (shipped model)")
    parser.add_argument("--provider", default="auto",
                        help="onnxruntime provider for ONNX models: auto | cpu | cuda | ... (default: auto)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads, 0 = all cores")
    parser.add_argument("--gt-video", action="append", default=[], metavar="DIR",
                        help="exact-ground-truth videos made by `python -m vbg_app.tools.gt_video` (repeatable)")
    parser.add_argument("--pipeline", metavar="SMOOTHING[,...]",
                        help="also run the whole vbg run pipeline on the --gt-video clips with these temporal "
                             "filters, e.g. none,ema,flow")
    parser.add_argument("--no-refine", action="store_true", help="pipeline mode: without the edge refinement")
    parser.add_argument("--battery-saver", action="store_true",
                        help="pipeline mode: with vbg run's --battery-saver (the last mask reused while nothing moves)")
    parser.add_argument("--gt-background", metavar="SPEC",
                        help="pipeline mode: background for the composite error, image:PATH or plate (the clip's "
                             "own clean plate); default: the shipped living_room.jpg")
    parser.add_argument("--teacher-labels", metavar="DIR",
                        help="a vbg label output for the --video clips: also score agreement with the teacher "
                             "fusion on their labelled frames (teacher IoU, contradiction of unanimous teachers)")
    parser.add_argument("--demo", type=int, default=0, metavar="N",
                        help="also score the demo portrait against its hand-checked mask (assets/demo): the "
                             "photo itself and N demo frames (person IoU, share of the flag called person)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use only the first N images of each folder and N frames of each video and GT clip")
    parser.add_argument("--json", metavar="PATH", help="write all results to this JSON file")


# -- inputs -----------------------------------------------------------------------------------------------
@dataclass
class Dataset:
    label: str
    path: Path
    pairs: list[tuple[Path, Path]]


@dataclass
class Video:
    label: str
    path: Path
    n_frames_hint: int


@dataclass
class Model:
    label: str
    engine: str
    path: str
    seg: object
    times: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1e3 if self.times else math.nan

    def segment(self, frame: np.ndarray, times: list[float]) -> np.ndarray:
        t0 = time.perf_counter()
        prob = self.seg.segment(frame)
        dt = time.perf_counter() - t0
        self.times.append(dt)
        times.append(dt)
        return prob


def _short(path: Path, taken: set[str]) -> str:
    parts = path.resolve().parts
    label = "/".join(parts[-2:]) if len(parts) >= 2 else path.name
    if path.suffix:  # a file: its name is enough
        label = path.name
    base, n = label, 2
    while label in taken:
        label, n = f"{base}#{n}", n + 1
    taken.add(label)
    return label


def find_pairs(folder: Path, limit: int | None = None) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of a labelled folder, sorted by name; raises BadInput when unusable."""
    if not folder.exists():
        raise BadInput(f"data folder {folder} not found", "check the --data path")
    if not folder.is_dir():
        raise BadInput(f"--data {folder} is a file, not a folder",
                       "give a folder that holds images/ and masks/")
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir():
        raise BadInput(f"data folder {folder} has no images/ subfolder",
                       f"put the photos in {images_dir} and the masks in {masks_dir}")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not images:
        raise BadInput(f"{images_dir} holds no .jpg/.jpeg/.png images", "add images or fix the --data path")
    if limit:
        images = images[:limit]
    pairs = []
    for img in images:
        mask = masks_dir / (img.stem + ".png")
        if not mask.is_file():
            raise BadInput(f"image {img} has no mask {mask}", f"add {MASK_HINT}, or remove the image")
        pairs.append((img, mask))
    return pairs


def _read_pair(img_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInput(f"cannot read image {img_path}", "replace or remove the file")
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise BadInput(f"cannot read mask {mask_path}", f"replace it with {MASK_HINT}")
    (ih, iw), (mh, mw) = img.shape[:2], mask.shape
    if abs(iw / ih - mw / mh) > 0.02 * (iw / ih):
        raise BadInput(f"mask {mask_path} is {mw}x{mh} but its image is {iw}x{ih} (different aspect ratio)",
                       "resize the mask to its image, or check that they belong together")
    return img, mask


def _open_video(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise BadInput(f"video {path} not found", "check the --video path")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise BadInput(f"cannot open video {path}", "use a video file OpenCV can decode (mp4/H.264, avi, mkv)")
    return cap


def _check_video(path: Path) -> int:
    cap = _open_video(path)
    try:
        ok, _ = cap.read()
        if not ok:
            raise BadInput(f"video {path} has no readable frame", "use another clip or re-encode it (H.264 mp4)")
        return max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
    finally:
        cap.release()


def _load_models(args) -> list[Model]:
    from vbg_app.engines import ENGINE_TITLES, create_segmenter

    wanted = [("connectnet", m) for m in args.model] + [(e, None) for e in args.engine]
    if not wanted:
        wanted = [("connectnet", None)]
    models: list[Model] = []
    taken: set[str] = set()
    try:
        for engine, path in wanted:
            if engine == "connectnet":
                if path is not None and not Path(path).is_file():
                    raise BadInput(f"model file {path} not found", "check the --model path")
                seg = create_segmenter("connectnet", model=path, provider=args.provider, threads=args.threads)
                meta = getattr(seg, "meta", None)
                label = (getattr(meta, "name", "") or Path(str(seg.path)).stem)
                shown_path = str(seg.path)
            else:
                seg = create_segmenter("mediapipe")
                label, shown_path = ENGINE_TITLES["mediapipe"], str(getattr(seg, "path", ""))
            if label in taken:  # two models with the same vbg.name: tell them apart by file name
                label = f"{label} [{Path(shown_path).name}]"
            base, n = label, 2
            while label in taken:
                label, n = f"{base}#{n}", n + 1
            taken.add(label)
            models.append(Model(label=label, engine=engine, path=shown_path, seg=seg))
    except BaseException:
        for m in models:
            m.seg.close()
        raise
    return models


def video_frames(path: Path, limit: int | None = None):
    """The frames of a video file in order (at most ``limit``); BadInput when it cannot be opened."""
    cap = _open_video(path)
    try:
        n = 0
        while limit is None or n < limit:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
    finally:
        cap.release()


# -- agreement with cached teacher labels ---------------------------------------------------------------------
class TeacherLabels:
    """A ``vbg label`` output folder: the fusion and each teacher's label of a video frame, when labelled."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        mpath = self.root / "manifest.json"
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
            self.teachers = [t["name"] for t in manifest["teachers"]]
        except (OSError, ValueError, KeyError, TypeError):
            raise BadInput(f"{self.root} is not a vbg label output (no readable manifest.json with teachers)",
                           "pass the --out folder of a vbg label run over these --video clips") from None

    def frames(self, video: Path) -> list[Path]:
        d = self.root / "labels" / "fused" / Path(video).stem
        return sorted(d.glob("*.png")) if d.is_dir() else []

    def read(self, video: Path, index: int, shape):
        """``(fusion > 0.5, unanimous person, unanimous background)`` bool masks of frame ``index``, or None
        when that frame is not labelled."""
        key = f"{Path(video).stem}/{index:05d}.png"
        fpath = self.root / "labels" / "fused" / key
        if not fpath.is_file():
            return None
        fused = cv2.imread(str(fpath), cv2.IMREAD_GRAYSCALE)
        if fused is None:
            raise BadInput(f"teacher label {fpath} cannot be read", "re-run vbg label over these clips")
        h, w = shape[:2]
        if fused.shape != (h, w):
            raise BadInput(f"teacher label {key} is {fused.shape[1]}x{fused.shape[0]}, the frame {w}x{h}",
                           "label these very clips with vbg label --video")
        every = []
        for name in self.teachers:
            t = cv2.imread(str(self.root / "labels" / name / key), cv2.IMREAD_GRAYSCALE)
            if t is None or t.shape != (h, w):
                raise BadInput(f"teacher {name}'s label of {key} is missing or of another size",
                               "re-run vbg label over these clips (it resumes)")
            every.append(t >= 128)  # PNG = round(p x 255): p > 0.5 <=> value >= 128
        stack = np.stack(every)
        return fused >= 128, stack.all(0), ~stack.any(0)


def _teacher_labels(path: str, videos) -> TeacherLabels:
    tl = TeacherLabels(Path(path))
    if not videos:
        raise BadInput("--teacher-labels scores the --video clips, and none is given", "add --video PATH")
    for v in videos:
        if not tl.frames(v.path):
            raise BadInput(f"{tl.root} has no labels for {v.path.name} (labels/fused/{v.path.stem}/)",
                           f"run vbg label --video {v.path} --out {tl.root} with the same teachers")
    return tl


class TeacherAgreement:
    """Pooled IoU against the teacher fusion and the share of unanimous-teacher pixels the model contradicts."""

    def __init__(self) -> None:
        self.inter = self.union = self.contra = self.unan_person = 0
        self.n = 0

    def update(self, pred: np.ndarray, fused: np.ndarray, all_person: np.ndarray, all_background: np.ndarray):
        pred = np.asarray(pred, bool)
        self.inter += int((pred & fused).sum())
        self.union += int((pred | fused).sum())
        self.contra += int((all_person & ~pred).sum() + (all_background & pred).sum())
        self.unan_person += int(all_person.sum())
        self.n += 1

    def result(self) -> dict:
        return {"n_frames": self.n, "teacher_iou": self.inter / self.union if self.union else math.nan,
                "contradiction": self.contra / self.unan_person if self.unan_person else math.nan}


# -- run ----------------------------------------------------------------------------------------------------
def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def _eval_demo(models: list[Model], n: int, bar) -> list[dict]:
    """Each model on the demo photo and on demo frames 0..n-1 against the portrait's mask (vbg_app/tools/demo_gt.py)."""
    from vbg_app import resources
    from vbg_app.tools import demo_gt
    from vbg_app.sources import DEMO_PORTRAIT, read_image

    person, flag = demo_gt.load()
    photo = read_image(resources.asset_path("demo", DEMO_PORTRAIT), "demo portrait")
    frames = {m.label: [] for m in models}
    times = {m.label: [] for m in models}
    still = {m.label: demo_gt.pooled([demo_gt.score(m.segment(photo, times[m.label]), person, flag)])
             for m in models}
    for frame, p, f in demo_gt.demo_frames(n):
        for m in models:
            frames[m.label].append(demo_gt.score(m.segment(frame, times[m.label]), p, f))
        bar.update(1)
    return [{"model": m.label, "photo_iou": still[m.label]["person_iou"],
             "photo_flag_as_person": still[m.label]["flag_as_person"], "n_frames": n,
             **{f"demo_{k}": v for k, v in demo_gt.pooled(frames[m.label]).items()}} for m in models]


def run(args) -> int:
    limit = args.limit
    if limit is not None and limit < 1:
        raise BadInput(f"--limit {limit} must be at least 1", "give a positive number of images/frames")
    if args.threads < 0:
        raise BadInput(f"--threads {args.threads} is negative", "use 0 (all cores) or a positive number")
    if (args.pipeline is not None or args.no_refine or args.gt_background) and not args.gt_video:
        raise BadInput("--pipeline, --no-refine and --gt-background need --gt-video",
                       "give --gt-video DIR (made by python -m vbg_app.tools.gt_video)")
    if args.demo < 0:
        raise BadInput(f"--demo {args.demo} is negative", "give the number of demo frames to score, e.g. 30")
    if not args.data and not args.video and not args.gt_video and not args.demo:
        raise BadInput("nothing to evaluate",
                       "give --data DIR (images/ + masks/), --video PATH, --gt-video DIR and/or --demo N")
    smoothings = _parse_smoothing_list(args.pipeline)
    background = _gt_background(args.gt_background) if smoothings else None
    json_path = Path(args.json) if args.json else None
    if json_path is not None and not json_path.parent.is_dir():
        raise BadInput(f"folder {json_path.parent} for --json does not exist", "create it or choose another path")

    # check every input before loading models and starting a long run
    taken: set[str] = set()
    datasets = [Dataset(_short(Path(d), taken), Path(d), find_pairs(Path(d), limit)) for d in args.data]
    videos = []
    for v in args.video:
        hint = _check_video(Path(v))
        videos.append(Video(_short(Path(v), taken), Path(v), min(hint, limit) if limit else hint))
    from vbg_app.tools.gt_clips import open_gt_videos

    clips = [c for g in args.gt_video for c in open_gt_videos(g)]
    for c in clips:
        c.label = _short(c.path, taken)
    n_clip_frames = [min(c.n_frames, limit) if limit else c.n_frames for c in clips]
    teacher_labels = _teacher_labels(args.teacher_labels, videos) if args.teacher_labels else None
    models = _load_models(args)

    from tqdm import tqdm

    total = (sum(len(d.pairs) for d in datasets) + sum(v.n_frames_hint for v in videos)
             + sum(n_clip_frames) * (1 + 2 * len(models) * len(smoothings)) + args.demo)
    image_rows, flicker_rows, gt_inputs, gt_rows, pipe_rows, agree_rows = [], [], [], [], [], []
    try:
        with tqdm(total=total, desc="vbg eval", unit="img", file=sys.stderr, disable=None, leave=False) as bar:
            for ds in datasets:
                accs = {m.label: SegAccumulator() for m in models}
                times = {m.label: [] for m in models}
                for img_path, mask_path in ds.pairs:
                    img, mask = _read_pair(img_path, mask_path)
                    mh, mw = mask.shape
                    for m in models:
                        prob = m.segment(img, times[m.label])
                        full = cv2.resize(prob, (mw, mh), interpolation=cv2.INTER_LINEAR)
                        accs[m.label].update(full > THRESHOLD, mask)
                    bar.update(1)
                for m in models:
                    r = accs[m.label].result()
                    image_rows.append({"model": m.label, "data": ds.label, **r,
                                       "median_ms": _median_ms(times[m.label])})
            agree_all = {m.label: TeacherAgreement() for m in models}
            for vid in videos:
                accs = {m.label: FlickerAccumulator() for m in models}
                agree = {m.label: TeacherAgreement() for m in models}
                times = {m.label: [] for m in models}
                n = 0
                for frame in video_frames(vid.path, limit):
                    labels = teacher_labels.read(vid.path, n, frame.shape) if teacher_labels else None
                    for m in models:
                        prob = m.segment(frame, times[m.label])
                        accs[m.label].update(prob > THRESHOLD)
                        if labels is not None:
                            full = cv2.resize(prob, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
                            agree[m.label].update(full > THRESHOLD, *labels)
                            agree_all[m.label].update(full > THRESHOLD, *labels)
                    n += 1
                    bar.update(1)
                vid.n_frames_hint = n
                for m in models:
                    flicker_rows.append({"model": m.label, "video": vid.label, "n_frames": n,
                                         "flicker": accs[m.label].value, "median_ms": _median_ms(times[m.label])})
                    if teacher_labels:
                        agree_rows.append({"model": m.label, "video": vid.label, **agree[m.label].result()})
            if teacher_labels and len(videos) > 1:
                agree_rows += [{"model": m.label, "video": "all", **agree_all[m.label].result()} for m in models]
            if clips:
                gt_rows, gt_inputs = _eval_gt_videos(models, clips, limit, bar)
            demo_rows = _eval_demo(models, args.demo, bar) if args.demo else []
            for m in models:
                for smoothing in smoothings:
                    pipe_rows += _eval_pipeline(m, smoothing, not args.no_refine, background, clips, args, limit, bar)
    finally:
        for m in models:
            m.seg.close()

    result = {
        "schema": "vbg.eval/1",
        "threshold": THRESHOLD,
        "limit": limit,
        "models": [{"label": m.label, "engine": m.engine, "path": m.path,
                    "name": getattr(getattr(m.seg, "meta", None), "name", m.label),
                    "provider": getattr(m.seg, "provider", ""), "input_size_wh": list(m.seg.input_size_wh),
                    "median_ms": m.median_ms, "n_inferences": len(m.times)} for m in models],
        "datasets": [{"label": d.label, "path": str(d.path), "n_images": len(d.pairs)} for d in datasets],
        "videos": [{"label": v.label, "path": str(v.path), "n_frames": v.n_frames_hint} for v in videos],
        "images": image_rows,
        "flicker": flicker_rows,
    }
    if teacher_labels:
        result["teacher_labels"] = {"path": str(teacher_labels.root), "teachers": teacher_labels.teachers}
        result["teacher_agreement"] = agree_rows
    if args.demo:
        result["demo"] = demo_rows
    if clips:
        result["gt_videos"] = gt_inputs
        result["gt_video"] = gt_rows
    if smoothings:
        result["pipeline_settings"] = {"smoothing": smoothings, "refine": not args.no_refine,
                                       "battery_saver": bool(getattr(args, "battery_saver", False)),
                                       "key_background": KEY_BACKGROUND, "background": background}
        result["pipeline"] = pipe_rows
    print(format_table(result))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(_nan_to_none(result), indent=2) + "\n")
        except OSError as exc:
            raise BadInput(f"cannot write {json_path} ({exc.strerror})", "choose a writable --json path") from None
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m vbg_app.tools.evaluate``), same behaviour as ``vbg eval``."""
    return run_command("vbg eval", (__doc__ or "").split("\n\n")[0], add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
