"""Issue #14's targets applied to one gate run (``gate.sh``'s ``runs/gate/TAG/eval.json``): a pass/fail line per
target for each candidate, with the reference figures measured in the same run. Removed when v4 ships.

    python models/in_training/verdict.py runs/gate/TAG/eval.json [--size 256x144|398x224]

References, by label in that run: the released weights letterboxed (``ConnectNet``, runs/released_lb.onnx), v1
(``[connectnet.onnx]``) and MediaPipe selfie (``MediaPipe selfie``). Targets (the issue's "Targets" section):
every file: SC above the released file's on all three val sets; GT videos IoU >= the released file's and mc flicker
<= its figure; agreement with the teacher fusion on the clips' frames >= the released file's. The 256x144 file:
person IoU >= MediaPipe's on upper_body/val, inference no slower than MediaPipe selfie (here: the median ms of the
same eval run; the issue's interleaved timing is a separate, quiet run). The 398x224 file: person IoU >=
MediaPipe's on all three sets, inference no slower than v1. Also printed, not gated: ccp/humanseg290 IoU for the
256x144 file, raw flicker on the clips, the demo portrait's flag share.
"""
from __future__ import annotations

import argparse
import json

RELEASED, V1, MP = "ConnectNet", "ConnectNet [connectnet.onnx]", "MediaPipe selfie"
SETS = ("ccp/val", "humanseg290/val", "upper_body/val")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("eval_json")
    ap.add_argument("--size", default="256x144", choices=("256x144", "320x180", "398x224"),
                    help="398x224: the 398x224 file's targets; any other: the fast file's (320x180: what-if, session 9)")
    a = ap.parse_args()
    d = json.load(open(a.eval_json))
    img = {(r["model"], r["data"]): r for r in d["images"]}
    agree = {r["model"]: r["teacher_iou"] for r in d["teacher_agreement"] if r["video"] == "all"}
    gt = {r["model"]: r for r in d["gt_video"] if r["gt_video"] == "all"}
    flick = {}
    for r in d["flicker"]:
        flick.setdefault(r["model"], []).append(r["flicker"])
    demo = {r["model"]: r for r in d.get("demo", [])}
    ms = {m["label"]: m["median_ms"] for m in d["models"]}
    w, h = (int(x) for x in a.size.split("x"))
    cands = [m["label"] for m in d["models"] if m["label"] not in (RELEASED, V1, MP)
             and m["label"] != "ConnectNet [connectnet_256x144.onnx]" and list(m["input_size_wh"]) == [w, h]]
    for c in cands:
        rows = []

        def check(name, ok, detail):
            rows.append((ok, name, detail))

        for s in SETS:
            check(f"SC {s} > released", img[c, s]["sc"] > img[RELEASED, s]["sc"],
                  f"{img[c, s]['sc']:.3f} vs {img[RELEASED, s]['sc']:.3f}")
        for s in (SETS if a.size == "398x224" else ("upper_body/val",)):
            check(f"IoU {s} >= MediaPipe", img[c, s]["person_iou"] >= img[MP, s]["person_iou"],
                  f"{img[c, s]['person_iou']:.4f} vs {img[MP, s]['person_iou']:.4f}")
        check("GT videos IoU >= released", gt[c]["person_iou"] >= gt[RELEASED]["person_iou"],
              f"{gt[c]['person_iou']:.4f} vs {gt[RELEASED]['person_iou']:.4f}")
        check("GT videos mc flicker <= released", gt[c]["mc_flicker"] <= gt[RELEASED]["mc_flicker"],
              f"{gt[c]['mc_flicker'] * 100:.3f} vs {gt[RELEASED]['mc_flicker'] * 100:.3f} %")
        check("clips: teacher-fusion IoU >= released", agree[c] >= agree[RELEASED],
              f"{agree[c]:.4f} vs {agree[RELEASED]:.4f}")
        ref = V1 if a.size == "398x224" else MP
        check(f"median ms <= {ref}", ms[c] <= ms[ref], f"{ms[c]:.1f} vs {ms[ref]:.1f}")
        ok = all(r[0] for r in rows)
        print(f"{c}: {'PASSES' if ok else 'FAILS'} ({sum(r[0] for r in rows)}/{len(rows)} targets)")
        for good, name, detail in rows:
            print(f"  {'ok ' if good else 'NO '} {name:40s} {detail}")
        info = [f"{s.split('/')[0]} IoU {img[c, s]['person_iou']:.3f} (MP {img[MP, s]['person_iou']:.3f})" for s in SETS[:2]]
        info.append(f"clip flicker {sum(flick[c]) / len(flick[c]) * 100:.2f} % (released "
                    f"{sum(flick[RELEASED]) / len(flick[RELEASED]) * 100:.2f})")
        if c in demo:
            info.append(f"demo flag {demo[c]['demo_flag_as_person'] * 100:.0f} % (released "
                        f"{demo[RELEASED]['demo_flag_as_person'] * 100:.0f})")
        print("      not gated: " + "; ".join(info))


if __name__ == "__main__":
    main()
