"""Data sources (folders, PaddleSeg list files, videos) and the ``torch.utils.data.Dataset`` wrappers.

Sources
-------
* **folder**: ``ROOT/images/*.jpg|png`` and ``ROOT/masks/<same stem>.png`` (255 = person, 128 = ignore,
  0 = background; 0/1 masks are read too). Without a ``masks`` folder (or with ``labeled: false``) the
  images are unlabeled frames (for distillation). A folder with no ``images`` subfolder is taken as a
  folder of images.
* **list**: PaddleSeg's list-file format (the PP-HumanSeg14K layout): one ``image_path label_path`` per
  line, relative to ``root`` (default: the list file's folder); a line with only an image is unlabeled.
* **video**: the frames of a video file (every ``step``-th), unlabeled.
* **synthetic**: ``count`` generated images of ``size`` [w, h] with ellipse "persons" (head + shoulders) on
  textured backgrounds, made in memory from ``seed`` (smoke tests and CI: no files needed); with
  ``soft: true`` each also gets a stand-in teacher label (its mask blurred) as a cached soft label.

Cached teacher labels (``vbg label``): a folder source with ``soft: DIR`` reads ``DIR/<image stem>.png``
(probability x 255, e.g. ``runs/labels_train/labels/fused_gt/train``) for every image (a missing one is an
error) and the synthesis carries it through each sample's geometry as the ``soft`` target of the
distillation loss (see :meth:`~vbg_app.train.data.synthesis.Synthesizer.render`).

A source spec in the YAML config is a path (kind guessed: ``.txt`` = list, a video suffix = video, else
folder) or a dict ``{path: ..., kind: folder|list|video|synthetic, repeat: 2, root: ..., step: 3,
labeled: true}``;
``repeat`` lists the source that many times per epoch (to balance datasets).

Datasets
--------
:class:`PortraitDataset` makes training samples through :class:`~vbg_app.train.data.synthesis.Synthesizer`;
sample ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``, whatever the worker that makes it. With a
``teacher`` (ONNX path), unlabeled samples get the teacher's person probability on the augmented frame as
``soft`` (labeled ones too with ``teacher_on_labeled``); the teacher runs with onnxruntime, single-threaded,
in each loader worker. :class:`ValDataset` resizes val images (and labels, nearest) to the training size.

Each item is a dict: ``image`` float32 [3,H,W] (RGB, (x/255-0.5)/0.5), ``label`` int64 [H,W] (0/1, 255 =
ignore; all 255 for unlabeled frames), ``soft`` float32 [H,W] (NaN without a teacher target).

Measure the pipeline: ``vbg train --config ... --bench`` (prints samples/s on one core).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.imagefile import IMAGE_EXTS, VIDEO_EXTS
from vbg_app.engines.fit import PAD_VALUE, fit_size, letterbox_box
from vbg_app.train.data.augment import IGNORE, to_input
from vbg_app.train.data.synthesis import Synthesizer



def read_image(path: str | os.PathLike) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise BadInput(f"cannot read image {path}", "check the file (a JPEG or PNG)")
    return img


def read_label(path: str | os.PathLike, shape=None) -> np.ndarray:
    """A mask file as uint8 0 = background, 1 = person, 255 = ignore (file values: >128 person, 128 ignore;
    a mask whose maximum is 1 is a 0/1 mask). Resized (nearest) to ``shape`` if it differs."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise BadInput(f"cannot read mask {path}", "masks are single-channel PNGs, 255 = person")
    if m.max(initial=0) <= 1:
        lab = m.copy()
    else:
        lab = np.zeros_like(m)
        lab[m > 128] = 1
        lab[m == 128] = IGNORE
    if shape is not None and lab.shape != tuple(shape[:2]):
        lab = cv2.resize(lab, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return lab


def label_to_metric(label: np.ndarray) -> np.ndarray:
    """0/1/255 training label -> the metric's file convention 0/255/128."""
    out = np.zeros_like(label)
    out[label == 1] = 255
    out[label == IGNORE] = 128
    return out


# -- sources ------------------------------------------------------------------------------------------------------
@dataclass
class Record:
    image: str
    label: str | None = None
    frame: int = -1  # video frame index (image is then the video path)
    soft: str | None = None  # cached teacher label (PNG, probability x 255)


class Source:
    """A list of records with a loader; ``load(i) -> (image BGR uint8, label uint8 or None, name)``."""

    def __init__(self, name: str, records: list[Record]) -> None:
        self.name = name
        self.records = records
        self._video_cache: dict[str, list[np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labeled(self) -> bool:
        return any(r.label is not None for r in self.records)

    @property
    def has_soft(self) -> bool:
        return (self.synthetic is not None and bool(self.synthetic.get("soft"))) or any(
            r.soft is not None for r in self.records)

    def load_soft(self, i: int, shape=None) -> np.ndarray | None:
        """The cached soft label of record ``i`` as float32 0..1, or None; :class:`BadInput` when its size
        is not ``shape`` (a label of another image)."""
        r = self.records[i]
        if self.synthetic is not None:
            if not self.synthetic.get("soft"):
                return None
            _, lab = synthetic_portrait(self.synthetic["seed"], r.frame, self.synthetic["size"])
            return cv2.GaussianBlur(lab.astype(np.float32), (0, 0), 1.5)
        if r.soft is None:
            return None
        m = cv2.imread(r.soft, cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise BadInput(f"cannot read soft label {r.soft}", "re-run vbg label for this folder")
        if shape is not None and m.shape != tuple(shape[:2]):  # vbg label writes at the image's size
            raise BadInput(f"soft label {r.soft} is {m.shape[1]}x{m.shape[0]}, its image {r.image} "
                           f"{shape[1]}x{shape[0]}: not this image's label", "re-run vbg label for this folder")
        return m.astype(np.float32) / 255.0

    def load(self, i: int):
        r = self.records[i]
        if self.synthetic is not None:
            return (*synthetic_portrait(self.synthetic["seed"], r.frame, self.synthetic["size"]), f"synthetic{r.frame}")
        if r.frame >= 0:
            frames = self._video_cache.get(r.image)
            if frames is None:
                frames = self._video_cache[r.image] = _read_video(r.image, self.step)
            img = frames[r.frame % len(frames)]
            return img, None, f"{Path(r.image).stem}#{r.frame}"
        img = read_image(r.image)
        lab = read_label(r.label, img.shape) if r.label else None
        return img, lab, Path(r.image).stem

    step = 1
    synthetic: dict | None = None

    def __getstate__(self):  # decoded video frames stay in the process that decoded them
        state = self.__dict__.copy()
        state["_video_cache"] = {}
        return state


def _read_video(path: str, step: int, max_side: int = 720) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                s = max_side / max(frame.shape[:2])
                if s < 1:
                    frame = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                frames.append(frame)
            i += 1
    finally:
        cap.release()
    if not frames:
        raise BadInput(f"cannot read frames from video {path}", "check the file")
    return frames


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)


def folder_source(root: str | os.PathLike, labeled: bool | None = None, soft: str | os.PathLike | None = None) -> Source:
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"data folder {root} does not exist", "fix the path in the config (data.train / data.val)")
    img_dir = root / "images" if (root / "images").is_dir() else root
    images = _images_in(img_dir)
    if not images:
        raise BadInput(f"no images in {img_dir}", "a data folder holds images/*.jpg and masks/*.png")
    mask_dir = root / "masks"
    if labeled is None:
        labeled = mask_dir.is_dir()
    records = []
    missing = []
    for p in images:
        if not labeled:
            records.append(Record(str(p)))
            continue
        m = mask_dir / (p.stem + ".png")
        if m.is_file():
            records.append(Record(str(p), str(m)))
        else:
            missing.append(p.name)
    if missing:
        raise BadInput(f"{len(missing)} images in {img_dir} have no mask in {mask_dir} (e.g. {missing[0]})",
                       "give every image a mask with the same stem (.png)")
    if soft is not None:
        soft_dir = Path(soft)
        no_soft = []
        for r in records:
            f = soft_dir / (Path(r.image).stem + ".png")
            if f.is_file():
                r.soft = str(f)
            else:
                no_soft.append(Path(r.image).name)
        if no_soft:
            raise BadInput(f"{len(no_soft)} images in {img_dir} have no soft label in {soft_dir} (e.g. {no_soft[0]})",
                           f"run vbg label over {root} (see vbg_app/tools/label.py) or fix the source's soft: folder")
    return Source(str(root), records)


def list_source(list_file: str | os.PathLike, root: str | os.PathLike | None = None) -> Source:
    list_file = Path(list_file)
    if not list_file.is_file():
        raise BadInput(f"list file {list_file} does not exist", "fix the path in the config")
    base = Path(root) if root is not None else list_file.parent
    records = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise BadInput(f"{list_file}:{n} has {len(parts)} fields", "each line is 'image_path label_path'")
        img = base / parts[0]
        lab = base / parts[1] if len(parts) == 2 else None
        for p in (img, lab):
            if p is not None and not p.is_file():
                raise BadInput(f"{list_file}:{n}: {p} does not exist",
                               "paths are relative to the list file's folder or to the source's root")
        records.append(Record(str(img), str(lab) if lab else None))
    if not records:
        raise BadInput(f"list file {list_file} is empty", "one 'image label' pair per line")
    return Source(str(list_file), records)


def video_source(path: str | os.PathLike, step: int = 3, frames: int | None = None) -> Source:
    """Unlabeled frames of one video (or of every video in a folder); ``frames``: frames per video (default:
    counted from the file)."""
    path = Path(path)
    videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTS) if path.is_dir() else [path]
    if not videos or not all(v.is_file() for v in videos):
        raise BadInput(f"no video at {path}", "give a video file or a folder of videos")
    records = []
    for v in videos:
        n = frames
        if n is None:
            cap = cv2.VideoCapture(str(v))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // max(1, step)
            cap.release()
        records += [Record(str(v), None, frame=i) for i in range(max(1, n))]
    src = Source(str(path), records)
    src.step = max(1, int(step))
    return src


def synthetic_portrait(seed: int, i: int, size=(160, 120)):
    """A generated (image, label) pair: an ellipse "person" (head + shoulders/torso) on a random textured
    background; the person's colours differ from the background's, so a small net can learn it fast."""
    w, h = (int(v) for v in size)
    rng = np.random.default_rng([int(seed), int(i)])
    from vbg_app.train.data.synthesis import GENERATORS

    kind = ("gradient", "noise", "room")[int(rng.integers(3))]
    img = GENERATORS[kind](h, w, rng)
    lab = np.zeros((h, w), np.uint8)
    cx = int(w * rng.uniform(0.3, 0.7))
    head_r = int(h * rng.uniform(0.12, 0.2))
    head_y = int(h * rng.uniform(0.25, 0.45))
    cv2.circle(lab, (cx, head_y), head_r, 1, -1)
    cv2.ellipse(lab, (cx, h), (int(head_r * rng.uniform(2.2, 3.2)), int(h - head_y - head_r * 0.6)), 0, 180, 360, 1, -1)
    skin = np.array([rng.uniform(60, 120), rng.uniform(90, 160), rng.uniform(150, 230)])
    shirt = rng.uniform(0, 255, 3)
    body = np.zeros((h, w), np.uint8)
    cv2.ellipse(body, (cx, h), (int(head_r * 3.3), int(h - head_y - head_r * 0.6)), 0, 180, 360, 1, -1)
    img[(lab == 1) & (body == 1)] = shirt.astype(np.uint8)
    img[(lab == 1) & (body == 0)] = skin.astype(np.uint8)
    if rng.random() < 0.3:  # a stray bright blob in the background: not a person
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h // 3))), int(h * 0.06), (0, 0, 255), -1)
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    return img, lab


def synthetic_source(count: int = 64, size=(160, 120), seed: int = 0, soft: bool = False) -> Source:
    src = Source(f"synthetic({count})", [Record(f"synthetic{i}", "synthetic", frame=i) for i in range(int(count))])
    src.synthetic = {"seed": int(seed), "size": tuple(size), "soft": bool(soft)}
    return src


def open_source(spec) -> tuple[Source, int]:
    """``(source, repeat)`` from a path or a ``{path, kind, repeat, root, step, labeled}`` dict."""
    if isinstance(spec, (str, os.PathLike)):
        spec = {"path": str(spec)}
    spec = dict(spec)
    if spec.get("kind") == "synthetic":
        spec.pop("kind")
        repeat = int(spec.pop("repeat", 1))
        spec.pop("path", None)
        try:
            return synthetic_source(**spec), repeat
        except TypeError as exc:
            raise BadInput(f"synthetic source: {exc}", "options: count, size, seed, soft") from None
    if "path" not in spec:
        raise BadInput(f"data source {spec} has no 'path'", "write {path: FOLDER_OR_LIST, repeat: N}")
    path = Path(os.path.expanduser(str(spec.pop("path"))))
    repeat = int(spec.pop("repeat", 1))
    kind = spec.pop("kind", None)
    if kind is None:
        if path.suffix.lower() == ".txt":
            kind = "list"
        elif path.suffix.lower() in VIDEO_EXTS or (path.is_dir() and any(
                p.suffix.lower() in VIDEO_EXTS for p in path.iterdir())):
            kind = "video"
        else:
            kind = "folder"
    if "soft" in spec and kind != "folder":
        raise BadInput(f"data source {path}: soft labels are read for folder sources only", "drop soft: here")
    try:
        if kind == "folder":
            src = folder_source(path, **spec)
        elif kind == "list":
            src = list_source(path, **spec)
        elif kind == "video":
            src = video_source(path, **spec)
        else:
            raise BadInput(f"unknown data source kind {kind!r}", "use folder, list or video")
    except TypeError as exc:
        raise BadInput(f"data source {path}: {exc}", "check the source's options") from None
    return src, repeat


# -- datasets ------------------------------------------------------------------------------------------------------
try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # the numpy parts stay usable without torch
    _TorchDataset = object


class PortraitDataset(_TorchDataset):
    """Training samples from several sources (see the module docstring)."""

    def __init__(self, sources, out_wh=(256, 144), synthesis: dict | Synthesizer | None = None, seed: int = 0,
                 teacher: str | None = None, teacher_on_labeled: bool = False) -> None:
        self.sources: list[Source] = []
        self.index: list[tuple[int, int]] = []
        for spec in sources:
            src, repeat = spec if isinstance(spec, tuple) else open_source(spec)
            k = len(self.sources)
            self.sources.append(src)
            self.index += [(k, i) for _ in range(repeat) for i in range(len(src))]
        if not self.index:
            raise BadInput("no training data", "list at least one source under data.train")
        self.out_wh = tuple(int(v) for v in out_wh)
        self.synth = (synthesis if isinstance(synthesis, Synthesizer)
                      else Synthesizer.from_config(self.out_wh, synthesis))
        self.seed = int(seed)
        self.epoch = 0
        self.teacher_path = teacher
        self.teacher_on_labeled = bool(teacher_on_labeled)
        self._teacher = None
        if teacher is None and any(not s.labeled for s in self.sources):
            raise BadInput("unlabeled training sources need a teacher", "set distill.teacher or drop the source")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def has_soft_targets(self) -> bool:
        """Whether samples can carry a soft target without a live teacher (cached labels)."""
        return any(src.has_soft for src in self.sources)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def teacher(self):
        if self._teacher is None and self.teacher_path:
            from vbg_app.train.losses.distillation import OnnxTeacher
            self._teacher = OnnxTeacher(self.teacher_path, threads=1)
        return self._teacher

    def sample(self, i: int, epoch: int | None = None, out_wh=None):
        """``(image BGR uint8, label uint8 or None, soft float32 or None)`` of item ``i`` (numpy), of size
        ``out_wh`` (default: the dataset's)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch, i])
        s, j = self.index[i]
        image, label, _ = self.sources[s].load(j)
        cached = self.sources[s].load_soft(j, image.shape)
        img, lab, soft = self.synth.render(image, label, rng, out_wh, soft=cached)
        if self.teacher_path and (lab is None or self.teacher_on_labeled):
            soft = self.teacher.predict(img)
        return img, lab, soft

    def __getitem__(self, key) -> dict:
        """``key``: an index (at the current epoch), an ``(epoch, index)`` pair (what the loop's sampler
        yields, so that loader workers need no epoch state) or ``(epoch, index, (w, h))`` (the sampler's
        per-batch size when the config has ``data.aspects``)."""
        import torch

        out_wh = None
        if isinstance(key, tuple) and len(key) == 3:
            epoch, i, out_wh = key
        else:
            epoch, i = key if isinstance(key, tuple) else (None, key)
        img, lab, soft = self.sample(int(i), epoch, out_wh)
        h, w = img.shape[:2]
        return {
            "image": torch.from_numpy(to_input(img)),
            "label": torch.from_numpy((lab if lab is not None else np.full((h, w), IGNORE, np.uint8)).astype(np.int64)),
            "soft": torch.from_numpy(soft.astype(np.float32) if soft is not None
                                     else np.full((h, w), np.nan, np.float32)),
        }

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_teacher"] = None  # onnxruntime sessions are made per worker
        return state


class ValDataset(_TorchDataset):
    """Labeled images resized to ``out_wh`` (``resize``: ``stretch``; ``pad`` = the engine's letterbox, label
    ignore in the bars; ``aspect`` = the engine's ``vbg.fit = aspect``: each image at its own
    :func:`~vbg_app.engines.fit.fit_size`, so sizes differ and batches must hold one image)."""

    def __init__(self, spec, out_wh=(256, 144), resize: str = "stretch") -> None:
        self.source, _ = open_source(spec)
        if not self.source.labeled:
            raise BadInput(f"val source {self.source.name} has no masks", "validation needs labeled images")
        self.name = Path(self.source.name).name if Path(self.source.name).name not in ("val", "train") else \
            "/".join(Path(self.source.name).parts[-2:])
        self.out_wh = tuple(int(v) for v in out_wh)
        if resize not in ("stretch", "pad", "aspect"):
            raise BadInput(f"val resize {resize!r} is unknown", "use stretch, pad or aspect")
        self.resize = resize

    def __len__(self) -> int:
        return len(self.source)

    def sample(self, i: int):
        img, lab, name = self.source.load(i)
        w, h = self.out_wh
        if self.resize == "aspect":
            w, h = fit_size((img.shape[1], img.shape[0]), (w, h), "aspect")
        if self.resize == "stretch":
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
        else:
            x0, y0, nw, nh = letterbox_box((img.shape[1], img.shape[0]), (w, h))
            canvas = np.full((h, w, 3), PAD_VALUE, np.uint8)  # the engine's bars (vbg_app.engines.fit)
            canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
            lab_c = np.full((h, w), IGNORE, np.uint8)
            lab_c[y0:y0 + nh, x0:x0 + nw] = cv2.resize(lab, (nw, nh), interpolation=cv2.INTER_NEAREST)
            img, lab = canvas, lab_c
        return img, lab, name

    def __getitem__(self, i: int) -> dict:
        import torch

        img, lab, _ = self.sample(i)
        return {"image": torch.from_numpy(to_input(img)), "label": torch.from_numpy(lab.astype(np.int64))}


# -- measurement ------------------------------------------------------------------------------------------------------
def benchmark(dataset: PortraitDataset, n: int = 200) -> float:
    """Samples per second of ``dataset`` in this process (one core: run with OMP/OpenCV threads = 1)."""
    import time

    dataset[0]
    t0 = time.perf_counter()
    for i in range(n):
        dataset[i % len(dataset)]
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m vbg_app.train.data.datasets",
                                description="measure the training data pipeline on one core")
    p.add_argument("sources", nargs="+", help="data folders / list files")
    p.add_argument("--size", default="256x144", help="output WIDTHxHEIGHT (default 256x144)")
    p.add_argument("-n", type=int, default=200, help="samples to time")
    p.add_argument("--backgrounds", nargs="*", default=[], help="folders of background images")
    p.add_argument("--teacher", help="teacher ONNX for unlabeled sources")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    w, h = (int(v) for v in args.size.lower().split("x"))
    ds = PortraitDataset(args.sources, (w, h), {"backgrounds": args.backgrounds}, teacher=args.teacher)
    rate = benchmark(ds, args.n)
    print(f"data pipeline: {rate:.1f} samples/s on 1 core at {w}x{h} ({len(ds)} samples in the epoch)")
    return 0

