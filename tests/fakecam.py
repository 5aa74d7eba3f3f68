"""A fake pyvirtualcam backend, so tests exercise pyvirtualcam's real ``Camera`` (shape checks, flattening,
backend selection) and vbg's VirtualCameraSink without v4l2loopback or OBS.

Use the ``fake_vcam`` fixture (tests/conftest.py), or directly::

    rec = FakeVirtualCamera()
    with installed(rec):                       # only this backend is registered inside the block
        sink = VirtualCameraSink(640, 480, 30)
        sink.send(frame)
    rec.frames[-1]                             # what arrived, decoded back to BGR (H, W, 3)

The backend decodes every frame from the pixel format (FourCC) that pyvirtualcam asked it for, as a real
backend has to; it accepts only ``accept`` formats and refuses others, like a real device would.
"""
from __future__ import annotations

import contextlib
from collections import deque

import cv2
import numpy as np

BACKEND_NAME = "vbg-fake"


def fourcc_str(code: int) -> str:
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


def _decode(raw: np.ndarray, fourcc: str, w: int, h: int) -> np.ndarray:
    """A 1-D frame in ``fourcc`` (as pyvirtualcam hands it over) → BGR (h, w, 3)."""
    if fourcc == "24BG":  # PixelFormat.BGR
        return raw.reshape(h, w, 3).copy()
    if fourcc == "raw ":  # PixelFormat.RGB
        return cv2.cvtColor(raw.reshape(h, w, 3), cv2.COLOR_RGB2BGR)
    if fourcc == "J400":  # PixelFormat.GRAY
        return cv2.cvtColor(raw.reshape(h, w), cv2.COLOR_GRAY2BGR)
    if fourcc == "I420":
        return cv2.cvtColor(raw.reshape(h * 3 // 2, w), cv2.COLOR_YUV2BGR_I420)
    raise ValueError(f"fake backend cannot decode {fourcc!r}")


class FakeVirtualCamera:
    """Records what the fake backend receives. ``frames`` keeps the last ``keep`` frames (BGR)."""

    def __init__(self, accept=("24BG", "raw ", "J400", "I420"), device: str = "/dev/fakecam0",
                 fail: str | None = None, keep: int = 64) -> None:
        self.accept = tuple(accept)
        self.default_device = device
        self.fail = fail              # if set: opening raises RuntimeError(fail), like a missing device
        self.fail_send: str | None = None  # if set: send() raises RuntimeError(fail_send), like a device taken away
        self.frames: deque = deque(maxlen=keep)
        self.raw: deque = deque(maxlen=keep)
        self.count = 0                # frames received in total
        self.opened = 0
        self.closed = 0
        self.width = self.height = None
        self.fps = None
        self.fourcc: str | None = None
        self.device: str | None = None
        self.kwargs: dict = {}

    @property
    def last(self) -> np.ndarray | None:
        return self.frames[-1] if self.frames else None

    def backend_class(self):
        rec = self

        class FakeBackend:
            def __init__(self, *, width, height, fps, fourcc, device, **kw):
                if rec.fail:
                    raise RuntimeError(rec.fail)
                fmt = fourcc_str(fourcc)
                if fmt not in rec.accept:
                    raise RuntimeError(f"unsupported pixel format {fmt!r}")
                self._w, self._h, self._fmt = width, height, fmt
                self._device = device or rec.default_device
                rec.width, rec.height, rec.fps, rec.fourcc = width, height, fps, fmt
                rec.device, rec.kwargs = self._device, dict(kw)
                rec.opened += 1

            def device(self):
                return self._device

            def native_fourcc(self):
                return None

            def send(self, frame):
                if rec.fail_send:
                    raise RuntimeError(rec.fail_send)
                assert frame.ndim == 1 and frame.dtype == np.uint8 and frame.flags.c_contiguous
                rec.raw.append(frame.copy())
                rec.frames.append(_decode(frame, self._fmt, self._w, self._h))
                rec.count += 1

            def close(self):
                rec.closed += 1

        return FakeBackend


@contextlib.contextmanager
def installed(recorder: FakeVirtualCamera, only: bool = True):
    """Register the fake backend through ``pyvirtualcam.register_backend`` for the block.

    ``only=True`` hides the real backends (so a machine with v4l2loopback loaded is not touched);
    the previous registry is restored afterwards.
    """
    import pyvirtualcam
    from pyvirtualcam import camera

    saved = camera.BACKENDS
    camera.BACKENDS = {} if only else dict(saved)
    try:
        pyvirtualcam.register_backend(BACKEND_NAME, recorder.backend_class())
        yield recorder
    finally:
        camera.BACKENDS = saved


@contextlib.contextmanager
def no_backends():
    """No virtual camera backend at all for the block (as on a machine without v4l2loopback/OBS)."""
    from pyvirtualcam import camera

    saved = camera.BACKENDS
    camera.BACKENDS = {}
    try:
        yield
    finally:
        camera.BACKENDS = saved
