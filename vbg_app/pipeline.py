"""The frame path: Source → Segmenter → TemporalFilter → Compositor → Sink, timed stage by stage.

Example::

    from vbg_app.pipeline import Pipeline, build_pipeline
    from vbg_app.config import PipelineConfig
    with build_pipeline(PipelineConfig(source="demo", background="blur", sink="file:out.mp4")) as pipe:
        pipe.run(frames=300)
        print(pipe.stats.summary())

Two ways to run: ``step()`` does one frame in the calling thread (tests, the GUI's single-thread fallback);
``run()`` overlaps the stages on two threads (capture + inference on one; temporal filter + composite +
output on the other: measured, that split balances the two halves best), so throughput is set by the
slower half instead of their sum, while every output frame is still blended with the mask computed from
that very frame (no mask lag).

Live changes (the GUI needs them) go through the setters: each builds the new stage in the caller's
thread (so a bad background raises there, with its message) and swaps it in between two frames. A stage
that fails on one frame never stops the pipeline: the error is recorded in ``stats.last_error``, logged
once per distinct message, and the frame is skipped; the source ending stops it cleanly and the sink is
closed, so a recording keeps everything written so far.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from vbg_app.errors import VbgError

log = logging.getLogger(__name__)

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
    dropped: int = 0
    errors: int = 0
    last_error: str = ""
    provider: str = ""
    stage_ms: dict = field(default_factory=lambda: {s: _Window() for s in STAGES})
    latency_ms: _Window = field(default_factory=_Window)
    _stamps: deque = field(default_factory=lambda: deque(maxlen=61))

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
        return (f"{self.fps:5.1f} fps | {self.provider} | latency {self.latency_ms.median():.1f} ms | "
                f"ms: {ms}" + (f" | last error: {self.last_error}" if self.last_error else ""))

    def as_dict(self) -> dict:
        return {"frames": self.frames, "fps": self.fps, "provider": self.provider,
                "latency_ms": self.latency_ms.median(), "stage_ms": self.medians(),
                "dropped": self.dropped, "errors": self.errors, "last_error": self.last_error}


class Pipeline:
    """Owns the five stages; see the module docstring."""

    def __init__(self, source, segmenter, temporal, compositor, sink) -> None:
        self.source = source
        self.segmenter = segmenter
        self.temporal = temporal
        self.compositor = compositor
        self.sink = sink
        self.stats = PipelineStats(provider=getattr(segmenter, "provider", ""))
        self.last_input: np.ndarray | None = None   # for a preview of the original
        self.last_output: np.ndarray | None = None  # for a preview of the result
        self.ended = False
        self._stop = threading.Event()
        self._seen_errors: set[str] = set()

    # -- live configuration ----------------------------------------------------------------------
    def set_background(self, spec) -> None:
        self.compositor.set_background(spec)

    def set_filter(self, temporal) -> None:
        if isinstance(temporal, str):
            from vbg_app.temporal import create_filter
            temporal = create_filter(temporal)
        self.temporal = temporal

    def set_segmenter(self, segmenter) -> None:
        old, self.segmenter = self.segmenter, segmenter
        self.stats.provider = getattr(segmenter, "provider", "")
        self.temporal.reset()
        if old is not None and old is not segmenter:
            old.close()

    def set_sink(self, sink) -> None:
        old, self.sink = self.sink, sink
        if old is not None and old is not sink:
            old.close()

    # -- one frame ---------------------------------------------------------------------------------
    def _record_error(self, where: str, exc: BaseException) -> None:
        self.stats.errors += 1
        text = exc.one_line() if isinstance(exc, VbgError) else f"{type(exc).__name__}: {exc}"
        self.stats.last_error = f"{where}: {text}"
        if text not in self._seen_errors:  # log each distinct failure once, not once per frame
            self._seen_errors.add(text)
            log.warning("%s failed: %s", where, text, exc_info=not isinstance(exc, VbgError))

    def _capture(self):
        """Read, normalise, segment and filter one frame; None when no frame is ready."""
        from vbg_app.sources import SourceEnded, to_bgr8

        t0 = time.perf_counter()
        try:
            frame = self.source.read()
        except SourceEnded:
            self.ended = True
            self._stop.set()
            return None
        except Exception as exc:
            self._record_error("source", exc)
            return None
        if frame is None:
            return None
        try:
            frame = to_bgr8(frame)
            t1 = time.perf_counter()
            segmenter = self.segmenter
            prob = segmenter.segment(frame)
            self.stats.provider = getattr(segmenter, "provider", "")
            t2 = time.perf_counter()
        except Exception as exc:
            self._record_error("segmentation", exc)
            return None
        ms = self.stats.stage_ms
        ms["capture"].add((t1 - t0) * 1e3)
        ms["inference"].add((t2 - t1) * 1e3)
        return frame, prob, t0

    def _emit(self, item) -> None:
        frame, prob, t0 = item
        t2 = time.perf_counter()
        try:
            prob = self.temporal.update(prob, frame)
        except Exception as exc:
            self._record_error("temporal filter", exc)
            self.temporal.reset()
            return
        t3 = time.perf_counter()
        try:
            out = self.compositor.compose(frame, prob)
        except Exception as exc:
            self._record_error("compositing", exc)
            return
        t4 = time.perf_counter()
        try:
            self.sink.send(out)
        except Exception as exc:
            self._record_error("output", exc)
        t5 = time.perf_counter()
        self.last_input, self.last_output = frame, out
        ms = self.stats.stage_ms
        ms["filter"].add((t3 - t2) * 1e3)
        ms["composite"].add((t4 - t3) * 1e3)
        ms["output"].add((t5 - t4) * 1e3)
        self.stats.latency_ms.add((t5 - t0) * 1e3)
        self.stats.tick(t5)

    def step(self) -> bool:
        """Process one frame in this thread. False when no frame was ready (or the source ended)."""
        item = self._capture()
        if item is None:
            return False
        self._emit(item)
        return True

    # -- loops -------------------------------------------------------------------------------------
    def run(self, frames: int | None = None, on_frame=None, threaded: bool = True) -> PipelineStats:
        """Run until ``stop()``, the source's end, or ``frames`` output frames; returns the stats.

        ``on_frame(pipeline)`` is called after every output frame (status lines, GUI previews).
        """
        self._stop.clear()
        target = None if frames is None else self.stats.frames + frames
        if not threaded:
            while not self._stop.is_set() and (target is None or self.stats.frames < target):
                if self.step():
                    if on_frame:
                        on_frame(self)
                else:
                    time.sleep(0.001)
            return self.stats

        handoff: queue.Queue = queue.Queue(maxsize=1)

        def producer() -> None:
            while not self._stop.is_set():
                item = self._capture()
                if item is None:
                    time.sleep(0.001)
                    continue
                while not self._stop.is_set():
                    try:
                        handoff.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        continue
            handoff.put(None)  # wake the consumer

        worker = threading.Thread(target=producer, name="vbg-capture-infer", daemon=True)
        worker.start()
        try:
            while target is None or self.stats.frames < target:
                try:
                    item = handoff.get(timeout=0.1)
                except queue.Empty:
                    if not worker.is_alive():
                        break
                    continue
                if item is None:
                    break
                self._emit(item)
                if on_frame:
                    on_frame(self)
        finally:
            self._stop.set()
            while worker.is_alive():  # drain so the producer is never stuck on a full queue
                try:
                    handoff.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join(timeout=2)
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop and release every stage (idempotent). The sink is closed last-but-first so files are finalised."""
        self._stop.set()
        for stage in (self.sink, self.source, self.segmenter, self.compositor):
            if stage is None or not hasattr(stage, "close"):
                continue
            try:
                stage.close()
            except Exception as exc:  # closing must never raise over the user's work
                log.warning("closing %s failed: %s", type(stage).__name__, exc)
        self.sink = self.source = self.segmenter = self.compositor = None

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_pipeline(config) -> Pipeline:
    """Open every stage a :class:`~vbg_app.config.PipelineConfig` names; on failure close what was opened."""
    from vbg_app.compose import Compositor
    from vbg_app.engines import create_segmenter
    from vbg_app.sinks import open_sink
    from vbg_app.sources import open_source
    from vbg_app.temporal import create_filter

    opened = []
    try:
        temporal = create_filter(config.smoothing)
        compositor = Compositor(config.background, refine=config.refine, mirror=config.mirror,
                                cleanup=config.cleanup)
        source = open_source(config.source, size=config.size, fps=config.fps, realtime=config.realtime)
        opened.append(source)
        segmenter = create_segmenter(config.engine, config.model, config.provider, config.threads)
        opened.append(segmenter)
        sink = open_sink(config.sink, source.size_wh, config.fps or source.fps or 30.0)
        opened.append(sink)
    except BaseException:
        for stage in reversed(opened):
            try:
                stage.close()
            except Exception:
                pass
        raise
    return Pipeline(source, segmenter, temporal, compositor, sink)
