"""Sinks: where finished frames go (virtual camera, video file, nowhere).

Every sink follows the :class:`Sink` protocol::

    with open_sink("vcam", (1280, 720), 30) as sink:   # or "vcam:/dev/video10", "file:out.mp4", "null"
        sink.send(frame_bgr)                           # BGR uint8 (H, W, 3); other sizes are resized
        print(sink.description)

A missing virtual camera raises :class:`~vbg_app.errors.DeviceUnavailable` whose fix says how to get one on
this OS; a file that cannot be written (or that exists, unless ``overwrite``) raises
:class:`~vbg_app.errors.BadInput`, and one whose disk fills up or stops taking data while recording raises
:class:`~vbg_app.errors.OutputFailed` after closing it, what was recorded kept playable. ``close()`` is
idempotent, and a :class:`FileSink` is also closed at interpreter exit so an interrupted recording stays
playable; it writes to ``NAME.partial.EXT`` and renames that to the name asked for when it closes.
"""
from __future__ import annotations

import atexit
import logging
import os
import platform
import shutil
import threading
import time
import weakref
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, DeviceUnavailable, OutputFailed
from vbg_app.frames import to_bgr8
from vbg_app.protocols import Sink
from vbg_app.stage import ClosingStage

log = logging.getLogger(__name__)

FILE_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}


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


def partial_path(path) -> Path:
    """Where a recording to ``path`` is written until it is finished: ``out.mp4`` → ``out.partial.mp4``
    (same folder, so the final rename is atomic; same extension, so the container is the one asked for)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _open_writer(path: str, fourcc: int, fps: float, size_wh: tuple[int, int]):
    """The OpenCV writer behind a :class:`FileSink` (tests replace it with one that fails)."""
    return cv2.VideoWriter(path, fourcc, fps, size_wh)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class FileSink(_SinkBase):
    """Frames to a video file: .mp4/.mov/.m4v/.mkv with MPEG-4 Part 2 (mp4v), .avi with Motion-JPEG.

    The recorded size is (width, height) rounded down to even numbers (the encoders need it); frames of
    another size are resized. ``close()`` is idempotent and also runs at interpreter exit and on garbage
    collection, so a recording that is interrupted short of a crash is still a playable file.

    Safe writing:

    * an existing ``path`` is refused (:class:`BadInput`) unless ``overwrite``;
    * frames go to :func:`partial_path` (``out.partial.mp4``), created exclusively: a second sink for the same
      file, in this process or another, is refused instead of interleaving its writes; ``close()`` renames it
      to ``path`` (only a SIGKILL or a power cut leaves the ``.partial`` file, which an .mkv/.avi can play);
    * every frame checks that the output still works — ``write``'s result where OpenCV gives one (5.x), the
      free space on the disk (recording stops while there is still room for the container's index, so an .mp4
      stays playable) and that the file keeps growing. On a failure :meth:`send` closes the file (what was
      written stays playable, under ``path``), then raises :class:`OutputFailed` (exit code 4) saying why and
      where the recording is; ``failure`` keeps that error.
    """

    FLUSH_BYTES = 256 * 1024          # FFmpeg hands the file its data in blocks of this size
    RESERVE_BYTES = 320 * 1024        # free space kept for the last block, the index and the trailer
    INDEX_BYTES_PER_FRAME = 16        # an .mp4/.avi index entry is 8..16 bytes per frame
    FREE_CHECK_EVERY_S = 0.5          # statvfs at most this often while the disk has plenty of room ...
    PLENTY_BYTES = 64 * 1024 * 1024   # ... more than this above the reserve; every frame below it
    STALL_MIN_FRAMES = 300            # a file that has not grown for this many frames (and 2 blocks' worth) is stuck

    def __init__(self, path, width: int, height: int, fps: float, overwrite: bool = False) -> None:
        w, h, f = _check_size(width, height, fps)
        w, h = max(2, w & ~1), max(2, h & ~1)
        self.path = Path(path).expanduser()
        self._writer = None
        self._tmp: Path | None = None
        self._lock = threading.Lock()
        self.failure: OutputFailed | None = None
        self.saved_to: Path | None = None  # where the recording is once closed
        ext = self.path.suffix.lower()
        if not str(path) or ext not in FILE_CODECS:
            raise BadInput(f"cannot record to {str(path)!r}: unknown video file type {ext or '(none)'}",
                           f"end the file name in one of {', '.join(FILE_CODECS)}, e.g. file:out.mp4")
        if self.path.is_dir():
            raise BadInput(f"{self.path} is a folder", "give a file name, e.g. file:out.mp4")
        if not overwrite and os.path.lexists(self.path):
            raise BadInput(f"{self.path} already exists and vbg does not record over a file unless asked",
                           "pass --overwrite to replace it, or choose another file name")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the folder for {self.path} ({exc.strerror})",
                           "choose a folder you can write to") from None
        self.overwrite = bool(overwrite)
        self.width, self.height, self.fps = w, h, f
        self.frames_sent = 0
        self._fit = _Fitter(w, h)
        self._folder = self.path.parent
        self._next_free_check = 0.0
        self._free = self._free_bytes()
        if self._free is not None and self._free < self.RESERVE_BYTES:
            raise OutputFailed(f"the disk holding {self._folder} is full ({_mb(self._free)} free)",
                               f"free space or record elsewhere; nothing was recorded to {self.path}")
        tmp = partial_path(self.path)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise BadInput(f"{tmp} exists: another vbg is recording to {self.path.name}, or one was killed "
                           "before it could finish (then that file holds its recording)",
                           f"wait for that run to end or record to another file; if no vbg is running, "
                           f"rename or delete {tmp.name}") from None
        except OSError as exc:
            raise BadInput(f"cannot write video file {tmp} ({exc.strerror})",
                           "check the folder is writable and the disk not full, or record elsewhere") from None
        self._tmp = tmp
        codec = FILE_CODECS[ext]
        try:
            writer = _open_writer(str(tmp), cv2.VideoWriter_fourcc(*codec), f, (w, h))
        except BaseException:
            self._discard_tmp()
            raise
        if not writer.isOpened():
            writer.release()
            self._discard_tmp()
            raise BadInput(f"cannot write video file {self.path} with codec {codec}",
                           "check the folder is writable and the disk not full, or try a .avi file name")
        self._writer = writer
        self.codec = codec
        self.description = f"file {self.path} ({codec}, {w}x{h} @ {f:g} fps)"
        self._size = self._tmp_size()
        self._grown_at = 0  # frames_sent when the file last grew
        _OPEN_FILE_SINKS.add(self)

    # -- checks ----------------------------------------------------------------------------------------
    def _free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self._folder).free
        except OSError:  # a folder statvfs cannot see into: the write and growth checks remain
            return None

    def _tmp_size(self) -> int:
        try:
            return os.stat(self._tmp).st_size
        except OSError:
            return -1

    def _reserve(self) -> int:
        per_frame = self._size / self.frames_sent if self.frames_sent and self._size > 0 else 0
        return int(self.RESERVE_BYTES + self.INDEX_BYTES_PER_FRAME * self.frames_sent + 2 * per_frame)

    def _check_room(self) -> None:
        """Stop while there is still room to finish the file (before the disk is full, not after)."""
        now = time.monotonic()
        reserve = self._reserve()
        if self._free is not None and self._free > reserve + self.PLENTY_BYTES and now < self._next_free_check:
            return
        self._next_free_check = now + self.FREE_CHECK_EVERY_S
        self._free = self._free_bytes()
        if self._free is not None and self._free < reserve:
            self._fail(f"the disk holding {self._folder} is full ({_mb(self._free)} free)",
                       "free space or record elsewhere", lost=False)

    def _stall_frames(self) -> int:
        """Frames after which a file that has not grown is stuck: twice the frames one block can hold at the
        codec's smallest output per frame (a black still: measured 2-3x above this floor), at least 300."""
        floor = (self.width * self.height / 2048 + 8 if self.codec == "mp4v"
                 else 150 + self.width * self.height / 256)  # mp4v: 1 bit per skipped macroblock; MJPEG: a JPEG
        return max(self.STALL_MIN_FRAMES, int(2 * self.FLUSH_BYTES / floor))

    def _check_growth(self, checked_write: bool) -> None:
        size = self._tmp_size()
        if size < 0:
            self._fail(f"the recording {self._tmp} went away (its disk was removed or the file deleted)",
                       "record to a disk that stays connected")
        if size > self._size:
            self._size, self._grown_at = size, self.frames_sent
            return
        # only where write() says nothing (OpenCV 4.x): a backend that reports failures has not failed
        stuck = self.frames_sent - self._grown_at
        if not checked_write and stuck > self._stall_frames():
            self._fail(f"{self.path} has not grown for {stuck} frames: the disk is not taking data "
                       f"(full, over quota, or failing)", "free space or record elsewhere")

    def _fail(self, what: str, fix: str, lost: bool = True) -> None:
        """Close the file (keeping what was written), then raise :class:`OutputFailed` saying where it is.
        ``lost``: some of the frames sent may not have reached the disk (it was full, or a write failed)."""
        writer, self._writer = self._writer, None
        n = self.frames_sent
        if not lost:  # stopped for lack of room: can what is still buffered, and the index, reach the disk?
            free = self._free_bytes()
            per_frame = self._size / self._grown_at if self._grown_at else self.FLUSH_BYTES
            pending = min(self.FLUSH_BYTES, (n - self._grown_at) * per_frame)
            lost = free is None or free < pending + self.INDEX_BYTES_PER_FRAME * n + 64 * 1024
        if writer is not None:
            try:
                writer.release()
            except Exception as exc:
                log.warning("finishing %s failed: %s", self._tmp, exc)
        _OPEN_FILE_SINKS.discard(self)
        if n == 0:
            self._discard_tmp()
            kept = f"nothing was recorded to {self.path}"
        elif not os.path.exists(self._tmp):
            kept = f"the {n} frames recorded are lost with {self._tmp.name}"
        elif not self._playable(self._tmp):
            self.saved_to = self._tmp
            kept = (f"the {n} frames written could not be finished into a playable file: {self._tmp} holds "
                    "them (an .mp4 needs room for its index at the end; .mkv and .avi play up to the last "
                    "data that reached the disk)")
        else:
            self.saved_to = self._publish()
            upto = "up to " if lost else ""
            kept = f"what was recorded until then ({upto}{n} frames, {n / self.fps:.1f} s) is in {self.saved_to}"
        self.failure = OutputFailed(what, f"{fix}; {kept}")
        log.info("recording to %s failed after %d frames: %s", self.path, n, what)
        raise self.failure

    @staticmethod
    def _playable(path) -> bool:
        cap = cv2.VideoCapture(str(path))
        try:
            return bool(cap.isOpened() and cap.read()[0])
        finally:
            cap.release()

    # -- the finished file -----------------------------------------------------------------------------
    def _publish(self) -> Path:
        """Rename the finished recording to ``path``; where it is (the partial name if that cannot be done)."""
        tmp, path = self._tmp, self.path
        if not self.overwrite and os.path.lexists(path):  # written by something else since we started
            log.warning("%s appeared while recording and is kept; this recording is in %s", path, tmp)
            return tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot rename %s to %s (%s); the recording is in %s", tmp, path, exc.strerror, tmp)
            return tmp
        return path

    def _discard_tmp(self) -> None:
        try:
            os.unlink(self._tmp)
        except (OSError, TypeError):
            pass

    # -- the sink --------------------------------------------------------------------------------------
    def send(self, frame_bgr: np.ndarray) -> None:
        frame = self._fit(frame_bgr)
        with self._lock:
            if self._writer is None:
                if self.failure is not None:
                    raise self.failure
                raise RuntimeError(f"send() on a closed FileSink ({self.path})")
            self._check_room()
            ok = self._writer.write(frame)  # OpenCV 5 says whether it worked; 4.x returns None
            if ok is False:
                free = self._free_bytes()
                if free is not None and free < self._reserve():
                    self._fail(f"the disk holding {self._folder} is full ({_mb(free)} free)",
                               "free space or record elsewhere")
                self._fail(f"writing {self.path} failed at frame {self.frames_sent + 1} (the video encoder or "
                           "the disk refused it)", "check that the disk is not full, removed or read-only, "
                           "or record elsewhere")
            self.frames_sent += 1
            self._check_growth(checked_write=ok is not None)

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.release()
                self.saved_to = self._publish()
                log.info("recorded %d frames to %s", self.frames_sent, self.saved_to)
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
def open_sink(spec, size_wh: tuple[int, int], fps: float, overwrite: bool = False) -> Sink:
    """``vcam`` | ``vcam:DEVICE`` | ``file:PATH`` | ``null`` (text or a :mod:`vbg_app.specs` dataclass; a bare
    path ending in a video extension is a file). ``size_wh`` and ``fps`` are the output's (frames of other
    sizes are resized); ``overwrite`` lets a file sink replace an existing file (otherwise that is refused)."""
    from vbg_app.specs import SINKS

    return SINKS.open(spec, size_wh, fps, overwrite=overwrite)
