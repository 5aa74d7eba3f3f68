"""Making a :class:`~vbg_app.pipeline.Pipeline` from a :class:`~vbg_app.config.PipelineConfig`: the one place
that opens stages from settings, for ``vbg run``, the GUI and the tools alike.

``build_pipeline(config)`` opens every stage or raises the first stage's error (``vbg run``: a bad option is an
exit code, not a silent substitute). ``build_pipeline(config, fallback=True)`` (the GUI: start-up never ends in
an empty window when something can run) replaces a stage that cannot start, stage by stage:

=============  ==========================================  ==============================
stage          falls back to                               when even that fails
=============  ==========================================  ==============================
background     ``blur``                                    (blur cannot fail)
smoothing      ``none``                                    (none cannot fail)
source         the demo (not when the demo itself failed)  :class:`NothingToRun`
engine         the other engine, its default model, auto   :class:`NothingToRun`
=============  ==========================================  ==============================

and reports each replacement as a :class:`Fallback` in ``pipeline.fallbacks`` (the GUI shows them).
:func:`open_source_for` and :func:`open_segmenter_for` open one stage the same way, for a live swap
(``Pipeline.set_source`` / ``set_segmenter``) prepared on another thread.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from vbg_app.errors import DeviceUnavailable, VbgError, describe

if TYPE_CHECKING:
    from vbg_app.config import PipelineConfig
    from vbg_app.pipeline import Pipeline
    from vbg_app.protocols import Segmenter, Source


def other_engine(name: str) -> str:
    """The engine an engine that cannot start falls back to: the first other one registered in vbg_app.specs."""
    from vbg_app.specs import ENGINES

    return next(n for n in ENGINES.names if n != name)


@dataclass(frozen=True)
class Fallback:
    """A stage that could not start as asked and what runs instead."""

    stage: str             # background | smoothing | source | engine
    wanted: str            # the spec or name asked for
    used: str              # what runs instead
    error: BaseException   # why ``wanted`` did not start

    def __str__(self) -> str:
        return f"{self.stage} {self.wanted} could not start ({describe(self.error)}); using {self.used}"


class NothingToRun(DeviceUnavailable):
    """No pipeline can run: neither the stage asked for nor its fallback started. ``stage`` names it and
    ``errors`` holds ``(what was tried, why it failed)`` for each try."""

    def __init__(self, stage: str, errors: list[tuple[str, BaseException]]) -> None:
        self.stage, self.errors = stage, errors
        super().__init__(f"no {stage} could start: " + "; ".join(f"{w}: {describe(e)}" for w, e in errors),
                         "pick another camera or engine, or see `vbg devices`")


def open_source_for(config: PipelineConfig) -> Source:
    """The source ``config.source`` with the config's size, rate, pacing and looping; a camera is reopened when
    it goes away (:class:`~vbg_app.sources.ReconnectingSource`)."""
    from vbg_app.sources import open_source

    return open_source(config.source, size=config.size, fps=config.fps, realtime=config.realtime,
                       loop=config.loop, reconnect=True)


def open_segmenter_for(config: PipelineConfig) -> Segmenter:
    """The engine ``config.engine`` (model, provider, threads; the battery saver around it if asked)."""
    from vbg_app.engines import create_segmenter

    segmenter = create_segmenter(config.engine, config.model, config.provider, config.threads)
    if getattr(config, "battery_saver", False):
        from vbg_app.saver import BatterySaver
        segmenter = BatterySaver(segmenter)
    return segmenter


def check_background(spec) -> None:
    """BadInput now (not at the first frame) for a background spec with a typo, or a file that is missing or
    does not decode: the background is opened and closed again."""
    from vbg_app.compose import parse_background

    parse_background(spec).close()


def _stage(fallback: bool, found: list, stage: str, wanted: str, instead: str | None, make: Callable):
    """``make(wanted)``; with ``fallback``, ``make(instead)`` when that raised a VbgError (recorded in
    ``found``), and NothingToRun when that failed too (or there is no ``instead``)."""
    try:
        return make(wanted)
    except VbgError as exc:
        if not fallback:
            raise
        first = exc.with_traceback(None)
    if instead is None:
        raise NothingToRun(stage, [(wanted, first)]) from None
    try:
        made = make(instead)
    except VbgError as exc:
        raise NothingToRun(stage, [(wanted, first), (instead, exc.with_traceback(None))]) from None
    found.append(Fallback(stage, wanted, instead, first))
    return made


def build_pipeline(config: PipelineConfig, overwrite: bool = False, fallback: bool = False,
                   source: Source | None = None, segmenter: Segmenter | None = None) -> Pipeline:
    """Open every stage ``config`` names (see the module docstring) and return the Pipeline; on failure close
    what was opened. ``overwrite``: a file sink may replace an existing file (otherwise that is refused).
    ``source`` / ``segmenter``: already opened stages to use as they are."""
    from vbg_app.compose import Compositor
    from vbg_app.pipeline import Pipeline
    from vbg_app.sinks import open_sink
    from vbg_app.temporal import create_filter

    found: list[Fallback] = []
    opened = [stage for stage in (segmenter, source) if stage is not None]  # closed too if the build fails
    try:
        temporal = _stage(fallback, found, "smoothing", config.smoothing, "none", create_filter)
        compositor = _stage(fallback, found, "background", config.background, "blur",
                            lambda bg: Compositor(bg, refine=config.refine, mirror=config.mirror,
                                                  cleanup=config.cleanup, matte=config.matte))
        opened.append(compositor)
        if source is None:
            source = _stage(fallback, found, "source", config.source, None if config.source == "demo" else "demo",
                            lambda spec: open_source_for(config if spec == config.source else
                                                         dataclasses.replace(config, source=spec, size=None, fps=None)))
            opened.append(source)
        if segmenter is None:
            other = other_engine(config.engine)
            segmenter = _stage(fallback, found, "engine", config.engine, other,
                               lambda name: open_segmenter_for(config if name == config.engine else
                                                               dataclasses.replace(config, engine=name, model=None,
                                                                                   provider="auto")))
            opened.append(segmenter)
        sink = open_sink(config.sink, source.size_wh, config.fps or source.fps or 30.0, overwrite=overwrite)
        opened.append(sink)
    except BaseException:
        for stage in reversed(opened):
            try:
                stage.close()
            except Exception:
                pass
        raise
    pipe = Pipeline(source, segmenter, temporal, compositor, sink)
    pipe.fallbacks = found
    return pipe
