"""Background plates from the training photos' own rooms: each photo with its person (mask dilated a little)
filled away by push-pull interpolation (:func:`vbg_app.tools.gt_sources.fill_holes`), written as JPEG files for the
synthesis's ``backgrounds`` folders, so composites also land on real rooms and streets.

    python -m vbg_app.train.data.plates ../shared/data/portraits/ccp/train \\
        ../shared/data/portraits/humanseg290/train --out runs/plates_train

Use training splits only (the val photos are the test sets). Existing plates are kept (resumable).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput


def make_plate(img: np.ndarray, mask: np.ndarray, dilate_frac: float = 0.02, long_side: int = 640) -> np.ndarray:
    """``img`` (BGR uint8) with the pixels of ``mask`` (> 0 = person or ignore), dilated by ``dilate_frac`` of
    the image height, filled; scaled down to ``long_side``."""
    from vbg_app.tools.gt_sources import fill_holes

    s = long_side / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    hole = cv2.resize((mask > 0).astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
    r = max(1, int(round(img.shape[0] * dilate_frac)))
    hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)
    return np.clip(fill_holes(img, hole), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vbg_app.train.data.plates", description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", help="training folders with images/ and masks/")
    p.add_argument("--out", required=True, help="output folder of JPEG plates")
    p.add_argument("--long-side", type=int, default=640)
    args = p.parse_args(argv)
    from vbg_app.train.data.datasets import folder_source

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_new = n_old = 0
    for folder in args.folders:
        src = folder_source(folder)
        if not src.labeled:
            raise BadInput(f"{folder} has no masks", "plates need the person masks")
        tag = "_".join(Path(folder).resolve().parts[-2:])  # e.g. ccp_train
        for i, r in enumerate(src.records):
            dst = out / f"{tag}_{Path(r.image).stem}.jpg"
            if dst.is_file():
                n_old += 1
                continue
            img, lab, _ = src.load(i)
            tmp = dst.with_name(dst.stem + ".tmp.jpg")
            cv2.imwrite(str(tmp), make_plate(img, lab, long_side=args.long_side), [cv2.IMWRITE_JPEG_QUALITY, 92])
            tmp.replace(dst)
            n_new += 1
    print(f"plates: {n_new} written, {n_old} already there -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
