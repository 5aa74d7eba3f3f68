"""Fake frame stages shared by the pipeline, reliability, recording and hostile-input tests.

Each follows the protocol of the stage it stands for (sources read/close, segmenters segment/close, filters
update/reset, compositors compose/set_background, sinks send/close) and is small enough to reason about:

- ``CountingSource``  frame k carries k % 256 in channel 0, so every later stage's output names its frame;
- ``EchoSegmenter``   person probability = channel 0 / 255 at quarter resolution (traceable to its frame);
- ``HalfSegmenter``   probability 0.5 everywhere at quarter resolution, at least 1x1 (any frame size);
- ``PassFilter``      no smoothing;
- ``TagCompositor``   the frame with channel 1 set from the mask (checks frame/mask pairing);
- ``CopyCompositor``  the frame unchanged;
- ``ListSink``        keeps every frame; can fail on chosen sends.
"""
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.sources import SourceEnded


class CountingSource:
    """Frame k is filled with k % 256 in channel 0; ends after ``n`` frames; frames in ``bad`` are unusable."""

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


class HalfSegmenter:
    """prob = 0.5 everywhere at quarter resolution (at least 1x1), whatever the frame."""

    name, provider, fallback_reason = "half", "cpu", ""

    def __init__(self):
        self.closed = False

    def segment(self, frame):
        return np.full((frame.shape[0] // 4 or 1, frame.shape[1] // 4 or 1), 0.5, np.float32)

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

    def close(self):
        pass


class CopyCompositor:
    def compose(self, frame, prob):
        return frame.copy()

    def set_background(self, spec):
        pass

    def close(self):
        pass


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
