"""What a running :class:`~vbg_app.pipeline.Pipeline` measured and what went wrong: per-stage milliseconds
over the last 120 frames, fps over the last 60, latency, and the last failure of each kind as the exception
itself (formatted only where it is shown: ``summary()``, ``as_dict()``, the GUI's readout)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vbg_app.errors import describe, problem

STAGES = ("capture", "inference", "filter", "composite", "output")


class _Window:
    """Rolling window of the last ``n`` samples with a cheap median."""

    def __init__(self, n: int = 120) -> None:
        self.values: deque[float] = deque(maxlen=n)

    def add(self, v: float) -> None:
        self.values.append(v)

    def median(self) -> float:
        return float(np.median(self.values)) if self.values else 0.0


@dataclass
class PipelineStats:
    frames: int = 0
    dropped: int = 0            # frames the source captured but the pipeline was too slow to take (cameras)
    errors: int = 0
    last_exception: BaseException | None = None  # the last failure of any stage (no traceback kept)
    last_error_at: str = ""     # the stage it came from (capture, source, segmentation, ..., output)
    provider: str = ""
    fallback_reason: str = ""   # why the segmenter runs on another provider than asked ("" = as asked)
    source_state: str = "ok"    # ok | reconnecting (a ReconnectingSource lost its device)
    source_error: str = ""      # the ReconnectingSource's own line while it reconnects
    sink_exception: BaseException | None = None  # why the last send failed (None: it worked)
    sink_errors_in_row: int = 0  # consecutive failed sends (0 after one that worked)
    held: int = 0               # frames repeated while no new frame came
    cards: int = 0              # "camera unavailable" cards sent
    stage_ms: dict = field(default_factory=lambda: {s: _Window() for s in STAGES})
    latency_ms: _Window = field(default_factory=_Window)
    _stamps: deque = field(default_factory=lambda: deque(maxlen=61))

    # the exceptions as text, formatted where they are shown
    @property
    def last_error(self) -> str:
        return f"{self.last_error_at}: {describe(self.last_exception)}" if self.last_exception is not None else ""

    @property
    def sink_state(self) -> str:
        """ok | error (the last send failed)."""
        return "ok" if self.sink_exception is None else "error"

    @property
    def sink_error(self) -> str:
        return describe(self.sink_exception)

    @property
    def sink_problem(self) -> str:
        """sink_error without the fix (a shell that handles the failure gives its own advice)."""
        return problem(self.sink_exception)

    def record(self, where: str, exc: BaseException) -> None:
        """Count a stage's failure and keep it as the last one (without its traceback, which holds frames)."""
        self.errors += 1
        self.last_exception, self.last_error_at = exc.with_traceback(None), where

    def tick(self, now: float) -> None:
        self.frames += 1
        self._stamps.append(now)

    @property
    def fps(self) -> float:
        if len(self._stamps) < 2:
            return 0.0
        span = self._stamps[-1] - self._stamps[0]
        return (len(self._stamps) - 1) / span if span > 0 else 0.0

    def medians(self) -> dict[str, float]:
        return {s: w.median() for s, w in self.stage_ms.items()}

    def summary(self) -> str:
        ms = " ".join(f"{k} {v:.1f}" for k, v in self.medians().items())
        provider = self.provider + (f" (fallback: {self.fallback_reason[:80]})" if self.fallback_reason else "")
        text = f"{self.fps:5.1f} fps | {provider} | latency {self.latency_ms.median():.1f} ms | ms: {ms}"
        if self.source_state != "ok":
            text += f" | camera lost, reconnecting: {self.source_error}"
        if self.sink_state != "ok":
            text += f" | output failing: {self.sink_error}"
        return text + (f" | last error: {self.last_error}" if self.last_error else "")

    def as_dict(self) -> dict:
        return {"frames": self.frames, "fps": self.fps, "provider": self.provider,
                "latency_ms": self.latency_ms.median(), "stage_ms": self.medians(),
                "dropped": self.dropped, "errors": self.errors, "last_error": self.last_error,
                "fallback_reason": self.fallback_reason, "source_state": self.source_state,
                "source_error": self.source_error, "sink_state": self.sink_state, "sink_error": self.sink_error,
                "sink_errors_in_row": self.sink_errors_in_row, "held": self.held, "cards": self.cards}
