"""Soak test: hours of meeting compressed into minutes. Prints and checks memory, stalls, threads and fps.

    python -m vbg_app.tools.soak --frames 20000 --size 1280x720 --change-every 300
    python -m vbg_app.tools.soak --video talk.mp4 --json soak.json      # your own clip, looped
    python -m vbg_app.tools.soak --source demo --frames 3000            # the built-in demo, no clip

The pipeline runs as fast as it can (not paced) on a looped video -- by default a 720p clip of the demo
portrait generated into a temporary folder, so the decoder is reopened at every loop as in a long call --
into a NullSink, with the real segmenter, temporal filter and compositor. Every ``--change-every`` frames
it does what a user clicking around does: stop, change the background (cycling blur, colours, every image
in assets/backgrounds, none) and the smoothing (flow, ema, none), switch the battery saver on or off (every
other change), and run again (a new capture thread each time, like the GUI's worker).

Reported, and checked (exit code 1 when a check fails):

* resident memory after warm-up (one full cycle of backgrounds) vs at the end: must grow < 5 %;
* the longest stall: the largest gap between two consecutive output frames, changes included: < 500 ms;
* threads (Python and OS) before the first frame vs after the last: no leak;
* fps over the whole run.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from vbg_app.procinfo import loadavg as _loadavg
from vbg_app.procinfo import os_threads, rss_mb

SMOOTHINGS = ("flow", "ema", "none")
MAX_GROWTH_PCT = 5.0
MAX_STALL_MS = 500.0


def backgrounds() -> list[str]:
    from vbg_app import resources

    images = sorted(str(p) for p in resources.asset_path("backgrounds").glob("*.jpg"))
    cycle = ["blur", "color:#00B140"]
    for i, path in enumerate(images):
        cycle.append(f"image:{path}")
        if i == len(images) // 2:
            cycle += ["none", "blur:40"]
    return cycle + ["color:#FFFFFF"]


def make_clip(folder: Path, size_wh: tuple[int, int], frames: int = 240, fps: float = 30.0) -> Path:
    """A looping test clip of the demo portrait (Motion-JPEG .avi: fast to write and to decode)."""
    import cv2

    from vbg_app.sources import DemoSource

    path = folder / f"soak_{size_wh[0]}x{size_wh[1]}.avi"
    demo = DemoSource(*size_wh, fps=fps, realtime=False)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size_wh)
    try:
        for _ in range(frames):
            writer.write(demo.read())
    finally:
        writer.release()
        demo.close()
    return path


class GapMeter:
    """Called after every output frame: the gaps between consecutive output frames, the largest one, where
    it happened, and how much CPU this process got during it (a stall with little CPU means the process was
    not scheduled: other programs had the cores, not vbg being slow)."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.last_cpu = 0.0
        self.gaps: list[float] = []
        self.max_gap = 0.0
        self.max_gap_frame = 0
        self.max_gap_cpu = 0.0
        self.frames = 0

    def __call__(self, pipe) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        self.frames += 1
        if self.last is not None:
            gap = now - self.last
            self.gaps.append(gap)
            if gap > self.max_gap:
                self.max_gap, self.max_gap_frame, self.max_gap_cpu = gap, self.frames, cpu - self.last_cpu
        self.last, self.last_cpu = now, cpu

    def percentile_ms(self, q: float) -> float:
        import numpy as np
        return float(np.percentile(self.gaps, q) * 1e3) if self.gaps else 0.0


def soak(frames: int, size_wh: tuple[int, int], change_every: int, video: str | None = None,
         source: str = "video", engine: str = "connectnet", model: str | None = None, provider: str = "auto",
         threads: int | None = None, warmup_frames: int | None = None, log=print) -> dict:
    from vbg_app.assembly import build_pipeline
    from vbg_app.config import PipelineConfig
    from vbg_app.specs import VideoSpec

    cycle = backgrounds()
    if warmup_frames is None:  # one full cycle of backgrounds (every image decoded once), at most half the run
        warmup_frames = min(frames // 2, max(2000, len(cycle) * change_every))
    with tempfile.TemporaryDirectory(prefix="vbg-soak-") as tmp:
        path = None if source == "demo" else Path(video) if video else make_clip(Path(tmp), size_wh)
        pipe = build_pipeline(PipelineConfig(
            source="demo" if path is None else str(VideoSpec(str(path))), size=tuple(size_wh), background=cycle[0],
            smoothing=SMOOTHINGS[0], sink="null", engine=engine, model=model, provider=provider, threads=threads,
            realtime=False, loop=True))
        src, seg = pipe.source, pipe.segmenter
        what = f"demo {size_wh[0]}x{size_wh[1]}" if path is None else \
            f"{'video' if video else 'generated clip'} {path.name} ({src.size_wh[0]}x{src.size_wh[1]}, looped)"
        log(f"soak: {frames} frames of {what} → {seg.name} on {seg.provider} "
            f"({getattr(seg, 'threads', '?') or 'all'} inference threads) → NullSink; background and "
            f"smoothing change every {change_every} frames, the battery saver every other change; "
            f"warm-up {warmup_frames} frames")
        meter = GapMeter()
        load_start = _loadavg()
        gc.collect()
        threads_start, os_threads_start = threading.active_count(), os_threads()
        rss_start = rss_mb()
        rss_warm = None
        samples = []
        changes = 0
        t0 = time.perf_counter()
        try:
            while pipe.stats.frames < frames:
                pipe.run(frames=min(change_every, frames - pipe.stats.frames), on_frame=meter)
                done = pipe.stats.frames
                if pipe.ended:
                    raise RuntimeError("the source ended; a soak needs a looping source")
                if rss_warm is None and done >= warmup_frames:
                    gc.collect()
                    rss_warm = rss_mb()
                if done % 1000 < change_every or done >= frames:
                    samples.append((done, round(rss_mb(), 1)))
                    log(f"[{done:6d}/{frames}] {done / (time.perf_counter() - t0):5.1f} fps | rss {samples[-1][1]:7.1f} MiB"
                        f" | longest stall {meter.max_gap * 1e3:5.1f} ms | errors {pipe.stats.errors}")
                if done < frames:  # what a user does in the GUI: pick another background, other smoothing
                    changes += 1
                    pipe.set_background(cycle[changes % len(cycle)])
                    pipe.set_filter(SMOOTHINGS[changes % len(SMOOTHINGS)])
                    pipe.set_battery_saver(changes % 4 in (1, 2))  # on for two changes, off for two
            wall = time.perf_counter() - t0
            gc.collect()
            rss_end = rss_mb()
            threads_end, os_threads_end = threading.active_count(), os_threads()
            stats = pipe.stats.as_dict()
        finally:
            pipe.close()
        threads_closed = threading.active_count()
    if rss_warm is None:
        rss_warm = rss_start
    growth = 100.0 * (rss_end - rss_warm) / rss_warm
    result = {
        "frames": pipe.stats.frames, "size": f"{size_wh[0]}x{size_wh[1]}", "source": what,
        "engine": seg.name, "provider": seg.provider, "threads": getattr(seg, "threads", None),
        "change_every": change_every, "changes": changes,
        "wall_s": round(wall, 1), "fps": round(pipe.stats.frames / wall, 1),
        "rss_start_mib": round(rss_start, 1), "rss_warm_mib": round(rss_warm, 1), "rss_end_mib": round(rss_end, 1),
        "rss_peak_sampled_mib": max(s[1] for s in samples) if samples else round(rss_end, 1),
        "rss_growth_pct": round(growth, 2), "warmup_frames": warmup_frames,
        "max_stall_ms": round(meter.max_gap * 1e3, 1), "max_stall_at_frame": meter.max_gap_frame,
        "max_stall_at_change": meter.max_gap_frame % change_every == 1,
        "max_stall_cpu_ms": round(meter.max_gap_cpu * 1e3, 1),
        "gap_p50_ms": round(meter.percentile_ms(50), 1), "gap_p99_ms": round(meter.percentile_ms(99), 1),
        "gap_p999_ms": round(meter.percentile_ms(99.9), 1),
        "stalls_over_100ms": sum(g > 0.1 for g in meter.gaps),
        "cores": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": _loadavg(),
        "threads_start": threads_start, "threads_end": threads_end, "threads_after_close": threads_closed,
        "os_threads_start": os_threads_start, "os_threads_end": os_threads_end,
        "errors": stats["errors"], "last_error": stats["last_error"], "rss_samples": samples,
    }
    result["checks"] = {
        f"rss growth < {MAX_GROWTH_PCT:g} %": growth < MAX_GROWTH_PCT,
        f"longest stall < {MAX_STALL_MS:g} ms": meter.max_gap * 1e3 < MAX_STALL_MS,
        "no thread leak": threads_end <= threads_start and os_threads_end <= os_threads_start,
        "no frame errors": stats["errors"] == 0,
    }
    result["ok"] = all(result["checks"].values())
    return result


def main(argv: list[str] | None = None) -> int:
    from vbg_app.config import parse_size
    from vbg_app.errors import VbgError
    from vbg_app.specs import ENGINES

    p = argparse.ArgumentParser(prog="python -m vbg_app.tools.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=20000, help="output frames in total (default 20000)")
    p.add_argument("--size", default="1280x720", help="size of the generated clip / the demo (default 1280x720)")
    p.add_argument("--change-every", type=int, default=300, help="frames between background changes (default 300)")
    p.add_argument("--video", help="loop this video instead of a generated clip")
    p.add_argument("--source", choices=("video", "demo"), default="video",
                   help="video: a looped clip (default); demo: the built-in demo, unpaced")
    p.add_argument("--engine", default="connectnet", choices=ENGINES.names)
    p.add_argument("--model", help="ONNX model (default: the shipped one)")
    p.add_argument("--provider", default="auto")
    p.add_argument("--threads", type=int, help="inference threads (default: the app's, half the cores; 0 = all)")
    p.add_argument("--warmup-frames", type=int, help="frames before the reference memory reading "
                   "(default: one full cycle of backgrounds, at most half the run)")
    p.add_argument("--json", help="also write the result to this file")
    args = p.parse_args(argv)
    if args.frames < 2 * args.change_every or args.change_every < 1:
        p.error("--frames must be at least twice --change-every")
    try:
        result = soak(args.frames, parse_size(args.size), args.change_every, video=args.video, source=args.source,
                      engine=args.engine, model=args.model, provider=args.provider, threads=args.threads,
                      warmup_frames=args.warmup_frames, log=lambda s: print(s, file=sys.stderr, flush=True))
    except VbgError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    r = result
    print(f"frames {r['frames']} in {r['wall_s']} s = {r['fps']} fps ({r['changes']} changes)\n"
          f"rss: start {r['rss_start_mib']} MiB, after warm-up {r['rss_warm_mib']} MiB, end {r['rss_end_mib']} MiB "
          f"→ growth {r['rss_growth_pct']:+.2f} %\n"
          f"longest stall {r['max_stall_ms']} ms (frame {r['max_stall_at_frame']}, "
          f"{'right after a change' if r['max_stall_at_change'] else 'mid-run'}; this process used "
          f"{r['max_stall_cpu_ms']} ms of CPU meanwhile); gaps p50 {r['gap_p50_ms']} / p99 {r['gap_p99_ms']} / "
          f"p99.9 {r['gap_p999_ms']} ms, {r['stalls_over_100ms']} over 100 ms\n"
          f"machine: {r['cores']} cores, load average {r['loadavg_start']} at start, {r['loadavg_end']} at end\n"
          f"threads: python {r['threads_start']} → {r['threads_end']} ({r['threads_after_close']} after close), "
          f"os {r['os_threads_start']} → {r['os_threads_end']}\n"
          f"errors {r['errors']}")
    for name, ok in r["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
