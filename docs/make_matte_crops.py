"""Before/after crops of the matte stage (issue #15) on the demo portrait: docs/matte_<background>.png.

    python docs/make_matte_crops.py            # writes docs/matte_color.png, docs/matte_image.png, docs/matte_blur.png

The demo source's first frame at 1280x720 (assets/demo/astronaut.png, a NASA photograph in the public domain:
see assets/demo/LICENSE.md), segmented by the shipped models/connectnet.onnx on the CPU, composited by
compose.Compositor with ``matte=False`` (before) and ``matte=True`` (after, the default), no temporal filter.
Each image: rows = hair and shoulder, held helmet; columns = before, after.  Backgrounds: ``color:#00B140``
(a green screen colour), ``image:`` the shipped living_room.jpg (CC0, assets/backgrounds/LICENSES.md) and
``blur`` (which the matte leaves as it was).
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vbg_app import resources  # noqa: E402
from vbg_app.compose import Compositor  # noqa: E402
from vbg_app.engines import create_segmenter  # noqa: E402
from vbg_app.sources import open_source  # noqa: E402

# (x, y, w, h) in the 1280x720 frame
CROPS = {"hair and shoulder": (540, 60, 250, 190), "helmet": (740, 520, 250, 190)}
BACKGROUNDS = {"color": "color:#00B140",
               "image": f"image:{resources.asset_path('backgrounds', 'living_room.jpg')}",
               "blur": "blur"}


def main() -> int:
    src = open_source("demo", size=(1280, 720), realtime=False)
    try:
        frame = src.read()
    finally:
        src.close()
    seg = create_segmenter("connectnet", None, "cpu", 1)
    try:
        prob = seg.segment(frame)
    finally:
        seg.close()
    for name, spec in BACKGROUNDS.items():
        outs = [Compositor(spec, matte=m).compose(frame, prob) for m in (False, True)]
        rows = []
        for x, y, w, h in CROPS.values():
            row = [o[y:y + h, x:x + w] for o in outs]
            rows.append(np.concatenate([row[0], np.full((h, 4, 3), 255, np.uint8), row[1]], axis=1))
        sheet = np.concatenate([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]], axis=0)
        path = ROOT / "docs" / f"matte_{name}.png"
        cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"{path.relative_to(ROOT)}: {sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
