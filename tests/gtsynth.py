"""A tiny synthetic "val" folder for the GT video builder's tests (no ../shared): person-like shapes (an ellipse
head, a neck and a torso running off the bottom edge, reddish) on textured bluish backgrounds."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_val(root: Path, n: int = 2, size_wh=(160, 240), seed: int = 0) -> Path:
    """``root/images/NNN.png`` + ``root/masks/NNN.png`` (255 = person); returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    w, h = size_wh
    for i in range(n):
        noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 3)
        noise = noise / (np.abs(noise).max() + 1e-6)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.empty((h, w, 3), np.float32)
        img[..., 0] = 170 + 40 * noise + 30 * xx / w   # B
        img[..., 1] = 110 + 30 * noise                # G
        img[..., 2] = 40 + 20 * noise + 20 * yy / h    # R
        for _ in range(6):  # a few darker "furniture" rectangles
            x0, y0 = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
            img[y0:y0 + int(rng.integers(8, 30)), x0:x0 + int(rng.integers(8, 30))] *= 0.7
        mask = np.zeros((h, w), np.uint8)
        cx = w // 2 + (i * 7) % 11 - 5
        cv2.ellipse(mask, (cx, int(0.25 * h)), (int(0.14 * w), int(0.12 * h)), 0, 0, 360, 255, -1)
        cv2.rectangle(mask, (cx - int(0.06 * w), int(0.33 * h)), (cx + int(0.06 * w), int(0.42 * h)), 255, -1)
        cv2.rectangle(mask, (cx - int(0.3 * w), int(0.40 * h)), (cx + int(0.3 * w), h - 1), 255, -1)
        person = mask > 0
        tex = 25 * noise
        img[person] = np.stack([30 + tex, 50 + tex, 200 + tex], -1)[person]
        cv2.imwrite(str(root / "images" / f"{i:03d}.png"), np.clip(img, 0, 255).astype(np.uint8))
        cv2.imwrite(str(root / "masks" / f"{i:03d}.png"), mask)
    return root
