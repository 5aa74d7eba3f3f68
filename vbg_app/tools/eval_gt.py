"""``vbg eval`` on exact-ground-truth videos (docs/gt_videos.md): the raw model against each clip's mask
(``--gt-video``) and the whole pipeline, keyed on green, against the ideal composite (``--pipeline``); see
:mod:`vbg_app.tools.evaluate` for what is measured and how."""
from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.tools.metrics import (THRESHOLD, CompositeAccumulator, GTVideoAccumulator, alpha_from_key,
                                   ideal_composite)

if TYPE_CHECKING:
    from vbg_app.tools.evaluate import Model

KEY_BACKGROUND = "color:#00FF00"
KEY_BGR = (0, 255, 0)
DEFAULT_GT_BACKGROUND = ("backgrounds", "living_room.jpg")


def _parse_smoothing_list(text: str | None) -> list[str]:
    if text is None:
        return []
    from vbg_app.config import SMOOTHING

    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in SMOOTHING]
    if not names or bad:
        raise BadInput(f"--pipeline {text!r} names {'no filter' if not names else 'unknown filters ' + ', '.join(bad)}",
                       f"give a comma-separated list of {', '.join(SMOOTHING)}, e.g. --pipeline none,ema,flow")
    return list(dict.fromkeys(names))


def _gt_background(spec: str | None) -> str:
    """The composite-error background as given (``plate`` stays ``plate``), checked; default: living_room.jpg."""
    if spec is None:
        from vbg_app import resources

        return f"image:{resources.asset_path(*DEFAULT_GT_BACKGROUND)}"
    if spec.strip().lower() == "plate":
        return "plate"
    from vbg_app.specs import BACKGROUNDS, ImageSpec

    try:
        parsed = BACKGROUNDS.parse(spec)
    except BadInput:
        parsed = None
    if not isinstance(parsed, ImageSpec):
        raise BadInput(f"--gt-background {spec!r} is not image:PATH or plate",
                       "give an image (the composite error needs the same pixels compose.py uses), or plate")
    BACKGROUNDS.open(parsed).close()  # a missing or undecodable image fails here, before any model is loaded
    return str(parsed)


class _KeepSink:
    """The pipeline's sink in pipeline mode: keeps the last frame sent and counts them."""

    description = "memory (vbg eval)"

    def __init__(self) -> None:
        self.frame: np.ndarray | None = None
        self.count = 0

    def send(self, frame: np.ndarray) -> None:
        self.frame = frame
        self.count += 1

    def close(self) -> None:
        self.frame = None


def _pipeline_outputs(clip, model: Model, smoothing: str, refine: bool, background: str, args, limit,
                      model_runs: list | None = None):
    """Yield ``(k, frame, output)`` for each frame of ``clip`` through the real pipeline (see evaluate.py's module
    docstring), checking that output k was composited from frame k. With the battery saver, ``model_runs`` (a list)
    gets ``(frames the model ran on, frames)`` when the clip is done."""
    from vbg_app.config import PipelineConfig
    from vbg_app.pipeline import build_pipeline

    cfg = PipelineConfig(source=f"video:{clip.video}", background=background, sink="null", engine=model.engine,
                         model=model.path if model.engine == "connectnet" else None, provider=args.provider,
                         threads=args.threads, smoothing=smoothing, refine=refine, realtime=False, loop=False,
                         battery_saver=bool(getattr(args, "battery_saver", False)))
    pipe = build_pipeline(cfg)
    sink = _KeepSink()
    pipe.set_sink(sink)
    try:
        for k, frame in enumerate(clip.frames(limit)):
            stepped = pipe.step()
            if not stepped or sink.count != k + 1:
                raise BadInput(f"the pipeline gave no output for frame {k} of {clip.video} "
                               f"({pipe.stats.last_error or 'the source ended early'})",
                               "check the clip with `vbg run --source video:PATH`")
            if pipe.last_input is None or not np.array_equal(pipe.last_input, frame):
                raise BadInput(f"the pipeline's output {k} of {clip.video} was not made from frame {k}",
                               "the pipeline reorders or drops frames: pipeline mode cannot align them")
            yield k, frame, sink.frame
        if model_runs is not None and hasattr(pipe.segmenter, "inferences"):  # the battery saver's count
            model_runs.append((pipe.segmenter.inferences, pipe.stats.frames))
    finally:
        pipe.close()



def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1e3 if times else math.nan

def _eval_gt_videos(models: list[Model], clips, limit, bar) -> tuple[list[dict], list[dict]]:
    """Raw model output on the GT clips: rows per model x clip (+ "all" pooled), and the clips' own entries."""
    pooled = {m.label: GTVideoAccumulator() for m in models}
    all_times = {m.label: [] for m in models}
    rows, inputs = [], []
    for clip in clips:
        accs = {m.label: GTVideoAccumulator() for m in models}
        floor = GTVideoAccumulator()
        times = {m.label: [] for m in models}
        for acc in pooled.values():
            acc.new_clip()
        affines, fast = clip.affines, clip.fast
        w, h = clip.size_wh
        n = 0
        for k, frame in enumerate(clip.frames(limit)):
            gt = clip.mask(k)
            floor.update(gt, gt, affines[k], fast[k])
            for m in models:
                prob = m.segment(frame, times[m.label])
                pred = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR) > THRESHOLD
                accs[m.label].update(pred, gt, affines[k], fast[k])
                pooled[m.label].update(pred, gt, affines[k], fast[k])
            n += 1
            bar.update(1)
        f = floor.result()
        inputs.append({"label": clip.label, "path": str(clip.path), "n_frames": n, "n_fast": f["n_fast"],
                       "size_wh": [w, h], "gt_mc_flicker": f["mc_flicker"], "gt_far_blob_flicker": f["far_blob_flicker"]})
        for m in models:
            all_times[m.label] += times[m.label]
            rows.append({"model": m.label, "gt_video": clip.label, **accs[m.label].result(),
                         "median_ms": _median_ms(times[m.label])})
    if len(clips) > 1:
        for m in models:
            rows.append({"model": m.label, "gt_video": "all", **pooled[m.label].result(),
                         "median_ms": _median_ms(all_times[m.label])})
    return rows, inputs


def _share(runs: list) -> float | None:
    """Frames the model ran on / frames (the battery saver's), None without the saver."""
    return sum(r for r, _ in runs) / max(1, sum(n for _, n in runs)) if runs else None


def _eval_pipeline(model: Model, smoothing: str, refine: bool, background: str, clips, args, limit, bar) -> list[dict]:
    """Pipeline mode for one model and filter: rows per clip (+ "all" pooled)."""
    from vbg_app.specs import BACKGROUNDS

    pooled, pooled_comp, pooled_amb = GTVideoAccumulator(), CompositeAccumulator(), 0
    rows, all_runs = [], []
    base = {"model": model.label, "smoothing": smoothing, "refine": refine}
    for clip in clips:
        acc, comp, ambiguous, runs = GTVideoAccumulator(), CompositeAccumulator(), 0, []
        pooled.new_clip()
        affines, fast = clip.affines, clip.fast
        for k, frame, out in _pipeline_outputs(clip, model, smoothing, refine, KEY_BACKGROUND, args, limit, runs):
            alpha, amb = alpha_from_key(out, frame, KEY_BGR)
            ambiguous += int(np.count_nonzero(amb))
            gt = clip.mask(k)
            pred = alpha > THRESHOLD
            acc.update(pred, gt, affines[k], fast[k])
            pooled.update(pred, gt, affines[k], fast[k])
            bar.update(1)
        spec = f"image:{clip.path / clip.meta['plate']}" if background == "plate" else background
        w, h = clip.size_wh
        bg = BACKGROUNDS.open(spec)  # the ImageBackground compose.py opens for spec
        try:
            bg_img = bg.render(h, w, None, None)  # exactly the pixels compose.py blends with
        finally:
            bg.close()
        for k, frame, out in _pipeline_outputs(clip, model, smoothing, refine, spec, args, limit):
            ideal = ideal_composite(frame, bg_img, clip.alpha(k))
            gt = clip.mask(k)
            comp.update(out, ideal, gt)
            pooled_comp.update(out, ideal, gt)
            bar.update(1)
        pooled_amb += ambiguous
        all_runs += runs
        rows.append({**base, "gt_video": clip.label, **acc.result(), **comp.result(), "ambiguous_px": ambiguous,
                     "model_run_share": _share(runs)})
    if len(clips) > 1:
        rows.append({**base, "gt_video": "all", **pooled.result(), **pooled_comp.result(), "ambiguous_px": pooled_amb,
                     "model_run_share": _share(all_runs)})
    return rows
