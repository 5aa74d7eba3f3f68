"""Reading the exact-ground-truth clips made by :mod:`vbg_app.tools.gt_video` (``vbg eval --gt-video``): frames
checked against the md5 the builder stored, masks, soft alpha, plate and per-frame motion."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput

SCHEMA = "vbg.gt_video/1"


def frame_md5(frame: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(frame).tobytes()).hexdigest()



@dataclass
class GTClip:
    """One clip made by :func:`vbg_app.tools.gt_video.build` (see that module's docstring)."""

    path: Path
    meta: dict
    label: str = ""

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.name)

    @property
    def n_frames(self) -> int:
        return len(self.meta["frames"])

    @property
    def size_wh(self) -> tuple[int, int]:
        return tuple(self.meta["size_wh"])

    @property
    def video(self) -> Path:
        return self.path / self.meta["video"]

    @property
    def affines(self) -> np.ndarray:
        return np.array([f["affine"] for f in self.meta["frames"]], np.float64)

    @property
    def fast(self) -> np.ndarray:
        return np.array([f["fast"] for f in self.meta["frames"]], bool)

    def mask(self, k: int) -> np.ndarray:
        m = cv2.imread(str(self.path / (self.meta["masks"] % k)), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise BadInput(f"GT mask {k} of {self.path} is missing or unreadable", "rebuild the clip")
        return m > 127

    def alpha(self, k: int) -> np.ndarray:
        a = cv2.imread(str(self.path / (self.meta["alpha"] % k)), cv2.IMREAD_GRAYSCALE)
        if a is None:
            raise BadInput(f"GT alpha {k} of {self.path} is missing or unreadable", "rebuild the clip")
        return a.astype(np.float32) / 255.0

    def plate(self) -> np.ndarray:
        img = cv2.imread(str(self.path / self.meta["plate"]), cv2.IMREAD_COLOR)
        if img is None:
            raise BadInput(f"plate of {self.path} is missing or unreadable", "rebuild the clip")
        return img

    def frames(self, limit: int | None = None, verify: bool = True):
        """Decoded frames in order; with ``verify`` each is checked against the md5 the builder stored (the
        codec is lossless, so any difference means a damaged file or a decoder that changes pixels)."""
        cap = cv2.VideoCapture(str(self.video))
        if not cap.isOpened():
            raise BadInput(f"cannot open {self.video}", "use an OpenCV with FFmpeg (FFV1), or rebuild the clip")
        try:
            n = self.n_frames if limit is None else min(limit, self.n_frames)
            for k in range(n):
                ok, frame = cap.read()
                if not ok:
                    raise BadInput(f"{self.video} ends at frame {k} of {self.n_frames}", "rebuild the clip")
                if verify and frame_md5(frame) != self.meta["frames"][k]["md5"]:
                    raise BadInput(f"frame {k} of {self.video} decodes differently from what was rendered",
                                   "rebuild the clip with this OpenCV, or check the file")
                yield frame
        finally:
            cap.release()


def open_gt_videos(path) -> list[GTClip]:
    """The clips of a folder made by :func:`vbg_app.tools.gt_video.build` (its ``manifest.json``), or of one clip folder."""
    path = Path(path)
    fix = "give a folder made by `python -m vbg_app.tools.gt_video --out DIR` (or one of its clip_NN folders)"
    if not path.is_dir():
        raise BadInput(f"GT video folder {path} not found", fix)
    if (path / "clip.json").is_file():
        folders = [path]
    elif (path / "manifest.json").is_file():
        try:
            names = [c["name"] for c in json.loads((path / "manifest.json").read_text())["clips"]]
        except (ValueError, KeyError, TypeError):
            raise BadInput(f"{path / 'manifest.json'} is not a GT video manifest", fix) from None
        folders = [path / n for n in names]
    else:
        raise BadInput(f"{path} holds neither manifest.json nor clip.json", fix)
    clips = []
    for f in folders:
        try:
            meta = json.loads((f / "clip.json").read_text())
            if meta.get("schema") != SCHEMA:
                raise ValueError
        except (OSError, ValueError):
            raise BadInput(f"{f / 'clip.json'} is missing or not a {SCHEMA} clip", fix) from None
        if not (f / meta["video"]).is_file():
            raise BadInput(f"{f / meta['video']} is missing", "rebuild the clip")
        clips.append(GTClip(f, meta))
    return clips
