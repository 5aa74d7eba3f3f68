"""Background plates from the training photos' own rooms and streets, for the synthesis's ``backgrounds``
folders, so composites also land on real places.

Two kinds:

* ``--mode clean`` (the default since v4b): the largest rectangles of each photo that its person (mask dilated a
  little) does not touch, each written as its own JPEG: no trace of the person. Photos whose free rectangles
  are all small give no plate.
* ``--mode filled`` (v4 stage 1): the whole photo with its person filled away by push-pull interpolation
  (:func:`vbg_app.tools.gt_sources.fill_holes`). This leaves a smooth, person-shaped ghost labelled background;
  composites over such ghosts taught v4 that plain, person-shaped regions are background, and it dropped white
  shirts and plain tops on the real talking-head clips. Kept only to reproduce that run.

    python -m vbg_app.train.data.plates ../shared/data/portraits/ccp/train \\
        ../shared/data/portraits/humanseg290/train --out runs/plates_clean

Use training splits only (the val photos are the test sets). Existing plates are kept (resumable).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput


def _hole(img_shape, mask: np.ndarray, dilate_frac: float) -> np.ndarray:
    h, w = img_shape[:2]
    hole = cv2.resize((mask > 0).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    r = max(1, int(round(h * dilate_frac)))
    return cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))).astype(bool)


def _shrink(img: np.ndarray, long_side: int) -> np.ndarray:
    s = long_side / max(img.shape[:2])
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img


def make_plate(img: np.ndarray, mask: np.ndarray, dilate_frac: float = 0.02, long_side: int = 640) -> np.ndarray:
    """``img`` (BGR uint8) with the pixels of ``mask`` (> 0 = person or ignore), dilated by ``dilate_frac`` of
    the image height, filled; scaled down to ``long_side``."""
    from vbg_app.tools.gt_sources import fill_holes

    img = _shrink(img, long_side)
    hole = _hole(img.shape, mask, dilate_frac)
    return np.clip(fill_holes(img, hole), 0, 255).astype(np.uint8)


def largest_free_rect(blocked: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest axis-aligned rectangle ``(x0, y0, x1, y1)`` (end exclusive) of ``blocked``'s False cells
    (the classic histogram-stack method, O(h*w)); None when every cell is blocked."""
    h, w = blocked.shape
    heights = np.zeros(w, np.int64)
    best, best_area = None, 0
    for y in range(h):
        heights = np.where(blocked[y], 0, heights + 1)
        stack: list[int] = []
        for x in range(w + 1):
            cur = heights[x] if x < w else 0
            while stack and heights[stack[-1]] >= cur:
                top = stack.pop()
                left = stack[-1] + 1 if stack else 0
                area = int(heights[top]) * (x - left)
                if area > best_area:
                    best_area = area
                    best = (left, y - int(heights[top]) + 1, x, y + 1)
            stack.append(x)
    return best


def clean_plates(img: np.ndarray, mask: np.ndarray, dilate_frac: float = 0.03, long_side: int = 640,
                 min_side: int = 72, max_plates: int = 3, cell: int = 8) -> list[np.ndarray]:
    """Up to ``max_plates`` crops of ``img`` (scaled to ``long_side``) that the person (``mask`` > 0, dilated by
    ``dilate_frac`` of the height) does not touch, largest first, each at least ``min_side`` px on both sides."""
    img = _shrink(img, long_side)
    hole = _hole(img.shape, mask, dilate_frac)
    h, w = hole.shape
    gh, gw = h // cell, w // cell
    # a cell is blocked when any of its pixels is person (cells cover the image, the last ones cut short)
    blocked = cv2.resize(hole[: gh * cell, : gw * cell].astype(np.uint8), (gw, gh), interpolation=cv2.INTER_AREA) > 0
    out = []
    for _ in range(max_plates):
        r = largest_free_rect(blocked)
        if r is None:
            break
        x0, y0, x1, y1 = r
        if min(x1 - x0, y1 - y0) * cell < min_side:
            break
        out.append(img[y0 * cell: y1 * cell, x0 * cell: x1 * cell].copy())
        blocked[y0:y1, x0:x1] = True
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vbg_app.train.data.plates", description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", help="training folders with images/ and masks/")
    p.add_argument("--out", required=True, help="output folder of JPEG plates")
    p.add_argument("--mode", choices=("clean", "filled"), default="clean",
                   help="clean: person-free crops (default); filled: the person filled away (v4 stage 1)")
    p.add_argument("--long-side", type=int, default=640)
    args = p.parse_args(argv)
    from vbg_app.train.data.datasets import folder_source

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_new = n_old = n_none = 0
    for folder in args.folders:
        src = folder_source(folder)
        if not src.labeled:
            raise BadInput(f"{folder} has no masks", "plates need the person masks")
        tag = "_".join(Path(folder).resolve().parts[-2:])  # e.g. ccp_train
        for i, r in enumerate(src.records):
            stem = f"{tag}_{Path(r.image).stem}"
            done = out / f"{stem}.jpg" if args.mode == "filled" else out / f".{stem}.done"
            if done.is_file():
                n_old += 1
                continue
            img, lab, _ = src.load(i)
            plates = ([make_plate(img, lab, long_side=args.long_side)] if args.mode == "filled"
                      else clean_plates(img, lab, long_side=args.long_side))
            for k, plate in enumerate(plates):
                dst = out / (f"{stem}.jpg" if args.mode == "filled" else f"{stem}_{k}.jpg")
                tmp = dst.with_name(dst.stem + ".tmp.jpg")
                cv2.imwrite(str(tmp), plate, [cv2.IMWRITE_JPEG_QUALITY, 92])
                tmp.replace(dst)
                n_new += 1
            n_none += not plates
            if args.mode == "clean":
                done.touch()
    print(f"plates: {n_new} written, {n_old} photos already done, {n_none} photos without a free area -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
