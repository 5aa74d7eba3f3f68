"""Soft person labels from teacher models, cached on disk for training and evaluation (``vbg label``).

Example (the teacher set of the model card; the released ConnectNet needs vbg metadata first:
``vbg export --from-released pphumanseg_v1_lite_398x224.onnx --fit letterbox --out runs/released_lb.onnx``)::

    vbg label --teacher modnet:../shared/models/teachers/modnet_photographic.onnx \\
              --teacher selfie:../shared/models/reference/mediapipe_selfie_256.onnx \\
              --teacher vbg:runs/released_lb.onnx \\
              --images ../shared/data/portraits/ccp/train --video ../shared/data/videos/talking_head_1.mp4 \\
              --out runs/labels

Teachers (``--teacher KIND:PATH[@WEIGHT]``, repeatable; the weight is its share of the fusion, default 1):

* ``modnet``: MODNet portrait matting. RGB, the long side scaled to 512 (INTER_AREA down, bilinear up), each
  side then rounded down to a multiple of 32, ``(x - 127.5) / 127.5``, NCHW; output ``[N,1,H,W]`` alpha 0..1.
* ``selfie``: MediaPipe selfie segmentation as ONNX (NHWC, fixed square or landscape input): RGB stretched to
  the input size (bilinear), ``x / 255``; output ``[1,H,W,1]`` person probability.
* ``vbg``: any ONNX file with vbg.* metadata, run exactly as the app runs it (``OnnxSegmenter``: its own
  fitting, normalisation and output decoding).

Every teacher's probability is resized bilinearly to the image's size. Outputs, as 8-bit PNG (probability x
255, rounded), under ``OUT/labels/``: ``<teacher>/<item>.png`` per teacher, ``fused/<item>.png`` = the weighted
mean of the teachers, and for image folders with masks ``fused_gt/<item>.png`` = the ground-truth mask
except within ``--gt-band`` pixels of its outline (and on its ignore pixels, 128), where the fusion
decides: the teachers sharpen the coarse edges of hand-made masks without overruling them elsewhere.
``<item>`` is ``<folder name>/<image stem>`` or ``<video stem>/<frame index, 5 digits>``.

``OUT/manifest.json`` records the teachers (kind, file, sha256, weight, preprocessing), the fusion rule and
the inputs. A run is resumable: items whose outputs all exist are skipped, every PNG is written under a
temporary name and renamed, and a folder labelled with other teachers or another fusion is refused.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, run_command
from vbg_app.imagefile import IMAGE_EXTS
from vbg_app.resources import file_digest

SCHEMA = "vbg.labels/1"
PREPROCESSING = {
    "modnet": "RGB; long side 512 (INTER_AREA down, bilinear up); sides rounded down to multiples of 32; "
              "(x - 127.5) / 127.5; NCHW; output [N,1,H,W] alpha",
    "selfie": "RGB stretched to the input size (bilinear); x / 255; NHWC; output [1,H,W,1] probability",
    "vbg": "as the app runs the model (vbg.* metadata: fit, mean/std, layout, output)",
}


# -- teachers --------------------------------------------------------------------------------------------
class Teacher:
    """One teacher model: ``prob(frame_bgr)`` → person probability HxW float32 0..1 at the frame's size."""

    kind = ""

    def __init__(self, path: Path, threads: int = 0, weight: float = 1.0, name: str = "") -> None:
        self.path, self.weight, self.threads = Path(path), float(weight), threads
        self.name = name or self.kind
        if not self.path.is_file():
            raise BadInput(f"teacher model {self.path} not found", "check the --teacher KIND:PATH")
        if not (self.weight > 0 and np.isfinite(self.weight)):
            raise BadInput(f"teacher weight {weight} must be a positive number", "write e.g. modnet:FILE@2")

    def _session(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BadInput(f"teacher {self.path} is not a usable ONNX model ({str(exc)[:160]})",
                           "pass the model file the teacher kind expects") from None

    def prob(self, frame_bgr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "file": self.path.name, "sha256": file_digest(self.path),
                "weight": self.weight, "preprocessing": PREPROCESSING[self.kind]}

    def close(self) -> None:
        pass


def _to_frame_size(prob: np.ndarray, frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    prob = np.clip(np.asarray(prob, np.float32), 0.0, 1.0)
    if prob.shape != (h, w):
        prob = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    return prob


class ModnetTeacher(Teacher):
    kind = "modnet"
    LONG_SIDE = 512

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.session = self._session()
        self.input = self.session.get_inputs()[0].name

    @classmethod
    def input_size(cls, w: int, h: int) -> tuple[int, int]:
        """(width, height) fed to MODNet: long side 512, each side then a multiple of 32 (at least 32)."""
        scale = cls.LONG_SIDE / max(w, h)
        return max(32, int(round(w * scale)) // 32 * 32), max(32, int(round(h * scale)) // 32 * 32)

    def prob(self, frame_bgr: np.ndarray) -> np.ndarray:
        h, w = frame_bgr.shape[:2]
        size = self.input_size(w, h)
        interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
        rgb = cv2.cvtColor(cv2.resize(frame_bgr, size, interpolation=interp), cv2.COLOR_BGR2RGB)
        blob = ((rgb.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self.input: blob})[0]
        return _to_frame_size(out[0, 0], frame_bgr)


class SelfieTeacher(Teacher):
    kind = "selfie"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.session = self._session()
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:3]) or shape[3] != 3:
            raise BadInput(f"teacher {self.path} has input {shape}, not the selfie model's [1,H,W,3]",
                           "use the selfie kind for MediaPipe selfie ONNX files only")
        self.input, self.size_wh = inp.name, (shape[2], shape[1])

    def prob(self, frame_bgr: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(cv2.resize(frame_bgr, self.size_wh, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        out = self.session.run(None, {self.input: (rgb.astype(np.float32) / 255.0)[None]})[0]
        return _to_frame_size(out.reshape(self.size_wh[1], self.size_wh[0]), frame_bgr)


class VbgTeacher(Teacher):
    kind = "vbg"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from vbg_app.engines.onnx_engine import OnnxSegmenter

        self.seg = OnnxSegmenter(self.path, provider="cpu", threads=self.threads)

    def prob(self, frame_bgr: np.ndarray) -> np.ndarray:
        return _to_frame_size(self.seg.segment(frame_bgr), frame_bgr)

    def close(self) -> None:
        self.seg.close()


TEACHERS = {cls.kind: cls for cls in (ModnetTeacher, SelfieTeacher, VbgTeacher)}


def parse_teacher(spec: str) -> tuple[str, Path, float]:
    """``KIND:PATH[@WEIGHT]`` → (kind, path, weight)."""
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in TEACHERS or not rest:
        raise BadInput(f"teacher {spec!r} is not KIND:PATH[@WEIGHT]",
                       f"KIND is one of {', '.join(TEACHERS)}, e.g. modnet:modnet_photographic.onnx@2")
    path, at, weight = rest.rpartition("@") if "@" in rest else (rest, "", "1")
    try:
        w = float(weight)
    except ValueError:
        raise BadInput(f"teacher weight {weight!r} in {spec!r} is not a number", "write e.g. modnet:FILE@2") from None
    return kind, Path(path), w


# -- fusion ----------------------------------------------------------------------------------------------
def fuse(probs: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Weighted mean of the teachers' probabilities."""
    total = float(sum(weights))
    out = np.zeros_like(probs[0], dtype=np.float32)
    for p, w in zip(probs, weights):
        out += p * (w / total)
    return out


def fuse_with_gt(fused: np.ndarray, gt: np.ndarray, band: int) -> np.ndarray:
    """The ground truth (255 = person, 128 = ignore, 0 = background) except within ``band`` px of its
    outline and on ignore pixels, where ``fused`` (probability 0..1) decides."""
    person = (gt > 128).astype(np.uint8)
    out = person.astype(np.float32)
    near = np.zeros(gt.shape, bool)
    if band > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        near = cv2.dilate(person, k) != cv2.erode(person, k)
    near |= gt == 128
    out[near] = fused[near]
    return out


def to_png8(prob: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(prob * 255.0), 0, 255).astype(np.uint8)


# -- inputs ----------------------------------------------------------------------------------------------
@dataclass
class Item:
    key: str                       # "<folder>/<stem>" or "<video stem>/<frame 00000>"
    image: Path | None = None
    mask: Path | None = None
    video: Path | None = None
    frame_index: int = -1


def image_items(folder: Path) -> list[Item]:
    """Images of ``folder`` (or of ``folder/images``, with ``folder/masks/<stem>.png`` when present)."""
    folder = Path(folder)
    img_dir = folder / "images" if (folder / "images").is_dir() else folder
    if not img_dir.is_dir():
        raise BadInput(f"image folder {folder} not found", "pass a folder of images (or with images/ and masks/)")
    mask_dir = folder / "masks"
    items = []
    for p in sorted(img_dir.iterdir()):
        if p.suffix.lower() in IMAGE_EXTS and p.is_file():
            mask = mask_dir / f"{p.stem}.png"
            items.append(Item(f"{folder.name}/{p.stem}", image=p, mask=mask if mask.is_file() else None))
    if not items:
        raise BadInput(f"no images in {img_dir}", f"the folder needs {'/'.join(IMAGE_EXTS)} files")
    return items


def video_items(path: Path, every: int) -> list[Item]:
    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
    cap.release()
    if n <= 0:
        raise BadInput(f"cannot read video {path}", "pass a video file OpenCV can decode (e.g. .mp4, .avi)")
    return [Item(f"{path.stem}/{i:05d}", video=path, frame_index=i) for i in range(0, n, every)]


class _VideoReader:
    """Sequential frames of the videos the items name, decoded once each in order."""

    def __init__(self) -> None:
        self.path, self.cap, self.pos = None, None, 0

    def frame(self, path: Path, index: int) -> np.ndarray | None:
        if self.path != path or index < self.pos:
            self.close()
            self.path, self.cap, self.pos = path, cv2.VideoCapture(str(path)), 0
        frame = None
        while self.pos <= index:
            ok, frame = self.cap.read()
            self.pos += 1
            if not ok:
                return None
        return frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
        self.cap = None


def _write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), img):
        raise BadInput(f"cannot write {tmp}", "check the --out folder is writable and the disk not full")
    os.replace(tmp, path)


# -- the run ---------------------------------------------------------------------------------------------
@dataclass
class LabelRun:
    teachers: list[Teacher]
    out: Path
    gt_band: int = 6
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def outputs(self, item: Item) -> dict[str, Path]:
        names = [t.name for t in self.teachers] + ["fused"] + (["fused_gt"] if item.mask is not None else [])
        return {n: self.out / "labels" / n / f"{item.key}.png" for n in names}

    def label(self, item: Item, frame: np.ndarray) -> None:
        probs = [t.prob(frame) for t in self.teachers]
        fused = fuse(probs, [t.weight for t in self.teachers])
        outs = self.outputs(item)
        for t, p in zip(self.teachers, probs):
            _write_png(outs[t.name], to_png8(p))
        if item.mask is not None:
            gt = cv2.imread(str(item.mask), cv2.IMREAD_GRAYSCALE)
            if gt is None or gt.shape != frame.shape[:2]:
                self.failed.append(f"{item.key}: mask unreadable or not the image's size")
            else:
                _write_png(outs["fused_gt"], to_png8(fuse_with_gt(fused, gt, self.gt_band)))
        _write_png(outs["fused"], to_png8(fused))  # last: its presence marks the item done


def _manifest(run: LabelRun, inputs: dict) -> dict:
    return {"schema": SCHEMA, "teachers": [t.describe() for t in run.teachers],
            "fusion": {"rule": "weighted mean of the teachers' probabilities (weights normalised to sum 1)",
                       "gt_rule": f"ground truth except within {run.gt_band} px of its outline and on ignore "
                                  "(128) pixels, where the fusion decides",
                       "gt_band_px": run.gt_band},
            "resize": "teacher output to the image size, bilinear; PNG = round(probability x 255)",
            "inputs": inputs}


def _check_manifest(path: Path, manifest: dict, force: bool) -> None:
    if not path.is_file() or force:
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BadInput(f"{path} is not a readable label manifest", "use another --out folder, or --force") from None
    if old.get("teachers") != manifest["teachers"] or old.get("fusion") != manifest["fusion"]:
        raise BadInput(f"{path.parent} was labelled with other teachers or another fusion rule",
                       "use another --out folder, or --force to label over it")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--teacher", action="append", default=[], required=True, metavar="KIND:PATH[@WEIGHT]",
                        help=f"a teacher model (repeatable); KIND: {', '.join(TEACHERS)}")
    parser.add_argument("--images", action="append", default=[], type=Path, metavar="DIR",
                        help="a folder of images, or with images/ and masks/ (repeatable)")
    parser.add_argument("--video", action="append", default=[], type=Path, metavar="PATH",
                        help="a video whose frames are labelled (repeatable)")
    parser.add_argument("--every", type=int, default=1, help="label every Nth video frame (default: 1)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (labels/ and manifest.json)")
    parser.add_argument("--gt-band", type=int, default=6,
                        help="pixels round a ground-truth outline where the teachers decide (default: 6)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads per teacher (0 = all cores)")
    parser.add_argument("--limit", type=int, help="at most N items per input (quick checks)")
    parser.add_argument("--force", action="store_true", help="label over a folder made with other teachers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from tqdm import tqdm

    if not args.images and not args.video:
        raise BadInput("nothing to label", "pass --images DIR and/or --video PATH")
    if args.every < 1 or args.gt_band < 0:
        raise BadInput("--every must be at least 1 and --gt-band at least 0", "see vbg label --help")
    specs = [parse_teacher(s) for s in args.teacher]
    items: list[Item] = []
    inputs: dict = {"images": [], "videos": [], "every": args.every}
    for folder in args.images:
        found = image_items(folder)[: args.limit]
        items += found
        inputs["images"].append({"folder": Path(folder).name, "n": len(found)})
    for video in args.video:
        found = video_items(video, args.every)[: args.limit]
        items += found
        inputs["videos"].append({"video": Path(video).name, "n": len(found)})
    if len({it.key for it in items}) != len(items):
        raise BadInput("two inputs share a name (labels are stored by folder/video name)",
                       "label them into separate --out folders")
    teachers: list[Teacher] = []
    names: dict[str, int] = {}
    reader = _VideoReader()
    try:
        for kind, path, weight in specs:
            names[kind] = names.get(kind, 0) + 1
            name = kind if names[kind] == 1 else f"{kind}{names[kind]}"
            teachers.append(TEACHERS[kind](path, threads=args.threads, weight=weight, name=name))
        lr = LabelRun(teachers, Path(args.out), gt_band=args.gt_band)
        manifest = _manifest(lr, inputs)
        mpath = lr.out / "manifest.json"
        _check_manifest(mpath, manifest, args.force)
        lr.out.mkdir(parents=True, exist_ok=True)
        mpath.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for item in tqdm(items, desc="labelling", unit="img", disable=args.no_progress):
            if all(p.is_file() for p in lr.outputs(item).values()):
                lr.skipped += 1
                continue
            if item.image is not None:
                frame = cv2.imread(str(item.image), cv2.IMREAD_COLOR)
            else:
                frame = reader.frame(item.video, item.frame_index)
            if frame is None:
                lr.failed.append(f"{item.key}: cannot be decoded")
                continue
            lr.label(item, frame)
            lr.done += 1
    finally:
        reader.close()
        for t in teachers:
            t.close()
    print(f"labelled {lr.done}, already done {lr.skipped}, failed {len(lr.failed)} → {lr.out / 'labels'}")
    for line in lr.failed[:10]:
        print(f"  failed: {line}")
    return 0 if not lr.failed else 2


def main(argv: list[str] | None = None) -> int:
    return run_command("vbg label", __doc__.split("\n")[0], add_arguments, run, argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
