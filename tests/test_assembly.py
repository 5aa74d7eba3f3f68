"""The core owns assembly and change (vbg_app/assembly.py, Pipeline's live methods): build_pipeline's fallback
policy and what it reports, swapping a source into a running pipeline, the live output's health rule, and the
stats keeping exceptions."""
import re
from pathlib import Path

import pytest

from tests.fakes import CountingSource, EchoSegmenter, ListSink, PassFilter, TagCompositor
from tests.tinymodel import make_model
from vbg_app.assembly import Fallback, NothingToRun, build_pipeline
from vbg_app.config import PipelineConfig
from vbg_app.errors import BadInput, VbgError
from vbg_app.pipeline import Pipeline
from vbg_app.sinks import NullSink


@pytest.fixture
def cfg(tmp_path):
    model = make_model(tmp_path / "tiny.onnx")
    return PipelineConfig(source="demo", size=(64, 48), background="blur", sink="null", model=str(model),
                          provider="cpu", threads=1, realtime=False)


def test_strict_build_raises_the_first_stages_error(cfg, tmp_path):
    with pytest.raises(BadInput, match="not found"):
        build_pipeline(PipelineConfig(**{**cfg.as_dict(), "background": f"image:{tmp_path}/gone.png"}))
    with pytest.raises(BadInput, match="kalman"):
        build_pipeline(PipelineConfig(**{**cfg.as_dict(), "smoothing": "kalman"}))
    with build_pipeline(cfg) as pipe:
        assert pipe.fallbacks == [] and pipe.step()


def test_fallback_build_replaces_each_stage_and_says_why(cfg, tmp_path):
    bad = PipelineConfig(**{**cfg.as_dict(), "background": f"image:{tmp_path}/gone.png", "smoothing": "kalman",
                            "source": f"video:{tmp_path}/gone.mp4"})
    with build_pipeline(bad, fallback=True) as pipe:
        got = {fb.stage: fb for fb in pipe.fallbacks}
        assert set(got) == {"background", "smoothing", "source"}
        assert got["background"].used == "blur" and "not found" in str(got["background"])
        assert got["smoothing"].used == "none" and got["source"].used == "demo"
        assert all(isinstance(fb, Fallback) and isinstance(fb.error, BadInput) for fb in pipe.fallbacks)
        assert pipe.source.description == "demo" and pipe.compositor.background.spec.startswith("blur")
        assert pipe.step()


def test_an_engine_that_cannot_start_falls_back_to_the_other(cfg, tmp_path, monkeypatch):
    from vbg_app import engines

    def create(engine="connectnet", model=None, provider="auto", threads=None, strict=False):
        if engine == "connectnet":
            raise BadInput(f"model file {model} not found", "check the path")
        seg = EchoSegmenter()
        seg.name = engine
        return seg

    monkeypatch.setattr(engines, "create_segmenter", create)
    with build_pipeline(cfg, fallback=True) as pipe:
        (fb,) = pipe.fallbacks
        assert (fb.stage, fb.wanted, fb.used) == ("engine", "connectnet", "mediapipe")
        assert pipe.segmenter.name == "mediapipe"


def test_nothing_to_run_names_every_try_and_closes_what_was_opened(cfg, monkeypatch):
    from vbg_app import engines, sources

    opened = []
    real_open = sources.open_source

    def open_source(spec, **kw):
        src = real_open(spec, **kw)
        opened.append(src)
        return src

    def create(engine="connectnet", **kw):
        raise BadInput(f"{engine} is broken", "reinstall it")

    monkeypatch.setattr(sources, "open_source", open_source)
    monkeypatch.setattr(engines, "create_segmenter", lambda engine, *a, **kw: create(engine))
    with pytest.raises(NothingToRun) as info:
        build_pipeline(cfg, fallback=True)
    assert info.value.stage == "engine" and [w for w, _ in info.value.errors] == ["connectnet", "mediapipe"]
    assert "connectnet is broken" in info.value.one_line() and "mediapipe is broken" in info.value.one_line()
    assert len(opened) == 1 and opened[0]._closed  # the demo opened for it is closed again


def test_a_prepared_stage_is_used_as_is_and_closed_when_the_build_fails(cfg, monkeypatch):
    from vbg_app import assembly

    def no_source(config):
        raise BadInput(f"{config.source} is unplugged", "plug it in")

    seg = EchoSegmenter()
    with monkeypatch.context() as m:
        m.setattr(assembly, "open_source_for", no_source)
        with pytest.raises(NothingToRun) as info:
            build_pipeline(PipelineConfig(**{**cfg.as_dict(), "source": "camera:3"}), fallback=True, segmenter=seg)
    assert seg.closed and info.value.stage == "source"
    assert [w for w, _ in info.value.errors] == ["camera:3", "demo"]
    seg = EchoSegmenter()
    with build_pipeline(cfg, fallback=True, segmenter=seg) as pipe:
        assert pipe.segmenter is seg


class FailingSink(ListSink):
    """Refuses its first ``n`` sends, then takes frames."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def send(self, frame):
        if self.n > 0:
            self.n -= 1
            raise OSError("virtual camera went away")
        self.frames.append(frame)


def _pipe(source, sink=None):
    return Pipeline(source, EchoSegmenter(), PassFilter(), TagCompositor(), sink or ListSink())


def test_set_source_revives_an_ended_pipeline_and_closes_the_old_source():
    class Resets(PassFilter):
        resets = 0

        def reset(self):
            self.resets += 1

    first = CountingSource(n=3)
    pipe = _pipe(first)
    pipe.temporal = Resets()
    pipe.run(threaded=False)
    assert pipe.ended and pipe.stats.frames == 3
    second = CountingSource(n=4, size=(32, 32))
    pipe.set_source(second)
    assert first.closed and not pipe.ended and pipe.temporal.resets == 1
    pipe.run(threaded=False)
    assert pipe.stats.frames == 7 and pipe.sink.frames[-1].shape == (32, 32, 3)


def test_a_live_output_failing_in_a_row_is_dropped_once_with_its_reason():
    sink = FailingSink(100)
    pipe = _pipe(CountingSource(n=10), sink)
    pipe.drop_sink_after = 3
    for _ in range(3):
        pipe.step()
    assert sink.closed and isinstance(pipe.sink, NullSink)
    why = pipe.take_dropped_sink()
    assert isinstance(why, OSError) and "went away" in str(why) and pipe.take_dropped_sink() is None
    assert pipe.stats.sink_state == "ok"  # the NullSink takes frames
    assert pipe.step() and pipe.stats.sink_errors_in_row == 0


def test_without_the_rule_a_failing_output_is_kept_and_retried():
    sink = FailingSink(5)
    pipe = _pipe(CountingSource(n=10), sink)
    for _ in range(6):
        pipe.step()
    assert pipe.sink is sink and not sink.closed and pipe.take_dropped_sink() is None
    assert len(sink.frames) == 1 and pipe.stats.sink_errors_in_row == 0


def test_stats_keep_the_exceptions_without_tracebacks():
    sink = ListSink()
    sink.fail_at = {0}
    pipe = _pipe(CountingSource(n=5, bad={1}), sink)
    pipe.step()
    st = pipe.stats
    assert isinstance(st.sink_exception, OSError) and st.sink_exception.__traceback__ is None
    assert st.sink_state == "error" and st.sink_error == "OSError: virtual camera went away"
    assert st.sink_problem == st.sink_error and st.last_error == "output: OSError: virtual camera went away"
    pipe.step()  # frame 1 is unusable
    assert isinstance(st.last_exception, VbgError) and st.last_error_at == "source"
    assert st.last_error.startswith("source: a frame has pixel type float64")
    assert st.as_dict()["last_error"] == st.last_error and "last error: source:" in st.summary()


def test_gui_builds_no_stage_itself():
    """vbg_app/gui only asks the core (vbg_app.assembly, Pipeline's methods) for stages."""
    factory = re.compile(r"(?<![\w.])(open_source|open_sink|create_segmenter|create_filter|Compositor|NullSink|"
                         r"VirtualCameraSink|FileSink|Pipeline|OnnxSegmenter|MediaPipeSegmenter|CameraSource|"
                         r"VideoSource|ImageSource|DemoSource|ReconnectingSource|BatterySaver)\(|"
                         r"\b(SOURCES|SINKS|BACKGROUNDS|ENGINES|FILTERS)\.open\(")
    gui = Path(__file__).resolve().parents[1] / "vbg_app" / "gui"
    found = [f"{p.name}:{n}: {line.strip()}" for p in sorted(gui.glob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if factory.search(line) and not line.lstrip().startswith("#")]
    assert not found, found
    assert factory.search("x = open_source('demo')") and not factory.search("pipe.open_sink('vcam')")
