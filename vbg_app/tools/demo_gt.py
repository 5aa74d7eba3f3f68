"""The demo portrait's ground truth: its person mask and the flag's area, on the photo and on demo frames.

``assets/demo/astronaut_gt.json`` holds both as polygons (made by assets/demo/make_gt.py: MODNet's matte with the
enclosed patches filled, checked by eye). The held helmet is person; the flag and the rocket are not. On a demo
frame the masks are the polygons rendered through the same DemoSource placement, feathering and motion as the
photo itself (render a white mask and a black one as the portrait; their difference is the mask's coverage).

    person, flag = load()                          # bool masks at the photo's size (512x512)
    for frame, person, flag in demo_frames(30):    # the demo source's frames 0..29 at 1280x720
        ...
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from vbg_app.errors import BadInput

GT_FILE = "astronaut_gt.json"


def _gt_path() -> Path:
    from vbg_app import resources

    return resources.asset_path("demo", GT_FILE)


def load(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(person, flag) bool masks at the photo's size; the flag area excludes the person."""
    path = Path(path) if path is not None else _gt_path()
    try:
        d = json.loads(path.read_text())
        w, h = (int(v) for v in d["size_wh"])
        person = np.zeros((h, w), np.uint8)
        cv2.fillPoly(person, [np.asarray(p, np.int32) for p in d["person"]], 1)
        flag = np.zeros((h, w), np.uint8)
        cv2.fillPoly(flag, [np.asarray(d["flag_area"], np.int32)], 1)
    except FileNotFoundError:
        raise BadInput(f"the demo portrait's ground truth {path} is missing",
                       "reinstall vbg, or run python assets/demo/make_gt.py in a source tree") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"the demo portrait's ground truth {path} is unreadable ({exc})",
                       "restore it from the repository (git checkout assets/demo)") from None
    return person.astype(bool), flag.astype(bool) & ~person.astype(bool)


def demo_frames(n: int, size_wh: tuple[int, int] = (1280, 720), step: int = 1
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(frame, person, flag) for the demo source's frames 0, step, 2*step, ... (n of them), masks as bool."""
    from vbg_app.sources import DemoSource

    person, flag = load()
    w, h = size_wh
    src = DemoSource(w, h, realtime=False)
    # the same placement for three more portraits: black, white person, white flag (the wall is the same in
    # all, so a difference keeps only the portrait's own coverage of each mask)
    black = np.zeros(person.shape + (3,), np.uint8)
    renders = [DemoSource(w, h, realtime=False, portrait=p) for p in
               (black, np.repeat(person[:, :, None] * np.uint8(255), 3, 2),
                np.repeat(flag[:, :, None] * np.uint8(255), 3, 2))]
    for i in range(n):
        k = i * step
        base = renders[0].frame_at(k)[:, :, 1].astype(np.int16)
        cover = [(r.frame_at(k)[:, :, 1].astype(np.int16) - base) for r in renders[1:]]
        yield src.frame_at(k), cover[0] >= 128, cover[1] >= 128


def score(prob: np.ndarray, person: np.ndarray, flag: np.ndarray, threshold: float = 0.5) -> dict:
    """Person IoU and the share of the flag the model calls person (0 is right; the failure keeps it sharp)."""
    h, w = person.shape
    if prob.shape != (h, w):
        prob = cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    pred = prob > threshold
    inter = int(np.count_nonzero(pred & person))
    union = int(np.count_nonzero(pred | person))
    return {"inter": inter, "union": union, "flag_px": int(flag.sum()),
            "flag_as_person_px": int(np.count_nonzero(pred & flag))}


def pooled(rows: list[dict]) -> dict:
    """IoU (Σ∩/Σ∪) and flag-as-person share over several scored frames."""
    inter = sum(r["inter"] for r in rows)
    union = sum(r["union"] for r in rows)
    fp = sum(r["flag_px"] for r in rows)
    return {"person_iou": inter / union if union else float("nan"),
            "flag_as_person": sum(r["flag_as_person_px"] for r in rows) / fp if fp else float("nan")}
