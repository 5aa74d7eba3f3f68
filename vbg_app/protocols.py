"""The contracts between the frame path's stages, in one place (see docs/ARCHITECTURE.md).

    Source ──frame──▶ Segmenter ──prob──▶ TemporalFilter ──prob──▶ Compositor ──frame──▶ Sink

A *frame* is BGR uint8 (H, W, 3); a *prob* is the person probability, float32 (h, w) in 0..1 at the model's
resolution (the compositor upsamples it to the frame). :class:`~vbg_app.pipeline.Pipeline` owns one of each
and times them; tests swap any of them for a fake (tests/fakes.py). The protocols are ``runtime_checkable``:
``isinstance(obj, Segmenter)`` checks that the methods and attributes exist (not their signatures), which is
what tests/test_protocols.py asserts of every real stage and every fake.

Typing only: importing this loads numpy and nothing else.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
    """Where frames come from (vbg_app.sources). ``read()`` gives the newest frame or None when none is ready
    now; a finite source that ends raises :class:`~vbg_app.sources.SourceEnded`."""

    fps: float
    size_wh: tuple[int, int]
    live: bool  # frames follow the wall clock (camera, paced file/demo); False: every frame, as fast as asked

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Segmenter(Protocol):
    """Frame → prob at model resolution (vbg_app.engines). ``provider`` is what really runs (e.g. ``cpu``
    after a GPU failed), ``fallback_reason`` why it is not what was asked ("" when it is)."""

    name: str
    provider: str
    fallback_reason: str

    def segment(self, frame_bgr: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


@runtime_checkable
class TemporalFilter(Protocol):
    """prob → prob smoothed over time (vbg_app.temporal); ``reset()`` forgets the history (a new source)."""

    def update(self, prob: np.ndarray, frame_bgr: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


@runtime_checkable
class Compositor(Protocol):
    """Frame + prob → the frame others see (vbg_app.compose). ``set_background`` takes a background spec
    (``blur[:N]``, ``image:PATH`` ...) and raises BadInput for a bad one, keeping the current background."""

    def compose(self, frame_bgr: np.ndarray, prob_lowres: np.ndarray) -> np.ndarray: ...

    def set_background(self, spec) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Where finished frames go (vbg_app.sinks); ``description`` says where, for status lines."""

    description: str

    def send(self, frame_bgr: np.ndarray) -> None: ...

    def close(self) -> None: ...


STAGE_PROTOCOLS = {"source": Source, "segmenter": Segmenter, "filter": TemporalFilter,
                   "compositor": Compositor, "sink": Sink}
