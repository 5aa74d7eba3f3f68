"""vbg's desktop app (PySide6): live preview, background gallery, virtual-camera switch, tray icon.

Entry points (Qt is imported only by :func:`run`, so ``vbg --help`` stays fast without the GUI extra)::

    vbg gui [options]          # vbg_app.cli wires add_arguments(parser) and run(args)
    vbg-gui [options]          # console/gui script: vbg_app.gui:main
    python -m vbg_app.gui      # the same

``--source demo --screenshot PATH --quit-after-frames N`` renders the real window on the demo source and saves
a PNG of it (README screenshot, tests).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vbg gui`` (each overrides the saved setting for this session and is then saved)."""
    from vbg_app.specs import BACKGROUNDS, ENGINES, SOURCES  # light: parsing only
    parser.add_argument("--source", help=f"{SOURCES.forms} (default: last used)")
    parser.add_argument("--background", help=f"{BACKGROUNDS.forms} (default: last used)")
    parser.add_argument("--engine", choices=ENGINES.names, help="segmentation engine")
    parser.add_argument("--provider", help="auto | cpu | cuda | tensorrt | directml | coreml | openvino")
    parser.add_argument("--model", help="an ONNX model with vbg.* metadata (connectnet engine)")
    parser.add_argument("--show-original", action="store_true", help="show the original picture beside the result")
    parser.add_argument("--no-tray", action="store_true", help="no tray icon: closing the window quits")
    parser.add_argument("--screenshot", metavar="PATH",
                        help="save a PNG of the window after --quit-after-frames frames, then quit "
                             "(settings are not saved in this mode)")
    parser.add_argument("--quit-after-frames", type=int, metavar="N",
                        help="quit after N frames were shown (with --screenshot: take it then; default 30)")
    parser.add_argument("--size", metavar="WxH", help="window size for --screenshot, e.g. 1400x820")


def run(args: argparse.Namespace) -> int:
    """``vbg gui``: returns the exit code (0 ok, 1 screenshot failed, 2/3 from a VbgError)."""
    from vbg_app.gui.app import run_app
    return run_app(args)


def main(argv: list[str] | None = None) -> int:
    """The ``vbg-gui`` script."""
    from vbg_app.errors import run_command

    return run_command("vbg-gui", "vbg's desktop app: virtual background with a preview.", add_arguments, run, argv,
                       verbose_flag=True)
