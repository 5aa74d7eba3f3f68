"""``vbg`` command line: thin shells over the pipeline, the evaluator and the exporter.

Examples::

    vbg run --source demo --background blur --sink file:out.mp4 --frames 300
    vbg run --source camera:0 --background image:beach.jpg --sink vcam --smoothing flow
    vbg devices
    vbg eval --data ../shared/data/portraits/ccp/val --model models/connectnet.onnx --engine mediapipe
    vbg export --from-released pphumanseg_v1_lite_398x224.onnx --out models/connectnet.onnx

Exit codes: 0 success, 2 bad input (one line saying what to fix), 3 a device is unavailable, 4 an output
failed while running (the disk holding a recording is full or stopped taking data; the line says where what
was recorded until then is).
"""
from __future__ import annotations

try:  # Ctrl+C while Python loads vbg: exit 130 without a traceback, as a Ctrl+C later does (errors.guarded)
    import argparse
    import contextlib
    import logging
    import signal
    import sys
    import threading
    import time

    from vbg_app import __version__
    from vbg_app.errors import VbgError, guarded
except KeyboardInterrupt:
    raise SystemExit(130) from None

log = logging.getLogger("vbg")


# -- vbg run ----------------------------------------------------------------------------------------
def _add_run(sub) -> None:
    from vbg_app.config import DEFAULT_SMOOTHING, FPS_RANGE, SMOOTHING, parse_fps
    from vbg_app.specs import BACKGROUNDS, ENGINES, SINKS, SOURCES

    p = sub.add_parser("run", help="run the virtual background headless",
                       description="Camera/video/demo → segmentation → smoothing → background → virtual camera/file.",
                       epilog="exit codes: 0 success; 2 bad input (a file, an option, a recording that exists "
                       "without --overwrite); 3 a device (camera, virtual camera, GPU provider) is unavailable; "
                       "4 the output failed while running (the disk holding the recording is full or stopped "
                       "taking data: the run ends, what was recorded is kept playable and the error line says "
                       "where). A recording is written to NAME.partial.EXT and renamed to NAME.EXT when it ends.")
    p.add_argument("--source", default="demo", help=f"{SOURCES.forms} (default: demo, a built-in moving portrait). "
                   "A video plays once and the run ends at its end (see --loop)")
    p.add_argument("--background", default="blur", help=f"{BACKGROUNDS.forms} (default: blur)")
    p.add_argument("--sink", default="vcam", help=f"{SINKS.forms} (default: vcam)")
    p.add_argument("--engine", default="connectnet", choices=ENGINES.names)
    p.add_argument("--model", help="an ONNX model with vbg.* metadata (default: models/connectnet.onnx)")
    p.add_argument("--provider", default="auto",
                   help="auto | cpu | cuda | tensorrt | directml | coreml | openvino (default: auto)")
    p.add_argument("--threads", type=int, help="inference threads (default: half the cores; 0 = all cores)")
    p.add_argument("--size", help="capture size WIDTHxHEIGHT for cameras and the demo, e.g. 1280x720")
    p.add_argument("--fps", type=parse_fps, help="capture frame rate for cameras and the demo, "
                   f"{FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}")
    p.add_argument("--smoothing", default=DEFAULT_SMOOTHING, choices=SMOOTHING,
                   help=f"temporal filter of the mask (default: {DEFAULT_SMOOTHING})")
    p.add_argument("--mirror", action="store_true", help="flip the output horizontally")
    p.add_argument("--no-refine", action="store_true", help="skip edge-aware upsampling of the mask")
    p.add_argument("--no-cleanup", action="store_true", help="keep small blobs detached from the person")
    p.add_argument("--no-matte", action="store_true",
                   help="skip the matte stage (holes in the person filled, the edge ramp tightened)")
    p.add_argument("--battery-saver", action="store_true",
                   help="run the model only when the picture changes (at least every 3rd frame): less CPU "
                        "while you sit still, the same on motion")
    p.add_argument("--as-fast-as-possible", action="store_true",
                   help="do not pace video files at their own frame rate (benchmarks)")
    p.add_argument("--loop", action="store_true",
                   help="play a video source again and again instead of ending the run at its end")
    p.add_argument("--frames", type=int, help="stop after N output frames")
    p.add_argument("--overwrite", action="store_true",
                   help="let --sink file:PATH replace an existing file (without it an existing file is refused)")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from vbg_app.config import PipelineConfig, parse_size
    from vbg_app.pipeline import build_pipeline

    if args.frames is not None and args.frames < 1:
        raise _bad(f"--frames {args.frames} must be at least 1")
    config = PipelineConfig(
        source=args.source, background=args.background, sink=args.sink, engine=args.engine, model=args.model,
        provider=args.provider, threads=args.threads, size=parse_size(args.size) if args.size else None,
        fps=args.fps, smoothing=args.smoothing, mirror=args.mirror, refine=not args.no_refine,
        cleanup=not args.no_cleanup, matte=not args.no_matte, realtime=not args.as_fast_as_possible, loop=args.loop,
        battery_saver=args.battery_saver,
    )
    with build_pipeline(config, overwrite=args.overwrite) as pipe:
        seg = pipe.segmenter
        note = f" ({seg.fallback_reason})" if getattr(seg, "fallback_reason", "") else ""
        print(f"vbg: {config.source} → {seg.name} on {seg.provider}{note} → {config.background} → "
              f"{pipe.sink.description}", file=sys.stderr)
        last = [0.0]
        tty = sys.stderr.isatty()

        def status(p) -> None:
            now = time.monotonic()
            if not args.quiet and now - last[0] >= (0.5 if tty else 5.0):
                last[0] = now
                print(("\r" if tty else "") + p.stats.summary(), end="" if tty else "\n", file=sys.stderr,
                      flush=True)

        _start_up_done()  # a Ctrl+C that Python lost while vbg started ends it here (130)
        stopped_by: list[str] = []
        with _stop_on_signals(pipe, stopped_by):
            try:
                stats = pipe.run(frames=args.frames, on_frame=status)
            except KeyboardInterrupt:
                stats = pipe.stats
        if tty and not args.quiet:
            print(file=sys.stderr)
        if pipe.output_failure is not None:  # a recording's disk filled up: the file is closed, exit 4
            raise pipe.output_failure
        ended = " (source ended)" if pipe.ended else f" (stopped by {stopped_by[0]})" if stopped_by else ""
        print(f"vbg: {stats.frames} frames{ended}; {stats.summary()}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _stop_on_signals(pipe, stopped_by: list):
    """SIGTERM (``kill``, a service manager, a logout) and SIGHUP (the terminal closed) stop the pipeline
    cleanly instead of killing the process, so the sink is closed and a recording is finalised (an .mp4
    needs its index written at the end). Only SIGKILL or a power cut can still cut a recording short:
    record to .mkv or .avi to keep what was written then. No-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame) -> None:
        stopped_by.append(signal.Signals(signum).name)
        pipe.stop()

    saved = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                saved[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


# -- vbg devices ------------------------------------------------------------------------------------
def _add_devices(sub) -> None:
    p = sub.add_parser("devices", help="list cameras, inference providers and the virtual-camera state")
    p.set_defaults(func=_devices)


def _devices(args) -> int:
    from vbg_app import resources
    from vbg_app.engines.onnx_engine import OnnxSegmenter, available_providers
    from vbg_app.sinks import virtual_camera_status
    from vbg_app.sources import list_cameras

    cams = list_cameras()
    print("cameras:")
    for cam in cams:
        print(f"  camera:{cam['index']}  {cam.get('name', '')} {cam.get('size', '')}")
    if not cams:
        print("  none found (use --source demo, video:PATH or image:PATH)")
    print("inference providers (onnxruntime):")
    for name in available_providers():
        try:
            seg = OnnxSegmenter(resources.model_path(), provider=name, strict=True)
            state = f"works (runs on {seg.provider})"
            seg.close()
        except VbgError as exc:
            state = f"offered but does not load: {exc.what}"
        print(f"  {name:9s} {state}")
    ok, text = virtual_camera_status()
    print(f"virtual camera: {'available' if ok else 'unavailable'} — {text}")
    return 0


# -- entry point ------------------------------------------------------------------------------------
def _bad(text: str):
    from vbg_app.errors import BadInput
    return BadInput(text, "see `vbg run --help`")


# Subcommands whose module provides add_arguments(parser) and run(args) -> int, with the extra that brings their
# dependencies. Only the module of the command being run is imported (`vbg run` loads none of them, and a
# module that cannot import on this OS or without its extra breaks only its own command).
COMMANDS = {
    "eval": ("vbg_app.tools.evaluate", "measure IoU, mIoU, SC and flicker of models side by side", None),
    "bench": ("vbg_app.tools.bench", "FPS, CPU and memory per engine x provider x size, no camera needed", None),
    "quantize": ("vbg_app.tools.quantize", "int8 / trimmed copy of an ONNX model, keeping the vbg metadata", None),
    "gui": ("vbg_app.gui", "the desktop app (needs the gui extra: PySide6)", "gui"),
    "train": ("vbg_app.train.cli", "train ConnectNet from a YAML config (needs the train extra: torch)", "train"),
    "export": ("vbg_app.train.export", "export ConnectNet to ONNX with vbg metadata (needs the train extra: torch)",
               "train"),
    "label": ("vbg_app.tools.label", "soft person labels from teacher models, for training and evaluation", None),
}


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (vbg's own options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """vbg's parser. Of the :data:`COMMANDS`, only ``command``'s module is imported and given its arguments;
    the others are listed by name and help text alone."""
    import importlib

    parser = argparse.ArgumentParser(prog="vbg", description="Real-time virtual background for video meetings.")
    parser.add_argument("--version", action="version", version=f"vbg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_run(sub)
    _add_devices(sub)
    for name, (module_name, text, extra) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            from vbg_app.errors import BadInput

            fix = (f"install the {extra} extra: pip install 'vbg[{extra}]'" if extra
                   else "reinstall vbg: pip install --force-reinstall vbg")
            raise BadInput(f"vbg {name} cannot start: {exc.name or exc} is missing", fix) from None
        p = sub.add_parser(name, help=text, description=(module.__doc__ or text).split("\n\n")[0])
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    with _remember_ctrl_c():
        return guarded(_main, sys.argv[1:] if argv is None else list(argv))


def _main(argv: list[str]) -> int:
    try:
        args = build_parser(_command_of(argv)).parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return args.func(args)
    except Exception as exc:
        # whatever start-up raised after a Ctrl+C is its consequence ("onnxruntime is not installed", numpy's
        # "Importing the numpy C-extensions failed"): report the Ctrl+C (130), not a false cause
        if _CTRL_C["start_up"] or _interrupted(exc):
            raise KeyboardInterrupt from None
        raise


# Ctrl+C while vbg starts. Python loses a KeyboardInterrupt raised inside a weakref callback or a __del__
# (printing "Exception ignored in ...", and the import then goes on), and a C extension interrupted while it
# initialises turns it into an ImportError; so main() also remembers that SIGINT came, and the run does not start.
_CTRL_C = {"start_up": False, "running": False}


def _on_sigint(signum, frame) -> None:
    if not _CTRL_C["running"]:
        _CTRL_C["start_up"] = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def _remember_ctrl_c():
    """During main(): SIGINT raises KeyboardInterrupt as Python's own handler does and is remembered, and a
    KeyboardInterrupt that Python could not raise is not printed. Leaves a SIGINT handler other than Python's
    default alone (an embedding program's, pytest's), and does nothing outside the main thread."""
    _CTRL_C.update(start_up=False, running=False)
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    hook = sys.unraisablehook

    def unraisable(u) -> None:
        if not isinstance(u.exc_value, KeyboardInterrupt):  # a lost Ctrl+C: remembered by _on_sigint
            hook(u)

    old = signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        sys.unraisablehook = hook
        signal.signal(signal.SIGINT, old)


def _start_up_done() -> None:
    """Just before frames flow: a Ctrl+C during start-up ends vbg here (130) even where Python lost it; from
    now on a Ctrl+C stops the run cleanly (exit 0)."""
    if _CTRL_C["start_up"]:
        raise KeyboardInterrupt
    _CTRL_C["running"] = True


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was raised because of a KeyboardInterrupt: a C extension whose initialisation Ctrl+C
    interrupted fails with ``ImportError: initialization failed`` caused by it (pybind11, e.g. onnxruntime),
    and the error vbg reports for that ImportError keeps it as context."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
