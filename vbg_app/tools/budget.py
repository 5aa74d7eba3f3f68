"""Where the CPU time of one frame goes: ``python -m vbg_app.tools.budget``.

    python -m vbg_app.tools.budget                                  # default engine/settings, 1280x720, 200 frames
    python -m vbg_app.tools.budget --engine mediapipe
    python -m vbg_app.tools.budget --model models/connectnet_256x144.onnx --size 1920x1080 --threads 1
    python -m vbg_app.tools.budget --json budget.json
    python -m vbg_app.tools.budget picture before.npz; ...; python -m vbg_app.tools.budget picture after.npz
    python -m vbg_app.tools.budget diff before.npz after.npz     # how the app's output frames and masks differ
    python -m vbg_app.tools.budget ort-options [MODEL] [RUNS]    # ONNX Runtime session options, CPU per run
    python -m vbg_app.tools.budget paced [--model M] [--fps 30]     # what a camera's pace adds to each stage

Every stage of the real pipeline (the same objects ``vbg run`` builds: DemoSource, the segmenter, the temporal
filter, the Compositor, a NullSink) runs in ONE thread, one stage at a time, and each is timed with
``time.process_time()`` (CPU time of every thread of the process: ONNX Runtime's intra-op workers included)
and ``time.perf_counter()`` (wall). Because only one stage runs at a time and the process is the only thing
whose CPU is counted, the CPU figures hold on a busy machine (other programs change wall time, and CPU time
only through caches and clock speed). The segmenter is split into its parts (resize, colour + normalise,
inference, output copy) and the compositor into its sub-steps (``compose(..., timing=True)``).

Then the same pipeline runs ``--frames`` frames with ``Pipeline.step()`` (one thread: what the stages cost plus
the pipeline's own Python: checks, stats, timestamps) and with ``Pipeline.run()`` (two threads and the
hand-off queue, as ``vbg run`` and ``vbg bench`` use it); the differences are the pipeline's bookkeeping and
the thread hand-offs. Figures are medians per frame (ms); the totals are means (CPU seconds / frames).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from vbg_app.errors import BadInput


def _med(xs) -> float:
    return float(np.median(xs)) if len(xs) else float("nan")


def _split_segment(seg, frame, rows: dict) -> np.ndarray:
    """One ``seg.segment(frame)`` split into its parts, each timed (CPU and wall) into ``rows``."""
    from vbg_app.engines.onnx_engine import OnnxSegmenter

    def timed(name, fn, *a):
        c0, t0 = time.process_time(), time.perf_counter()
        r = fn(*a)
        rows.setdefault(name, []).append(((time.process_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3))
        return r

    if isinstance(seg, OnnxSegmenter) and not hasattr(seg, "normalise"):  # an older engine (before/after runs)
        blob = timed("segment: resize + colour + normalise", seg.preprocess, frame)
        out = timed("segment: inference (session.run)", seg._run, blob)
        return timed("segment: output to mask", seg._postprocess, out)
    if isinstance(seg, OnnxSegmenter):
        # preprocess() = the resize into the model input, then normalise(): the resize's share is the difference
        c0, t0 = time.process_time(), time.perf_counter()
        seg.preprocess(frame)
        c1, t1 = time.process_time(), time.perf_counter()
        blob = seg.normalise()
        c2, t2 = time.process_time(), time.perf_counter()
        rows.setdefault("segment: resize to model input", []).append(
            ((c1 - c0 - (c2 - c1)) * 1e3, (t1 - t0 - (t2 - t1)) * 1e3))
        rows.setdefault("segment: colour order + normalise", []).append(((c2 - c1) * 1e3, (t2 - t1) * 1e3))
        out = timed("segment: inference (session.run)", seg._run, blob)
        return timed("segment: output to mask", seg._postprocess, out)
    mp = getattr(seg, "_segmenter", None)
    if mp is not None and hasattr(seg, "_mp"):  # MediaPipeSegmenter, the same steps as its segment()
        h, w = frame.shape[:2]
        scale = seg.long_side / max(h, w)
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        from vbg_app import framecache  # its images are left for the filter and the compositor (#16)

        small = timed("segment: resize to model input", framecache.shrink, frame, size)
        rgb = timed("segment: colour order + normalise", cv2.cvtColor, small, cv2.COLOR_BGR2RGB)
        res = timed("segment: inference (session.run)", mp.segment,
                    seg._mp.Image(image_format=seg._mp.ImageFormat.SRGB, data=rgb))
        return timed("segment: output to mask", lambda r: np.array(r.confidence_masks[0].numpy_view(),
                                                                   dtype=np.float32)[:, :, 0]
                     if r.confidence_masks[0].numpy_view().ndim == 3
                     else np.array(r.confidence_masks[0].numpy_view(), dtype=np.float32), res)
    return timed("segment", seg.segment, frame)


def _demo_pipeline(engine: str, model: str | None, threads: int | None, size_wh, smoothing: str | None = None,
                   background: str = "blur"):
    """The default pipeline on the demo source, assembled as ``vbg run`` assembles it (build_pipeline: the filter,
    the Compositor with the config's refine, mirror and clean-up, the null sink); only the segmenter (the CPU
    provider, ``threads``) and the demo source (not paced) are passed in and, if the build fails, closed by it.
    The stage-by-stage timings run these very objects."""
    from vbg_app.assembly import build_pipeline
    from vbg_app.config import DEFAULT_SMOOTHING, PipelineConfig
    from vbg_app.engines import create_segmenter
    from vbg_app.sources import DemoSource

    seg = create_segmenter(engine, model, "cpu", threads)
    src = DemoSource(size_wh[0], size_wh[1], realtime=False)
    return build_pipeline(PipelineConfig(engine=engine, background=background,
                                         smoothing=smoothing or DEFAULT_SMOOTHING, sink="null"),
                          source=src, segmenter=seg)


def measure(engine: str = "connectnet", model: str | None = None, threads: int | None = None,
            size_wh=(1280, 720), frames: int = 200, warmup: int = 20, smoothing: str | None = None,
            background: str = "blur") -> dict:
    from vbg_app.config import DEFAULT_SMOOTHING
    from vbg_app.pipeline import check_frame, check_mask
    from vbg_app.sources import to_bgr8

    smoothing = smoothing or DEFAULT_SMOOTHING
    pipe = _demo_pipeline(engine, model, threads, size_wh, smoothing, background)
    seg, src = pipe.segmenter, pipe.source
    flt, comp, sink = pipe.temporal, pipe.compositor, pipe.sink
    rows: dict[str, list] = {}

    def timed(name, fn, *a, **k):
        c0, t0 = time.process_time(), time.perf_counter()
        r = fn(*a, **k)
        rows.setdefault(name, []).append(((time.process_time() - c0) * 1e3, (time.perf_counter() - t0) * 1e3))
        return r

    try:
        whole = []
        for i in range(warmup + frames):
            if i == warmup:
                rows.clear()
            c0 = time.process_time()
            frame = timed("capture (demo rendering)", src.read)
            frame = timed("frame checks (check_frame, to_bgr8)", lambda f: to_bgr8(check_frame(f)), frame)
            prob = _split_segment(seg, frame, rows)
            prob = timed("mask check (check_mask)", check_mask, prob)
            prob = timed("temporal filter", flt.update, prob, frame)
            c1 = time.process_time()
            out = comp.compose(frame, prob, timing=True)
            rows.setdefault("compose (total)", []).append(((time.process_time() - c1) * 1e3, float("nan")))
            for k, v in (getattr(comp, "last_cpu_timings", None) or {}).items():
                rows.setdefault(f"compose: {k}", []).append((v, comp.last_timings.get(k, float("nan"))))
            timed("output (NullSink.send)", sink.send, out)
            if i >= warmup:  # less the second normalise() that timed the resize apart (see _split_segment)
                extra = rows["segment: colour order + normalise"][-1][0] if hasattr(seg, "normalise") else 0.0
                whole.append((time.process_time() - c0) * 1e3 - extra)
        stages = {k: {"cpu_ms": _med([c for c, _ in v]), "wall_ms": _med([w for _, w in v])} for k, v in rows.items()}

        pipe.temporal.reset()  # the step() and run() parts start from a fresh filter, as a new pipeline does
        for _ in range(warmup):
            pipe.step()
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(frames):
            pipe.step()
        step_cpu, step_wall = (time.process_time() - c0) * 1e3 / frames, (time.perf_counter() - t0) * 1e3 / frames
        pipe.run(frames=warmup)
        c0, t0 = time.process_time(), time.perf_counter()
        st = pipe.run(frames=frames)
        run_cpu, run_wall = (time.process_time() - c0) * 1e3 / frames, (time.perf_counter() - t0) * 1e3 / frames
        del st
    finally:
        pipe.close()
    from vbg_app.procinfo import loadavg

    return {
        "engine": engine, "model": str(getattr(seg, "path", model) or engine),
        "input_size_wh": list(getattr(seg, "input_size_wh", ()) or ()), "threads": getattr(seg, "threads", None),
        "size_wh": list(size_wh), "frames": frames, "smoothing": smoothing, "background": background,
        "stages": stages,
        "stages_cpu_sum_mean_ms": float(np.mean(whole)),
        "step_cpu_ms": step_cpu, "step_wall_ms": step_wall,
        "run_cpu_ms": run_cpu, "run_wall_ms": run_wall, "run_fps": 1e3 / run_wall,
        "loadavg": loadavg(),
    }


def format_budget(r: dict) -> str:
    w, h = r["size_wh"]
    lines = [f"{r['model']} (input {r['input_size_wh']}, threads {r['threads']}), {w}x{h}, {r['smoothing']}, "
             f"{r['background']}, {r['frames']} frames; load average {r['loadavg']}",
             f"{'part':<44}{'CPU ms':>8}{'wall ms':>9}"]
    for k, v in r["stages"].items():
        lines.append(f"{k:<44}{v['cpu_ms']:>8.2f}{v['wall_ms']:>9.2f}")
    lines += [
        f"{'stages, one thread (mean of the frame sums)':<44}{r['stages_cpu_sum_mean_ms']:>8.2f}",
        f"{'Pipeline.step(), one thread (mean)':<44}{r['step_cpu_ms']:>8.2f}{r['step_wall_ms']:>9.2f}",
        f"{'Pipeline.run(), two threads (mean)':<44}{r['run_cpu_ms']:>8.2f}{r['run_wall_ms']:>9.2f}"
        f"   = {r['run_fps']:.1f} fps",
    ]
    return "\n".join(lines)


PACED_MODES = ("back to back", "paced, sleeping", "paced, spinning")


def paced(engine: str = "connectnet", model: str | None = None, threads: int | None = 1, size_wh=(1280, 720),
          fps: float = 30.0, frames: int = 60, rounds: int = 6, warmup: int = 20) -> dict:
    """CPU per stage of the default pipeline (one thread) back to back, paced at ``fps`` by sleeping out the rest
    of each frame's slot (what a camera does to ``vbg run``), and paced by a busy-wait instead (a diagnosis, not a
    way to run). The three modes take turns, ``frames`` frames each, ``rounds`` times. Each stage is timed with
    ``time.process_time()`` (every thread of the process: MediaPipe infers on threads of its own; the stages run
    one after another, so each figure is that stage's work).

    Returns ``{mode: {stage: median CPU ms}}`` with a ``"total"`` stage (the frame's sum). When sleeping costs
    more than back to back and spinning does not, the difference is the CPU waking from idle (clock, caches), not
    work the app does because it is paced."""
    pipe = _demo_pipeline(engine, model, threads, size_wh)
    seg, src = pipe.segmenter, pipe.source
    flt, comp, sink = pipe.temporal, pipe.compositor, pipe.sink
    rows: dict[str, dict[str, list]] = {m: {} for m in PACED_MODES}
    period = 1.0 / fps

    def one(mode: str | None) -> None:
        t_slot = time.perf_counter()
        r = rows[mode] if mode else {}

        def timed(name, fn, *a):
            c0 = time.process_time()
            out = fn(*a)
            r.setdefault(name, []).append((time.process_time() - c0) * 1e3)
            return out

        c0 = time.process_time()
        frame = timed("capture (demo rendering)", src.read)
        prob = timed("segment", seg.segment, frame)
        prob = timed("temporal filter", flt.update, prob, frame)
        out = timed("compose", comp.compose, frame, prob)
        timed("output (NullSink.send)", sink.send, out)
        r.setdefault("total", []).append((time.process_time() - c0) * 1e3)
        end = t_slot + period
        if mode == "paced, sleeping":
            left = end - time.perf_counter()
            if left > 0:
                time.sleep(left)
        elif mode == "paced, spinning":
            while time.perf_counter() < end:
                pass

    try:
        for _ in range(warmup):
            one(None)
        for k in range(rounds):
            order = PACED_MODES[k % 3:] + PACED_MODES[:k % 3]  # each mode goes first in turn
            for mode in order:
                for _ in range(frames):
                    one(mode)
    finally:
        pipe.close()
    return {m: {k: _med(v) for k, v in st.items()} for m, st in rows.items()}


SAVER_MODES = ("off", "still only", "still + carry")


class _HeldFrames:
    """A source over frames held in memory (no decoding in the figures), from the first frame again on rewind()."""

    fps, live = 30.0, False

    def __init__(self, frames: list) -> None:
        self.frames, self.i = frames, 0
        self.size_wh = (frames[0].shape[1], frames[0].shape[0])

    def read(self) -> np.ndarray:
        frame = self.frames[self.i % len(self.frames)]
        self.i += 1
        return frame.copy()  # a new object per frame, as a camera gives

    def rewind(self) -> None:
        self.i = 0

    def close(self) -> None:
        pass


def saver(video: str, engine: str = "connectnet", model: str | None = None, threads: int | None = 1,
          rounds: int = 3, warmup: int = 10, limit: int = 400) -> dict:
    """What the battery saver saves on a real clip: the default pipeline (``Pipeline.step()``, one thread) on the
    first ``limit`` frames of ``video`` held in memory, with the saver off, on without the flow carry (``still
    only``) and on (``still + carry``, vbg run's --battery-saver), the modes taking turns ``rounds`` times, each
    from the clip's first frame with a fresh filter. Returns ``{mode: {"cpu_ms": median process CPU ms per frame,
    "rounds": [...], "model_run_share": frames the model ran on / frames (None when off)}}``."""
    from vbg_app.assembly import build_pipeline
    from vbg_app.config import PipelineConfig
    from vbg_app.engines import create_segmenter
    from vbg_app.saver import BatterySaver

    cap = cv2.VideoCapture(str(video))
    frames = []
    while cap.isOpened() and len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if len(frames) <= warmup:
        raise BadInput(f"{video}: {len(frames)} frames could be read, more than {warmup} are needed",
                       "give a video file OpenCV can decode (e.g. .mp4 or .avi) with more frames than --warmup")
    seg = create_segmenter(engine, model, "cpu", threads)
    src = _HeldFrames(frames)
    pipe = build_pipeline(PipelineConfig(engine=engine, background="blur", sink="null"), source=src, segmenter=seg)
    segs = {"off": seg, "still only": BatterySaver(seg, carry=False), "still + carry": BatterySaver(seg)}
    rows: dict[str, dict] = {m: {"rounds": [], "shares": []} for m in SAVER_MODES}
    n = len(frames) - warmup
    try:
        for _ in range(rounds):
            for mode in SAVER_MODES:
                s = pipe.segmenter = segs[mode]
                pipe.temporal.reset()
                src.rewind()
                if isinstance(s, BatterySaver):
                    s.reset()
                for _ in range(warmup):
                    pipe.step()
                runs0 = getattr(s, "inferences", 0)
                c0 = time.process_time()
                for _ in range(n):
                    pipe.step()
                rows[mode]["rounds"].append((time.process_time() - c0) * 1e3 / n)
                if isinstance(s, BatterySaver):
                    rows[mode]["shares"].append((s.inferences - runs0) / n)
    finally:
        pipe.segmenter = seg
        pipe.close()
    return {m: {"cpu_ms": _med(r["rounds"]), "rounds": r["rounds"],
                "model_run_share": _med(r["shares"]) if r["shares"] else None} for m, r in rows.items()}


def render_picture(path: str, frames: int = 60, size_wh=(1280, 720), engine: str = "connectnet",
                   model: str | None = None, background: str = "blur") -> None:
    """The app's output for the first ``frames`` demo frames (default settings, one thread: deterministic),
    saved as ``path`` (.npz: ``out`` (N, H, W, 3) uint8 and ``mask`` (N, h, w) float32, the filtered mask)."""
    from vbg_app.compose import Compositor
    from vbg_app.config import DEFAULT_SMOOTHING, PipelineConfig
    from vbg_app.engines import create_segmenter
    from vbg_app.sources import DemoSource
    from vbg_app.temporal import create_filter

    cfg = PipelineConfig()
    seg = create_segmenter(engine, model, "cpu", 1)
    src = DemoSource(size_wh[0], size_wh[1], realtime=False)
    flt = create_filter(DEFAULT_SMOOTHING)
    comp = Compositor(background, refine=cfg.refine, mirror=cfg.mirror, cleanup=cfg.cleanup)
    outs, masks = [], []
    for _ in range(frames):
        frame = src.read()
        prob = flt.update(seg.segment(frame), frame)
        masks.append(prob.copy())
        outs.append(comp.compose(frame, prob).copy())
    comp.close()
    src.close()
    seg.close()
    np.savez(path, out=np.stack(outs), mask=np.stack(masks))


def picture_diff(a_path: str, b_path: str) -> dict:
    """How two :func:`render_picture` files differ: output frames (max / mean |difference| in 8-bit levels, share
    of pixels off by more than 2 and 8 levels) and masks (max / mean |difference|, share flipped across 0.5)."""
    a, b = np.load(a_path), np.load(b_path)
    n = min(len(a["out"]), len(b["out"]))  # the frames both have
    oa, ob = a["out"][:n].astype(np.int16), b["out"][:n].astype(np.int16)
    d = np.abs(oa - ob)
    res = {"frames": int(len(oa)), "out_max": int(d.max()), "out_mean": float(d.mean()),
           "out_pct_over_2": float(100 * (d.max(axis=-1) > 2).mean()),
           "out_pct_over_8": float(100 * (d.max(axis=-1) > 8).mean())}
    ma, mb = a["mask"][:n], b["mask"][:n]
    if ma.shape == mb.shape:
        dm = np.abs(ma - mb)
        res.update(mask_max=float(dm.max()), mask_mean=float(dm.mean()),
                   mask_pct_flipped=float(100 * ((ma > 0.5) != (mb > 0.5)).mean()))
    return res


def ort_options(model: str, runs: int = 60) -> dict:
    """CPU ms per ``session.run`` of ``model`` under session options the app could use, interleaved run by run
    so that every variant sees the same load: the app's (ORT_ENABLE_ALL, 1 thread, spinning off), lower graph
    optimisation levels, no memory arena, denormals as zero, two intra-op threads, and IO binding with a
    preallocated output. Also the largest output difference to the app's options."""
    import onnxruntime as ort

    def make(level="ORT_ENABLE_ALL", threads=1, arena=True, dnz=False):
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads, so.intra_op_num_threads = 1, threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.enable_cpu_mem_arena = arena
        if dnz:
            so.add_session_config_entry("session.set_denormal_as_zero", "1")
        so.log_severity_level = 3
        return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])

    variants = {"app (ENABLE_ALL, 1 thread, no spinning)": make(), "ENABLE_EXTENDED": make("ORT_ENABLE_EXTENDED"),
                "ENABLE_BASIC": make("ORT_ENABLE_BASIC"), "no memory arena": make(arena=False),
                "denormals as zero": make(dnz=True), "2 intra-op threads": make(threads=2)}
    app = next(iter(variants.values()))
    inp = app.get_inputs()[0]
    x = (np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1 for d in inp.shape]) * 0.5
         ).astype(np.float32)
    ref = app.run(None, {inp.name: x})[0]
    io = app.io_binding()
    out = np.empty(ref.shape, np.float32)
    io.bind_cpu_input(inp.name, x)
    io.bind_output(app.get_outputs()[0].name, "cpu", 0, np.float32, list(ref.shape), out.ctypes.data)
    calls = {k: (lambda s=s: s.run(None, {inp.name: x})) for k, s in variants.items()}
    calls["app + IO binding, preallocated output"] = lambda: app.run_with_iobinding(io)
    cpu: dict = {k: [] for k in calls}
    diff = {k: float(np.abs(s.run(None, {inp.name: x})[0] - ref).max()) for k, s in variants.items()}
    for _ in range(runs):
        for k, fn in calls.items():
            c0 = time.process_time()
            fn()
            cpu[k].append((time.process_time() - c0) * 1e3)
    diff["app + IO binding, preallocated output"] = float(np.abs(out - ref).max())
    return {k: {"cpu_ms": _med(v), "max_diff": diff[k]} for k, v in cpu.items()}


def main(argv: list[str] | None = None) -> int:
    """A bad option, model or background is one line ``error: <what>. <fix>.`` and exit code 2, not a traceback."""
    from vbg_app.errors import guarded

    return guarded(_main, sys.argv[1:] if argv is None else list(argv))


def _main(argv: list[str]) -> int:
    from vbg_app.config import parse_size

    if argv[:1] == ["picture"]:  # python -m vbg_app.tools.budget picture OUT.npz [--size WxH] [--frames N] [--model M]
        pp = argparse.ArgumentParser(prog="python -m vbg_app.tools.budget picture")
        pp.add_argument("out")
        pp.add_argument("--size", default="1280x720")
        pp.add_argument("--frames", type=int, default=60)
        pp.add_argument("--engine", default="connectnet", choices=("connectnet", "mediapipe"))
        pp.add_argument("--model")
        pp.add_argument("--background", default="blur")
        a = pp.parse_args(argv[1:])
        render_picture(a.out, a.frames, parse_size(a.size), a.engine, a.model, a.background)
        return 0
    if argv[:1] == ["ort-options"]:  # python -m vbg_app.tools.budget ort-options [MODEL] [RUNS]
        from vbg_app import resources

        model = argv[1] if len(argv) > 1 else str(resources.model_path())
        res = ort_options(model, int(argv[2]) if len(argv) > 2 else 60)
        from vbg_app.procinfo import loadavg
        print(f"{model}: CPU ms per session.run (median, interleaved); load average {loadavg()}")
        for k, v in res.items():
            print(f"  {k:<42}{v['cpu_ms']:>8.2f}   max |output diff| {v['max_diff']:.1e}")
        return 0
    if argv[:1] == ["paced"]:  # python -m vbg_app.tools.budget paced [--model M] [--fps 30] ...
        pp = argparse.ArgumentParser(prog="python -m vbg_app.tools.budget paced")
        pp.add_argument("--engine", default="connectnet", choices=("connectnet", "mediapipe"))
        pp.add_argument("--model")
        pp.add_argument("--threads", type=int, default=1)
        pp.add_argument("--size", default="1280x720")
        pp.add_argument("--fps", type=float, default=30.0)
        pp.add_argument("--frames", type=int, default=60, help="frames per mode and round")
        pp.add_argument("--rounds", type=int, default=6)
        a = pp.parse_args(argv[1:])
        if not (1 <= a.fps <= 240) or a.frames < 1 or a.rounds < 1:
            raise BadInput("--fps, --frames or --rounds is out of range", "use --fps 1..240 and at least 1 frame and round")
        res = paced(a.engine, a.model, a.threads, parse_size(a.size), a.fps, a.frames, a.rounds)
        from vbg_app.procinfo import loadavg
        print(f"CPU ms per stage (median), {a.size}, {a.fps:g} fps, {a.rounds} rounds of {a.frames} frames per mode, "
              f"one thread; load average {loadavg()}")
        print(f"{'stage':<28}" + "".join(f"{m:>18}" for m in PACED_MODES))
        for k in res[PACED_MODES[0]]:
            print(f"{k:<28}" + "".join(f"{res[m][k]:>18.2f}" for m in PACED_MODES))
        return 0
    if argv[:1] == ["saver"]:  # python -m vbg_app.tools.budget saver VIDEO [--engine E] [--model M] [--rounds N]
        pp = argparse.ArgumentParser(prog="python -m vbg_app.tools.budget saver")
        pp.add_argument("video")
        pp.add_argument("--engine", default="connectnet", choices=("connectnet", "mediapipe"))
        pp.add_argument("--model")
        pp.add_argument("--threads", type=int, default=1)
        pp.add_argument("--rounds", type=int, default=3)
        pp.add_argument("--warmup", type=int, default=10)
        pp.add_argument("--limit", type=int, default=400, help="frames of the video to use (held in memory)")
        a = pp.parse_args(argv[1:])
        if a.rounds < 1 or a.warmup < 0 or a.limit < 2:
            raise BadInput("--rounds, --warmup or --limit is out of range", "use at least 1 round and 2 frames")
        res = saver(a.video, a.engine, a.model, a.threads, a.rounds, a.warmup, a.limit)
        from vbg_app.procinfo import loadavg
        print(f"{a.video}: CPU ms per frame of the default pipeline (one thread, frames held in memory), median of "
              f"{a.rounds} rounds; load average {loadavg()}")
        for m, r in res.items():
            share = "" if r["model_run_share"] is None else f"   model ran on {100 * r['model_run_share']:.1f} %"
            print(f"  {m:<16}{r['cpu_ms']:>8.2f}   rounds {' '.join(f'{x:.2f}' for x in r['rounds'])}{share}")
        return 0
    if argv[:1] == ["diff"]:  # python -m vbg_app.tools.budget diff BEFORE.npz AFTER.npz
        print(json.dumps(picture_diff(argv[1], argv[2])))
        return 0

    ap = argparse.ArgumentParser(prog="python -m vbg_app.tools.budget", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default="connectnet", choices=("connectnet", "mediapipe"))
    ap.add_argument("--model", help="ONNX model (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: the app's, auto)")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--smoothing", default=None, help="temporal filter (default: the app's)")
    ap.add_argument("--background", default="blur")
    ap.add_argument("--json", help="write the figures as JSON")
    args = ap.parse_args(argv)
    r = measure(args.engine, args.model, args.threads, parse_size(args.size), args.frames, args.warmup,
                args.smoothing, args.background)
    print(format_budget(r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
