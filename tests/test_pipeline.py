"""Pipeline wiring with fake stages: timing, threading, live swaps, error isolation, clean shutdown."""
import threading

import numpy as np
import pytest

from vbg_app.errors import BadInput
from vbg_app.pipeline import STAGES, Pipeline
from vbg_app.sources import SourceEnded


class CountingSource:
    """Frame k is filled with k % 256 in channel 0; ends after ``n`` frames."""

    fps, live = 30.0, False

    def __init__(self, n=50, size=(64, 48), bad=()):
        self.n, self.k, self.size_wh, self.bad, self.closed = n, 0, size, set(bad), False

    def read(self):
        if self.k >= self.n:
            raise SourceEnded()
        k, self.k = self.k, self.k + 1
        w, h = self.size_wh
        if k in self.bad:
            return np.zeros((h, w), np.float64)  # not convertible: the frame is skipped
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, :, 0] = k % 256
        return frame

    def close(self):
        self.closed = True


class EchoSegmenter:
    """prob = channel 0 / 255 at quarter resolution, so outputs can be traced back to their frame."""

    name, provider, fallback_reason = "echo", "cpu", ""

    def __init__(self):
        self.closed = False

    def segment(self, frame):
        return np.ascontiguousarray(frame[::4, ::4, 0], dtype=np.float32) / 255.0

    def close(self):
        self.closed = True


class PassFilter:
    def update(self, prob, frame):
        return prob

    def reset(self):
        pass


class TagCompositor:
    """Output = frame with channel 1 set from the mask (upsampled): checks frame/mask pairing."""

    def __init__(self):
        self.background = "x"

    def compose(self, frame, prob):
        out = frame.copy()
        out[:, :, 1] = np.round(np.kron(prob, np.ones((4, 4), np.float32)) * 255)[: frame.shape[0], : frame.shape[1]]
        return out

    def set_background(self, spec):
        if spec == "bad":
            raise BadInput("background bad not found", "check the path")
        self.background = spec


class ListSink:
    description = "list"

    def __init__(self, fail_at=()):
        self.frames, self.fail_at, self.closed = [], set(fail_at), False

    def send(self, frame):
        if len(self.frames) in self.fail_at:
            self.fail_at.discard(len(self.frames))
            raise OSError("virtual camera went away")
        self.frames.append(frame)

    def close(self):
        self.closed = True


def make(n=50, **kw):
    return Pipeline(CountingSource(n, **kw), EchoSegmenter(), PassFilter(), TagCompositor(), ListSink())


@pytest.mark.parametrize("threaded", [False, True])
def test_every_frame_is_blended_with_its_own_mask_and_the_end_closes_cleanly(threaded):
    pipe = make(40)
    stats = pipe.run(threaded=threaded)
    assert pipe.ended and stats.frames == 40
    sink = pipe.sink
    assert [int(f[0, 0, 0]) for f in sink.frames] == list(range(40))  # order kept, nothing dropped
    assert all(int(f[0, 0, 1]) == int(f[0, 0, 0]) for f in sink.frames)  # mask from the same frame
    assert set(stats.medians()) == set(STAGES) and all(v >= 0 for v in stats.medians().values())
    pipe.close()
    assert sink.closed and threading.active_count() < 5


def test_frames_limit_and_stats():
    pipe = make(1000)
    stats = pipe.run(frames=25)
    assert stats.frames == 25 and not pipe.ended
    assert stats.fps > 0 and stats.latency_ms.median() > 0
    assert "fps" in stats.summary() and stats.as_dict()["frames"] == 25
    stats = pipe.run(frames=5)  # runs can be resumed
    assert stats.frames == 30
    pipe.close()


def test_a_failing_frame_or_sink_is_skipped_not_fatal():
    pipe = make(30, bad={3, 4})
    pipe.sink = ListSink(fail_at={10})
    pipe.run()
    assert pipe.ended
    assert len(pipe.sink.frames) == 30 - 2 - 1
    assert pipe.stats.errors == 3 and "virtual camera went away" in pipe.stats.last_error
    pipe.close()


def test_live_swaps_apply_between_frames_and_bad_backgrounds_raise_to_the_caller():
    pipe = make(100)
    pipe.run(frames=5)
    pipe.set_background("color:#00ff00")
    assert pipe.compositor.background == "color:#00ff00"
    with pytest.raises(BadInput):
        pipe.set_background("bad")
    assert pipe.compositor.background == "color:#00ff00"  # unchanged
    old = pipe.segmenter
    new = EchoSegmenter()
    new.provider = "cuda"
    pipe.set_segmenter(new)
    assert old.closed and pipe.stats.provider == "cuda"
    pipe.run(frames=5)
    assert pipe.stats.frames == 10
    pipe.close()


def test_stop_from_another_thread_ends_a_threaded_run():
    pipe = make(10**9)
    t = threading.Timer(0.3, pipe.stop)
    t.start()
    stats = pipe.run()
    assert stats.frames > 0 and not pipe.ended
    pipe.close()
    assert pipe.sink is None  # released
