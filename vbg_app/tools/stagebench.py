"""Benchmarks for the TemporalFilter and Compositor stages on synthetic input (no model, no camera).

    python -m vbg_app.tools.stagebench filters   # flicker / lag / IoU table for none, ema, flow
    python -m vbg_app.tools.stagebench compose   # per-sub-step ms of the compositing path at 1280x720

The synthetic clip: a textured square moving at constant speed over a textured (or flat) background,
and a simulated noisy "segmenter" output at model resolution -- the true coverage blurred, plus
spatially correlated noise (edge wobble), a little per-pixel noise, and occasional random blobs and
holes -- so that an unfiltered mask flickers the way a real one does.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from vbg_app.temporal import FILTER_NAMES, create_filter


# --------------------------------------------------------------------------------------------------
# synthetic clip
# --------------------------------------------------------------------------------------------------

@dataclass
class SyntheticClip:
    frames: list = field(default_factory=list)   # BGR uint8 at frame resolution
    truth: list = field(default_factory=list)    # float32 (h, w) true coverage at model resolution
    noisy: list = field(default_factory=list)    # float32 (h, w) simulated segmenter output
    left: list = field(default_factory=list)     # true left (trailing) edge x, model px
    right: list = field(default_factory=list)    # true right (leading) edge x, model px
    band: tuple = (0, 0)                         # model rows fully inside the square
    speed: float = 0.0                           # model px per frame (to the right)


def _texture(rng: np.random.Generator, h: int, w: int, sigma: float = 1.2) -> np.ndarray:
    tex = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    tex = cv2.GaussianBlur(tex, (0, 0), sigma)
    return cv2.normalize(tex, None, 20, 235, cv2.NORM_MINMAX)


def make_moving_square(n_frames: int = 80, model_wh: tuple[int, int] = (398, 224), scale: int = 2,
                       speed: float = 3.0, textured_background: bool = True, noise: float = 0.2,
                       blob_rate: float = 0.35, camera_noise: float = 2.0, seed: int = 0) -> SyntheticClip:
    """A textured square moving right at ``speed`` model px/frame; frames at ``scale`` x model res."""
    rng = np.random.default_rng(seed)
    mw, mh = model_wh
    fw, fh = mw * scale, mh * scale
    v = int(round(speed * scale))
    side = int(0.5 * fh)
    x0, y0 = 4 * scale, (fh - side) // 2
    if x0 + side + v * (n_frames - 1) > fw:
        raise ValueError("the square would leave the frame: fewer frames or a lower speed")
    if textured_background:
        bg = _texture(rng, fh, fw)
    else:
        bg = np.full((fh, fw, 3), (90, 110, 120), np.uint8)
    sq = _texture(rng, side, side, sigma=2.0)
    sq = cv2.addWeighted(sq, 0.7, np.full_like(sq, (200, 120, 60)), 0.3, 0)
    clip = SyntheticClip(band=((y0 + scale - 1) // scale + 2, (y0 + side) // scale - 2), speed=v / scale)
    for t in range(n_frames):
        x = x0 + v * t
        frame = bg.copy()
        frame[y0:y0 + side, x:x + side] = sq
        if camera_noise > 0:  # sensor noise, new every frame
            frame = np.clip(frame + rng.normal(0.0, camera_noise, frame.shape), 0, 255).astype(np.uint8)
        full = np.zeros((fh, fw), np.float32)
        full[y0:y0 + side, x:x + side] = 1.0
        truth = cv2.resize(full, (mw, mh), interpolation=cv2.INTER_AREA)

        p = cv2.GaussianBlur(truth, (0, 0), 1.5)
        wobble = cv2.GaussianBlur(rng.standard_normal((mh, mw)).astype(np.float32), (0, 0), 3.0)
        wobble *= noise / max(float(wobble.std()), 1e-6)
        p += wobble + rng.normal(0.0, 0.05, (mh, mw)).astype(np.float32)
        while rng.random() < blob_rate:  # false-positive blobs and holes, one frame each
            cx, cy = int(rng.integers(0, mw)), int(rng.integers(0, mh))
            r = float(rng.uniform(3, 10))
            blob = np.zeros((mh, mw), np.float32)
            cv2.circle(blob, (cx, cy), int(r), 1.0, -1)
            blob = cv2.GaussianBlur(blob, (0, 0), r / 3)
            p += (-1.0 if truth[cy, cx] > 0.5 else 1.0) * float(rng.uniform(0.6, 1.0)) * blob
        np.clip(p, 0.0, 1.0, out=p)

        clip.frames.append(frame)
        clip.truth.append(truth)
        clip.noisy.append(p)
        clip.left.append(x / scale)
        clip.right.append((x + side) / scale)
    return clip


# --------------------------------------------------------------------------------------------------
# filter metrics
# --------------------------------------------------------------------------------------------------

def flicker(masks: list) -> float:
    """Mean fraction of binarised (> 0.5) pixels that flip between consecutive masks."""
    if len(masks) < 2:
        return 0.0
    b = [m > 0.5 for m in masks]
    return float(np.mean([np.mean(b[i] != b[i - 1]) for i in range(1, len(b))]))


def _edges(mask: np.ndarray, band: tuple[int, int], center: int) -> tuple[float, float]:
    """Left and right edge x (model px) of the binarised mask's run through ``center`` in ``band``."""
    cover = (mask[band[0]:band[1]] > 0.5).mean(axis=0) >= 0.5
    w = cover.shape[0]
    r = center
    while r < w and cover[r]:
        r += 1
    l = center
    while l >= 0 and cover[l]:
        l -= 1
    return float(l + 1), float(r)


def edge_lag(masks: list, clip: SyntheticClip, warmup: int = 5) -> tuple[float, float]:
    """(leading, trailing) edge lag in frames: how far the mask's edges trail the true ones."""
    if clip.speed <= 0:
        return float("nan"), float("nan")
    lead, trail = [], []
    for t in range(warmup, len(masks)):
        center = int((clip.left[t] + clip.right[t]) / 2)
        l, r = _edges(masks[t], clip.band, center)
        lead.append((clip.right[t] - r) / clip.speed)
        trail.append((clip.left[t] - l) / clip.speed)
    return float(np.mean(lead)), float(np.mean(trail))


def mean_iou(masks: list, clip: SyntheticClip) -> float:
    ious = []
    for m, t in zip(masks, clip.truth):
        a, b = m > 0.5, t > 0.5
        ious.append(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))
    return float(np.mean(ious))


def run_filter(flt, clip: SyntheticClip, frame_wh: tuple[int, int] | None = None) -> tuple[list, float]:
    """Feed the clip's noisy masks through ``flt``; returns (filtered masks, median ms per frame).

    ``frame_wh``: give the filter the frames resized to this size (e.g. 1280x720: the cost per camera
    frame, which includes the filter's own downscaling of the frame); default: the clip's frames."""
    flt.reset()
    out, ts = [], []
    frames = clip.frames if frame_wh is None else [
        cv2.resize(f, frame_wh, interpolation=cv2.INTER_LINEAR) for f in clip.frames]
    for frame, p in zip(frames, clip.noisy):
        t0 = time.perf_counter()
        out.append(flt.update(p, frame))
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts) * 1e3)


def evaluate_filters(filters: dict | None = None, n_frames: int = 80, seeds: tuple = (0, 1, 2),
                     textured_background: bool = True, speed: float = 3.0, verbose: bool = True,
                     frame_wh: tuple[int, int] | None = None, **clip_kwargs) -> dict:
    """Flicker, edge lag (frames), IoU and ms/frame for each filter, averaged over ``seeds``.

    ``frame_wh``: the frame size the filters are given (see :func:`run_filter`); the ms column is per
    frame of that size.

    ``filters`` maps a row name to a zero-argument factory (default: none, ema, flow with their
    defaults).  The ``truth`` row is the ground truth itself: the flicker that the motion alone causes.
    """
    if filters is None:
        filters = {name: (lambda n=name: create_filter(n)) for name in FILTER_NAMES}
    rows: dict = {}
    for seed in seeds:
        clip = make_moving_square(n_frames=n_frames, speed=speed, textured_background=textured_background,
                                  seed=seed, **clip_kwargs)
        results = {"truth": (clip.truth, 0.0)}
        for name, factory in filters.items():
            results[name] = run_filter(factory(), clip, frame_wh)
        for name, (masks, ms) in results.items():
            lead, trail = edge_lag(masks, clip)
            r = {"flicker": flicker(masks), "lag_lead": lead, "lag_trail": trail,
                 "iou": mean_iou(masks, clip), "ms": ms}
            acc = rows.setdefault(name, {k: 0.0 for k in r})
            for k, val in r.items():
                acc[k] += val / len(seeds)
    for r in rows.values():
        r["lag"] = max(r["lag_lead"], r["lag_trail"])
    if verbose:
        bg = "textured" if textured_background else "flat"
        what = f"square moving {speed:g} model px/frame" if speed > 0 else "static square"
        size = "" if frame_wh is None else f", frames given at {frame_wh[0]}x{frame_wh[1]}"
        print(f"{what}, {bg} background, {n_frames} frames x {len(seeds)} seeds{size}, "
              f"cv2 threads {cv2.getNumThreads()}")
        print(f"{'filter':<10}{'flicker %':>10}{'lag lead':>10}{'lag trail':>10}{'IoU':>8}{'ms/frame':>10}")
        for name, r in rows.items():
            print(f"{name:<10}{100 * r['flicker']:>10.2f}{r['lag_lead']:>10.2f}{r['lag_trail']:>10.2f}"
                  f"{r['iou']:>8.3f}{r['ms']:>10.2f}")
    return rows


# --------------------------------------------------------------------------------------------------
# compositor timing
# --------------------------------------------------------------------------------------------------

def person_scene(size_wh: tuple[int, int] = (1280, 720), model_wh: tuple[int, int] = (398, 224), seed: int = 0):
    """(frame BGR, true mask float32 at frame res, prob at model res): a textured head-and-shoulders
    shape on a high-frequency background, the prob blurred like a segmenter's, plus a stray blob."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # pixel-level noise: maximal high frequency
    person = _texture(rng, h, w, sigma=3.0)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 2, int(h * 0.38)), (int(w * 0.09), int(h * 0.2)), 0, 0, 360, 1, -1)      # head
    cv2.ellipse(mask, (w // 2, h), (int(w * 0.28), int(h * 0.42)), 0, 180, 360, 1, -1)             # shoulders
    cv2.rectangle(mask, (w // 2 - int(w * 0.05), int(h * 0.5)), (w // 2 + int(w * 0.05), int(h * 0.65)), 1, -1)
    frame = np.where(mask[:, :, None] > 0, person, bg)
    truth = mask.astype(np.float32)
    prob = cv2.resize(truth, model_wh, interpolation=cv2.INTER_AREA)
    prob = cv2.GaussianBlur(prob, (0, 0), 1.0)
    cv2.circle(prob, (int(model_wh[0] * 0.1), int(model_wh[1] * 0.2)), 4, 1.0, -1)  # a stray blob
    return frame, truth, prob


def bench_compose(frames: int = 300, size_wh: tuple[int, int] = (1280, 720), threads: int | None = None,
                  background: str = "blur", mirror: bool = True, verbose: bool = True) -> dict:
    """Median / p95 ms of ``Compositor.compose`` (refine + cleanup + background + blend + mirror).

    The CPU is often shared: p10 approximates a quiet machine, and the calling thread's CPU time
    (meaningful with ``threads=1``, when all OpenCV work runs in that thread) is immune to waiting.
    """
    from vbg_app.compose import Compositor

    frame, _, prob = person_scene(size_wh)
    extra = {} if threads is None else {"cv_threads": threads}
    comp = Compositor(background, refine=True, mirror=mirror, cleanup=True, **extra)
    for _ in range(10):  # warm-up: buffers, caches
        comp.compose(frame, prob)
    total, cpu, steps = [], [], {}
    for _ in range(frames):
        t0, c0 = time.perf_counter(), time.thread_time()
        comp.compose(frame, prob)
        total.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    for _ in range(frames):
        comp.compose(frame, prob, timing=True)
        for k, v in comp.last_timings.items():
            steps.setdefault(k, []).append(v)
    comp.close()
    res = {"median": float(np.median(total)), "p95": float(np.percentile(total, 95)),
           "p10": float(np.percentile(total, 10)), "cpu_median": float(np.median(cpu)),
           "steps": {k: float(np.median(v)) for k, v in steps.items()}, "threads": cv2.getNumThreads()}
    if verbose:
        w, h = size_wh
        print(f"compose {w}x{h}, background {background}, mirror {mirror}, refine+cleanup on, "
              f"cv2 threads {res['threads']}, {frames} frames")
        print(f"  total  median {res['median']:.2f} ms   p95 {res['p95']:.2f} ms   p10 {res['p10']:.2f} ms   "
              f"(calling thread's CPU time: median {res['cpu_median']:.2f} ms)")
        print("  steps (median ms): " + "  ".join(f"{k} {v:.2f}" for k, v in res["steps"].items()))
    return res


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vbg_app.tools.stagebench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    f = sub.add_parser("filters", help="flicker / lag of the temporal filters on a synthetic clip")
    f.add_argument("--frames", type=int, default=80)
    f.add_argument("--speed", type=float, default=3.0, help="model px per frame")
    f.add_argument("--flat", action="store_true", help="also run on a flat (textureless) background")
    f.add_argument("--size", default=None, help="give the filters the frames at this size, e.g. 1280x720 "
                   "(the ms column is then per frame of that size; default: 796x448, 2x the model's)")
    f.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (e.g. 1: one core)")
    # (each run: the moving square, then the same square standing still -- a person sitting still)
    c = sub.add_parser("compose", help="ms per 1280x720 frame of the compositing path")
    c.add_argument("--frames", type=int, default=300)
    c.add_argument("--size", default="1280x720")
    c.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: the Compositor's, 1)")
    c.add_argument("--background", default="blur", help="comma-separated specs, e.g. blur,color:#00FF00")
    args = ap.parse_args(argv)
    if args.what == "filters":
        if args.threads is not None:
            cv2.setNumThreads(args.threads)
        frame_wh = None if args.size is None else tuple(int(v) for v in args.size.lower().split("x"))
        for textured in (True, False) if args.flat else (True,):
            for speed in (args.speed, 0.0) if args.speed > 0 else (0.0,):
                evaluate_filters(n_frames=args.frames, speed=speed, textured_background=textured,
                                 frame_wh=frame_wh)
                print()
        return 0
    w, h = (int(v) for v in args.size.lower().split("x"))
    for bg in args.background.split(","):
        bench_compose(frames=args.frames, size_wh=(w, h), threads=args.threads, background=bg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
