"""Segmentation engines behind one interface: ``segment(frame_bgr) -> prob (h, w) float32``.

``create_segmenter("connectnet" | "mediapipe", model=None, provider="auto", threads=None)``; ``threads``:
None = auto (half the cores, see ``config.auto_threads``), 0 = onnxruntime's default (all cores), N = N.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vbg_app.specs import ENGINES as _REGISTRY

if TYPE_CHECKING:
    from vbg_app.protocols import Segmenter

ENGINES = _REGISTRY.names  # ("connectnet", "mediapipe"): registered in vbg_app.specs
ENGINE_TITLES = {"connectnet": "ConnectNet", "mediapipe": "MediaPipe selfie"}  # what users read


def create_segmenter(engine: str = "connectnet", model: str | None = None, provider: str = "auto",
                     threads: int | None = None, strict: bool = False) -> Segmenter:
    if threads is None:
        from vbg_app.config import auto_threads
        threads = auto_threads()
    return _REGISTRY.open(engine, model, provider, threads, strict)
