"""The human-readable report of ``vbg eval`` (the tables printed after a run, from its JSON result)."""
from __future__ import annotations

import math


def _fmt(x, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _table(headers: list[str], rows: list[list[str]], left: int = 2) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) if i < left else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def format_table(result: dict) -> str:
    """The human-readable report of a ``run`` result (the JSON dict)."""
    out = []
    if result["images"]:
        rows = [[r["model"], r["data"], str(r["n_images"]), _fmt(r["person_iou"], ".4f"), _fmt(r["miou"], ".4f"),
                 _fmt(r["sc"], ".4f"), _fmt(r["person_iou_per_image"], ".4f"), _fmt(r["median_ms"], ".1f")]
                for r in result["images"]]  # folders in the order given, models in the order given
        out.append(_table(["model", "data", "images", "IoU", "mIoU", "SC", "IoU/img", "ms"], rows))
    if result["flicker"]:
        rows = [[r["model"], r["video"], str(r["n_frames"]), _fmt(r["flicker"] * 100, ".3f"),
                 _fmt(r["median_ms"], ".1f")]
                for r in result["flicker"]]
        out.append(_table(["model", "video", "frames", "flicker %", "ms"], rows))
    if result.get("teacher_agreement"):
        rows = [[r["model"], r["video"], str(r["n_frames"]), _fmt(r["teacher_iou"], ".4f"),
                 _fmt(_pct(r["contradiction"]), ".3f")] for r in result["teacher_agreement"]]
        out.append(_table(["model", "video", "labelled frames", "IoU vs teacher fusion",
                           "contradicts unanimous teachers %"], rows))
    if result.get("gt_video"):
        rows = [[r["model"], r["gt_video"], str(r["n_frames"]), str(r["n_fast"]), _fmt(r["person_iou"], ".4f"),
                 _fmt(r["iou_fast"], ".4f"), _fmt(_pct(r["mc_flicker"]), ".3f"), _fmt(_pct(r["far_blob_flicker"]), ".3f"),
                 _fmt(_pct(r["flicker"]), ".3f"), _fmt(r["median_ms"], ".1f")] for r in result["gt_video"]]
        out.append(_table(["model", "gt video", "frames", "fast", "IoU", "IoU fast", "mc flicker %", "far-blob %",
                           "flicker %", "ms"], rows))
    if result.get("pipeline"):
        rows = [[r["model"], r["gt_video"], r["smoothing"] + ("" if r["refine"] else " (no refine)"),
                 _fmt(r["person_iou"], ".4f"), _fmt(r["iou_fast"], ".4f"), _fmt(_pct(r["mc_flicker"]), ".3f"),
                 _fmt(_pct(r["far_blob_flicker"]), ".3f"), _fmt(_pct(r["flicker"]), ".3f"),
                 _fmt(r["composite_band"], ".2f"), _fmt(r["composite_rest"], ".3f")] for r in result["pipeline"]]
        heads = ["model", "gt video", "smoothing", "IoU", "IoU fast", "mc flicker %", "far-blob %", "flicker %",
                 "comp. edge", "comp. rest"]
        if any(r.get("model_run_share") is not None for r in result["pipeline"]):  # --battery-saver
            heads.append("model ran %")
            for row, r in zip(rows, result["pipeline"]):
                row.append(_fmt(_pct(r["model_run_share"]), ".1f") if r.get("model_run_share") is not None else "-")
        out.append(_table(heads, rows, left=3))
    if result.get("demo"):
        rows = [[r["model"], _fmt(r["photo_iou"], ".4f"), _fmt(_pct(r["photo_flag_as_person"]), ".1f"),
                 str(r["n_frames"]), _fmt(r["demo_person_iou"], ".4f"), _fmt(_pct(r["demo_flag_as_person"]), ".1f")]
                for r in result["demo"]]
        out.append(_table(["model", "demo photo IoU", "flag as person %", "frames", "demo frames IoU",
                           "flag as person %"], rows))
    rows = [[m["label"], m["engine"], m["provider"], "x".join(map(str, m["input_size_wh"]))
             if m["engine"] != "mediapipe" else "long side 256",
             str(m["n_inferences"]), _fmt(m["median_ms"], ".1f")] for m in result["models"]]
    out.append(_table(["model", "engine", "provider", "input", "calls", "median ms"], rows))
    out.append("IoU = dataset person IoU (Σ∩/Σ∪), mIoU = mean of person and background IoU, SC = mean per-image "
               "Semantic Connectivity, IoU/img = mean per-image IoU; flicker = % of pixels flipping per frame "
               "(raw output, model resolution); threshold 0.5.")
    if result.get("gt_videos"):
        floor = max((g["gt_mc_flicker"] for g in result["gt_videos"] if g["gt_mc_flicker"] is not None
                     and not math.isnan(g["gt_mc_flicker"])), default=math.nan)
        out.append("GT videos (docs/gt_videos.md), at frame resolution: IoU pooled over all frames, IoU fast = over "
                   "the fast-lean frames; mc flicker = % of pixels per frame whose mask changes in a way the "
                   "person's known motion does not explain (1 px tolerance); far-blob = % of pixels flipping "
                   f"farther than 8 px from the person; the GT itself scores mc flicker {_fmt(_pct(floor), '.4f')} %"
                   + ("; comp. = mean abs difference (0..255) from the ideal composite, within 10 px of the true "
                      "edge and elsewhere." if result.get("pipeline") else "."))
    return "\n\n".join(out)


def _pct(x):
    return None if x is None else x * 100
