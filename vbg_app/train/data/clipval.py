"""A validation folder from video frames and their teacher labels: the real talking-head clips, judged
during training by agreement with the teacher fusion (issue #14's clip gate, in-training).

    python -m vbg_app.train.data.clipval runs/labels_clips/labels/fused \\
        ../shared/data/videos/talking_head_{1,2,3}.mp4 --out runs/val_clips

For every ``<labels>/<video stem>/<frame>.png`` (written by ``vbg label --video ... --every N``) it writes
``images/<stem>_<frame>.jpg`` (the frame) and ``masks/<stem>_<frame>.png`` (fusion >= 0.5 as 0/255), the layout of
the portrait folders. Evaluation only: the clips never go into training data.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput


def write_clip_val(labels: Path, videos: list[Path], out: Path) -> int:
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    n = 0
    for video in videos:
        lab_dir = labels / video.stem
        wanted = {int(p.stem): p for p in lab_dir.glob("*.png")} if lab_dir.is_dir() else {}
        if not wanted:
            raise BadInput(f"no labels for {video.name} in {lab_dir}",
                           f"run vbg label --video {video} --every 3 first (see models/README.md)")
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise BadInput(f"cannot open {video}", "give a readable video file")
        i = 0
        while wanted:
            ok, frame = cap.read()
            if not ok:
                break
            p = wanted.pop(i, None)
            if p is not None:
                soft = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                if soft.shape != frame.shape[:2]:
                    soft = cv2.resize(soft, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
                cv2.imwrite(str(out / "images" / f"{video.stem}_{i:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
                cv2.imwrite(str(out / "masks" / f"{video.stem}_{i:05d}.png"), np.where(soft >= 128, 255, 0).astype(np.uint8))
                n += 1
            i += 1
        cap.release()
        if wanted:
            raise BadInput(f"{video.name} ended before labelled frames {sorted(wanted)[:3]}",
                           "the labels were made from another video")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vbg_app.train.data.clipval", description=__doc__.split("\n")[0])
    p.add_argument("labels", help="the fused labels folder of vbg label (one subfolder per video)")
    p.add_argument("videos", nargs="+", help="the labelled videos")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    n = write_clip_val(Path(args.labels), [Path(v) for v in args.videos], Path(args.out))
    print(f"clip validation: {n} frames -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
