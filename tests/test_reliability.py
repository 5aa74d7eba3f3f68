"""Reliability: a camera that goes away and comes back, a GPU that fails, a virtual camera that stops taking
frames, hostile frames and files, crashes while saving or recording. The long soak is ``python -m vbg_app.tools.soak``
(not a test); everything here is fast (fakes, tiny models, real time only where the timing is the point)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.fakes import CopyCompositor, HalfSegmenter, PassFilter
from tests.tinymodel import make_model, red_person_frame
from vbg_app.compose import Compositor, parse_background
from vbg_app.engines.onnx_engine import OnnxSegmenter
from vbg_app.errors import BadInput, DeviceUnavailable
from vbg_app.pipeline import MAX_SIZE_WH, MIN_SIDE, Pipeline, render_card
from vbg_app.sinks import NullSink, VirtualCameraSink
from vbg_app.sources import CameraSource, ReconnectingSource, SourceEnded
from vbg_app.temporal import create_filter

ROOT = Path(__file__).resolve().parents[1]
# VBG_FUZZ_EXAMPLES=2000 for a deeper search than the suite's quick one
FUZZ = settings(max_examples=int(os.environ.get("VBG_FUZZ_EXAMPLES", 60)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


# -- fakes -----------------------------------------------------------------------------------------
class Device:
    """A camera that can be unplugged (``up = False``) and plugged back in."""

    def __init__(self, size=(64, 48), fps=50.0):
        self.up, self.size, self.fps = True, size, fps
        self.opens = self.open_failures = 0

    def open(self):
        if not self.up:
            self.open_failures += 1
            raise DeviceUnavailable("camera 7 not found (no /dev/video7)", "plug it in")
        self.opens += 1
        return DeviceSource(self)


class DeviceSource:
    """Frames paced at ``fps``; raises like CameraSource once its device is gone (and stays dead)."""

    live = True

    def __init__(self, dev):
        self.dev, self.fps, self.size_wh = dev, dev.fps, dev.size
        self.description, self.closed, self.k, self.dead = "camera 7", False, 0, False

    def read(self):
        if self.closed:
            raise SourceEnded("closed")
        if not self.dev.up or self.dead:
            self.dead = True
            raise DeviceUnavailable("camera 7 stopped delivering frames (none for 2 s)", "check the cable")
        time.sleep(1.0 / self.fps)
        w, h = self.size_wh
        self.k += 1
        frame = np.full((h, w, 3), 120, np.uint8)
        frame[:, :, 0] = self.k % 256
        return frame

    def close(self):
        self.closed = True


class FakeClock:
    def __init__(self):
        self.t = 1000.0
        self.slept = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept.append(s)
        self.t += s


class TimelineSink:
    """Records (time, frame) of every send."""

    description = "timeline"

    def __init__(self):
        self.sent = []
        self.lock = threading.Lock()

    def send(self, frame):
        with self.lock:
            self.sent.append((time.perf_counter(), frame))

    def close(self):
        pass


# -- device loss: ReconnectingSource -----------------------------------------------------------------
def test_reconnecting_source_reopens_with_backoff_of_at_most_one_second():
    clock = FakeClock()
    dev = Device()
    src = ReconnectingSource(dev.open, clock=clock, sleep=clock.sleep)
    assert src.read() is not None and src.state == "ok" and src.size_wh == (64, 48)
    dev.up = False
    assert src.read() is None  # the failure is absorbed
    assert src.state == "reconnecting" and "stopped delivering" in src.error and src.losses == 1
    tries = []
    while clock.t < 1000.0 + 8:
        before = dev.open_failures
        assert src.read() is None
        if dev.open_failures > before:
            tries.append(clock.t)
    gaps = np.diff(tries)
    assert tries[0] == pytest.approx(1000.0, abs=1e-6)   # first reopen at once
    assert gaps.max() <= 1.0 + 1e-6 and gaps[0] < 0.2     # backs off, never beyond 1 s
    assert len(tries) < 16                                 # and does not hammer the device
    assert "not found" in src.error and max(clock.slept) <= 0.05 + 1e-9  # waits in short sleeps
    dev.up = True
    t_back = clock.t
    while src.state != "ok":
        src.read()
    assert clock.t - t_back <= 1.0 + 1e-6 and src.reconnects == 1 and src.error == ""
    assert src.read() is not None
    src.close()
    with pytest.raises(SourceEnded):
        src.read()


def test_a_source_that_fails_n_reads_then_works_is_reopened_each_time():
    class Flaky:
        live, fps, size_wh, description = True, 30.0, (32, 32), "flaky"

        def __init__(self, fails):
            self.fails, self.closed = fails, False

        def read(self):
            if self.fails > 0:
                self.fails -= 1
                raise OSError("select() timeout")
            return np.zeros((32, 32, 3), np.uint8)

        def close(self):
            self.closed = True

    made = []

    def factory():
        made.append(Flaky(0 if made else 3))
        return made[-1]

    clock = FakeClock()
    src = ReconnectingSource(factory, clock=clock, sleep=clock.sleep)
    got = [src.read() for _ in range(4)]
    assert got[0] is None and made[0].closed and src.state == "ok" and len(made) == 2
    assert got[-1] is not None and "select() timeout" not in src.error


def test_a_silent_source_counts_as_lost_after_the_stall_timeout():
    class Silent:
        live, fps, size_wh, description = True, 30.0, (32, 32), "silent"

        def read(self):
            return None

        def close(self):
            pass

    clock = FakeClock()
    src = ReconnectingSource(Silent, stall_timeout=2.0, clock=clock, sleep=clock.sleep)
    assert src.read() is None and src.state == "ok"
    clock.t += 2.5
    assert src.read() is None and src.state == "reconnecting" and "no frame for 2 s" in src.error


def test_the_end_of_a_video_and_close_pass_through():
    class Ending:
        live, fps, size_wh = False, 30.0, (32, 32)

        def read(self):
            raise SourceEnded("clip.mp4")

        def close(self):
            pass

    src = ReconnectingSource(Ending)
    with pytest.raises(SourceEnded):
        src.read()
    assert src.state == "ok"  # an ordinary end, not a lost device


class FakeCapture:
    """A cv2.VideoCapture stand-in on a Device: reads fail while the device is unplugged."""

    def __init__(self, dev):
        self.dev = dev

    def read(self):
        time.sleep(0.01)
        if not self.dev.up:
            return False, None
        return True, np.full((48, 64, 3), 90, np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        pass


def test_camera_source_unplugged_and_replugged_comes_back_within_2_s():
    dev = Device()

    def factory():
        if not dev.up:
            raise DeviceUnavailable("camera 0 not found (no /dev/video0)", "plug it in")
        return CameraSource(capture=FakeCapture(dev), stall_timeout=0.3, first_frame_timeout=1.0)

    src = ReconnectingSource(factory)
    try:
        assert src.read() is not None
        dev.up = False
        deadline = time.monotonic() + 3
        while src.state == "ok" and time.monotonic() < deadline:
            src.read()
        assert src.state == "reconnecting" and "stopped delivering" in src.error
        for _ in range(10):  # a few failed reopens
            src.read()
        dev.up = True
        t0 = time.monotonic()
        frame = None
        while frame is None and time.monotonic() - t0 < 3:
            frame = src.read()
        assert frame is not None and time.monotonic() - t0 < 2.0 and src.reconnects == 1
    finally:
        src.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("vbg-grab")]  # grabbers joined


# -- device loss: what the meeting sees ----------------------------------------------------------------
def test_the_card_is_dark_with_large_centred_text():
    for w, h in ((1280, 720), (640, 480), (320, 180), (16, 16)):
        card = render_card((w, h), "Camera unavailable", "Reconnecting...")
        assert card.shape == (h, w, 3) and card.dtype == np.uint8
        gray = cv2.cvtColor(card, cv2.COLOR_BGR2GRAY)
        text = gray > 150
        assert gray.mean() < 70
        if w >= 320:
            ys, xs = np.nonzero(text)  # legible: glyphs span a good part of the frame, centred, never clipped
            assert (ys.max() - ys.min()) > 0.08 * h and (xs.max() - xs.min()) > 0.3 * w
            assert abs((xs.min() + xs.max()) / 2 - w / 2) < 0.05 * w and xs.min() > 0 and xs.max() < w - 1


@pytest.mark.parametrize("threaded", [True, False])
def test_output_keeps_going_through_a_camera_loss_and_resumes_when_it_is_back(threaded):
    dev = Device(size=(320, 180))
    sink = TimelineSink()
    pipe = Pipeline(ReconnectingSource(dev.open), HalfSegmenter(), PassFilter(), CopyCompositor(), sink)
    states = []
    runner = threading.Thread(target=pipe.run, kwargs={"threaded": threaded,
                                                       "on_frame": lambda p: states.append(p.stats.source_state)})
    runner.start()
    try:
        time.sleep(0.4)
        t_lost = time.perf_counter()
        dev.up = False
        time.sleep(1.6)
        assert pipe.stats.source_state == "reconnecting" and "not found" in pipe.stats.source_error  # the latest try
        assert "camera lost" in pipe.stats.summary()
        t_back = time.perf_counter()
        dev.up = True
        deadline = time.monotonic() + 3
        while pipe.stats.source_state != "ok" and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        pipe.stop()
        runner.join(5)
    assert not runner.is_alive()
    times = np.array([t for t, _ in sink.sent])
    kinds = []
    seen = set()
    for _, f in sink.sent:  # the camera's frames are grey (120), the card is dark (40, 34, 30)
        kinds.append("card" if f[0, 0].tolist() == [40, 34, 30] else "held" if id(f) in seen else "real")
        seen.add(id(f))
    kinds = np.array(kinds)
    assert np.diff(times).max() < 0.5  # never a stall the meeting would see as a frozen camera
    first_held = times[kinds == "held"].min()
    assert first_held - t_lost < 0.6  # the last good frame is repeated after ~0.25 s ...
    down = (times >= first_held) & (times < t_back)
    assert set(kinds[down]) == {"held", "card"}  # ... until the camera is back: no gap, no real frame
    first_card = times[kinds == "card"].min()
    assert 0.7 < first_card - t_lost < 1.5  # the last frame first, the card after about a second
    card = pipe._card[1]
    assert (cv2.cvtColor(card, cv2.COLOR_BGR2GRAY) > 150).any() and card.mean() < 70
    real_after = times[(kinds == "real") & (times > t_back)]
    assert real_after.size and real_after.min() - t_back < 2.0  # reconnected within 2 s
    assert pipe.stats.cards > 0 and pipe.stats.held > 0 and "reconnecting" in states and states[-1] == "ok"
    pipe.close()


def test_stop_returns_promptly_even_if_the_source_is_blocked():
    class Stuck:
        live, fps, size_wh = True, 30.0, (32, 32)

        def __init__(self):
            self.release = threading.Event()

        def read(self):
            self.release.wait(10)
            return None

        def close(self):
            self.release.set()

    src = Stuck()
    pipe = Pipeline(src, HalfSegmenter(), PassFilter(), CopyCompositor(), NullSink())
    threading.Timer(0.2, pipe.stop).start()
    t0 = time.monotonic()
    pipe.run()
    assert time.monotonic() - t0 < 2.0
    src.release.set()
    pipe.close()


# -- GPU provider failure -------------------------------------------------------------------------
class DyingGpuSession:
    """An onnxruntime session on a GPU that fails on every run."""

    def __init__(self):
        self.runs = 0

    def run(self, *a, **k):
        self.runs += 1
        raise RuntimeError("CUDA failure 999: unspecified launch failure")

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_gpu_failing_on_every_run_falls_back_to_cpu_exactly_once(tiny, monkeypatch):
    seg = OnnxSegmenter(tiny, provider="cpu")
    dying = DyingGpuSession()
    seg._session, seg.provider = dying, "cuda"
    created = []
    real_create = OnnxSegmenter._create
    monkeypatch.setattr(OnnxSegmenter, "_create", lambda self, ort, providers: created.append(providers) or
                        real_create(self, ort, providers))
    frame, _ = red_person_frame()
    pipe = Pipeline(_ListSource([frame] * 20), seg, create_filter("ema"), Compositor("blur"), NullSink())
    pipe.run(threaded=False)
    assert pipe.stats.frames == 20 and pipe.stats.errors == 0
    assert dying.runs == 1 and created == [["CPUExecutionProvider"]] and seg.fallbacks == 1
    assert seg.provider == "cpu" and pipe.stats.provider == "cpu"
    assert "cuda failed while running" in pipe.stats.fallback_reason and "unspecified launch" in seg.fallback_reason
    assert "fallback: cuda failed" in pipe.stats.summary() and pipe.stats.as_dict()["fallback_reason"]


def test_a_cpu_fallback_that_fails_too_is_not_retried(tiny, monkeypatch):
    seg = OnnxSegmenter(tiny, provider="cpu")
    seg._session, seg.provider = DyingGpuSession(), "cuda"
    calls = []

    def broken_create(self, ort, providers):
        calls.append(providers)
        raise BadInput("out of memory", "close other apps")

    monkeypatch.setattr(OnnxSegmenter, "_create", broken_create)
    frame, _ = red_person_frame()
    for _ in range(5):
        with pytest.raises(DeviceUnavailable, match="cuda failed while running"):
            seg.segment(frame)
    assert len(calls) == 1 and seg.fallbacks == 1


def _fake_gpu_build(monkeypatch, on_gpu):
    """onnxruntime claims CUDA; ``on_gpu(real_cls, path, kw)`` decides what a session asked for CUDA is."""
    import onnxruntime as ort

    real = ort.InferenceSession
    calls = []

    def session(path, sess_options=None, providers=None, **kw):
        calls.append(list(providers or []))
        if providers and providers[0] != "CPUExecutionProvider":
            return on_gpu(real, path, sess_options)
        return real(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    return calls


def test_gpu_failing_at_session_creation_falls_back_to_cpu_once(tiny, monkeypatch):
    def fail(real, path, so):
        raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")

    calls = _fake_gpu_build(monkeypatch, fail)
    for provider in ("cuda", "auto"):
        calls.clear()
        seg = OnnxSegmenter(tiny, provider=provider)
        assert seg.provider == "cpu" and seg.fallbacks == 1
        assert seg.fallback_reason.startswith("cuda failed to start") and "driver version" in seg.fallback_reason
        assert calls == [["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]]
        assert seg.segment(red_person_frame()[0]).shape == (16, 32)
    with pytest.raises(DeviceUnavailable, match="cuda failed to start"):
        OnnxSegmenter(tiny, provider="cuda", strict=True)  # `vbg devices` reports it instead


def test_gpu_silently_replaced_by_cpu_is_reported(tiny, monkeypatch):
    # what onnxruntime itself does when the CUDA libraries are missing: a session on the CPU, no error
    _fake_gpu_build(monkeypatch, lambda real, path, so: real(path, sess_options=so, providers=["CPUExecutionProvider"]))
    seg = OnnxSegmenter(tiny, provider="cuda")
    assert seg.provider == "cpu" and "did not load" in seg.fallback_reason and seg.fallbacks == 1


def test_gpu_failing_on_its_first_run_is_dropped_before_the_first_frame(tiny, monkeypatch):
    class LoadsButCannotRun(DyingGpuSession):  # a real session whose every run fails, as on a broken GPU
        def __init__(self, session):
            super().__init__()
            self.session = session

        def __getattr__(self, name):
            return getattr(self.session, name)

    made = []
    _fake_gpu_build(monkeypatch, lambda real, path, so: made.append(
        LoadsButCannotRun(real(path, sess_options=so, providers=["CPUExecutionProvider"]))) or made[-1])
    seg = OnnxSegmenter(tiny, provider="cuda")  # the warm-up run fails on the "GPU"
    assert seg.provider == "cpu" and seg.fallbacks == 1 and made[0].runs == 1
    assert "cuda failed while running" in seg.fallback_reason


# -- virtual camera loss ----------------------------------------------------------------------------
def test_a_virtual_camera_that_stops_taking_frames_is_reported_and_can_be_replaced(fake_vcam):
    frames = [np.full((48, 64, 3), k, np.uint8) for k in range(12)]
    pipe = Pipeline(_ListSource(frames), HalfSegmenter(), PassFilter(), CopyCompositor(),
                    VirtualCameraSink(64, 48, 30))
    assert pipe.step() and pipe.stats.sink_state == "ok"
    fake_vcam.fail_send = "No such device"
    for _ in range(4):
        assert pipe.step()  # the frame is still composed: the preview goes on
    st = pipe.stats
    assert st.sink_state == "error" and st.sink_errors_in_row == 4 and "stopped accepting frames" in st.sink_error
    assert "No such device" in st.sink_error and "output failing" in st.summary()
    assert int(pipe.last_output[0, 0, 0]) == 4 and fake_vcam.count == 1
    fake_vcam.fail_send = None
    pipe.set_sink(VirtualCameraSink(64, 48, 30))  # what "turn it on again" does
    assert pipe.stats.sink_state == "ok"
    assert pipe.step() and pipe.stats.sink_state == "ok" and fake_vcam.count == 2
    pipe.close()


# -- hostile frames ---------------------------------------------------------------------------------
class _ListSource:
    live, fps, size_wh = False, 30.0, (64, 48)

    def __init__(self, frames=()):
        self.frames = list(frames)

    def read(self):
        if not self.frames:
            raise SourceEnded()
        return self.frames.pop(0)

    def close(self):
        pass


_SIDES = st.one_of(st.integers(0, 40), st.sampled_from([1, 2, 15, 16, 17, 300, 4321, 7681]))
_DTYPES = st.sampled_from([np.uint8, np.float64, np.float32, np.float16, np.bool_, np.int16, np.uint16, np.int8,
                           np.int64, np.complex64])


@st.composite
def hostile_frames(draw):
    kind = draw(st.sampled_from(["array"] * 8 + ["none", "list", "str", "scalar"]))
    if kind == "none":
        return None
    if kind == "list":
        return [[0, 1], [2, 3]]
    if kind == "str":
        return "frame"
    if kind == "scalar":
        return np.float64(draw(st.floats(allow_nan=True)))
    ndim = draw(st.sampled_from([0, 1, 2, 3, 3, 3, 4]))
    shape = tuple(draw(_SIDES) for _ in range(min(ndim, 2)))
    if ndim >= 3:
        shape += (draw(st.sampled_from([0, 1, 2, 3, 3, 4, 5])),)
    if ndim == 4:
        shape += (draw(st.integers(1, 2)),)
    if int(np.prod(shape)) > 400_000:  # keep a huge side, but not two of them
        shape = (shape[0], min(shape[1], 20)) + shape[2:]
    dtype = draw(_DTYPES)
    fill = draw(st.sampled_from(["random", "nan", "inf", "zeros"]))
    arr = np.zeros(shape, dtype)
    if fill == "random" and arr.size:
        arr = draw(hnp.arrays(dtype, shape, elements=None, fill=hnp.from_dtype(np.dtype(dtype))))
    elif fill in ("nan", "inf") and np.issubdtype(dtype, np.inexact):
        arr[...] = np.nan if fill == "nan" else np.inf
    layout = draw(st.sampled_from(["c", "fortran", "reversed", "strided", "transposed", "broadcast"]))
    if layout == "fortran":
        arr = np.asfortranarray(arr)
    elif layout == "reversed" and arr.ndim:
        arr = arr[::-1]
    elif layout == "strided" and arr.ndim >= 2:
        arr = arr[::2, ::3]
    elif layout == "transposed" and arr.ndim >= 2:
        arr = arr.swapaxes(0, 1)
    elif layout == "broadcast" and arr.ndim >= 2 and arr.size:
        arr = np.broadcast_to(arr[:1], (draw(st.sampled_from([16, 100, 5000])),) + arr.shape[1:])
    return arr


def _usable(frame) -> bool:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim not in (2, 3):
        return False
    if frame.ndim == 3 and frame.shape[2] not in (1, 3, 4):
        return False
    h, w = frame.shape[:2]
    return MIN_SIDE <= h <= MAX_SIZE_WH[1] and MIN_SIDE <= w <= MAX_SIZE_WH[0]


def test_fuzz_pipeline_step_with_hostile_frames(tiny):
    source = _ListSource()
    pipe = Pipeline(source, OnnxSegmenter(tiny, provider="cpu", threads=1), create_filter("flow"),
                    Compositor("blur"), NullSink())
    recorded = []
    real_record = pipe._record_error
    pipe._record_error = lambda where, exc: recorded.append(exc) or real_record(where, exc)

    @FUZZ
    @given(frame=hostile_frames())
    def check(frame):
        source.frames = [frame]
        frames, errors = pipe.stats.frames, len(recorded)
        handled = pipe.step()
        if frame is None:
            assert not handled and len(recorded) == errors  # "no frame right now" is not an error
        elif _usable(frame):
            assert handled and pipe.stats.frames == frames + 1 and len(recorded) == errors, recorded[errors:]
            assert pipe.sink.last_frame.shape == frame.shape[:2] + (3,) and pipe.sink.last_frame.dtype == np.uint8
        else:
            assert not handled and len(recorded) == errors + 1
            assert isinstance(recorded[-1], BadInput), repr(recorded[-1])  # a clear error, with its fix
            assert recorded[-1].fix

    check()
    source.frames = [red_person_frame()[0]]
    assert pipe.step()  # still working after all that
    pipe.close()


def test_a_threaded_run_survives_a_stream_of_hostile_frames_and_ends_cleanly(tiny):
    rng = np.random.default_rng(3)
    good = red_person_frame()[0]
    frames = []
    for k in range(60):
        frames.append([good, np.full((48, 64, 3), np.nan), np.zeros((0, 64, 3), np.uint8), good[:, :, :2],
                       good.astype(np.int16), rng.integers(0, 255, (17, 5000, 3), dtype=np.uint8),
                       good[::-1, ::2], np.zeros((48, 64, 5), np.uint8), None][k % 9])
    pipe = Pipeline(_ListSource(frames), OnnxSegmenter(tiny, provider="cpu", threads=1), create_filter("flow"),
                    Compositor("blur"), NullSink())
    done = threading.Event()
    threading.Thread(target=lambda: (pipe.run(), done.set()), daemon=True).start()
    assert done.wait(30), "the pipeline hung"
    good_count = sum(1 for f in frames if f is not None and _usable(f))
    assert pipe.ended and pipe.stats.frames == good_count
    assert pipe.stats.errors == sum(f is not None and not _usable(f) for f in frames)
    assert not [t for t in threading.enumerate() if t.name == "vbg-capture-infer"]
    pipe.close()


def test_a_mask_with_nan_cannot_poison_the_temporal_filter():
    class NanOnce(HalfSegmenter):
        calls = 0

        def segment(self, frame):
            self.calls += 1
            prob = np.full((12, 16), 0.8, np.float32)
            if self.calls == 2:
                prob[3:6] = np.nan
                prob[0, 0] = np.inf
            return prob

    frames = [np.full((48, 64, 3), 100, np.uint8)] * 10
    pipe = Pipeline(_ListSource(frames), NanOnce(), create_filter("ema"), Compositor("color:#00ff00"), NullSink())
    pipe.run(threaded=False)
    assert pipe.stats.frames == 10 and pipe.stats.errors == 0
    assert np.isfinite(pipe.temporal.update(np.full((12, 16), 0.8, np.float32), frames[0])).all()


# -- hostile files ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


def _background_or_bad_input(spec):
    """parse_background either refuses with BadInput or gives a background that renders a frame."""
    try:
        bg = parse_background(spec)
    except BadInput as exc:
        assert exc.fix
        return None
    try:
        out = bg.render(72, 128, np.zeros((72, 128, 3), np.uint8), np.zeros((18, 32), np.float32))
        assert out.shape == (72, 128, 3) and out.dtype == np.uint8
        return bg
    finally:
        bg.close()


def test_fuzz_background_files_of_random_bytes(scratch):
    @FUZZ
    @given(data=st.binary(max_size=3000), ext=st.sampled_from([".jpg", ".png", ".webp", ".mp4", ".avi"]))
    def check(data, ext):
        path = scratch / f"random{ext}"
        path.write_bytes(data)
        kind = "video" if ext in (".mp4", ".avi") else "image"
        _background_or_bad_input(f"{kind}:{path}")

    check()


@pytest.fixture(scope="module")
def real_images():
    jpg = (ROOT / "assets" / "backgrounds" / "hills.jpg").read_bytes()
    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    ok, png = cv2.imencode(".png", cv2.resize(img, (160, 90)))
    return {".jpg": jpg, ".png": png.tobytes()}


def test_fuzz_truncated_and_damaged_images(scratch, real_images):
    @FUZZ
    @given(ext=st.sampled_from([".jpg", ".png"]), cut=st.floats(0, 1),
           flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4))
    def check(ext, cut, flips):
        data = bytearray(real_images[ext][: int(len(real_images[ext]) * cut)])
        for where, value in flips:
            if data:
                data[min(len(data) - 1, int(len(data) * where))] = value
        path = scratch / f"damaged{ext}"
        path.write_bytes(bytes(data))
        _background_or_bad_input(f"image:{path}")

    check()


def test_images_that_would_exhaust_memory_are_handled(scratch):
    import struct
    import zlib

    def png_header(w, h):
        def chunk(tag, body):
            return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))

    huge = scratch / "huge.png"
    huge.write_bytes(png_header(100_000, 100_000))  # refused from its header, before OpenCV sees it
    with pytest.raises(BadInput, match="100000x100000 pixels .* over the 40-megapixel limit"):
        parse_background(f"image:{huge}")
    thin = scratch / "thin.png"
    cv2.imwrite(str(thin), np.full((1, 60_000, 3), 200, np.uint8))  # aspect-filling it must not allocate GBs
    bg = parse_background(f"image:{thin}")
    assert bg.render(720, 1280, None, None).shape == (720, 1280, 3)


def test_fuzz_model_files_of_random_bytes(scratch):
    @FUZZ
    @given(data=st.one_of(st.binary(max_size=2000), st.binary(max_size=64).map(lambda b: b"\x08\x07\x12" + b)))
    def check(data):
        path = scratch / "random.onnx"
        path.write_bytes(data)
        with pytest.raises(BadInput):
            OnnxSegmenter(path, provider="cpu", threads=1)

    check()


def test_fuzz_truncated_and_damaged_models(scratch, tiny):
    good = tiny.read_bytes()
    frame = red_person_frame()[0]

    @FUZZ
    @given(cut=st.integers(0, len(good)), flips=st.lists(st.tuples(st.integers(0, len(good) - 1),
                                                                   st.integers(0, 255)), max_size=4))
    def check(cut, flips):
        data = bytearray(good)
        for where, value in flips:
            data[where] = value
        path = scratch / "damaged.onnx"
        path.write_bytes(bytes(data[:cut]))
        try:
            seg = OnnxSegmenter(path, provider="cpu", threads=1)
        except BadInput as exc:
            assert exc.fix
            return
        try:  # a damage the model survives (a changed weight): it must still answer, or refuse clearly
            prob = seg.segment(frame)
            assert prob.ndim == 2 and prob.dtype == np.float32
        except BadInput:
            pass

    check()


def _foreign_model(path, kind):
    """ONNX files that are not vbg segmentation models, though they carry vbg metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vbg_app.engines.meta import ModelMeta

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 32])
    if kind == "two_inputs":
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 32])
        out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 16, 32])
        graph = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"])], "g", [x, y], [out])
        props = {}
    elif kind == "three_classes":  # says softmax2 but gives 3 channels
        w = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "W")
        out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 16, 32])
        graph = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["z"])], "g", [x], [out], initializer=[w])
        props = {}
    elif kind == "classifier":  # a prob1 "mask" that is a vector
        out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])
        graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["z"], axes=[2, 3], keepdims=0)],
                                  "g", [x], [out])
        props = {"vbg.output": "prob1"}
    elif kind == "prob1":  # a proper one-channel model: accepted
        w = numpy_helper.from_array(np.ones((1, 3, 1, 1), np.float32), "W")
        out = helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 1, 16, 32])
        graph = helper.make_graph([helper.make_node("Conv", ["x", "W"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])],
                                  "g", [x], [out], initializer=[w])
        props = {"vbg.output": "prob1"}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    entries = ModelMeta(input_size_wh=(32, 16), name="foreign").to_props()
    entries.update(props)
    helper.set_model_props(model, entries)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("kind, words", [("two_inputs", "2 input"), ("three_classes", "not [1,2,H,W]"),
                                         ("classifier", "not a person mask")])
def test_a_model_that_is_not_ours_is_refused_before_the_first_frame(tmp_path, kind, words):
    path = _foreign_model(tmp_path / f"{kind}.onnx", kind)
    with pytest.raises(BadInput, match=words.replace("[", r"\[").replace("]", r"\]")) as err:
        OnnxSegmenter(path, provider="cpu")
    assert err.value.fix


def test_a_one_channel_model_is_accepted(tmp_path):
    seg = OnnxSegmenter(_foreign_model(tmp_path / "prob1.onnx", "prob1"), provider="cpu")
    prob = seg.segment(red_person_frame()[0])
    assert prob.shape == (16, 32) and 0 <= prob.min() <= prob.max() <= 1


# -- nothing lost: settings, backgrounds, recordings -----------------------------------------------
def _settings_store(folder):
    from vbg_app.gui.settings import Settings, SettingsStore

    store = SettingsStore(folder)
    store.save(Settings(background="color:#112233", blur_strength=42))
    return store, store.path.read_bytes()


@pytest.mark.parametrize("where", ["os.replace", "os.fsync", "json.dumps"])
@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_settings_survive_a_failure_or_crash_mid_save(tmp_path, monkeypatch, where, exc):
    from vbg_app.gui import settings as settings_mod
    from vbg_app.gui.settings import Settings

    store, before = _settings_store(tmp_path)
    module, name = where.split(".")

    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(getattr(settings_mod, module), name, boom)
    if isinstance(exc, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):  # a crash-like interruption is not swallowed ...
            store.save(Settings(background="blur:3"))
    else:
        store.save(Settings(background="blur:3"))  # ... an error is logged, never raised
    monkeypatch.undo()
    assert store.path.read_bytes() == before  # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left behind
    loaded, notice = store.load()
    assert notice == "" and loaded.background == "color:#112233" and loaded.blur_strength == 42


def test_settings_survive_the_process_being_killed_while_saving(tmp_path):
    script = (
        "import sys\n"
        "from vbg_app.gui.settings import Settings, SettingsStore\n"
        "store = SettingsStore(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "k = 0\n"
        "while True:\n"
        "    k += 1\n"
        "    store.save(Settings(blur_strength=1 + k % 100, custom_colors=['#ABCDEF'] * (k % 50)))\n"
    )
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        from vbg_app.gui.settings import SettingsStore

        loaded, notice = SettingsStore(tmp_path).load()
        assert notice == "" and 1 <= loaded.blur_strength <= 100
        assert len(loaded.custom_colors) == (loaded.blur_strength - 1) % 50  # a whole save, never a mix
        json.loads((tmp_path / "settings.json").read_text())


def test_a_background_copy_that_fails_midway_leaves_nothing_half_written(tmp_path, monkeypatch):
    import shutil

    from vbg_app.gui import library as library_mod
    from vbg_app.gui.library import BackgroundLibrary

    src = tmp_path / "beach.png"
    cv2.imwrite(str(src), np.full((90, 160, 3), 200, np.uint8))
    original = src.read_bytes()
    lib = BackgroundLibrary(tmp_path / "data")
    copyfile = shutil.copyfile

    for exc in (OSError(28, "No space left on device"), KeyboardInterrupt()):
        def half_copy(a, b, exc=exc):
            Path(b).write_bytes(Path(a).read_bytes()[:100])
            raise exc

        monkeypatch.setattr(library_mod.shutil, "copyfile", half_copy)
        with pytest.raises(BadInput if isinstance(exc, OSError) else KeyboardInterrupt):
            lib.add(src)
        monkeypatch.setattr(library_mod.shutil, "copyfile", copyfile)
        assert lib.user_entries() == [] and list(lib.user_dir.iterdir()) == []
    assert src.read_bytes() == original
    entry = lib.add(src)  # and the next try works
    assert entry.path.read_bytes() == original and lib.user_entries() == [entry]


def _frames_in(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def test_sigterm_stops_vbg_run_cleanly_and_the_mp4_is_playable(tmp_path):
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    out = tmp_path / "meeting.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "vbg_app", "run", "--source", "demo", "--size", "320x180",
                             "--sink", f"file:{out}", "--model", str(model), "--quiet"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline()]
        while not lines[-1].startswith("vbg: demo") and lines[-1] and len(lines) < 50:
            lines.append(proc.stderr.readline())  # (a warning may come first)
        assert lines[-1].startswith("vbg: demo"), lines
        time.sleep(1.5)  # ~45 frames at the demo's 30 fps
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopped by SIGTERM" in rest
    assert _frames_in(out) >= 10  # finalised: the index (moov) is there, every frame plays


def test_after_sigkill_mkv_and_avi_recordings_keep_what_was_written(tmp_path):
    # nothing can finalise a file on SIGKILL: an .mp4 is then unplayable (its index comes last), which is why
    # docs/troubleshooting.md recommends .mkv or .avi for long recordings; those keep what reached the disk, under
    # the name they are written to until closed (rec.partial.mkv: a killed run cannot rename it)
    from vbg_app.sinks import partial_path

    script = (
        "import sys, numpy as np\n"
        "from vbg_app.sinks import FileSink\n"
        "sinks = [FileSink(p, 320, 240, 30) for p in sys.argv[1:]]\n"
        "rng = np.random.default_rng(0)\n"
        "noise = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(8)]\n"
        "k = 0\n"
        "while True:\n"
        "    for s in sinks: s.send(noise[k % 8])\n"
        "    k += 1\n"
    )
    paths = [tmp_path / "rec.mkv", tmp_path / "rec.avi"]
    partials = [partial_path(p) for p in paths]
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, paths)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not all(p.exists() and p.stat().st_size > 6e6 for p in partials):
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    for p in partials:
        assert _frames_in(p) > 5, p.name
    assert not any(p.exists() for p in paths)


def test_a_background_added_twice_is_copied_once_under_its_sha1(tmp_path):
    import hashlib

    from vbg_app.gui.library import BackgroundLibrary

    a, b, c = tmp_path / "a.png", tmp_path / "b" / "beach.png", tmp_path / "other.png"
    b.parent.mkdir()
    cv2.imwrite(str(a), np.full((90, 160, 3), 200, np.uint8))
    b.write_bytes(a.read_bytes())  # the same picture under another name
    cv2.imwrite(str(c), np.full((90, 160, 3), 50, np.uint8))
    lib = BackgroundLibrary(tmp_path / "data")
    first = lib.add(a)
    assert first.path.name == f"a-{hashlib.sha1(a.read_bytes()).hexdigest()[:8]}.png"
    assert lib.add(b).path == first.path  # found by content: no second copy
    assert lib.add(c).path != first.path and len(lib.user_entries()) == 2
