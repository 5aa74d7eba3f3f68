"""Measure person IoU, mIoU, Semantic Connectivity and flicker of several models side by side.

Example::

    vbg eval --data ../shared/data/portraits/ccp/val --data ../shared/data/portraits/humanseg290/val \\
             --video ../shared/data/videos/talking_head_1.mp4 \\
             --model models/connectnet.onnx --model other.onnx --engine mediapipe --json eval.json

Inputs
------
``--data DIR`` (repeatable): ``DIR/images/*.jpg|*.jpeg|*.png`` and ``DIR/masks/<same stem>.png``
(255 = person, 128 = ignore, 0 = background). ``--video PATH`` (repeatable): clips without labels, for
flicker. ``--model PATH`` (repeatable): ONNX models carrying the ``vbg.*`` metadata, run by the connectnet
engine; ``--engine mediapipe`` adds MediaPipe's selfie model. Without ``--model`` and ``--engine`` the shipped
``models/connectnet.onnx`` is evaluated.

Method
------
Every image is read once and given to every model. The model's probability map (model resolution) is resized
bilinearly to the mask's size and thresholded at 0.5 (``prob > 0.5``); IoU, mIoU and SC are those of
:mod:`vbg_app.metrics` (dataset IoU = Σ∩/Σ∪ over all pixels of the folder; SC = mean of per-image SC).
Flicker = mean fraction of pixels that flip between consecutive frames of the raw model output at model
resolution, thresholded at 0.5 (no temporal filter). ``ms`` = median wall time of one ``segment()`` call
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
      "flicker": [{"model", "video", "n_frames", "flicker", "median_ms"}]        # one per model x video
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
from vbg_app.metrics import THRESHOLD, FlickerAccumulator, SegAccumulator

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
MASK_HINT = "masks/<stem>.png with 255 = person, 128 = ignore, 0 = background"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="labelled folder with images/ and masks/ (repeatable)")
    parser.add_argument("--video", action="append", default=[], metavar="PATH",
                        help="video clip for the flicker measure (repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="ONNX model with vbg.* metadata (repeatable; default: models/connectnet.onnx "
                             "unless --engine is given)")
    parser.add_argument("--engine", action="append", default=[], choices=("mediapipe", "connectnet"),
                        help="add a built-in engine: mediapipe (selfie model) or connectnet (shipped model)")
    parser.add_argument("--provider", default="auto",
                        help="onnxruntime provider for ONNX models: auto | cpu | cuda | ... (default: auto)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads, 0 = all cores")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="use only the first N images of each folder and N frames of each video")
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
    from vbg_app.engines import create_segmenter

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
                label, shown_path = "MediaPipe selfie", str(getattr(seg, "path", ""))
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


def _frames(path: Path, limit: int | None):
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


# -- run ----------------------------------------------------------------------------------------------------
def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3 if times else math.nan


def run(args) -> int:
    limit = args.limit
    if limit is not None and limit < 1:
        raise BadInput(f"--limit {limit} must be at least 1", "give a positive number of images/frames")
    if args.threads < 0:
        raise BadInput(f"--threads {args.threads} is negative", "use 0 (all cores) or a positive number")
    if not args.data and not args.video:
        raise BadInput("nothing to evaluate", "give --data DIR (images/ + masks/) and/or --video PATH")
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
    models = _load_models(args)

    from tqdm import tqdm

    total = sum(len(d.pairs) for d in datasets) + sum(v.n_frames_hint for v in videos)
    image_rows, flicker_rows = [], []
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
            for vid in videos:
                accs = {m.label: FlickerAccumulator() for m in models}
                times = {m.label: [] for m in models}
                n = 0
                for frame in _frames(vid.path, limit):
                    for m in models:
                        accs[m.label].update(m.segment(frame, times[m.label]) > THRESHOLD)
                    n += 1
                    bar.update(1)
                vid.n_frames_hint = n
                for m in models:
                    flicker_rows.append({"model": m.label, "video": vid.label, "n_frames": n,
                                         "flicker": accs[m.label].value, "median_ms": _median_ms(times[m.label])})
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
    print(format_table(result))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(_nan_to_none(result), indent=2) + "\n")
        except OSError as exc:
            raise BadInput(f"cannot write {json_path} ({exc.strerror})", "choose a writable --json path") from None
    return 0


# -- report ---------------------------------------------------------------------------------------------------
def _fmt(x, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def format_table(result: dict) -> str:
    """The human-readable report of a ``run`` result (the JSON dict)."""
    out = []
    if result["images"]:
        rows = [[r["model"], r["data"], str(r["n_images"]), _fmt(r["person_iou"], ".4f"), _fmt(r["miou"], ".4f"),
                 _fmt(r["sc"], ".4f"), _fmt(r["person_iou_per_image"], ".4f"), _fmt(r["median_ms"], ".1f")]
                for r in result["images"]]  # folders in the order given, models in the order given
        out.append(_table(["model", "data", "images", "IoU", "mIoU", "SC", "IoU/img", "ms"], rows))
    if result["flicker"]:
        rows = [[r["model"], r["video"], str(r["n_frames"]), _fmt(r["flicker"] * 100, ".3f"),
                 _fmt(r["median_ms"], ".1f")]
                for r in result["flicker"]]
        out.append(_table(["model", "video", "frames", "flicker %", "ms"], rows))
    rows = [[m["label"], m["engine"], m["provider"], "x".join(map(str, m["input_size_wh"]))
             if m["engine"] != "mediapipe" else "long side 256",
             str(m["n_inferences"]), _fmt(m["median_ms"], ".1f")] for m in result["models"]]
    out.append(_table(["model", "engine", "provider", "input", "calls", "median ms"], rows))
    out.append("IoU = dataset person IoU (Σ∩/Σ∪), mIoU = mean of person and background IoU, SC = mean per-image "
               "Semantic Connectivity, IoU/img = mean per-image IoU; flicker = % of pixels flipping per frame "
               "(raw output, model resolution); threshold 0.5.")
    return "\n\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m vbg_app.evaluate``), same behaviour as ``vbg eval``."""
    return run_command("vbg eval", (__doc__ or "").split("\n\n")[0], add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
