"""Bystanders for the synthesis (issue #14): people cut from labelled photos, painted small and defocused into a
composite's background behind the main person, and labelled background (a meeting, like the val masks, keeps
only the main person). Used by :class:`vbg_app.train.data.synthesis.Synthesizer` (``p_bystander``, ``bystanders``)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class PeopleBank:
    """People cut from labelled photos (folders with ``images/`` and ``masks/``, mask > 127 = person), for
    bystanders: :meth:`sample` returns ``(bgr, alpha)`` cropped to the person's box. Files are decoded once
    per process, kept downscaled to ``cache_long_side``; which one is drawn is a function of ``rng`` only."""

    def __init__(self, folders=(), cache_long_side: int = 320) -> None:
        from vbg_app.errors import BadInput
        from vbg_app.train.data.datasets import folder_source

        self.sources = []
        for f in folders or ():
            root = Path(f)
            if not (root / "images").is_dir() or not (root / "masks").is_dir():
                raise BadInput(f"bystanders folder {root} has no images/ and masks/",
                               "give labelled folders, e.g. ../shared/data/portraits/ccp/train")
            self.sources.append(folder_source(root, labeled=True))  # the training data's pairing and mask rules
        self.index = [(k, j) for k, src in enumerate(self.sources) for j in range(len(src))]
        self.cache_long_side = int(cache_long_side)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _load(self, i: int):
        if i not in self._cache:
            k, j = self.index[i]
            img, lab, _ = self.sources[k].load(j)
            item = None
            ys, xs = np.nonzero(lab == 1)
            if len(ys) >= 50:
                y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
                img, a = img[y0:y1, x0:x1], (lab[y0:y1, x0:x1] == 1).astype(np.float32)
                s = self.cache_long_side / max(img.shape[:2])
                if s < 1:
                    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                    a = cv2.resize(a, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA)
                item = (img, a)
            self._cache[i] = item
        return self._cache[i]

    def sample(self, rng: np.random.Generator):
        """A person ``(bgr uint8, alpha float32 0..1)``, or None (no files, or an unusable one drawn)."""
        if not self.index:
            return None
        return self._load(int(rng.integers(len(self.index))))


def add_bystander(bg: np.ndarray, person_h: float, person_cx: float, bank: PeopleBank, rng: np.random.Generator,
                  scale=(0.35, 0.75), blur=(0.0, 2.5)) -> bool:
    """Paint a person from ``bank`` into the background ``bg`` (in place), smaller than the main person (height
    ``scale`` x ``person_h``), defocused (Gaussian sigma ``blur`` px), standing on a line in the lower half of
    the frame, left or right of ``person_cx`` so that the main person does not hide all of it. Nothing is
    labelled: ``bg`` is background, and the main person is composited over it afterwards. False when the bank
    gave nothing."""
    got = bank.sample(rng)
    if got is None:
        return False
    src, alpha = got
    h, w = bg.shape[:2]
    th = max(8, int(person_h * rng.uniform(*scale)))
    tw = max(4, int(src.shape[1] * th / src.shape[0]))
    if tw >= w:
        return False
    if rng.random() < 0.5:
        src, alpha = src[:, ::-1], alpha[:, ::-1]
    src = cv2.resize(np.ascontiguousarray(src), (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    alpha = cv2.resize(np.ascontiguousarray(alpha), (tw, th), interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(*blur)
    if sigma > 0.3:
        src = cv2.GaussianBlur(src, (0, 0), sigma)
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    side = -1 if (person_cx > w / 2) == (rng.random() < 0.8) else 1  # mostly on the emptier side
    cx = person_cx + side * rng.uniform(0.25, 0.6) * w
    x0 = int(np.clip(cx - tw / 2, -tw // 2, w - tw // 2))
    y1 = int(h * rng.uniform(0.55, 1.2))  # feet (or the crop's bottom) from mid-frame to below it
    y0 = y1 - th
    bx0, by0, bx1, by1 = max(0, x0), max(0, y0), min(w, x0 + tw), min(h, y1)
    if bx1 - bx0 < 2 or by1 - by0 < 2:
        return False
    a = alpha[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0, None]
    region = bg[by0:by1, bx0:bx1].astype(np.float32)
    bg[by0:by1, bx0:bx1] = (region + a * (src[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] - region)).clip(0, 255)
    return True
