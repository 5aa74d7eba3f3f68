"""Sinks: where finished frames go (virtual camera, video file, nowhere).

Every sink follows the :class:`Sink` protocol::

    with open_sink("vcam", (1280, 720), 30) as sink:   # or "vcam:/dev/video10", "file:out.mp4", "null"
        sink.send(frame_bgr)                           # BGR uint8 (H, W, 3); other sizes are resized
        print(sink.description)

A missing virtual camera raises :class:`~vbg_app.errors.DeviceUnavailable` whose fix says how to get one on
this OS; a file that cannot be written raises :class:`~vbg_app.errors.BadInput`. ``close()`` is idempotent,
and a :class:`FileSink` is also closed at interpreter exit so an interrupted recording stays playable.
"""
from __future__ import annotations

import atexit
import logging
import platform
import threading
import time
import weakref
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from vbg_app.errors import BadInput, DeviceUnavailable
from vbg_app.sources import to_bgr8
from vbg_app.stage import ClosingStage

log = logging.getLogger(__name__)

SINK_FORMS = "vcam, vcam:DEVICE, file:PATH (.mp4 or .avi), null"
FILE_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


@runtime_checkable
class Sink(Protocol):
    description: str

    def send(self, frame_bgr: np.ndarray) -> None: ...

    def close(self) -> None: ...


class _SinkBase(ClosingStage):
    frames_sent: int = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


def _check_size(width, height, fps) -> tuple[int, int, float]:
    try:
        w, h, f = int(width), int(height), float(fps)
    except (TypeError, ValueError):
        raise BadInput(f"output size {width}x{height} @ {fps} fps is not numeric", "use e.g. 1280x720 at 30 fps") from None
    if w < 2 or h < 2 or w > 7680 or h > 4320:
        raise BadInput(f"output size {w}x{h} is out of range", "use 2x2 to 7680x4320, e.g. 1280x720")
    if not (0 < f <= 240):
        raise BadInput(f"output frame rate {f:g} is out of range", "use 1 to 240 fps, e.g. 30")
    return w, h, f


class _Fitter:
    """Resizes frames of another size to (w, h) into a reused buffer (INTER_AREA down, LINEAR up)."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self._buf: np.ndarray | None = None
        self._warned = False

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        frame = to_bgr8(frame)
        fh, fw = frame.shape[:2]
        if (fw, fh) == (self.w, self.h):
            return frame
        if not self._warned:
            log.info("frames are %dx%d, the output is %dx%d: resizing", fw, fh, self.w, self.h)
            self._warned = True
        if self._buf is None:
            self._buf = np.empty((self.h, self.w, 3), np.uint8)
        interp = cv2.INTER_AREA if fw * fh > self.w * self.h else cv2.INTER_LINEAR
        cv2.resize(frame, (self.w, self.h), dst=self._buf, interpolation=interp)
        return self._buf


# -- virtual camera -----------------------------------------------------------------------------------
def virtual_camera_fix(system: str | None = None, device: str | None = None) -> str:
    """How to get a virtual camera on ``system`` (default: this OS)."""
    system = system or platform.system()
    if system == "Linux":
        fix = ('load v4l2loopback: sudo modprobe v4l2loopback exclusive_caps=1 card_label="vbg" '
               "(install it first with sudo apt install v4l2loopback-dkms)")
        if device:
            fix += (f"; check that {device} is a v4l2loopback device (v4l2-ctl --list-devices) "
                    "that no other program is writing to")
    elif system == "Darwin":
        fix = ("install OBS Studio 30 or newer and start its virtual camera once (Start Virtual Camera, "
               "approve the system extension), then stop it in OBS")
    elif system == "Windows":
        fix = ("install OBS Studio and start its virtual camera once (Start Virtual Camera), then stop it in OBS "
               "so vbg can use it")
    else:
        fix = f"no virtual camera backend exists for {system or 'this system'}"
    return fix + "; or record to a file with --sink file:out.mp4"


class VirtualCameraSink(_SinkBase):
    """Frames to a virtual camera through pyvirtualcam (v4l2loopback on Linux, OBS on Windows/macOS).

    When the camera stops accepting frames (v4l2loopback reloaded, OBS's camera stopped), :meth:`send` raises
    :class:`DeviceUnavailable` for that frame, lets the device go, and tries to open it again on later frames,
    at most once every ``reopen_every_s`` seconds: the meeting gets the picture back without a restart.
    """

    def __init__(self, width: int, height: int, fps: float, device: str | None = None,
                 backend: str | None = None, reopen_every_s: float = 2.0) -> None:
        w, h, f = _check_size(width, height, fps)
        self._cam = None
        self._closed = False
        try:
            import pyvirtualcam
            from pyvirtualcam import camera as pvc_camera
        except ImportError as exc:
            raise DeviceUnavailable(f"pyvirtualcam is not installed ({exc})", "pip install pyvirtualcam") from None
        if backend and backend not in pvc_camera.BACKENDS:
            known = ", ".join(pvc_camera.BACKENDS) or "none on this system"
            raise BadInput(f"unknown virtual camera backend {backend!r}", f"use one of: {known}")
        self.width, self.height, self.fps = w, h, f
        self._backend_wanted = backend or None
        self._cam = self._open(device or None)
        self.device = self._cam.device
        self.backend = self._cam.backend
        self.description = f"virtual camera {self.device} ({self.backend}, {w}x{h} @ {f:g} fps)"
        self.frames_sent = 0
        self.reopened = 0  # times the camera came back after it was lost
        self.reopen_every_s = float(reopen_every_s)
        self._next_try = 0.0
        self._lost_reason = ""
        self._fit = _Fitter(w, h)

    def _open(self, device):
        import pyvirtualcam

        try:
            return pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.BGR,
                                       device=device, backend=self._backend_wanted)
        except Exception as exc:
            detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            detail = detail.rstrip(". ") or "no virtual camera backend is registered"
            where = f" at {device}" if device else ""
            raise DeviceUnavailable(f"cannot open a virtual camera{where} (pyvirtualcam: {detail})",
                                    virtual_camera_fix(device=device)) from None

    def _lost(self) -> DeviceUnavailable:
        return DeviceUnavailable(f"the virtual camera {self.device} stopped accepting frames ({self._lost_reason})",
                                 "check that no other program took it over (or that v4l2loopback is still "
                                 f"loaded); vbg reopens it by itself every {self.reopen_every_s:g} s")

    def _reopen(self) -> None:
        now = time.monotonic()
        if now < self._next_try:
            raise self._lost()
        self._next_try = now + self.reopen_every_s
        try:
            self._cam = self._open(self.device)
        except DeviceUnavailable:
            raise self._lost() from None
        self.reopened += 1
        log.info("virtual camera %s is back (reopened %d time(s))", self.device, self.reopened)

    def send(self, frame_bgr: np.ndarray) -> None:
        if self._closed:
            raise RuntimeError("send() on a closed VirtualCameraSink")
        frame = self._fit(frame_bgr)
        if self._cam is None:
            self._reopen()
        try:
            self._cam.send(frame)
        except Exception as exc:
            cam, self._cam = self._cam, None
            try:
                cam.close()
            except Exception:
                pass
            self._next_try = time.monotonic() + self.reopen_every_s
            self._lost_reason = str(exc).strip() or type(exc).__name__
            raise self._lost() from None
        self.frames_sent += 1

    def close(self) -> None:
        self._closed = True
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def virtual_camera_status() -> tuple[bool, str]:
    """(available, text) for ``vbg devices``: opens a small virtual camera for a moment."""
    try:
        sink = VirtualCameraSink(640, 480, 30)
    except DeviceUnavailable as exc:
        return False, exc.one_line()
    try:
        return True, f"{sink.device} ({sink.backend})"
    finally:
        sink.close()


# -- video file ---------------------------------------------------------------------------------------
_OPEN_FILE_SINKS: "weakref.WeakSet[FileSink]" = weakref.WeakSet()


@atexit.register
def _close_open_files() -> None:
    """An interrupted run (Ctrl+C, an exception, sys.exit) still finalises its recordings."""
    for sink in list(_OPEN_FILE_SINKS):
        try:
            sink.close()
        except Exception:
            pass


class FileSink(_SinkBase):
    """Frames to a video file: .mp4/.mov/.m4v/.mkv with MPEG-4 Part 2 (mp4v), .avi with Motion-JPEG.

    The recorded size is (width, height) rounded down to even numbers (the encoders need it); frames of
    another size are resized. ``close()`` is idempotent and also runs at interpreter exit and on garbage
    collection, so a recording that is interrupted short of a crash is still a playable file.
    """

    def __init__(self, path, width: int, height: int, fps: float) -> None:
        w, h, f = _check_size(width, height, fps)
        w, h = max(2, w & ~1), max(2, h & ~1)
        self.path = Path(path).expanduser()
        self._writer = None
        self._lock = threading.Lock()
        ext = self.path.suffix.lower()
        if not str(path) or ext not in FILE_CODECS:
            raise BadInput(f"cannot record to {str(path)!r}: unknown video file type {ext or '(none)'}",
                           f"end the file name in one of {', '.join(FILE_CODECS)}, e.g. file:out.mp4")
        if self.path.is_dir():
            raise BadInput(f"{self.path} is a folder", "give a file name, e.g. file:out.mp4")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the folder for {self.path} ({exc.strerror})",
                           "choose a folder you can write to") from None
        codec = FILE_CODECS[ext]
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*codec), f, (w, h))
        if not writer.isOpened():
            writer.release()
            raise BadInput(f"cannot write video file {self.path} with codec {codec}",
                           "check the folder is writable and the disk not full, or try a .avi file name")
        self._writer = writer
        self.width, self.height, self.fps, self.codec = w, h, f, codec
        self.frames_sent = 0
        self.description = f"file {self.path} ({codec}, {w}x{h} @ {f:g} fps)"
        self._fit = _Fitter(w, h)
        _OPEN_FILE_SINKS.add(self)

    def send(self, frame_bgr: np.ndarray) -> None:
        frame = self._fit(frame_bgr)
        with self._lock:
            if self._writer is None:
                raise RuntimeError(f"send() on a closed FileSink ({self.path})")
            self._writer.write(frame)
            self.frames_sent += 1

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.release()
                log.info("recorded %d frames to %s", self.frames_sent, self.path)
        _OPEN_FILE_SINKS.discard(self)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# -- nowhere ------------------------------------------------------------------------------------------
class NullSink(_SinkBase):
    """Discards frames, counting them (benchmarks, tests). ``last_frame`` is the latest one sent."""

    description = "null (frames discarded)"

    def __init__(self) -> None:
        self.frames_sent = 0
        self.last_frame: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return self.frames_sent

    def send(self, frame_bgr: np.ndarray) -> None:
        self.last_frame = frame_bgr
        self.frames_sent += 1


# -- spec parsing -------------------------------------------------------------------------------------
def open_sink(spec: str, size_wh: tuple[int, int], fps: float) -> Sink:
    """``vcam`` | ``vcam:DEVICE`` | ``file:PATH`` | ``null``; a bare path ending in a video extension
    is a file. ``size_wh`` and ``fps`` are the output's (frames of other sizes are resized)."""
    spec = (spec or "").strip()
    w, h = size_wh
    scheme, sep, rest = spec.partition(":")
    scheme = scheme.lower()
    if scheme == "vcam":
        return VirtualCameraSink(w, h, fps, device=rest.strip() or None)
    if scheme == "file":
        return FileSink(rest, w, h, fps)
    if scheme == "null" and not rest:
        return NullSink()
    if spec and Path(spec).suffix.lower() in FILE_CODECS:
        return FileSink(spec, w, h, fps)
    raise BadInput(f"unknown sink {spec!r}", f"use one of: {SINK_FORMS}")
