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
  1000 / fps is about the slower half (capture+inference vs filter+composite+output), not the sum.
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
                   "smoothing", "background", "paced_fps", "battery_saver", "matte", "quick", "isolate"},
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
import sys
from pathlib import Path

from vbg_app import __version__
from vbg_app.errors import BadInput, run_command
from vbg_app.procinfo import loadavg as _loadavg
from vbg_app.specs import ENGINES
from vbg_app.tools.bench_measure import (DEFAULT_FRAMES, DEFAULT_WARMUP, BenchOptions, EngineSpec, RunSpec,
                                        _measure_isolated, _nan_to_none, _worker, machine_info, measure_spec)
from vbg_app.tools.bench_report import format_markdown, format_table, write_plot

SCHEMA = "vbg.bench/1"
DEFAULT_SIZES = "640x480,1280x720,1920x1080"
QUICK_SIZES = "1280x720"
QUICK_FRAMES, QUICK_WARMUP = 80, 10


# -- options -------------------------------------------------------------------------------------------
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
        if name not in ENGINES.names:
            raise BadInput(f"unknown engine {name!r} in --engines", f"use {', '.join(ENGINES.names)} or none")
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
                     "battery_saver": opts.battery_saver, "matte": opts.matte, "quick": opts.quick,
                     "isolate": opts.isolate},
        "providers": provider_summary(opts.providers, results),
        "results": results,
    }
    return _nan_to_none(doc)


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
    parser.add_argument("--no-matte", action="store_true",
                        help="pipeline runs without the matte stage (vbg run --no-matte)")
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
        battery_saver=args.battery_saver, matte=not args.no_matte,
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
