"""Segmentation engines behind one interface: ``segment(frame_bgr) -> prob (h, w) float32``.

``create_segmenter("connectnet" | "mediapipe", model=None, provider="auto", threads=None)``; ``threads``:
None = auto (half the cores, see ``config.auto_threads``), 0 = onnxruntime's default (all cores), N = N.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vbg_app import resources
from vbg_app.errors import BadInput

if TYPE_CHECKING:
    from vbg_app.protocols import Segmenter

ENGINES = ("connectnet", "mediapipe")
ENGINE_TITLES = {"connectnet": "ConnectNet", "mediapipe": "MediaPipe selfie"}  # what users read


def create_segmenter(engine: str = "connectnet", model: str | None = None, provider: str = "auto",
                     threads: int | None = None, strict: bool = False) -> Segmenter:
    if threads is None:
        from vbg_app.config import auto_threads
        threads = auto_threads()
    if engine == "connectnet":
        from vbg_app.engines.onnx_engine import OnnxSegmenter
        return OnnxSegmenter(model or resources.model_path(resources.DEFAULT_MODEL), provider=provider,
                             threads=threads, strict=strict)
    if engine == "mediapipe":
        from vbg_app.engines.mediapipe_engine import MediaPipeSegmenter
        if provider not in ("auto", "cpu"):
            raise BadInput(f"the mediapipe engine runs on the CPU only (asked for {provider})",
                           "use --provider auto or cpu with --engine mediapipe")
        return MediaPipeSegmenter(model)
    raise BadInput(f"unknown engine {engine!r}", f"use one of {', '.join(ENGINES)}")
