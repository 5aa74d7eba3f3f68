"""Writes astronaut_gt.json: the demo portrait's person mask and the flag's area, as polygons.

How the person mask was made (once, on 2026-12-03; rerun only to reproduce it):
1. MODNet's matte of the 512x512 photo (../shared/models/teachers/modnet_photographic.onnx, the whole photo in
   one pass, (x - 127.5) / 127.5), thresholded at 0.5;
2. every background patch cut off from the photo's main background filled: 8 patches, 872 px, all in the
   suit's hardware (hose valve and connectors at the bottom edge) and the held helmet's latch, which belong to
   the person;
3. checked by eye at 3-8x zoom against the photo (hair, both shoulders, the arm beside the red stripes, the
   helmet's rim and the bottom edge): no other correction was needed.
The flag is the photo's left area up to the flag's right edge (blue field and stripes, traced by hand) minus
the person. The held helmet counts as person (held objects do), the rocket model and the flag do not.

    python assets/demo/make_gt.py [--modnet PATH]
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
# the flag's right edge in the photo (x, y), traced at 3x zoom; the left and bottom sides close it
FLAG = [[0, 0], [40, 0], [63, 88], [97, 220], [97, 511], [0, 511]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modnet", default=str(HERE.parents[2] / "shared/models/teachers/modnet_photographic.onnx"))
    args = ap.parse_args()
    import onnxruntime as ort

    img = cv2.imread(str(HERE / "astronaut.png"))
    sess = ort.InferenceSession(args.modnet, providers=["CPUExecutionProvider"])
    x = (cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) - 127.5) / 127.5
    alpha = sess.run(None, {sess.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0, 0]
    person = (alpha > 0.5).astype(np.uint8)
    # the background is what is 4-connected to the top-left corner (the wall above the hair joins flag and
    # rocket); every other non-person patch is enclosed by the person or by it and the bottom edge
    _, labels = cv2.connectedComponents(1 - person, connectivity=4)
    filled = (labels != labels[0, 0]).astype(np.uint8)
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    print(f"person {filled.mean():.4f} of the photo, patches filled {int(filled.sum() - person.sum())} px, "
          f"{len(contours)} outline(s)")
    out = {
        "image": "astronaut.png",
        "size_wh": [img.shape[1], img.shape[0]],
        "person": [c[:, 0, :].tolist() for c in contours if len(c) >= 3],
        "flag_area": FLAG,
        "made_by": "assets/demo/make_gt.py (MODNet matte > 0.5, holes filled, checked by eye; see its docstring)",
    }
    (HERE / "astronaut_gt.json").write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
