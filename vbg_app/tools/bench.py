"""``vbg bench``: will vbg run smoothly here, and how much CPU does it leave for the meeting?

Measures every engine × usable inference provider × frame size side by side in one run, without a camera
(the built-in moving portrait, :class:`~vbg_app.sources.DemoSource`, or ``--video FILE``)::

    vbg bench                                   # connectnet + mediapipe, every usable provider, 3 sizes
    vbg bench --quick                           # 1280x720 only, fewer frames: well under a minute
    vbg bench --model other.onnx --engines none --sizes 1280x720 --providers cuda,cpu \\
              --json bench.json --markdown bench.md --plot bench.png

What is measured, per configuration (engine, provider, threads, size)
--------------------------------------------------------------------
* **model**: wall time of ``segmenter.segment(frame)`` (resize + normalise + inference + output copy),
  median and p95 over ``--frames`` calls after ``--warmup`` calls, and process CPU time per call.
* **pipeline**: the real :class:`~vbg_app.pipeline.Pipeline` (both of its threads) from the source to a
  :class:`~vbg_app.sinks.NullSink`, ``--background`` (default ``blur``) and ``--smoothing`` (default
  :data:`vbg_app.config.DEFAULT_SMOOTHING`), as fast as it goes: output frames / wall time, and the
  median milliseconds of each stage (capture = demo rendering or video decoding, inference, temporal
  filter, composite, output) and of one frame's latency. The stages of the two threads overlap, so
  1000 / fps is about the slower half (capture+inference+filter vs composite+output), not the sum.
* **cpu_ms_per_frame**: ``time.process_time()`` (all threads of this process) spent per output frame in
  that pipeline run — what the meeting app loses; ``cpu_cores_used`` = the same at the achieved fps.
* **paced** (``--paced-fps``, default 30; 0 = off): the same pipeline fed at a camera's rate, and the
  process CPU it keeps busy at that rate (``cpu_pct`` of the whole machine): the CPU left to the
  meeting app is 100 − ``cpu_pct``. Measured, not extrapolated, because ONNX Runtime's spinning worker
  threads cost CPU that a full-speed run hides.
* **memory**: ``rss_mb`` (current resident set after the configuration) and ``peak_rss_mb`` (the process's
  peak resident set: ``getrusage`` on Unix, the peak working set on Windows; see ``vbg_app/procinfo.py``). The peak is process-wide and never
  goes down: in one process it is the peak of everything run so far (``peak_scope: "process"``). With
  ``--isolate`` each configuration runs in a fresh subprocess and its peak is its own
  (``peak_scope: "isolated"``; costs an interpreter start and a model load per configuration).

Providers: ``--providers all`` (default) benchmarks the CPU (with 1 thread and with all cores, see
``--threads``) and every other provider this onnxruntime build offers; each is requested with
``strict=True``, so one that is offered but does not load (missing CUDA libraries, say) is reported as
*unavailable* with the reason and the fix instead of being silently measured on the CPU. Naming a provider
this build lacks (``--providers cuda,cpu``) gives an *unavailable* row, never a crash. MediaPipe runs on its
own CPU threads (XNNPACK): it gets one CPU row per size (``threads: null``).

JSON (``--json PATH``), schema ``vbg.bench/1``; times in milliseconds, memory in MiB, NaN written as null::

    {
      "schema": "vbg.bench/1",
      "vbg_version": "0.1.0", "created": "2025-01-01T12:00:00Z", "argv": [...],
      "machine": {"cpu", "logical_cores", "usable_cores", "gpus": [names], "os", "python", "onnxruntime",
                  "onnxruntime_providers": [offered short names], "opencv", "numpy", "mediapipe" | null,
                  "loadavg_start": [1, 5, 15 min] | null, "loadavg_end": [...] | null},
      "settings": {"source": "demo" | "video:PATH", "sizes": [[W, H], ...], "frames", "warmup",
                   "smoothing", "background", "paced_fps", "battery_saver", "quick", "isolate"},
      "providers": [{"provider", "status": "usable" | "unavailable" | "not_installed" | "not_requested",
                     "detail", "fix"}],           # one per provider vbg knows
      "results": [{
          "engine": label, "engine_kind": "connectnet" | "mediapipe", "model_path": file | null,
          "model_name", "input_size_wh": [w, h] | null,
          "provider": requested, "provider_ran": provider that really ran | null,
          "threads": 1 | 0 (= all cores) | null (engine's own),  "size_wh": [W, H] | null,
          "status": "ok" | "unavailable" | "error", "reason": "", "fix": "",
          "model":    {"median_ms", "p95_ms", "mean_ms", "cpu_ms", "n"},
          "pipeline": {"fps", "frames", "wall_s", "cpu_s", "stage_ms": {"capture", "inference",
                       "filter", "composite", "output"}, "latency_ms", "errors", "last_error",
                       "model_run_share": share of frames the model ran on (--battery-saver) | null},
          "cpu_ms_per_frame", "cpu_cores_used",
          "paced": {"target_fps", "fps", "cpu_ms_per_frame", "cpu_pct", "frames"} | null,
          "rss_mb", "peak_rss_mb", "peak_scope": "process" | "isolated"}]
    }

A row with ``status`` other than ``ok`` has ``model``/``pipeline``/... null and says why in ``reason``
(``unavailable``: the provider or model could not be used; ``error``: it loaded but failed on frames).

``--markdown PATH`` writes the machine and the table, ``--plot PATH`` a PNG bar chart of pipeline FPS per
configuration (matplotlib, Agg). The table goes to stdout, the progress bar (tqdm) to stderr.
"""
from __future__ import annotations

import argparse
import datetime
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

from vbg_app import __version__
from vbg_app.errors import BadInput, VbgError, run_command
from vbg_app.procinfo import loadavg as _loadavg
from vbg_app.procinfo import peak_rss_mb, rss_mb

SCHEMA = "vbg.bench/1"
DEFAULT_SIZES = "640x480,1280x720,1920x1080"
QUICK_SIZES = "1280x720"
DEFAULT_FRAMES, DEFAULT_WARMUP = 120, 10
QUICK_FRAMES, QUICK_WARMUP = 80, 10
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
    smoothing: str = "flow"
    background: str = "blur"
    paced_fps: float = 30.0
    battery_saver: bool = False
    quick: bool = False
    isolate: bool = False
    progress: bool | None = None                     # None: only on a terminal


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x480,1280x720"`` → ``[(640, 480), (1280, 720)]`` (duplicates dropped); BadInput when malformed."""
    from vbg_app.config import parse_size

    parts = [p for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise BadInput(f"--sizes {text!r} names no size", f"write sizes like {DEFAULT_SIZES}")
    sizes: list[tuple[int, int]] = []
    for part in parts:
        try:
            size = parse_size(part)
        except BadInput as exc:
            raise BadInput(f"--sizes: {exc.what}", f"write sizes like {DEFAULT_SIZES}") from None
        if size not in sizes:
            sizes.append(size)
    return sizes


def parse_providers(text: str) -> list[str]:
    from vbg_app.engines.onnx_engine import PROVIDERS

    names = [p.strip().lower() for p in (text or "").split(",") if p.strip()]
    if not names or names == ["all"]:
        return ["all"]
    for name in names:
        if name not in PROVIDERS:
            raise BadInput(f"unknown provider {name!r} in --providers", f"use all or a list of {', '.join(PROVIDERS)}")
    return list(dict.fromkeys(names))


def parse_threads(text: str) -> list[int]:
    out = []
    for part in (text or "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part == "all":
            part = "0"
        if not part.isdigit():
            raise BadInput(f"--threads {text!r}: {part!r} is not a thread count", "write e.g. 1,0 (0 or all = all cores)")
        out.append(int(part))
    if not out:
        raise BadInput(f"--threads {text!r} names no thread count", "write e.g. 1,0 (0 or all = all cores)")
    return list(dict.fromkeys(out))


def engine_specs(engines: str, models: list[str]) -> list[EngineSpec]:
    """The engines to measure: built-in names from ``--engines`` plus one per ``--model`` file."""
    names = [e.strip().lower() for e in (engines or "").split(",") if e.strip()]
    if names == ["none"]:
        names = []
    specs: list[EngineSpec] = []
    for name in dict.fromkeys(names):
        if name not in ("connectnet", "mediapipe"):
            raise BadInput(f"unknown engine {name!r} in --engines", "use connectnet, mediapipe or none")
        specs.append(EngineSpec(name, name))
    for model in models or []:
        path = Path(model).expanduser()
        if not path.is_file():
            raise BadInput(f"--model {model}: no such file", "give the path of an ONNX model with vbg.* metadata")
        label, n = path.stem, 2
        while any(s.label == label for s in specs):
            label, n = f"{path.stem}#{n}", n + 1
        specs.append(EngineSpec(label, "connectnet", str(path)))
    if not specs:
        raise BadInput("nothing to benchmark", "name engines with --engines connectnet,mediapipe or models with --model")
    return specs


def run_specs(opts: BenchOptions) -> list[RunSpec]:
    """Every (engine, provider, threads) to try, in table order."""
    from vbg_app.engines.onnx_engine import available_providers

    auto = opts.providers == ["all"]
    providers = (["cpu"] + [p for p in available_providers() if p != "cpu"]) if auto else opts.providers
    out: list[RunSpec] = []
    for eng in opts.engines:
        for prov in providers:
            if eng.kind == "mediapipe":
                if prov == "cpu":
                    out.append(RunSpec(eng, "cpu", None))
                elif not auto:  # asked for explicitly: say it cannot
                    out.append(RunSpec(eng, prov, None))
            elif prov == "cpu":
                out.extend(RunSpec(eng, "cpu", t) for t in opts.threads)
            else:
                out.append(RunSpec(eng, prov, 0))
    return out


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
    from vbg_app.compose import Compositor
    from vbg_app.pipeline import Pipeline
    from vbg_app.sinks import NullSink
    from vbg_app.temporal import create_filter

    saver = None
    if opts.battery_saver:  # the segmenter is closed by the caller, not by the saver
        from vbg_app.saver import BatterySaver
        seg = saver = BatterySaver(seg)
    pipe = Pipeline(source, seg, create_filter(opts.smoothing), Compositor(opts.background), NullSink())
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
        row["model_path"] = str(seg.path)
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


# -- the whole run -------------------------------------------------------------------------------------
def provider_summary(requested: list[str], results: list[dict]) -> list[dict]:
    """One entry per provider vbg knows: usable / unavailable (with why) / not installed / not requested."""
    from vbg_app.engines.onnx_engine import INSTALL_HINT, PROVIDERS, available_providers

    offered = available_providers()
    out = []
    for name in PROVIDERS:
        rows = [r for r in results if r["provider"] == name and r["engine_kind"] == "connectnet"]
        ok = [r for r in rows if r["status"] == "ok"]
        if ok:
            entry = {"status": "usable", "detail": f"ran on {ok[0]['provider_ran']}", "fix": ""}
        elif name != "cpu" and name not in offered:
            entry = {"status": "not_installed",
                     "detail": f"not in this onnxruntime build (it has: {', '.join(offered) or 'none'})",
                     "fix": INSTALL_HINT.get(name, "")}
        elif rows:
            bad = next((r for r in rows if r["status"] != "ok"), rows[0])
            entry = {"status": "unavailable", "detail": bad["reason"], "fix": bad["fix"]}
        else:
            entry = {"status": "not_requested", "detail": "", "fix": ""}
        out.append({"provider": name, **entry})
    return out


def run_bench(opts: BenchOptions, argv: list[str] | None = None) -> dict:
    """Run every configuration; returns the ``vbg.bench/1`` document."""
    from tqdm import tqdm

    machine = machine_info()
    specs = run_specs(opts)
    sizes = opts.sizes
    if opts.video and not sizes:
        from vbg_app.sources import VideoSource
        with VideoSource(opts.video, loop=True, realtime=False) as v:
            sizes = [tuple(v.size_wh)]
    total = len(specs) * len(sizes)
    results: list[dict] = []
    with tqdm(total=total, desc="vbg bench", unit="cfg", file=sys.stderr, disable=opts.progress is False
              or (opts.progress is None and not sys.stderr.isatty()), leave=False) as bar:
        for spec in specs:
            t = "" if spec.threads is None else f"×{spec.threads or 'all'}"
            bar.set_description(f"{spec.engine.label} {spec.provider}{t}")
            if opts.isolate:
                for size in sizes:
                    results.extend(_measure_isolated(spec, size, opts))
                    bar.update(1)
            else:
                results.extend(measure_spec(spec, sizes, opts, on_size=bar.update))
    machine["loadavg_end"] = _loadavg()
    doc = {
        "schema": SCHEMA,
        "vbg_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "argv": list(argv) if argv is not None else None,
        "machine": machine,
        "settings": {"source": f"video:{opts.video}" if opts.video else "demo", "sizes": [list(s) for s in sizes],
                     "frames": opts.frames, "warmup": opts.warmup, "smoothing": opts.smoothing,
                     "background": opts.background, "paced_fps": opts.paced_fps or None,
                     "battery_saver": opts.battery_saver, "quick": opts.quick,
                     "isolate": opts.isolate},
        "providers": provider_summary(opts.providers, results),
        "results": results,
    }
    return _nan_to_none(doc)


# -- reports -------------------------------------------------------------------------------------------
def _f(x, fmt="{:.1f}", none="–") -> str:
    return none if x is None else fmt.format(x)


def _threads_label(r: dict, cores: int) -> str:
    t = r["threads"]
    return "own" if t is None else (f"all({cores})" if t == 0 else str(t))


COLUMNS = ("engine", "provider", "threads", "size", "model ms med/p95", "pipeline fps",
           "capture", "infer", "filter", "compose", "output", "CPU ms/frame", "CPU @paced", "RSS/peak MiB", "status")


def table_rows(doc: dict) -> list[list[str]]:
    cores = doc["machine"]["usable_cores"]
    rows = []
    for r in doc["results"]:
        size = "x".join(map(str, r["size_wh"])) if r["size_wh"] else "–"
        status = "ok" if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        if r["status"] != "ok" and r["fix"]:
            status += f" — {r['fix']}"
        m, p, paced = r["model"] or {}, r["pipeline"] or {}, r["paced"] or {}
        st = p.get("stage_ms") or {}
        paced_txt = (f"{_f(paced.get('cpu_pct'), '{:.0f}')}% @{_f(paced.get('fps'), '{:.0f}')}fps"
                     if paced else "–")
        rows.append([
            r["engine"], r["provider_ran"] or r["provider"], _threads_label(r, cores), size,
            f"{_f(m.get('median_ms'))}/{_f(m.get('p95_ms'))}" if m else "–",
            _f(p.get("fps")), *(_f(st.get(s)) for s in STAGES),
            _f(r["cpu_ms_per_frame"]), paced_txt,
            f"{_f(r['rss_mb'], '{:.0f}')}/{_f(r['peak_rss_mb'], '{:.0f}')}", status,
        ])
    return rows


def _machine_lines(doc: dict) -> list[str]:
    m, s = doc["machine"], doc["settings"]
    gpus = ", ".join(m["gpus"]) or "none found"
    lines = [
        f"machine: {m['cpu']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores; GPU: {gpus}; "
        f"{m['os']}; Python {m['python']}",
        f"onnxruntime {m['onnxruntime']} (providers: {', '.join(m['onnxruntime_providers'])}); "
        f"opencv {m['opencv']}; mediapipe {m['mediapipe'] or 'not installed'}",
        f"load average before/after: {m['loadavg_start']} / {m['loadavg_end']} (others' load makes numbers lower)",
        f"source {s['source']}; background {s['background']}; smoothing {s['smoothing']}; {s['frames']} frames after "
        f"{s['warmup']} warm-up per configuration; paced run at {s['paced_fps'] or 'off'} fps"
        + ("; battery saver on" if s.get("battery_saver") else ""),
    ]
    for p in doc["providers"]:
        if p["status"] in ("not_installed", "unavailable"):
            lines.append(f"provider {p['provider']}: {p['status'].replace('_', ' ')} — {p['detail']}"
                         + (f"; fix: {p['fix']}" if p["fix"] else ""))
    return lines


NOTES = ("ms are medians; pipeline fps = output frames / wall time (two overlapping threads, so 1000/fps ≈ the slower "
         "of capture+infer+filter and compose+output); CPU ms/frame = process CPU time (all threads) per frame at full "
         "speed; CPU @paced = share of all cores busy when fed at the paced rate (what the meeting app loses); peak RSS "
         "is process-wide and monotonic unless --isolate.")


def format_table(doc: dict) -> str:
    rows = table_rows(doc)
    ok_rows = [r for r in rows if r[-1] == "ok"]
    bad_rows = [r for r in rows if r[-1] != "ok"]
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in ok_rows)) if ok_rows else len(COLUMNS[i])
              for i in range(len(COLUMNS) - 1)]
    head = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths))
    lines = _machine_lines(doc) + ["", head, "-" * len(head)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in ok_rows]
    for r in bad_rows:
        lines.append(f"{r[0]}  {r[1]}  threads {r[2]}  {r[3]}: {r[-1]}")
    lines += ["", NOTES]
    return "\n".join(lines)


def format_markdown(doc: dict) -> str:
    rows = table_rows(doc)
    out = [f"# vbg bench ({doc['created']}, vbg {doc['vbg_version']})", ""]
    out += [f"- {line}" for line in _machine_lines(doc)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(v.replace("|", "\\|") for v in r) + " |" for r in rows]
    out += ["", NOTES, ""]
    return "\n".join(out)


def write_plot(doc: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = doc["machine"]["usable_cores"]
    ok = [r for r in doc["results"] if r["status"] == "ok"]
    labels = [f"{r['engine']} · {r['provider_ran']}×{_threads_label(r, cores)} · {r['size_wh'][0]}x{r['size_wh'][1]}"
              for r in ok]
    fps = [r["pipeline"]["fps"] for r in ok]
    model_fps = [1e3 / r["model"]["median_ms"] if r["model"]["median_ms"] else 0 for r in ok]
    engines = list(dict.fromkeys(r["engine"] for r in ok))
    colors = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * max(1, len(ok))), dpi=100)
    y = np.arange(len(ok))
    ax.barh(y + 0.2, model_fps, height=0.38, color=[colors(engines.index(r["engine"]) % 10) for r in ok], alpha=0.35,
            label="model only (1000 / median ms)")
    ax.barh(y - 0.2, fps, height=0.38, color=[colors(engines.index(r["engine"]) % 10) for r in ok],
            label="end-to-end pipeline")
    for yi, v in zip(y, fps):
        ax.text(v, yi - 0.2, f" {v:.0f}", va="center", fontsize=8)
    for line in (30, 60):
        ax.axvline(line, color="grey", lw=0.8, ls="--")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("frames per second")
    ax.set_title(f"vbg bench — {doc['machine']['cpu']} ({cores} cores), background {doc['settings']['background']}, "
                 f"smoothing {doc['settings']['smoothing']}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- command line --------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vbg_app.config import DEFAULT_SMOOTHING, SMOOTHING

    parser.add_argument("--engines", default="connectnet,mediapipe",
                        help="built-in engines to measure: connectnet (models/connectnet.onnx), mediapipe, or none "
                             "(default: connectnet,mediapipe; one that cannot load is reported, not fatal)")
    parser.add_argument("--model", action="append", default=[], metavar="FILE",
                        help="also measure this ONNX model with vbg.* metadata (repeatable)")
    parser.add_argument("--providers", default="all",
                        help="all (CPU + every provider this onnxruntime offers) or a list of cpu, cuda, tensorrt, "
                             "directml, coreml, openvino (default: all)")
    parser.add_argument("--threads", default="1,0", help="CPU thread counts to try, 0 = all cores (default: 1,0)")
    parser.add_argument("--sizes", help=f"frame sizes (default: {DEFAULT_SIZES}; --quick: {QUICK_SIZES}; "
                                        "--video: the video's own size)")
    parser.add_argument("--video", metavar="FILE", help="decode this video instead of the built-in demo frames")
    parser.add_argument("--frames", type=int, help=f"measured frames per configuration (default: {DEFAULT_FRAMES}, "
                                                   f"--quick: {QUICK_FRAMES})")
    parser.add_argument("--warmup", type=int, help=f"frames before measuring (default: {DEFAULT_WARMUP}, "
                                                   f"--quick: {QUICK_WARMUP})")
    parser.add_argument("--smoothing", default=DEFAULT_SMOOTHING, choices=SMOOTHING,
                        help=f"temporal filter in the pipeline (default: {DEFAULT_SMOOTHING})")
    parser.add_argument("--background", default="blur", help="background in the pipeline (default: blur)")
    parser.add_argument("--paced-fps", type=float, default=30.0,
                        help="also run the pipeline fed at this camera rate to measure the CPU it keeps busy "
                             "(default: 30; 0 = skip)")
    parser.add_argument("--battery-saver", action="store_true",
                        help="pipeline runs with vbg run's --battery-saver (the model runs only when the picture "
                             "changes); the JSON's pipeline.model_run_share says how often it ran")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SIZES} only and {QUICK_FRAMES} frames: "
                                                             "under a minute on a laptop")
    parser.add_argument("--isolate", action="store_true",
                        help="run each configuration in a fresh subprocess (clean peak memory; slower)")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON (schema vbg.bench/1)")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of FPS per configuration")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_out(path: str | None, flag: str) -> None:
    if path and not Path(path).expanduser().resolve().parent.is_dir():
        raise BadInput(f"{flag} {path}: its folder does not exist", "create the folder or choose another path")


def options_from_args(args) -> BenchOptions:
    from vbg_app.compose import parse_background
    from vbg_app.config import parse_smoothing

    frames = args.frames if args.frames is not None else (QUICK_FRAMES if args.quick else DEFAULT_FRAMES)
    warmup = args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else DEFAULT_WARMUP)
    if frames < 1:
        raise BadInput(f"--frames {frames} must be at least 1", "try --frames 100")
    if warmup < 0:
        raise BadInput(f"--warmup {warmup} is negative", "use 0 or more")
    if args.paced_fps is not None and (args.paced_fps < 0 or args.paced_fps > 240 or math.isnan(args.paced_fps)):
        raise BadInput(f"--paced-fps {args.paced_fps} is out of range", "use 0 (off) to 240, e.g. 30")
    if args.sizes is not None:
        sizes = parse_sizes(args.sizes)
    elif args.video:
        sizes = []  # the video's own size
    else:
        sizes = parse_sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.video:
        from vbg_app.sources import VideoSource
        VideoSource(args.video, loop=False, realtime=False).close()  # BadInput now, not after minutes
    parse_background(args.background).close()
    for path, flag in ((args.json, "--json"), (args.markdown, "--markdown"), (args.plot, "--plot")):
        _check_out(path, flag)
    return BenchOptions(
        engines=engine_specs(args.engines, args.model), providers=parse_providers(args.providers),
        threads=parse_threads(args.threads), sizes=sizes, video=args.video, frames=frames, warmup=warmup,
        smoothing=parse_smoothing(args.smoothing), background=args.background, paced_fps=args.paced_fps or 0.0,
        battery_saver=args.battery_saver,
        quick=args.quick, isolate=args.isolate, progress=False if args.no_progress else None)


def run(args) -> int:
    opts = options_from_args(args)
    doc = run_bench(opts, argv=sys.argv[1:])
    print(format_table(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1, allow_nan=False))
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(doc), encoding="utf-8")
    if args.plot:
        write_plot(doc, args.plot)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        return _worker(argv[1], argv[2])
    return run_command("vbg bench", (__doc__ or "").split("\n\n")[0], add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
