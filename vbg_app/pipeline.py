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

Live changes (the GUI needs them) go through the methods, called between two runs or from the thread that
runs the pipeline: ``set_background``, ``set_filter``, ``set_compositing`` build or change the stage in the
caller's thread (so a bad background raises there, with its message); ``set_source`` and ``set_segmenter`` swap
in a stage opened elsewhere (seconds for a camera or a model: :mod:`vbg_app.assembly` opens them the way
``build_pipeline`` does), dropping the filter's history; ``open_sink``/``close_sink`` switch the output (the
GUI's virtual camera). ``drop_sink_after`` is the live output's health rule: after that many failed sends in
a row the sink is closed and :meth:`take_dropped_sink` says why, once. A stage
that fails on one frame never stops the pipeline: the error is recorded in ``stats.last_error``, logged
once per distinct message, and the frame is skipped; the source ending stops it cleanly and the sink is
closed, so a recording keeps everything written so far.

Reliability (see docs/troubleshooting.md): frames are checked before any stage sees them (shape, type,
size: :class:`~vbg_app.errors.BadInput` recorded, frame skipped; a source that gives no usable frame for
30 tries and 3 s ends the run with ``source_failure``, which ``run()`` raises); a mask with NaN/inf is
repaired instead of poisoning the temporal filter. While a *live* source gives no frame (a camera unplugged
and being reopened by :class:`~vbg_app.sources.ReconnectingSource`), ``run()`` keeps the output alive:
after ``hold_after_s`` it repeats the last frame, after ``card_after_s`` it sends a dark "camera
unavailable" card (what the meeting sees), at the source's frame rate. ``stats`` says what is wrong:
``source_state``/``source_error``,
``sink_state``/``sink_error`` (a virtual camera that stopped accepting frames: the preview goes on, the
owner can swap in a new sink; a recording whose disk filled up: :class:`~vbg_app.errors.OutputFailed`, kept
in ``output_failure``, the file is closed and the run ends), ``fallback_reason`` (the GPU provider that was
dropped for the CPU).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from vbg_app.errors import VbgError, describe
from vbg_app.frames import MAX_SIZE_WH, MIN_SIDE, check_frame, check_mask, to_bgr8  # noqa: F401 (re-exported)
from vbg_app.stats import STAGES, PipelineStats  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from vbg_app.protocols import Compositor, Segmenter, Sink, Source, TemporalFilter

log = logging.getLogger(__name__)



def render_card(size_wh: tuple[int, int], title: str, detail: str = "") -> np.ndarray:
    """A dark BGR frame with ``title`` (large) and ``detail`` centred, readable at any size (ASCII only:
    OpenCV's fonts have no other glyphs)."""
    import cv2

    w, h = max(MIN_SIDE, int(size_wh[0])), max(MIN_SIDE, int(size_wh[1]))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (40, 34, 30)
    font = cv2.FONT_HERSHEY_SIMPLEX
    lines = [(title, 1.0, (240, 240, 240)), (detail, 0.6, (190, 190, 190))] if detail else [(title, 1.0, (240, 240, 240))]
    base = h / 720 * 1.8  # title scale at 720p: glyphs ~55 px tall
    # shrink until the widest line fits in 90 % of the width
    for _ in range(20):
        sizes = [cv2.getTextSize(t, font, base * f, max(1, round(base * f * 2))) for t, f, _ in lines]
        if max(sz[0][0] for sz in sizes) <= 0.9 * w:
            break
        base *= 0.85
    heights = [sz[0][1] + sz[1] for sz in sizes]
    gap = heights[0] * 0.6
    total = sum(heights) + gap * (len(lines) - 1)
    y = (h - total) / 2
    for (text, f, color), (tsize, baseline) in zip(lines, sizes):
        y += tsize[1]
        cv2.putText(img, text, (round((w - tsize[0]) / 2), round(y)), font, base * f, color,
                    max(1, round(base * f * 2)), cv2.LINE_AA)
        y += baseline + gap
    return img


class Pipeline:
    """Owns the five stages; see the module docstring."""

    def __init__(self, source: Source, segmenter: Segmenter, temporal: TemporalFilter, compositor: Compositor,
                 sink: Sink) -> None:
        self.source = source
        self.segmenter = segmenter
        self.temporal = temporal
        self.compositor = compositor
        self.sink = sink
        self.stats = PipelineStats(provider=getattr(segmenter, "provider", ""),
                                   fallback_reason=getattr(segmenter, "fallback_reason", ""))
        self.last_input: np.ndarray | None = None   # for a preview of the original
        self.last_output: np.ndarray | None = None  # for a preview of the result (the card while one is sent)
        self.ended = False
        # keeping the output alive while a live source gives nothing (see the module docstring)
        self.holdover = True
        self.hold_after_s = 0.25
        self.card_after_s = 1.0
        self._last_real_t: float | None = None      # when the last real frame was composed
        self._last_real_out: np.ndarray | None = None
        self._last_send_t: float | None = None
        self._card: tuple | None = None              # (key, image) of the last card drawn
        self._producer: threading.Thread | None = None
        self._stop = threading.Event()
        self._seen_errors: set[str] = set()
        # a source that gives only unusable frames (or only errors) ends the run instead of spinning forever:
        # after at least unusable_after_n tries AND unusable_after_s seconds without a usable frame (both: 30
        # tries alone are 1 s of a camera's switch-over hiccup, or milliseconds of a fast file; 3 s alone could
        # be 3 tries of a slow source). Reads that give nothing (None: a camera being slow or reconnecting)
        # and errors while a ReconnectingSource is reopening its device never count. See _unusable().
        self.unusable_after_n = 30
        self.unusable_after_s = 3.0
        self.source_failure: VbgError | None = None  # why the run ended so (run() raises it)
        self._bad_since: float | None = None
        self._bad_count = 0
        self._last_bad: BaseException | None = None
        self._good_frames = 0
        # a sink that failed for good (OutputFailed: a recording's disk is full): it gets no more frames and,
        # with stop_on_output_failure, the run ends; the owner re-raises output_failure (vbg run: exit 4)
        self.output_failure: VbgError | None = None
        self.stop_on_output_failure = True
        # a live output that fails this many sends in a row is closed and replaced by a NullSink (None: never;
        # vbg run keeps retrying its virtual camera, the GUI sets 3 and shows the switch off)
        self.drop_sink_after: int | None = None
        self._dropped_sink: BaseException | None = None
        self.fallbacks: list = []  # vbg_app.assembly.Fallback: stages build_pipeline(fallback=True) replaced

    # -- live configuration (between two runs, or from the thread that calls run()/step()) ----------
    def set_background(self, spec) -> None:
        """A new background (spec text, a vbg_app.specs dataclass or a Background); BadInput keeps the old."""
        self.compositor.set_background(spec)

    def set_compositing(self, refine: bool | None = None, mirror: bool | None = None) -> None:
        """Edge refinement and mirroring, live (the compositor flips frame and mask itself: the filter's
        history never changes orientation, so it is kept)."""
        if refine is not None:
            self.compositor.refine = bool(refine)
        if mirror is not None:
            self.compositor.mirror = bool(mirror)

    def set_source(self, source: Source) -> None:
        """Swap in an opened source (opening a camera takes seconds: do it elsewhere, e.g. with
        :func:`vbg_app.assembly.open_source_for`); the old one is closed. The filter's history is dropped, and
        a pipeline whose source ended or failed runs again."""
        old, self.source = self.source, source
        self.ended = False
        self.source_failure, self._bad_since, self._bad_count, self._good_frames = None, None, 0, 0
        self.stats.source_state, self.stats.source_error = "ok", ""
        self.temporal.reset()
        if old is not None and old is not source:
            try:
                old.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", type(old).__name__, exc)

    def set_filter(self, temporal) -> None:
        if isinstance(temporal, str):
            from vbg_app.temporal import create_filter
            temporal = create_filter(temporal)
        self.temporal = temporal

    def set_battery_saver(self, on: bool) -> None:
        """Wrap the running segmenter in the battery saver (vbg_app/saver.py), or unwrap it; nothing is closed or
        reopened and the filter keeps its history."""
        from vbg_app.saver import BatterySaver

        seg = self.segmenter
        if isinstance(seg, BatterySaver) == bool(on):
            return
        self.segmenter = BatterySaver(seg) if on else seg.inner

    def set_segmenter(self, segmenter) -> None:
        old, self.segmenter = self.segmenter, segmenter
        self.stats.provider = getattr(segmenter, "provider", "")
        self.stats.fallback_reason = getattr(segmenter, "fallback_reason", "")
        self.temporal.reset()
        if old is not None and old is not segmenter:
            old.close()

    def open_sink(self, spec, fps: float | None = None) -> Sink:
        """Open the sink ``spec`` (``vcam``, ``file:PATH`` ...) at the source's size and ``fps`` (default: the
        source's) and swap it in; a VbgError leaves the current sink."""
        from vbg_app.sinks import open_sink

        sink = open_sink(spec, self.source.size_wh, fps or getattr(self.source, "fps", 0) or 30.0)
        self.set_sink(sink)
        return sink

    def close_sink(self) -> None:
        """Send to nowhere (the preview goes on); the current sink is closed."""
        from vbg_app.sinks import NullSink

        self.set_sink(NullSink())

    def set_sink(self, sink: Sink) -> None:
        old, self.sink = self.sink, sink
        self.stats.sink_exception, self.stats.sink_errors_in_row = None, 0
        self.output_failure = None
        if old is not None and old is not sink:
            try:
                old.close()
            except Exception as exc:  # a virtual camera that died may fail to close too
                log.warning("closing %s failed: %s", type(old).__name__, exc)

    # -- one frame ---------------------------------------------------------------------------------
    def _record_error(self, where: str, exc: BaseException) -> None:
        text = describe(exc)
        if text not in self._seen_errors:  # log each distinct failure once, not once per frame
            if len(self._seen_errors) < 1000:  # hours of varied errors must not grow memory without bound
                self._seen_errors.add(text)
            log.warning("%s failed: %s", where, text, exc_info=not isinstance(exc, VbgError))
        self.stats.record(where, exc)

    def _unusable(self, exc: BaseException) -> None:
        """Count a frame that came and was refused (or a read that raised); past both limits (see __init__)
        the run ends with :attr:`source_failure`, which ``run()`` raises."""
        now = time.monotonic()
        if self._bad_since is None:
            self._bad_since, self._bad_count = now, 0
        self._bad_count += 1
        self._last_bad = exc.with_traceback(None)
        if self._bad_count >= self.unusable_after_n and now - self._bad_since >= self.unusable_after_s \
                and self.source_failure is None:
            self._give_up(f"gave no usable frame in {self._bad_count} tries over {now - self._bad_since:.1f} s")

    def _give_up(self, how: str) -> None:
        from vbg_app.errors import BadInput

        exc = self._last_bad
        why = exc.what if isinstance(exc, VbgError) else describe(exc)
        fix = exc.fix if isinstance(exc, VbgError) and exc.fix else "use another source"
        name = getattr(self.source, "description", "") or "the source"
        self.source_failure = BadInput(f"{name} {how}: {why}", fix)
        log.info("%s", self.source_failure.one_line())  # the owner reports it (vbg run: its error line)
        self.ended = True
        self._stop.set()

    def _capture(self):
        """Read, check and segment one frame: (frame, prob, t0), or None when no frame is ready (filtering
        happens later, beside compositing)."""
        from vbg_app.sources import SourceEnded

        t0 = time.perf_counter()
        source = self.source
        try:
            frame = source.read()
        except SourceEnded:
            if self._bad_count and self.source_failure is None and not self._good_frames:
                self._give_up("ended before giving one usable frame")  # e.g. a video of only unusable frames
            self.ended = True
            self._stop.set()
            return None
        except Exception as exc:
            self._record_error("source", exc)
            if getattr(source, "state", "ok") == "ok":  # not while a ReconnectingSource reopens its device
                self._unusable(exc)
            return None
        finally:
            st = self.stats  # a ReconnectingSource says whether its device is lost
            st.dropped = getattr(source, "dropped", 0)  # a camera counts the frames nobody took in time
            st.source_state = getattr(source, "state", "ok")
            st.source_error = getattr(source, "error", "") if st.source_state != "ok" else ""
        if frame is None:
            return None
        try:
            frame = to_bgr8(check_frame(frame))
        except Exception as exc:
            self._record_error("source", exc)
            self._unusable(exc)
            return None
        self._bad_since, self._bad_count = None, 0
        self._good_frames += 1
        try:
            t1 = time.perf_counter()
            segmenter = self.segmenter
            prob = segmenter.segment(frame)
            self.stats.provider = getattr(segmenter, "provider", "")
            self.stats.fallback_reason = getattr(segmenter, "fallback_reason", "")
            prob = check_mask(prob)
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
        self._send(out)
        t5 = time.perf_counter()
        self.last_input, self.last_output = frame, out
        self._last_real_t, self._last_real_out = t5, out
        ms = self.stats.stage_ms
        ms["filter"].add((t3 - t2) * 1e3)
        ms["composite"].add((t4 - t3) * 1e3)
        ms["output"].add((t5 - t4) * 1e3)
        self.stats.latency_ms.add((t5 - t0) * 1e3)
        self.stats.tick(t5)

    def _send(self, out: np.ndarray) -> bool:
        from vbg_app.errors import OutputFailed

        st = self.stats
        if self.output_failure is not None:  # the sink has closed itself: no more sends, the state stays
            st.sink_errors_in_row += 1
            self._last_send_t = time.perf_counter()
            return False
        try:
            self.sink.send(out)
        except OutputFailed as exc:  # for good: the sink closed its file (what was written is kept)
            self.output_failure = exc
            st.record("output", exc)
            st.sink_exception = exc
            st.sink_errors_in_row += 1
            log.info("output failed: %s", exc.one_line())  # the owner reports it (vbg run: its error line)
            if self.stop_on_output_failure:
                self._stop.set()
            return False
        except Exception as exc:
            self._record_error("output", exc)
            st.sink_exception = st.last_exception
            st.sink_errors_in_row += 1
            if self.drop_sink_after and st.sink_errors_in_row >= self.drop_sink_after:
                self._drop_sink()
            return False
        finally:
            self._last_send_t = time.perf_counter()
        st.sink_exception, st.sink_errors_in_row = None, 0
        return True

    def _drop_sink(self) -> None:
        """The health rule for a live output (``drop_sink_after`` failed sends in a row, e.g. a virtual camera
        that keeps refusing frames): close it and send to nowhere; :meth:`take_dropped_sink` says why, once."""
        why = self.stats.sink_exception
        log.warning("output %s failed %d times in a row, closed: %s", getattr(self.sink, "description", "?"),
                    self.stats.sink_errors_in_row, describe(why))
        self.close_sink()  # the preview goes on
        self._dropped_sink = why

    def take_dropped_sink(self) -> BaseException | None:
        """Why the output was closed by the ``drop_sink_after`` rule since the last call (None: it was not)."""
        why, self._dropped_sink = self._dropped_sink, None
        return why

    def _hold(self) -> bool:
        """Keep a live output alive while no new frame is composed: repeat the last frame after
        ``hold_after_s``, send the "camera unavailable" card after ``card_after_s``, at the source's rate
        (5..30 fps). True when a frame was sent (``last_output`` is it)."""
        if not self.holdover or self._last_real_t is None or not getattr(self.source, "live", False):
            return False
        now = time.perf_counter()
        gap = now - self._last_real_t
        if gap < self.hold_after_s:
            return False
        fps = min(30.0, max(5.0, float(getattr(self.source, "fps", 30.0) or 30.0)))
        if self._last_send_t is not None and now - self._last_send_t < 1.0 / fps:
            return False
        st = self.stats
        if gap < self.card_after_s:
            out = self._last_real_out
            st.held += 1
        else:
            h, w = self._last_real_out.shape[:2]
            detail = ("Reconnecting..." if st.source_state != "ok" else "Waiting for video...")
            key = (w, h, detail)
            if self._card is None or self._card[0] != key:
                self._card = (key, render_card((w, h), "Camera unavailable", detail))
            out = self._card[1]
            st.cards += 1
        self._send(out)
        self.last_output = out
        return True

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

        ``on_frame(pipeline)`` is called after every output frame (status lines, GUI previews). A source that
        gives no usable frame for ``unusable_after_n`` tries and ``unusable_after_s`` seconds ends the run:
        it raises :attr:`source_failure` (a BadInput saying why and what to do; ``ended`` is True).
        """
        old = self._producer
        if old is not None and old.is_alive():  # a capture thread left blocked by an earlier run
            old.join(5.0)
            if old.is_alive():
                log.warning("the capture thread of the previous run is still blocked in the source")
        self._stop.clear()
        self.source_failure, self._bad_since, self._bad_count, self._good_frames = None, None, 0, 0
        target = None if frames is None else self.stats.frames + frames
        if not threaded:
            while not self._stop.is_set() and (target is None or self.stats.frames < target):
                if self.step():
                    if on_frame:
                        on_frame(self)
                else:
                    if self._hold() and on_frame:
                        on_frame(self)
                    time.sleep(0.001)
            return self._result()

        handoff: queue.Queue = queue.Queue(maxsize=1)

        def producer() -> None:
            try:
                while not self._stop.is_set():
                    try:
                        item = self._capture()
                    except Exception as exc:  # a bug in a stage: record it, keep capturing
                        self._record_error("capture", exc)
                        time.sleep(0.01)
                        continue
                    if item is None:
                        time.sleep(0.001)
                        continue
                    while not self._stop.is_set():
                        try:
                            handoff.put(item, timeout=0.05)
                            break
                        except queue.Full:
                            continue
            finally:
                try:
                    handoff.put_nowait(None)  # wake the consumer
                except queue.Full:
                    pass

        worker = threading.Thread(target=producer, name="vbg-capture-infer", daemon=True)
        self._producer = worker
        try:
            # start() inside the try: a Ctrl+C that lands while start() waits for the new thread must still set
            # the stop flag below, or the producer would go on capturing (and inferring) while the caller
            # closes the stages under it
            worker.start()
            while target is None or self.stats.frames < target:
                try:
                    item = handoff.get(timeout=0.02)
                except queue.Empty:
                    # stop() ends the run at once even if the producer is blocked in read(); the source's
                    # end instead lets every frame already captured through (the producer sends None last)
                    if not worker.is_alive() or (self._stop.is_set() and not self.ended):
                        break
                    if self._hold() and on_frame:
                        on_frame(self)
                    continue
                if item is None:
                    break
                self._emit(item)
                if on_frame:
                    on_frame(self)
        finally:
            self._stop.set()
            # the producer never blocks on the queue (its puts time out and check the stop flag), so this
            # only waits for a read() in progress; a source blocked for longer cannot hang stop(): the thread
            # ends on its own once read() returns, and the next run() waits for it first
            try:
                worker.join(timeout=1.0)
            except RuntimeError:  # start() was interrupted before the thread said it runs: it sees the flag
                pass
            if worker.is_alive():
                log.info("the capture thread is still in source.read(); it ends when that returns")
        return self._result()

    def _result(self) -> PipelineStats:
        if self.source_failure is not None:
            raise self.source_failure
        return self.stats

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop and release every stage (idempotent). The sink is closed first, so a recording is finalised
        even when closing another stage fails."""
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


from vbg_app.assembly import build_pipeline  # noqa: E402,F401  (the way to make a Pipeline; it imports this module)
