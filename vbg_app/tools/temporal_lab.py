"""Offline lab for temporal filters and mattes on the exact-GT clips (docs/gt_videos.md).

``vbg eval --gt-video DIR --pipeline ...`` is the reference measurement; it runs inference twice per clip
and filter.  This lab runs each model once per clip, keeps its probabilities (``--cache DIR``, .npy per
engine and clip), and then replays the pipeline's own filter + compositor stages on them for many
candidates: the same order as ``Pipeline._emit`` (``temporal.update(prob, frame)``, then
``Compositor.compose(frame, prob)``), the same green-key alpha and the same accumulators as
``vbg_app.tools.eval_gt``.  ``none`` and ``flow`` here reproduce the figures of ``vbg eval --pipeline`` (checked
in the report of issue #15).

    python -m vbg_app.tools.temporal_lab --gt-video runs/gt_videos --engine connectnet \\
        --candidate none --candidate flow --candidate 'flow:w_static=0.05'

``--video PATH`` (repeatable, e.g. the three ``../shared/data/videos`` clips): instead of the GT clips, the
raw flicker of each candidate's output -- the metric ``vbg eval --video`` reports for the raw model (the
fraction of pixels whose mask, thresholded at 0.5 at model resolution, flips between consecutive frames) --
per clip, with the model's answers kept in ``--cache`` too.

A candidate is ``NAME[:key=value,...]`` for :func:`vbg_app.temporal.create_filter`; ``+matte`` after the
name (``flow+matte``) runs the compositor with its matte stage (``Compositor(matte=True)``, vbg_app/matte.py); without it, ``matte=False``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from vbg_app import resources
from vbg_app.compose import Compositor
from vbg_app.tools.eval_gt import DEFAULT_GT_BACKGROUND, KEY_BACKGROUND, KEY_BGR
from vbg_app.tools.gt_clips import open_gt_videos
from vbg_app.tools.metrics import (THRESHOLD, CompositeAccumulator, GTVideoAccumulator, alpha_from_key,
                                   ideal_composite)
from vbg_app.pipeline import check_mask
from vbg_app.specs import BACKGROUNDS, ENGINES
from vbg_app.temporal import create_filter


def load_clip(clip):
    frames = list(clip.frames(None, verify=False))
    return {"frames": frames, "masks": [clip.mask(k) for k in range(len(frames))],
            "alphas": [clip.alpha(k) for k in range(len(frames))], "affines": clip.affines, "fast": clip.fast}


def cached_probs(clip, data, engine: str, model: str | None, cache: Path, threads: int) -> np.ndarray:
    path = cache / f"probs_{engine}_{clip.name}.npy"
    if path.exists():
        return np.load(path)
    from vbg_app.engines import create_segmenter

    seg = create_segmenter(engine, model, "cpu", threads)
    try:
        probs = np.stack([check_mask(seg.segment(f)) for f in data["frames"]])
    finally:
        seg.close()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, probs)
    return probs


def parse_candidate(text: str):
    name, _, args = text.partition(":")
    matte = name.endswith("+matte")
    name = name.removesuffix("+matte")
    kwargs = {}
    for item in filter(None, args.split(",")):
        k, _, v = item.partition("=")
        kwargs[k] = None if v == "None" else (float(v) if any(c in v for c in ".e") else int(v))
    return name, kwargs, matte


def run_candidate(text: str, clips, datas, probs, refine: bool, bg_img_spec: str) -> dict:
    name, kwargs, matte = parse_candidate(text)
    pooled, pooled_comp = GTVideoAccumulator(), CompositeAccumulator()
    ms = []
    extra = {"matte": matte}  # the compositor default is on: "+matte" asks for it, no suffix turns it off
    for clip, data, pr in zip(clips, datas, probs):
        w, h = clip.size_wh
        bg = BACKGROUNDS.open(bg_img_spec)
        bg_img = bg.render(h, w, None, None)
        bg.close()
        pooled.new_clip()
        for spec, scoring in ((KEY_BACKGROUND, "key"), (bg_img_spec, "comp")):
            flt = create_filter(name, **kwargs)
            comp = Compositor(spec, refine=refine, **extra)
            for k, frame in enumerate(data["frames"]):
                t0 = time.perf_counter()
                p = flt.update(pr[k], frame)
                if scoring == "key":
                    ms.append(time.perf_counter() - t0)
                out = comp.compose(frame, p)
                if scoring == "key":
                    alpha, _ = alpha_from_key(out, frame, KEY_BGR)
                    pooled.update(alpha > THRESHOLD, data["masks"][k], data["affines"][k], data["fast"][k])
                else:
                    pooled_comp.update(out, ideal_composite(frame, bg_img, data["alphas"][k]), data["masks"][k])
            comp.close()
    r = {"candidate": text, **pooled.result(), **pooled_comp.result(), "filter_ms_640": float(np.median(ms) * 1e3)}
    return r


def video_flicker(paths: list[str], candidates: list[str], engine: str, model: str | None, cache: Path,
                  threads: int) -> list[dict]:
    from vbg_app.tools.evaluate import video_frames
    from vbg_app.tools.metrics import FlickerAccumulator

    rows = []
    for path in paths:
        frames = list(video_frames(Path(path)))
        key = cache / f"probs_{engine}_{Path(path).stem}.npy"
        if key.exists():
            probs = np.load(key)
        else:
            from vbg_app.engines import create_segmenter

            seg = create_segmenter(engine, model, "cpu", threads)
            try:
                probs = np.stack([check_mask(seg.segment(f)) for f in frames])
            finally:
                seg.close()
            cache.mkdir(parents=True, exist_ok=True)
            np.save(key, probs)
        for cand in candidates:
            name, kwargs, _ = parse_candidate(cand)
            flt, acc = create_filter(name, **kwargs), FlickerAccumulator()
            for f, p in zip(frames, probs):
                acc.update(flt.update(p, f))  # binarised at 0.5 by the accumulator, as vbg eval does
            rows.append({"video": Path(path).name, "candidate": cand, "engine": engine, "n_frames": len(frames),
                         "flicker": acc.value})
            print(f"{Path(path).name:<24}{cand:<40}{100 * acc.value:>8.3f} %", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt-video", default=None)
    ap.add_argument("--video", action="append", default=[], help="raw flicker of each candidate on this clip")
    ap.add_argument("--engine", default="connectnet", choices=ENGINES.names)
    ap.add_argument("--model", default=None)
    ap.add_argument("--cache", default="runs/temporal_lab")
    ap.add_argument("--candidate", action="append", default=[])
    ap.add_argument("--no-refine", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="append one JSON line per candidate")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    if args.video:
        rows = video_flicker(args.video, args.candidate or ["none", "flow"], args.engine, args.model,
                             Path(args.cache), args.threads)
        if args.json:
            with open(args.json, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        return 0
    clips = open_gt_videos(args.gt_video)
    datas = [load_clip(c) for c in clips]
    probs = [cached_probs(c, d, args.engine, args.model, Path(args.cache), args.threads) for c, d in zip(clips, datas)]
    bg_spec = f"image:{resources.asset_path(*DEFAULT_GT_BACKGROUND)}"
    print(f"{'candidate':<48}{'IoU':>8}{'fast':>8}{'mc %':>8}{'far %':>8}{'raw %':>8}{'edge':>7}{'rest':>7}{'ms':>6}")
    for cand in args.candidate or ["none", "flow"]:
        r = run_candidate(cand, clips, datas, probs, not args.no_refine, bg_spec)
        r.update(engine=args.engine, refine=not args.no_refine)
        print(f"{cand:<48}{r['person_iou']:>8.4f}{r['iou_fast']:>8.4f}{100 * r['mc_flicker']:>8.3f}"
              f"{100 * r['far_blob_flicker']:>8.4f}{100 * r['flicker']:>8.3f}{r['composite_band']:>7.2f}"
              f"{r['composite_rest']:>7.3f}{r['filter_ms_640']:>6.2f}", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
