"""Settings of one pipeline, shared by the CLI, the GUI and the benchmark."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from vbg_app.errors import BadInput
from vbg_app.specs import FILTERS

SMOOTHING = FILTERS.names  # ("none", "ema", "flow", "steady"): the temporal filters, registered in vbg_app.specs
FPS_RANGE = (1.0, 240.0)  # capture frame rates vbg accepts (cameras offer 5 to 240; the demo paces itself)
DEFAULT_SMOOTHING = "steady"  # measured against none/ema/flow on the exact-GT clips: docs/temporal.md


@dataclass
class PipelineConfig:
    source: str = "demo"             # demo | camera:N | camera:/dev/videoN | video:PATH | image:PATH
    background: str = "blur"         # blur[:N] | image:PATH | video:PATH | color:#RRGGBB | none
    sink: str = "null"               # vcam[:DEVICE] | file:PATH | null
    engine: str = "connectnet"       # connectnet | mediapipe
    model: str | None = None         # an ONNX file with vbg.* metadata (default: the shipped one)
    provider: str = "auto"           # auto | cpu | cuda | tensorrt | directml | coreml | openvino
    threads: int | None = None       # intra-op threads for inference: None = auto (half the cores), 0 = all
    size: tuple[int, int] | None = None  # capture size for cameras and the demo (None: source default)
    fps: float | None = None         # capture rate for cameras and the demo
    smoothing: str = DEFAULT_SMOOTHING
    mirror: bool = False
    refine: bool = True              # edge-aware upsampling of the mask
    cleanup: bool = True             # drop small blobs not attached to the person
    matte: bool = True               # solid person, tight edge (vbg_app/matte.py)
    realtime: bool = True            # pace video files at their own fps (False: as fast as possible)
    loop: bool = False               # a video source starts again at its end (False: the run ends there)
    battery_saver: bool = False      # reuse the last mask while the picture does not change (vbg_app/saver.py)

    def as_dict(self) -> dict:
        return asdict(self)


def auto_threads() -> int:
    """Inference threads when none are asked for: half the cores (at least 1).

    The pipeline's second thread (temporal filter, compositing) and the video decoder need the rest:
    on a 2-core machine 1 inference thread gives 69 fps at 720p where all cores give 51
    (`vbg bench`, docs/bench_results.json).
    """
    import os

    return max(1, (os.cpu_count() or 2) // 2)


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` → ``(1280, 720)``."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text or "")
    if not m or int(m.group(1)) < 16 or int(m.group(2)) < 16 or int(m.group(1)) > 7680 or int(m.group(2)) > 4320:
        raise BadInput(f"size {text!r} is not WIDTHxHEIGHT", "write it like 1280x720 (16 to 7680 wide)")
    return int(m.group(1)), int(m.group(2))


def parse_fps(text) -> float:
    """``"30"`` → ``30.0``: a capture frame rate, a finite number within :data:`FPS_RANGE` (so not ``-1``,
    ``0``, ``nan`` or ``inf``, which a camera or a video file would refuse or misreport much later)."""
    lo, hi = FPS_RANGE
    try:
        fps = float(text)
    except (TypeError, ValueError):
        fps = math.nan
    if not lo <= fps <= hi:  # NaN compares false: refused too
        raise BadInput(f"frame rate {str(text).strip() or repr(text)} is not a number from {lo:g} to {hi:g}",
                       "give --fps the frames per second to capture at, e.g. --fps 30")
    return fps


def parse_smoothing(text: str) -> str:
    """A temporal filter's name (BadInput naming them all)."""
    return str(FILTERS.parse(text))
