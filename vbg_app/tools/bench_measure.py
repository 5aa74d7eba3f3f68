"""One ``vbg bench`` configuration (engine x provider x threads x size) measured, and the machine it ran on:
the model alone, the real pipeline at full speed and paced, process CPU and memory. :mod:`vbg_app.tools.bench`
describes the options, the rows (schema ``vbg.bench/1``) and the command; ``--isolate`` runs
:func:`measure_spec` in a fresh interpreter through ``python -m vbg_app.tools.bench --worker JOB OUT``."""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vbg_app.errors import BadInput, VbgError
from vbg_app.procinfo import loadavg as _loadavg
from vbg_app.procinfo import peak_rss_mb, rss_mb

DEFAULT_FRAMES, DEFAULT_WARMUP = 120, 10
STAGES = ("capture", "inference", "filter", "composite", "output")


# -- options -------------------------------------------------------------------------------------------
@dataclass
class EngineSpec:
    label: str
    kind: str                 # connectnet | mediapipe
    model: str | None = None  # None: the engine's shipped model


@dataclass
class RunSpec:
    engine: EngineSpec
    provider: str             # short name
    threads: int | None       # 1, 0 (= all) or None (engine decides)


@dataclass
class BenchOptions:
    engines: list = field(default_factory=list)      # EngineSpec
    providers: list = field(default_factory=list)    # short names, or ["all"]
    threads: list = field(default_factory=lambda: [1, 0])
    sizes: list = field(default_factory=list)        # (w, h)
    video: str | None = None
    frames: int = DEFAULT_FRAMES
    warmup: int = DEFAULT_WARMUP
    smoothing: str = "steady"                         # config.DEFAULT_SMOOTHING (the CLI passes it)
    background: str = "blur"
    matte: bool = True                               # the compositor's matte stage (--no-matte: off)
    paced_fps: float = 30.0
    battery_saver: bool = False
    quick: bool = False
    isolate: bool = False
    progress: bool | None = None                     # None: only on a terminal


# -- machine -------------------------------------------------------------------------------------------
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        res = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in res.stdout.splitlines() if line.strip()] if res.returncode == 0 else []


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # mediapipe may fail to import for reasons other than ImportError
        return None
    return getattr(mod, "__version__", "unknown")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info() -> dict:
    import cv2
    import onnxruntime as ort

    from vbg_app.engines.onnx_engine import available_providers

    return {
        "cpu": _cpu_name(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "gpus": _gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": available_providers(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "mediapipe": _version("mediapipe"),
        "loadavg_start": _loadavg(),
        "loadavg_end": None,
    }


def report_path(path) -> str:
    """``path`` as a report shows it: relative to the current folder when it lies inside it (a report committed
    from a checkout carries no machine's folders, e.g. ``models/connectnet.onnx``), absolute otherwise."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(p)


# -- frames --------------------------------------------------------------------------------------------
class _Resized:
    """A source whose frames are resized to ``size_wh`` (``--video`` with explicit ``--sizes``)."""

    def __init__(self, inner, size_wh) -> None:
        import cv2

        self._cv2, self.inner, self.size_wh = cv2, inner, tuple(size_wh)
        self.fps, self.live = inner.fps, False

    def read(self):
        frame = self.inner.read()
        if frame is None or (frame.shape[1], frame.shape[0]) == self.size_wh:
            return frame
        return self._cv2.resize(frame, self.size_wh, interpolation=self._cv2.INTER_AREA)

    def close(self) -> None:
        self.inner.close()


class _Paced:
    """Hands over the inner source's frames at ``fps`` (sleeping, never spinning), like a camera."""

    def __init__(self, inner, fps: float) -> None:
        self.inner, self.fps, self.size_wh, self.live = inner, fps, inner.size_wh, True
        self._period, self._due = 1.0 / fps, None

    def read(self):
        now = time.perf_counter()
        if self._due is None:
            self._due = now
        elif self._due > now:
            time.sleep(self._due - now)
        else:
            self._due = max(self._due, now - self._period)  # late: no burst of catch-up frames
        self._due += self._period
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


def open_frames(video: str | None, size_wh):
    """A non-paced source of ``size_wh`` frames: the demo, or the video (looped, resized when needed)."""
    from vbg_app.sources import DemoSource, VideoSource

    if video is None:
        return DemoSource(size_wh[0], size_wh[1], realtime=False)
    src = VideoSource(video, loop=True, realtime=False)
    return src if size_wh is None or tuple(src.size_wh) == tuple(size_wh) else _Resized(src, size_wh)


# -- one configuration ---------------------------------------------------------------------------------
def _nan_to_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def _row(spec: RunSpec, size_wh, **fields) -> dict:
    row = {
        "engine": spec.engine.label, "engine_kind": spec.engine.kind, "model_path": spec.engine.model,
        "model_name": None, "input_size_wh": None, "provider": spec.provider, "provider_ran": None,
        "threads": spec.threads, "size_wh": list(size_wh) if size_wh else None,
        "status": "ok", "reason": "", "fix": "",
        "model": None, "pipeline": None, "cpu_ms_per_frame": None, "cpu_cores_used": None, "paced": None,
        "rss_mb": None, "peak_rss_mb": None, "peak_scope": "process",
    }
    row.update(fields)
    return row


def _open_segmenter(spec: RunSpec):
    from vbg_app.engines import create_segmenter

    if spec.engine.kind == "mediapipe" and spec.provider != "cpu":
        raise BadInput(f"the mediapipe engine runs on the CPU only (asked for {spec.provider})",
                       "benchmark mediapipe with the cpu provider")
    return create_segmenter(spec.engine.kind, spec.engine.model, spec.provider, spec.threads or 0, strict=True)


def _model_timing(seg, frames: list, n: int, warmup: int) -> dict:
    for i in range(warmup):
        seg.segment(frames[i % len(frames)])
    times = np.empty(n)
    c0 = time.process_time()
    for i in range(n):
        t0 = time.perf_counter()
        seg.segment(frames[i % len(frames)])
        times[i] = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ms = times * 1e3
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean()),
            "cpu_ms": cpu * 1e3 / n, "n": n}


def _fresh_stats(pipe, keep: int) -> None:
    """Start the pipeline's statistics over (after the warm-up), with windows that hold every frame."""
    from vbg_app.pipeline import PipelineStats

    stats = PipelineStats(provider=getattr(pipe.segmenter, "provider", ""))
    for w in list(stats.stage_ms.values()) + [stats.latency_ms]:
        w.values = deque(maxlen=max(keep, 1) + 8)
    pipe.stats = stats


def _pipeline_run(seg, source, opts: BenchOptions, n: int, warmup: int) -> tuple[dict, float]:
    from vbg_app.assembly import build_pipeline
    from vbg_app.config import PipelineConfig

    saver = None
    if opts.battery_saver:  # the segmenter is closed by the caller, not by the saver
        from vbg_app.saver import BatterySaver
        seg = saver = BatterySaver(seg)
    # the caller's source and segmenter (the model was timed alone first), the rest as vbg run opens it
    pipe = build_pipeline(PipelineConfig(background=opts.background, smoothing=opts.smoothing, matte=opts.matte,
                                         sink="null"),
                          source=source, segmenter=seg)
    try:
        if warmup:
            pipe.run(frames=warmup)
        _fresh_stats(pipe, n)
        if saver is not None:
            saver.inferences = saver.reused = 0
        c0, t0 = time.process_time(), time.perf_counter()
        stats = pipe.run(frames=n)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        pipe.compositor.close()
        pipe.sink.close()
    done = stats.frames
    runs = None if saver is None else saver.inferences / max(1, saver.inferences + saver.reused)
    return ({"fps": done / wall if wall > 0 and done else 0.0, "frames": done, "wall_s": wall, "cpu_s": cpu,
             "stage_ms": {s: stats.stage_ms[s].median() for s in STAGES},
             "latency_ms": stats.latency_ms.median(), "errors": stats.errors, "last_error": stats.last_error,
             "model_run_share": runs},
            cpu * 1e3 / done if done else float("nan"))


def measure_size(seg, spec: RunSpec, size_wh, opts: BenchOptions) -> dict:
    """Model timing, full-speed pipeline and (optionally) paced pipeline for one segmenter at one size."""
    row = _row(spec, size_wh)
    source = open_frames(opts.video, size_wh)
    try:
        size_wh = tuple(source.size_wh)
        row["size_wh"] = list(size_wh)
        frames = [source.read() for _ in range(min(4, max(1, opts.frames)))]
        row["model"] = _model_timing(seg, frames, opts.frames, opts.warmup)
        del frames
        pipeline, cpu_ms = _pipeline_run(seg, source, opts, opts.frames, opts.warmup)
    finally:
        source.close()
    row["pipeline"] = pipeline
    row["cpu_ms_per_frame"] = cpu_ms
    row["cpu_cores_used"] = cpu_ms * pipeline["fps"] / 1e3 if math.isfinite(cpu_ms) else None
    if opts.paced_fps > 0:
        n = max(10, min(opts.frames, int(round(opts.paced_fps * 4))))  # at most ~4 s per configuration
        paced_src = _Paced(open_frames(opts.video, size_wh), opts.paced_fps)
        try:
            p, p_cpu_ms = _pipeline_run(seg, paced_src, opts, n, min(opts.warmup, 10))
            wall, cpu = p["wall_s"], p["cpu_s"]
        finally:
            paced_src.close()
        row["paced"] = {"target_fps": opts.paced_fps, "fps": p["fps"], "cpu_ms_per_frame": p_cpu_ms,
                        "cpu_pct": 100.0 * cpu / wall / usable_cores() if wall > 0 else None, "frames": p["frames"]}
    row["provider_ran"] = getattr(seg, "provider", None)
    row["input_size_wh"] = list(seg.input_size_wh) if getattr(seg, "input_size_wh", None) else None
    meta = getattr(seg, "meta", None)
    row["model_name"] = getattr(meta, "name", None) or spec.engine.kind
    if getattr(seg, "path", None) is not None:
        row["model_path"] = report_path(seg.path)
    if pipeline["frames"] == 0:
        row.update(status="error", reason=f"no frame came through the pipeline ({pipeline['last_error'] or 'no error'})")
    elif row["provider_ran"] and spec.provider != row["provider_ran"]:
        row.update(status="unavailable", reason=f"{spec.provider} fell back to {row['provider_ran']} while running "
                                                f"({getattr(seg, 'fallback_reason', '')})")
    row["rss_mb"], row["peak_rss_mb"] = rss_mb(), peak_rss_mb()
    return row


def measure_spec(spec: RunSpec, sizes, opts: BenchOptions, on_size=None) -> list[dict]:
    """All sizes of one (engine, provider, threads); rows of status ``unavailable`` when it does not load."""
    try:
        seg = _open_segmenter(spec)
    except VbgError as exc:
        if on_size:
            on_size(len(sizes))
        return [_row(spec, None, status="unavailable", reason=exc.what, fix=exc.fix,
                     rss_mb=rss_mb(), peak_rss_mb=peak_rss_mb())]
    rows = []
    try:
        for size in sizes:
            try:
                rows.append(measure_size(seg, spec, size, opts))
            except VbgError as exc:
                rows.append(_row(spec, size, status="error", reason=exc.what, fix=exc.fix))
            except Exception as exc:  # a crash in one configuration must not lose the others
                rows.append(_row(spec, size, status="error", reason=f"{type(exc).__name__}: {str(exc)[:200]}"))
            if on_size:
                on_size(1)
    finally:
        seg.close()
    return rows


def _measure_isolated(spec: RunSpec, size, opts: BenchOptions) -> list[dict]:
    """``measure_spec`` for one size in a fresh interpreter, so its peak memory is its own."""
    with tempfile.TemporaryDirectory(prefix="vbg-bench-") as tmp:
        job, out = Path(tmp, "job.json"), Path(tmp, "out.json")
        job.write_text(json.dumps({"spec": asdict(spec), "size": list(size), "opts": asdict(opts)}))
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding vbg_app
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        res = subprocess.run([sys.executable, "-m", "vbg_app.tools.bench", "--worker", str(job), str(out)],
                             env=env, capture_output=True, text=True)
        if res.returncode != 0 or not out.is_file():
            tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
            return [_row(spec, size, status="error", reason=f"benchmark subprocess failed ({tail})")]
        rows = json.loads(out.read_text())
    for r in rows:
        r["peak_scope"] = "isolated"
    return rows


def _worker(job_path: str, out_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    s = job["spec"]
    spec = RunSpec(EngineSpec(**s["engine"]), s["provider"], s["threads"])
    o = job["opts"]
    o["engines"] = [EngineSpec(**e) for e in o["engines"]]
    opts = BenchOptions(**o)
    rows = measure_spec(spec, [tuple(job["size"])], opts)
    Path(out_path).write_text(json.dumps(_nan_to_none(rows)))
    return 0
