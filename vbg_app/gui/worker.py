"""The pipeline's own thread, and the only way the window talks to it.

:class:`PipelineWorker` is a QObject living in the GUI thread whose methods only *enqueue* commands; a Python
thread (``vbg-gui-worker``) owns the :class:`~vbg_app.pipeline.Pipeline`, applies the commands between two
frames and reports back through Qt signals only (queued into the GUI thread): frames as QImage copies, stats,
messages, the virtual camera's state. So the window never waits on a camera, a model or a virtual camera.

* The preview runs on ``build_pipeline(config, fallback=True)`` (vbg_app/assembly.py) with ``sink="null"``:
  start-up never ends in an empty window when something can run (a missing model falls back to the other
  engine, a missing camera to the demo, a broken background to blur); the worker says what each fallback
  means for the user. The virtual camera is switched by ``pipeline.open_sink("vcam")`` / ``close_sink()`` *in
  the worker thread*; a failure leaves the preview running and reports the error's text with its fix, and the
  pipeline's own rule (``drop_sink_after``) closes a virtual camera that keeps refusing frames.
* Slow things -- opening a camera (seconds), loading a model -- happen on a short-lived loader thread (through
  ``assembly.open_source_for`` / ``open_segmenter_for``) while the old pipeline keeps running; the result is
  swapped in between frames (``pipeline.set_source`` / ``set_segmenter``). A newer request supersedes an older one.
* The worker builds no stage itself: everything goes through vbg_app.assembly and the Pipeline's methods
  (tests/test_assembly.py checks it).
* Frames are sent only when the window has shown the previous one (``frame_consumed()``), so a slow window
  never builds a queue (latency) or memory.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6: drops cv2's Qt plugin path)

import dataclasses
import logging
import os
import queue
import threading
import time

import cv2
import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from vbg_app.assembly import NothingToRun, build_pipeline, open_segmenter_for, open_source_for
from vbg_app.engines import ENGINE_TITLES
from vbg_app.errors import DeviceUnavailable, VbgError, describe, problem

log = logging.getLogger(__name__)

# commands whose later instance makes an earlier one pointless (the slider sends many "background")
_COALESCE = {"background", "smoothing", "refine", "mirror", "battery_saver", "vcam", "source", "engine"}
VCAM_FAILURES_TO_DROP = 3  # a virtual camera refusing this many frames in a row is turned off (and can be retried)


def to_qimage(bgr: np.ndarray | None, max_width: int = 0) -> QImage:
    """BGR uint8 (H, W, 3) → a QImage that owns its pixels (safe to hand to another thread)."""
    if bgr is None:
        return QImage()
    h, w = bgr.shape[:2]
    if max_width and w > max_width:
        nh = max(1, round(h * max_width / w))
        bgr = cv2.resize(bgr, (max_width, nh), interpolation=cv2.INTER_AREA)
        h, w = nh, max_width
    bgr = np.ascontiguousarray(bgr)
    return QImage(bgr.data, w, h, bgr.strides[0], QImage.Format.Format_BGR888).copy()


_text = describe


class PipelineWorker(QObject):
    """See the module docstring. Signals are delivered in the GUI thread."""

    frameReady = Signal(QImage, QImage)   # output, original (null unless show_original)
    statsReady = Signal(dict)             # pipeline stats + cpu, source, sink, engine, provider, fallback
    message = Signal(str, str)            # level (info | warning | error), text
    vcamChanged = Signal(str, str)        # state (off | starting | on | error | missing | lost | unavailable), text
    sourceChanged = Signal(str, str, str)  # state (opening | ok | error | lost), spec, text
    engineChanged = Signal(dict)          # engine, provider, requested, fallback_reason, note
    backgroundApplied = Signal(str, str)  # spec, error text ("" when applied)
    runningChanged = Signal(bool)         # a pipeline is producing frames
    finished = Signal()

    def __init__(self, config, preview_width: int = 960, threaded: bool = True, probe_vcam: bool = True,
                 parent=None) -> None:
        super().__init__(parent)
        self.probe_vcam = probe_vcam
        # the preview sends nowhere until the virtual camera is switched on; a video always loops (a camera stand-in)
        self.config = dataclasses.replace(config, sink="null", loop=True)
        self.preview_width = preview_width
        self.threaded = threaded
        self.show_original = False
        self._cmds: queue.Queue = queue.Queue()
        self._quit = threading.Event()
        self._want_frame = threading.Event()
        self._want_frame.set()
        self._pipe = None
        self._thread: threading.Thread | None = None
        self._loaders: list[threading.Thread] = []
        self._gen = {"source": 0, "engine": 0}
        self._vcam_on = False
        self._source_state = "ok"          # last source state reported (ok | lost)
        self._engine_reported = None       # (provider, fallback_reason) last sent in engineChanged
        self._last_stats = (time.monotonic(), time.process_time())
        self._ncpu = os.cpu_count() or 1
        self.frames_sent = 0
        # a command posted just before run() starts could be missed by its stop(): re-kick while any is pending
        self._kicker = QTimer(self)
        self._kicker.setInterval(100)
        self._kicker.timeout.connect(self._kick)

    # -- GUI-thread API ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._main, name="vbg-gui-worker", daemon=True)
        self._thread.start()
        self._kicker.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the pipeline, close every stage (the virtual camera too) and join the threads. True when all ended."""
        self._kicker.stop()
        self._quit.set()
        self._post("quit")
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        deadline = time.monotonic() + max(0.5, timeout / 2)
        for t in list(self._loaders):
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in [thread, *self._loaders] if t is not None and t.is_alive()]
        if alive:
            log.warning("threads still running after shutdown: %s", ", ".join(alive))
        return not alive

    def set_background(self, spec: str) -> None:
        self._post("background", spec)

    def set_smoothing(self, name: str) -> None:
        self._post("smoothing", name)

    def set_refine(self, on: bool) -> None:
        self._post("refine", bool(on))

    def set_battery_saver(self, on: bool) -> None:
        self._post("battery_saver", bool(on))

    def set_mirror(self, on: bool) -> None:
        self._post("mirror", bool(on))

    def set_source(self, spec: str, size: tuple[int, int] | None = None, fps: float | None = None) -> None:
        self._post("source", spec, size, fps)

    def set_engine(self, engine: str, provider: str = "auto", model: str | None = None) -> None:
        self._post("engine", engine, provider, model)

    def set_virtual_camera(self, on: bool) -> None:
        self._post("vcam", bool(on))

    def set_show_original(self, on: bool) -> None:
        self.show_original = bool(on)  # read by the worker per frame; no pipeline change needed

    def frame_consumed(self) -> None:
        """The window has shown the last frame: send the next one."""
        self._want_frame.set()

    @property
    def virtual_camera_on(self) -> bool:
        return self._vcam_on

    # -- plumbing ------------------------------------------------------------------------------------
    def _post(self, name: str, *args) -> None:
        self._cmds.put((name, args))
        pipe = self._pipe
        if pipe is not None:
            pipe.stop()

    def _kick(self) -> None:
        pipe = self._pipe
        if pipe is not None and not self._cmds.empty():
            pipe.stop()

    def _drain(self, block_s: float = 0.0) -> list:
        items = []
        try:
            if block_s > 0:
                items.append(self._cmds.get(timeout=block_s))
            while True:
                items.append(self._cmds.get_nowait())
        except queue.Empty:
            pass
        return items

    # -- worker thread -------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._pipe = self._build()
            self.runningChanged.emit(self._pipe is not None)
            if self.probe_vcam:
                self._probe_vcam()
            while not self._quit.is_set():
                pipe = self._pipe
                idle = pipe is None or pipe.ended
                self._apply(self._drain(0.2 if idle else 0.0))
                if self._quit.is_set():
                    break
                pipe = self._pipe
                if pipe is None or pipe.ended or not self._cmds.empty():
                    continue
                try:
                    pipe.run(on_frame=self._on_frame, threaded=self.threaded)
                except Exception as exc:  # a bug, not a user error: report it and keep the window alive
                    log.exception("the pipeline stopped")
                    self.message.emit("error", f"The video pipeline stopped unexpectedly ({_text(exc)}). "
                                               "Pick another camera or engine, or restart vbg; details are in the log.")
                    self._quit.wait(0.5)
                if pipe.ended and not self._quit.is_set():
                    self.runningChanged.emit(False)
                    self.message.emit("warning", f"The source {self.config.source} ended. Pick another camera or "
                                                 "video to continue.")
        except Exception as exc:
            log.exception("the pipeline worker failed")
            self.message.emit("error", f"The video pipeline failed ({_text(exc)}); details are in the log.")
        finally:
            self._close()
            self.finished.emit()

    def _close(self) -> None:
        pipe, self._pipe = self._pipe, None
        for name, args in self._drain():  # results of loaders that finished meanwhile
            self._discard(name, args)
        if pipe is not None:
            pipe.close()  # closes every stage, the compositor included
        if self._vcam_on:
            self._vcam_on = False
            self.vcamChanged.emit("off", "Virtual camera off.")
        for t in list(self._loaders):  # a camera that is still opening: join it, then close what it opened
            t.join(6.0)
        for name, args in self._drain():
            self._discard(name, args)

    @staticmethod
    def _discard(name: str, args) -> None:
        if name in ("source_ready", "engine_ready"):
            try:
                args[1].close()
            except Exception:
                pass

    def _on_frame(self, pipe) -> None:
        if not self._cmds.empty() or self._quit.is_set():
            pipe.stop()
        self._check_health(pipe)
        if self._want_frame.is_set() and pipe.last_output is not None:
            self._want_frame.clear()
            out = to_qimage(pipe.last_output, self.preview_width)
            orig = to_qimage(pipe.last_input, self.preview_width) if self.show_original else QImage()
            self.frames_sent += 1
            self.frameReady.emit(out, orig)
        now = time.monotonic()
        if now - self._last_stats[0] >= 0.5:
            self._emit_stats(pipe, now)

    def _check_health(self, pipe) -> None:
        """Per frame (real or held): tell the window when the camera is lost or back, and turn a virtual
        camera that keeps refusing frames off (closing it) so the switch shows it and can be retried."""
        st = pipe.stats
        state = "ok" if st.source_state == "ok" else "lost"
        if state != self._source_state:
            self._source_state = state
            if state == "lost":
                detail = f" ({st.source_error})" if st.source_error else ""
                self.sourceChanged.emit("lost", self.config.source, f"Camera lost — reconnecting…{detail}")
            else:
                self.sourceChanged.emit("ok", self.config.source, getattr(pipe.source, "description", ""))
        dropped = pipe.take_dropped_sink()  # the pipeline closed a virtual camera that kept refusing frames
        if dropped is not None and self._vcam_on:
            # what failed, without the sink's own fix ("vbg reopens it by itself", for `vbg run`): the GUI has
            # stopped the virtual camera instead and says how to retry
            self._vcam_on = False
            self.vcamChanged.emit("lost", f"{problem(dropped)}.")
        seg = pipe.segmenter
        if seg is not None and self._engine_reported is not None and \
                (getattr(seg, "provider", ""), getattr(seg, "fallback_reason", "")) != self._engine_reported:
            self._emit_engine(seg, self.config.engine, self.config.provider)  # e.g. the GPU failed mid-call
            if getattr(seg, "fallback_reason", ""):
                self.message.emit("warning", f"{seg.fallback_reason}; now running on "
                                             f"{getattr(seg, 'provider', '?').upper()}.")

    def _emit_stats(self, pipe, now: float) -> None:
        cpu_now = time.process_time()
        wall0, cpu0 = self._last_stats
        self._last_stats = (now, cpu_now)
        d = pipe.stats.as_dict()
        seg = pipe.segmenter
        d.update(
            cpu_percent=100.0 * (cpu_now - cpu0) / max(1e-6, now - wall0) / self._ncpu, cores=self._ncpu,
            source=getattr(pipe.source, "description", ""), sink=getattr(pipe.sink, "description", ""),
            engine=getattr(seg, "name", ""), fallback=getattr(seg, "fallback_reason", ""),
        )
        self.statsReady.emit(d)

    # -- commands (worker thread) --------------------------------------------------------------------
    def _apply(self, items: list) -> None:
        for i, (name, args) in enumerate(items):
            if name in _COALESCE and any(n == name for n, _ in items[i + 1:]):
                continue
            try:
                getattr(self, f"_do_{name}")(*args)
            except Exception as exc:
                log.exception("command %s failed", name)
                self.message.emit("error", f"{name} failed: {_text(exc)}")

    def _do_quit(self) -> None:
        self._quit.set()

    def _do_background(self, spec: str) -> None:
        self.config.background = spec
        if self._pipe is None:
            return
        try:
            self._pipe.set_background(spec)
        except VbgError as exc:
            self.backgroundApplied.emit(spec, exc.one_line())
            return
        self.backgroundApplied.emit(spec, "")

    def _do_smoothing(self, name: str) -> None:
        self.config.smoothing = name
        if self._pipe is not None:
            self._pipe.set_filter(name)

    def _do_refine(self, on: bool) -> None:
        self.config.refine = on
        if self._pipe is not None:
            self._pipe.set_compositing(refine=on)

    def _do_battery_saver(self, on: bool) -> None:
        self.config.battery_saver = on  # an engine opened later gets it too (assembly.open_segmenter_for)
        if self._pipe is not None:
            self._pipe.set_battery_saver(on)

    def _do_mirror(self, on: bool) -> None:
        self.config.mirror = on
        if self._pipe is not None:
            self._pipe.set_compositing(mirror=on)

    def _do_vcam(self, on: bool) -> None:
        pipe = self._pipe
        if not on:
            if pipe is not None:
                pipe.close_sink()
            self._vcam_on = False
            self.vcamChanged.emit("off", "Virtual camera off.")
            return
        if pipe is None:
            self.vcamChanged.emit("error", "Nothing to send yet: no video is running. Pick a camera or the demo first.")
            return
        if self._vcam_on:
            self.vcamChanged.emit("on", self._vcam_text(pipe.sink))
            return
        self.vcamChanged.emit("starting", "Starting the virtual camera…")
        try:
            sink = pipe.open_sink("vcam", fps=self.config.fps)
        except DeviceUnavailable as exc:  # no virtual camera on this system (the text is the sink's, for the CLI)
            self.vcamChanged.emit("missing", exc.one_line())
            return
        except VbgError as exc:
            self.vcamChanged.emit("error", exc.one_line())
            return
        except Exception as exc:
            log.exception("opening the virtual camera failed")
            self.vcamChanged.emit("error", f"Cannot open the virtual camera ({_text(exc)}).")
            return
        self._vcam_on = True
        self.vcamChanged.emit("on", self._vcam_text(sink))

    def _probe_vcam(self) -> None:
        """Tell the user before the meeting when no virtual camera exists (opens one for a moment)."""
        try:
            from vbg_app.sinks import virtual_camera_status
            ok, text = virtual_camera_status()
        except Exception as exc:  # an old sinks.py, a backend that misbehaves: just do not probe
            log.info("virtual camera probe failed: %s", exc)
            return
        if not ok and not self._vcam_on and self._cmds.empty():
            self.vcamChanged.emit("unavailable", text)

    @staticmethod
    def _vcam_text(sink) -> str:
        device = getattr(sink, "device", "") or "the virtual camera"
        return f"On: sending to {device}. Choose it as the camera in Zoom, Meet or Teams."

    def _do_source(self, spec: str, size, fps) -> None:
        self.config.source, self.config.size, self.config.fps = spec, size, fps
        self._gen["source"] += 1
        self.sourceChanged.emit("opening", spec, f"Opening {spec}…")
        self._spawn("source", self._gen["source"], self._load_source, spec, size, fps)

    def _do_engine(self, engine: str, provider: str, model) -> None:
        self.config.engine, self.config.provider, self.config.model = engine, provider, model
        self._gen["engine"] += 1
        self._spawn("engine", self._gen["engine"], self._load_engine, engine, provider, model)

    def _spawn(self, kind: str, gen: int, fn, *args) -> None:
        self._loaders = [t for t in self._loaders if t.is_alive()]

        def body() -> None:
            try:
                result = fn(*args)
            except Exception as exc:
                if not isinstance(exc, VbgError):
                    log.exception("loading the %s failed", kind)
                self._post(f"{kind}_failed", gen, exc, *args)
                return
            self._post(f"{kind}_ready", gen, result, *args)

        t = threading.Thread(target=body, name=f"vbg-gui-open-{kind}", daemon=True)
        self._loaders.append(t)
        t.start()

    def _load_source(self, spec, size, fps):
        return open_source_for(dataclasses.replace(self.config, source=spec, size=size, fps=fps, realtime=True))

    def _load_engine(self, engine, provider, model):
        return open_segmenter_for(dataclasses.replace(self.config, engine=engine, provider=provider, model=model))

    def _do_source_ready(self, gen: int, source, spec, size, fps) -> None:
        if gen != self._gen["source"] or self._quit.is_set():
            source.close()
            return
        pipe = self._pipe
        if pipe is None:
            self._pipe = self._build(source=source)
            self.runningChanged.emit(self._pipe is not None)
            return
        pipe.set_source(source)  # closes the old one; the filter starts afresh
        self._source_state = "ok"
        self.sourceChanged.emit("ok", spec, getattr(source, "description", spec))
        self.runningChanged.emit(True)

    def _do_source_failed(self, gen: int, exc, spec, size, fps) -> None:
        if gen != self._gen["source"]:
            return
        running = getattr(getattr(self._pipe, "source", None), "description", "")
        keep = f" The preview keeps showing {running}." if running and self._pipe is not None and not self._pipe.ended else ""
        self.sourceChanged.emit("error", spec, f"{_text(exc)}{keep}")

    def _do_engine_ready(self, gen: int, seg, engine, provider, model) -> None:
        if gen != self._gen["engine"] or self._quit.is_set():
            seg.close()
            return
        if self._pipe is None:
            self._pipe = self._build(segmenter=seg)
            self.runningChanged.emit(self._pipe is not None)
            return
        self._pipe.set_segmenter(seg)
        self._emit_engine(seg, engine, provider)

    def _do_engine_failed(self, gen: int, exc, engine, provider, model) -> None:
        if gen != self._gen["engine"]:
            return
        seg = getattr(self._pipe, "segmenter", None)
        keep = (f" Still running {ENGINE_TITLES.get(seg.name, seg.name)} on {seg.provider}."
                if seg is not None else "")
        self.message.emit("error", f"{ENGINE_TITLES.get(engine, engine)} could not start: {_text(exc)}{keep}")
        if seg is not None:
            self._emit_engine(seg, engine, provider, note=f"{ENGINE_TITLES.get(engine, engine)} failed to load")

    def _emit_engine(self, seg, requested_engine: str, requested_provider: str, note: str = "") -> None:
        self._engine_reported = (getattr(seg, "provider", ""), getattr(seg, "fallback_reason", ""))
        self.engineChanged.emit({
            "engine": getattr(seg, "name", ""), "provider": getattr(seg, "provider", ""),
            "requested_engine": requested_engine, "requested_provider": requested_provider,
            "fallback_reason": getattr(seg, "fallback_reason", ""), "note": note,
        })

    # -- building with fallbacks ---------------------------------------------------------------------
    def _build(self, source=None, segmenter=None):
        """The pipeline for ``self.config`` (a prepared ``source``/``segmenter`` is used as is), built by
        :func:`~vbg_app.assembly.build_pipeline` with its fallbacks, each one told to the user; None when
        nothing can run (also told)."""
        cfg = self.config
        if source is None:
            self.sourceChanged.emit("opening", cfg.source, f"Opening {cfg.source}…")
        try:
            pipe = build_pipeline(cfg, fallback=True, source=source, segmenter=segmenter)
        except NothingToRun as exc:
            self._nothing_to_run(exc)
            return None
        for fb in pipe.fallbacks:
            self._tell_fallback(fb)
        self.backgroundApplied.emit(cfg.background, "")
        pipe.drop_sink_after = VCAM_FAILURES_TO_DROP
        self._vcam_on = False
        self._source_state = "ok"
        self.sourceChanged.emit("ok", cfg.source, getattr(pipe.source, "description", cfg.source))
        engine = cfg.engine
        note = "" if pipe.segmenter.name == engine else f"{ENGINE_TITLES.get(engine, engine)} could not start"
        self._emit_engine(pipe.segmenter, engine, cfg.provider, note)
        return pipe

    def _tell_fallback(self, fb) -> None:
        """Say what runs instead of what was asked, and remember it as the setting now in use."""
        cfg, why = self.config, _text(fb.error)
        if fb.stage == "background":
            self.backgroundApplied.emit(fb.wanted, why)
            cfg.background = fb.used
        elif fb.stage == "smoothing":
            self.message.emit("warning", f"{why} Using no smoothing.")
        elif fb.stage == "source":
            self.sourceChanged.emit("error", fb.wanted, f"{why} Showing the demo instead.")
            cfg.source = fb.used
        elif fb.stage == "engine":
            self.message.emit("warning", f"{ENGINE_TITLES.get(fb.wanted, fb.wanted)} could not start ({why}) "
                                         f"Using {ENGINE_TITLES.get(fb.used, fb.used)} instead.")

    def _nothing_to_run(self, exc: NothingToRun) -> None:
        if exc.stage == "engine":
            self.message.emit("error", "No segmentation engine could start. " + " ".join(
                f"{ENGINE_TITLES.get(name, name)}: {_text(err)}" for name, err in exc.errors))
            return
        (wanted, first), *more = exc.errors
        self.sourceChanged.emit("error", wanted, _text(first) + (" Showing the demo instead." if more else ""))
        for _name, err in more:
            self.message.emit("error", _text(err))
