"""Time ONNX segmentation models side by side with onnxruntime on the CPU.

The models run interleaved (one inference of each, in turn, per round) so that load from other
processes on a shared machine hits all of them alike; the table shows the median and the 10th/90th
percentile milliseconds per inference after a warm-up.

    python -m vbg_app.train.speed_check models/connectnet.onnx \\
        ../shared/models/reference/pphumanseg_v1_lite_398x224.onnx --threads 1 2 --runs 200

A model with a dynamic height and width (``vbg.fit = aspect``) is timed at the input size the app gives a
``--frame`` (default 1280x720: 400x224 for a 398x224 model), with those dimensions fixed as the app's engine
does (vbg_app/engines/onnx_engine.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}


def _run_size(path: Path, frame_wh=(1280, 720)):
    """``(free dim names, (w, h))`` for a dynamic-size vbg model, else ``None``."""
    import onnxruntime as ort

    from vbg_app.engines.fit import fit_size
    from vbg_app.engines.meta import parse_meta

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = sess.get_inputs()[0].shape
    if all(isinstance(d, int) for d in shape[2:]):
        return None
    meta = parse_meta(sess.get_modelmeta().custom_metadata_map, str(path))
    return tuple(shape[2:]), fit_size(frame_wh, meta.input_size_wh, meta.fit)


def _session(path: Path, threads: int, opt: str, frame_wh=(1280, 720)):
    import onnxruntime as ort

    so = ort.SessionOptions()
    dynamic = _run_size(path, frame_wh)
    if dynamic:
        (hname, wname), (w, h) = dynamic
        so.add_free_dimension_override_by_name(hname, h)
        so.add_free_dimension_override_by_name(wname, w)
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt])
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _feed(sess) -> dict:
    inp = sess.get_inputs()[0]  # dynamic dims are fixed by the session's overrides (_session)
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    return {inp.name: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}


def time_models(paths: list[Path], threads: int, runs: int = 200, warmup: int = 20, opt: str = "all",
                frame_wh=(1280, 720)) -> list[dict]:
    sessions = [_session(p, threads, opt, frame_wh) for p in paths]
    feeds = [_feed(s) for s in sessions]
    for _ in range(warmup):
        for s, f in zip(sessions, feeds):
            s.run(None, f)
    times = [[] for _ in paths]
    for _ in range(runs):
        for i, (s, f) in enumerate(zip(sessions, feeds)):
            t0 = time.perf_counter()
            s.run(None, f)
            times[i].append((time.perf_counter() - t0) * 1e3)
    return [{"model": str(p), "threads": threads, "opt": opt, "median_ms": float(np.median(t)),
             "input_wh": tuple(reversed(next(iter(f.values())).shape[2:])),
             "p10_ms": float(np.percentile(t, 10)), "p90_ms": float(np.percentile(t, 90))}
            for p, t, f in zip(paths, times, feeds)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vbg_app.train.speed_check", description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="ONNX files to compare")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="intra-op thread counts (default: 1 2)")
    parser.add_argument("--runs", type=int, default=200, help="timed inferences per model (default: 200)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--frame", default="1280x720", help="frame size that sets the input of dynamic-size "
                        "(vbg.fit = aspect) models (default: 1280x720)")
    parser.add_argument("--opt", nargs="+", choices=sorted(OPT_LEVELS), default=["all"],
                        help="onnxruntime graph optimisation levels to try (default: all)")
    args = parser.parse_args(argv)
    for p in args.models:
        if not p.is_file():
            print(f"error: {p} does not exist", file=sys.stderr)
            return 2
    try:
        frame_wh = tuple(int(v) for v in args.frame.lower().split("x"))
        assert len(frame_wh) == 2 and min(frame_wh) > 0
    except (ValueError, AssertionError):
        print(f"error: --frame {args.frame!r} is not WIDTHxHEIGHT, e.g. 640x480", file=sys.stderr)
        return 2
    width = max(len(str(p)) for p in args.models)
    print(f"{'model':<{width}}  input    threads  opt       median_ms  p10_ms  p90_ms")
    for opt in args.opt:
        for threads in args.threads:
            for r in time_models(args.models, threads, args.runs, args.warmup, opt, frame_wh):
                size = "x".join(map(str, r["input_wh"]))
                print(f"{r['model']:<{width}}  {size:<7}  {threads:>7}  {opt:<8}  {r['median_ms']:>9.2f}  "
                      f"{r['p10_ms']:>6.2f}  {r['p90_ms']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
