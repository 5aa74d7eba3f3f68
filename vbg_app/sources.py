"""Sources: where frames come from (camera, video file, still image, built-in demo).

Every source follows the :class:`Source` protocol::

    with open_source("camera:0") as src:          # or "demo", "video:talk.mp4", "image:me.jpg"
        frame = src.read()                        # newest BGR uint8 (H, W, 3) frame, or None

``read()`` never queues frames into lag: a camera hands over the newest frame it captured (older ones are
dropped), a realtime file or the demo hands over the frame that is due now. ``read()`` may wait up to
about one frame interval for that frame (by sleeping, never spinning) and returns None when nothing new
came in that time. A video that ends without looping raises :class:`SourceEnded` (an ordinary end, not a
user error). Everything the user can get wrong raises :class:`~vbg_app.errors.BadInput` (a file) or
:class:`~vbg_app.errors.DeviceUnavailable` (a camera), with the fix.
"""
from __future__ import annotations

import glob
import logging
import math
import os
import platform
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, DeviceUnavailable, VbgError
from vbg_app.frames import MAX_SIZE_WH, MIN_SIDE, check_frame_size, read_image, to_bgr8  # noqa: F401 (re-exported)
from vbg_app.imagefile import check_path
from vbg_app.protocols import Source
from vbg_app.quiet import quiet_decoding, quiet_opencv  # noqa: F401  (quiet_opencv: imported from here too)
from vbg_app.stage import ClosingStage

log = logging.getLogger(__name__)

# FFmpeg inside OpenCV prints its own errors for every corrupt file ("moov atom not found" ...); vbg reports
# them itself, with the fix. Takes effect if set before OpenCV first opens a video; the user's value wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

_CAMERA_FIX = "check the camera is plugged in and not used by another app; `vbg devices` lists cameras"


class SourceEnded(Exception):
    """A finite source (a video with ``loop=False``) has no more frames. Not a user error."""


def _valid_fps(value, default: float = 30.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) and 1.0 <= v <= 240.0 else default


class _Pacer:
    """Sleeps until the next frame slot of a ``fps`` clock (never spins).

    ``wait()`` returns the slot index of the frame to show. With ``skip=True`` a late caller jumps to the
    slot of *now* (the demo can render any slot); otherwise it gets the next slot and, when more than one
    interval late, the clock restarts from now so a slow consumer gets no burst of catch-up frames.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._t0: float | None = None
        self.index = -1

    def wait(self, skip: bool = False) -> int:
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self.index = now, 0
            return 0
        target = self.index + 1
        due = self._t0 + target * self.period
        if due > now:
            time.sleep(due - now)
            self.index = target
        elif skip:
            self.index = max(target, int((now - self._t0) / self.period))
        else:
            self.index = target
            if now - due > self.period:
                self._t0 = now - target * self.period
        return self.index


class _SourceBase(ClosingStage):
    fps: float = 30.0
    size_wh: tuple[int, int] = (0, 0)
    live: bool = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description} {self.size_wh[0]}x{self.size_wh[1]}@{self.fps:g}>"


def _check_file(path, kind: str) -> Path:
    """The path of an existing, non-empty regular file; else BadInput saying what ``path`` is instead (missing,
    a folder, a symbolic link loop, a pipe: see :func:`~vbg_app.imagefile.check_path`; never opened here, so a
    pipe cannot block)."""
    if not str(path):
        raise BadInput(f"no {kind} file given", f"write {kind}:PATH")
    return check_path(path, f"{kind} file", noun=f"{kind} file")


# -- camera -------------------------------------------------------------------------------------------
class LatestFrameGrabber:
    """Reads a ``cv2.VideoCapture``-like object on its own thread and keeps only the newest frame.

    ``read(timeout)`` returns the newest frame not handed out before (waiting up to ``timeout`` s for
    one), or None; it never returns an older frame than one already returned. Frames the consumer was
    too slow to take are counted in ``dropped``. If the capture fails for ``stall_timeout`` seconds the
    next ``read()`` raises :class:`DeviceUnavailable`. The thread owns the capture and releases it.
    """

    def __init__(self, capture, name: str = "camera", stall_timeout: float = 2.0) -> None:
        self._cap = capture
        self.name = name
        self.stall_timeout = stall_timeout
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0        # frames published
        self._taken = 0      # seq of the last frame handed out
        self._error: Exception | None = None
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"vbg-grab-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_ok = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    ok, frame = self._cap.read()
                except Exception as exc:  # a backend hiccup: treated like a failed read
                    ok, frame = False, None
                    log.debug("%s: read raised %s", self.name, exc)
                if self._stop.is_set():
                    break
                now = time.monotonic()
                if ok and frame is not None and getattr(frame, "size", 0):
                    try:
                        frame = to_bgr8(frame)
                    except BadInput as exc:
                        self._fail(DeviceUnavailable(f"{self.name} delivers unusable frames ({exc.what})",
                                                     "pick another camera or pixel format (try --mjpg off/on)"))
                        break
                    with self._cond:
                        if self._seq > self._taken:
                            self.dropped += 1
                        self._frame = frame
                        self._seq += 1
                        self._cond.notify_all()
                    last_ok = now
                else:
                    if now - last_ok > self.stall_timeout:
                        self._fail(DeviceUnavailable(
                            f"{self.name} stopped delivering frames (none for {self.stall_timeout:g} s)",
                            _CAMERA_FIX))
                        break
                    self._stop.wait(0.01)  # a failing camera must not spin a core
        finally:
            try:
                self._cap.release()
            except Exception:
                pass
            with self._cond:
                self._cond.notify_all()

    def _fail(self, error: Exception) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def _ready(self) -> bool:
        return self._seq > self._taken or self._error is not None or self._stop.is_set()

    def wait_first(self, timeout: float) -> np.ndarray | None:
        """Wait for the first frame without consuming it; raises the capture's error if it failed."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > 0 or self._error is not None or not self._thread.is_alive(),
                                timeout)
            if self._seq > 0:
                return self._frame
            if self._error is not None:
                raise self._error
            return None

    def read(self, timeout: float = 0.0) -> np.ndarray | None:
        with self._cond:
            if not self._ready() and timeout > 0:
                self._cond.wait_for(self._ready, timeout)
            if self._seq > self._taken:
                self._taken = self._seq
                return self._frame
            if self._error is not None:
                raise self._error
            return None

    def close(self, join_timeout: float = 2.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(join_timeout)


def _camera_name(index_or_path) -> str:
    return f"camera {index_or_path}"


def _open_capture(index_or_path, width, height, fps, mjpg):
    """Open a camera with OpenCV, quietly; DeviceUnavailable (with the fix) when it is not there."""
    linux = platform.system() == "Linux"
    target = index_or_path
    if isinstance(target, str) and target.strip().isdigit():
        target = int(target)
    name = _camera_name(target)
    if linux:
        node = f"/dev/video{target}" if isinstance(target, int) else str(target)
        if not os.path.exists(node):
            raise DeviceUnavailable(f"{name} not found (no {node})", _CAMERA_FIX)
        if not os.access(node, os.R_OK | os.W_OK):
            raise DeviceUnavailable(f"no permission to open {node}",
                                    "add yourself to the 'video' group: sudo usermod -aG video $USER, then log in again")
    elif isinstance(target, str) and not os.path.exists(target):
        raise DeviceUnavailable(f"{name} not found", _CAMERA_FIX)
    with quiet_opencv():
        api = cv2.CAP_V4L2 if linux else cv2.CAP_ANY
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise DeviceUnavailable(f"{name} cannot be opened", _CAMERA_FIX)
        if mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
        if fps:
            cap.set(cv2.CAP_PROP_FPS, float(fps))
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer frames queued in the driver = less lag (if supported)
    return cap


class CameraSource(_SourceBase):
    """A webcam through OpenCV; a capture thread keeps only the newest frame.

    ``read(timeout=None)`` returns the newest frame not returned before, waiting up to ``timeout`` s
    (default: about two frame intervals) for one, else None. ``capture`` injects an opened
    ``cv2.VideoCapture``-like object (``read()``, ``get()``, ``release()``) instead of opening a device.
    """

    live = True

    def __init__(self, index_or_path=0, width: int | None = None, height: int | None = None,
                 fps: float | None = None, mjpg: bool = False, *, capture=None,
                 first_frame_timeout: float = 5.0, stall_timeout: float = 2.0) -> None:
        self.description = _camera_name(index_or_path)
        self._grabber = None
        if capture is None:
            capture = _open_capture(index_or_path, width, height, fps, mjpg)
        try:
            reported_fps = capture.get(cv2.CAP_PROP_FPS)
        except Exception:
            reported_fps = 0
        self.fps = _valid_fps(reported_fps, _valid_fps(fps))
        self._grabber = LatestFrameGrabber(capture, self.description, stall_timeout)
        try:
            first = self._grabber.wait_first(first_frame_timeout)
        except BaseException:
            self.close()
            raise
        if first is None:
            self.close()
            raise DeviceUnavailable(f"{self.description} opened but sent no frame within {first_frame_timeout:g} s",
                                    _CAMERA_FIX)
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))
        try:
            check_frame_size(self.size_wh, self.description, "size")
        except BadInput as exc:  # every frame would be refused: say so now, not after 3 s of nothing
            self.close()
            w, h = self.size_wh
            raise DeviceUnavailable(f"{self.description} sends {w}x{h} frames: {exc.what.partition(': ')[2]}",
                                    "ask it for another size, e.g. --size 1280x720") from None

    @property
    def dropped(self) -> int:
        return self._grabber.dropped if self._grabber else 0

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        if self._grabber is None:
            raise SourceEnded(f"{self.description} is closed")
        if timeout is None:
            timeout = min(0.2, 2.0 / self.fps)
        return self._grabber.read(timeout)

    def close(self) -> None:
        grabber, self._grabber = self._grabber, None
        if grabber is not None:
            grabber.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class ReconnectingSource(_SourceBase):
    """A live source that survives its device going away: unplugged, taken by another app, a driver hiccup.

    Wraps whatever ``factory()`` opens (e.g. ``lambda: CameraSource(0)``). When the inner source raises
    (a :class:`CameraSource` raises :class:`DeviceUnavailable` after a 2 s stall) or gives no frame for
    ``stall_timeout`` seconds, it is closed and reopened through ``factory()``: at once, then with back-off
    (``first_backoff`` doubling up to ``max_backoff`` = 1 s between attempts), so a camera that comes back is
    running again within about a second plus the time it takes to open. Meanwhile ``read()`` returns None
    (after a short sleep, never spinning) and never raises for the lost device; ``state`` is ``"ok"`` or
    ``"reconnecting"``, ``error`` says why, ``lost_for()`` how long. The pipeline shows the last frame, then a
    "camera unavailable" card, while ``state`` is not ok. :class:`SourceEnded` (a finite video's end, or
    ``close()``) passes through. The first ``factory()`` call happens in the constructor and raises as usual:
    a camera that is missing at start is an error to report, not to wait for (or pass the first, already
    opened, ``source``).
    """

    live = True

    def __init__(self, factory, *, stall_timeout: float | None = 2.0, first_backoff: float = 0.1,
                 max_backoff: float = 1.0, poll: float = 0.05, clock=time.monotonic, sleep=time.sleep,
                 description: str = "", source=None) -> None:
        self._factory = factory
        self.stall_timeout = stall_timeout
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.poll = poll
        self._clock, self._sleep = clock, sleep
        self._closed = False
        self.state = "ok"
        self.error = ""
        self.attempts = 0      # reopen attempts (failed or not) since the start
        self.reconnects = 0    # successful reopens
        self.losses = 0
        self._lost_at: float | None = None
        self._next_try = 0.0
        self._backoff = first_backoff
        self._inner = None
        self._adopt(source if source is not None else factory())
        self.description = description or getattr(self._inner, "description", "") or "source"

    def _adopt(self, inner) -> None:
        self._inner = inner
        self.fps = getattr(inner, "fps", 30.0) or 30.0
        self.size_wh = tuple(getattr(inner, "size_wh", self.size_wh))
        self._last_frame_at = self._clock()

    @property
    def inner(self):
        return self._inner

    @property
    def dropped(self) -> int:
        return getattr(self._inner, "dropped", 0)

    def lost_for(self) -> float:
        return 0.0 if self._lost_at is None else self._clock() - self._lost_at

    def _lose(self, why: str) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            try:
                inner.close()
            except Exception as exc:
                log.debug("closing the lost %s failed: %s", self.description, exc)
        self.state, self.error = "reconnecting", why
        self.losses += 1
        self._lost_at = self._clock()
        self._next_try = self._lost_at  # the first reopen at once (a hiccup), then back off
        self._backoff = self.first_backoff
        log.warning("%s lost (%s); reconnecting", self.description, why)

    def read(self) -> np.ndarray | None:
        if self._closed:
            raise SourceEnded(self.description)
        inner = self._inner
        if inner is not None:
            try:
                frame = inner.read()
            except SourceEnded:
                raise
            except Exception as exc:
                self._lose(exc.one_line() if isinstance(exc, VbgError) else
                           f"{type(exc).__name__}: {exc}")
                return None
            now = self._clock()
            if frame is not None:
                self._last_frame_at = now
                return frame
            if self.stall_timeout and now - self._last_frame_at > self.stall_timeout:
                self._lose(f"{self.description} sent no frame for {self.stall_timeout:g} s")
            return None
        # lost: reopen when the back-off allows, else wait a little (the caller loops)
        now = self._clock()
        if now < self._next_try:
            self._sleep(min(self.poll, self._next_try - now))
            return None
        self.attempts += 1
        try:
            new = self._factory()
        except Exception as exc:
            self.error = exc.one_line() if isinstance(exc, VbgError) else f"{type(exc).__name__}: {exc}"
            self._next_try = self._clock() + self._backoff
            self._backoff = min(self.max_backoff, self._backoff * 2)
            return None
        if self._closed:  # closed from another thread while opening
            try:
                new.close()
            except Exception:
                pass
            raise SourceEnded(self.description)
        lost_for = self.lost_for()
        self._adopt(new)
        self.state, self.error, self._lost_at = "ok", "", None
        self.reconnects += 1
        log.warning("%s is back after %.1f s", self.description, lost_for)
        return None

    def close(self) -> None:
        self._closed = True
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()


def list_cameras(max_index: int = 10) -> list[dict]:
    """Cameras for ``vbg devices``: dicts with ``index``, ``spec``, ``path``, ``name``, ``size``
    ("WxH"), ``size_wh``, ``virtual`` (a loopback device, e.g. vbg's own output).

    On Linux only existing /dev/video* nodes are probed (fast, nothing printed when there are none);
    elsewhere indices 0..max_index-1 are tried. Frames are not read, so this takes milliseconds per camera.
    """
    found = []
    with quiet_opencv():
        if platform.system() == "Linux":
            nodes = []
            for node in glob.glob("/dev/video*"):
                m = re.fullmatch(r"/dev/video(\d+)", node)
                if m:
                    nodes.append((int(m.group(1)), node))
            for index, node in sorted(nodes):
                sysfs = f"/sys/class/video4linux/video{index}"
                try:
                    name = Path(sysfs, "name").read_text().strip()
                except OSError:
                    name = ""
                virtual = "/devices/virtual/" in os.path.realpath(sysfs)
                info = _probe(index, cv2.CAP_V4L2, node, name, virtual)
                if info:
                    found.append(info)
        else:
            for index in range(max_index):
                info = _probe(index, cv2.CAP_ANY, None, f"camera {index}", False)
                if info:
                    found.append(info)
    return found


def _probe(index: int, api: int, node, name: str, virtual: bool) -> dict | None:
    try:
        cap = cv2.VideoCapture(index, api)
        try:
            if not cap.isOpened():
                return None
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
    except Exception:
        return None
    return {"index": index, "spec": f"camera:{index}", "path": node or str(index), "name": name,
            "size": f"{w}x{h}" if w and h else "", "size_wh": (w, h), "virtual": virtual}


# -- video file ---------------------------------------------------------------------------------------
class VideoSource(_SourceBase):
    """A video file, played once (``loop=True``: again and again); paced at its own fps when ``realtime``
    else as fast as asked.

    A pass that stops early (a corrupt or truncated file) is treated as the end of that pass, with a
    warning: it loops again, or ends with :class:`SourceEnded` when ``loop=False``.
    """

    def __init__(self, path, loop: bool = False, realtime: bool = True) -> None:
        self.path = _check_file(path, "video")
        self.description = f"video {self.path.name}"
        self.loop = loop
        self.live = bool(realtime)
        self._cap = None
        self._ended = False
        self._cap, first = self._open()
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        self.size_wh = (int(first.shape[1]), int(first.shape[0]))
        self._pending: np.ndarray | None = first
        self._pos = 1            # frames decoded in the current pass
        self.loops = 0           # completed passes
        self.frames_read = 0
        self._pacer = _Pacer(self.fps) if realtime else None

    def _check_size(self, size_wh) -> None:
        check_frame_size(size_wh, f"video {self.path.name}", "video", str(self.path))

    def _open(self):
        with quiet_decoding():
            cap = cv2.VideoCapture(str(self.path))
            try:
                if cap.isOpened():  # a size no frame may have is refused before a frame is decoded
                    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
                    if w > 0 and h > 0:
                        self._check_size((w, h))
                ok, frame = (cap.read() if cap.isOpened() else (False, None))
            except BaseException:
                cap.release()
                raise
        if not ok or frame is None:
            cap.release()
            raise BadInput(f"cannot read video file {self.path} (not a video, corrupt or truncated, "
                           "or a codec OpenCV lacks)", "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
        try:
            frame = to_bgr8(frame)
            self._check_size((frame.shape[1], frame.shape[0]))
            return cap, frame
        except BadInput:
            cap.release()
            raise

    def _decode(self) -> np.ndarray:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        while True:
            try:
                with quiet_opencv():
                    ok, frame = self._cap.read()
            except Exception as exc:
                log.warning("%s: decoding failed at frame %d (%s); treating it as the end", self.path, self._pos, exc)
                ok, frame = False, None
            if ok and frame is not None:
                self._pos += 1
                frame = to_bgr8(frame)
                if (frame.shape[1], frame.shape[0]) != self.size_wh:
                    frame = cv2.resize(frame, self.size_wh, interpolation=cv2.INTER_AREA)
                return frame
            if self.frame_count and self._pos < self.frame_count - 1:
                log.warning("%s ended early at frame %d of %d (corrupt or truncated?)",
                            self.path, self._pos, self.frame_count)
            self.loops += 1
            self._cap.release()
            if not self.loop:
                self._ended = True
                raise SourceEnded(str(self.path))
            try:
                self._cap, first = self._open()  # reopening rewinds reliably for every container
            except BadInput:
                self._ended = True
                log.warning("%s cannot be read again; the video source ends", self.path)
                raise SourceEnded(str(self.path)) from None
            self._pos = 1
            return first

    def read(self) -> np.ndarray | None:
        if self._ended or self._cap is None:
            raise SourceEnded(str(self.path))
        frame = self._decode()
        if self._pacer is not None:
            self._pacer.wait()
        self.frames_read += 1
        return frame

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


# -- still image --------------------------------------------------------------------------------------
class ImageSource(_SourceBase):
    """A still image repeated at ``fps`` (paced when ``realtime``). Each read returns a fresh copy."""

    def __init__(self, path, fps: float = 30.0, realtime: bool = True) -> None:
        self._image = read_image(path, frame=True)
        self.path = Path(path)
        self.description = f"image {self.path.name}"
        self.fps = _valid_fps(fps)
        self.size_wh = (int(self._image.shape[1]), int(self._image.shape[0]))
        self.live = bool(realtime)
        self._pacer = _Pacer(self.fps) if realtime else None
        self._closed = False

    def read(self) -> np.ndarray | None:
        if self._closed:
            raise SourceEnded(str(self.path))
        if self._pacer is not None:
            self._pacer.wait()
        return self._image.copy()

    def close(self) -> None:
        self._closed = True


# -- demo ---------------------------------------------------------------------------------------------
DEMO_PORTRAIT = "astronaut.png"  # NASA portrait of Eileen Collins, public domain; see assets/demo/LICENSE.md


def _load_portrait() -> np.ndarray:
    from vbg_app import resources

    path = resources.asset_path("demo", DEMO_PORTRAIT)
    if path.is_file():
        try:
            return read_image(path, "demo portrait")
        except BadInput:
            log.warning("demo portrait %s is unreadable; using a drawn figure", path)
    return _drawn_portrait()


def _drawn_portrait() -> np.ndarray:
    """A simple drawn head-and-shoulders figure (fallback when the asset is not installed)."""
    img = np.full((512, 512, 3), (187, 194, 204), np.uint8)
    cv2.ellipse(img, (230, 560), (230, 190), 0, 180, 360, (60, 90, 200), -1, cv2.LINE_AA)   # shoulders
    cv2.rectangle(img, (200, 190), (260, 300), (150, 175, 215), -1)                         # neck
    cv2.ellipse(img, (230, 120), (78, 100), 0, 0, 360, (150, 175, 215), -1, cv2.LINE_AA)    # face
    cv2.ellipse(img, (230, 90), (84, 80), 0, 180, 360, (40, 60, 90), -1, cv2.LINE_AA)       # hair
    return img


class DemoSource(_SourceBase):
    """A built-in moving portrait: no webcam needed.

    The bundled portrait sits at webcam framing (head and shoulders, centred, running off the bottom) in
    front of a soft room wall and sways, bobs and zooms gently. ``frame_at(k)`` is a pure function
    of the frame index. The portrait is pre-scaled and pre-feathered into the wall once; a frame costs one
    copy of the wall's sides and one ``warpAffine`` of the portrait band (about 0.6 ms at 720p).
    With ``realtime`` reads are paced at ``fps`` and show the frame of the wall-clock slot (a slow
    consumer skips frames, like a camera); otherwise frames 0, 1, 2, ... as fast as asked.
    """

    def __init__(self, width: int = 1280, height: int = 720, fps: float = 30.0, realtime: bool = True,
                 portrait: np.ndarray | None = None) -> None:
        """``portrait``: another BGR photo in place of the bundled one, placed and moved the same way (the
        evaluation renders the portrait's ground-truth mask through it, vbg_app/tools/demo_gt.py)."""
        width, height = int(width), int(height)
        if width < MIN_SIDE or height < MIN_SIDE:
            raise BadInput(f"demo size {width}x{height} is too small", "use at least 16x16, e.g. 1280x720")
        if width > MAX_SIZE_WH[0] or height > MAX_SIZE_WH[1]:
            raise BadInput(f"demo size {width}x{height} is too large",
                           f"use at most {MAX_SIZE_WH[0]}x{MAX_SIZE_WH[1]}, e.g. 1280x720")
        self.size_wh = (width, height)
        self.fps = _valid_fps(fps)
        self.live = bool(realtime)
        self.description = "demo"
        self._pacer = _Pacer(self.fps) if realtime else None
        self._next = 0
        self._closed = False
        self._build(_load_portrait() if portrait is None else portrait)

    # Everything below is computed once per instance.
    def _build(self, portrait: np.ndarray) -> None:
        W, H = self.size_wh
        u = H / 720.0  # all lengths are designed at 720p
        ph, pw = portrait.shape[:2]
        s = 1.42 * H / ph * (512 / 720)  # the 512-px portrait becomes ~727 px tall at 720p
        fg = cv2.resize(portrait, (max(1, round(pw * s)), max(1, round(ph * s))), interpolation=cv2.INTER_AREA)
        fh, fw = fg.shape[:2]
        # The person's head centre is at (0.44, 0.20) of the photo; put it at the frame centre, head top ~9 %.
        fx0 = round(W / 2 - 0.44 * fw)
        fy0 = round(0.09 * H - 0.03 * fh)
        self._pivot_zoom = (W / 2, fy0 + 0.20 * fh)
        self._amp = 40 * u  # largest displacement any motion term can cause, in pixels

        # The wall: a vertical light gradient (uniform across the portrait band so the band's edges never
        # show a seam when the band moves), darkening towards the far sides, with out-of-focus furniture there.
        m = int(math.ceil(self._amp)) + 2
        bx0, bx1 = max(0, fx0 - m), min(W, fx0 + fw + m)
        wall = self._wall_rows((np.arange(H, dtype=np.float32) / max(1, H - 1))[:, None])  # (H, 3)
        xs = np.arange(W, dtype=np.float32)
        dist = np.maximum(np.maximum(bx0 - xs, xs - bx1), 0) / max(1.0, W * 0.25)
        side = (1.0 - 0.22 * np.clip(dist, 0, 1) ** 1.5)[None, :, None]
        bg = wall[:, None, :] * side
        bg = np.clip(bg, 0, 255).astype(np.uint8)
        self._draw_furniture(bg, bx0, bx1, u)
        self._bg = bg

        # The band: the portrait feathered into the plain wall, with rows beyond the frame so zoom and bob
        # never reveal an edge. Band pixel (x, y) sits at frame (x + bx0, y - pad).
        pad = m
        band_h = H + 2 * pad
        rows = ((np.arange(band_h, dtype=np.float32) - pad) / max(1, H - 1))[:, None]
        band = np.repeat(self._wall_rows(rows)[:, None, :], bx1 - bx0, axis=1)
        alpha = np.ones((fh, fw), np.float32)
        feather = max(2, round(36 * u))
        ramp = np.linspace(0, 1, feather, dtype=np.float32)
        alpha[:, :feather] *= ramp[None, :]
        alpha[:, -feather:] *= ramp[::-1][None, :]
        top = max(2, feather // 3)
        alpha[:top, :] *= np.linspace(0, 1, top, dtype=np.float32)[:, None]
        # paste fg (clipped to the band) with its alpha
        y0, x0 = fy0 + pad, fx0 - bx0
        ya, yb = max(0, y0), min(band_h, y0 + fh)
        xa, xb = max(0, x0), min(bx1 - bx0, x0 + fw)
        if ya < yb and xa < xb:
            a = alpha[ya - y0:yb - y0, xa - x0:xb - x0, None]
            band[ya:yb, xa:xb] = band[ya:yb, xa:xb] * (1 - a) + fg[ya - y0:yb - y0, xa - x0:xb - x0] * a
            # below the photo: continue its last row so the suit runs off the frame bottom
            if y0 + fh < band_h:
                band[y0 + fh:, xa:xb] = band[y0 + fh - 1:y0 + fh, xa:xb]
        self._band = np.clip(band, 0, 255).astype(np.uint8)
        self._band_x = (bx0, bx1)
        self._band_pad = pad

    @staticmethod
    def _wall_rows(y01: np.ndarray) -> np.ndarray:
        """Wall colour (BGR float) for rows at relative heights ``y01`` (N, 1): lit from above."""
        return np.array([170, 178, 190], np.float32)[None, :] * (1.08 - 0.18 * y01)

    @staticmethod
    def _draw_furniture(bg: np.ndarray, bx0: int, bx1: int, u: float) -> None:
        """A window on the left and a shelf with a plant on the right, blurred like a webcam's background."""
        H, W = bg.shape[:2]
        layer = bg.copy()
        if bx0 > 40 * u:  # window: bright panes with a frame
            x0, x1 = round(0.15 * bx0), round(0.80 * bx0)
            y0, y1 = round(0.12 * H), round(0.62 * H)
            cv2.rectangle(layer, (x0, y0), (x1, y1), (235, 235, 232), -1)
            cv2.rectangle(layer, (x0, y0), (x1, y1), (120, 130, 140), max(1, round(6 * u)))
            cv2.line(layer, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1), (120, 130, 140), max(1, round(5 * u)))
            cv2.line(layer, (x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), (120, 130, 140), max(1, round(5 * u)))
        if W - bx1 > 40 * u:  # shelf with books and a plant
            x0, x1 = bx1 + round(0.15 * (W - bx1)), W - round(0.08 * (W - bx1))
            ys = round(0.55 * H)
            cv2.rectangle(layer, (x0, ys), (x1, ys + max(2, round(14 * u))), (60, 85, 120), -1)
            colors = [(40, 40, 150), (120, 80, 30), (50, 120, 60), (30, 110, 170), (90, 60, 110)]
            bw = max(2, round(16 * u))
            x = x0 + bw
            for i, c in enumerate(colors * 2):
                bh = round((70 + 25 * ((i * 7) % 3)) * u)
                if x + bw > x1 - round(70 * u):
                    break
                cv2.rectangle(layer, (x, ys - bh), (x + bw - 1, ys), c, -1)
                x += bw + 1
            px = x1 - round(40 * u)
            cv2.rectangle(layer, (px - round(22 * u), ys - round(50 * u)), (px + round(22 * u), ys), (70, 90, 160), -1)
            for ang in range(-60, 61, 20):
                r = math.radians(ang - 90)
                tip = (round(px + 90 * u * math.cos(r)), round(ys - 50 * u + 90 * u * math.sin(r)))
                cv2.line(layer, (px, ys - round(50 * u)), tip, (50, 120, 40), max(2, round(10 * u)), cv2.LINE_AA)
        k = max(3, int(round(9 * u)) | 1)
        cv2.GaussianBlur(layer, (k, k), 0, dst=layer)
        # furniture only outside the band, so the band edge stays seamless
        bg[:, :bx0] = layer[:, :bx0]
        bg[:, bx1:] = layer[:, bx1:]

    def _motion(self, k: int) -> np.ndarray:
        """3x3 affine (frame → frame) for frame ``k``: sway, bob and zoom about the head; smooth, periodic.

        No rotation on purpose: OpenCV's warpAffine is ~3x faster for a scale+translation matrix
        (0.4 ms vs 1.3 ms for the 720p band on one core), which keeps the demo well under 1 ms a frame.
        """
        u = self.size_wh[1] / 720.0
        t = k / self.fps
        tau = 2 * math.pi
        dx = u * (24 * math.sin(tau * t / 7.0) + 6 * math.sin(tau * t / 2.9 + 1.0))
        dy = u * (6 * math.sin(tau * t / 4.1 + 0.5))
        zoom = 1.0 + 0.025 * math.sin(tau * t / 9.3 + 2.0)
        zx, zy = self._pivot_zoom
        return np.array([[zoom, 0.0, zx * (1 - zoom) + dx], [0.0, zoom, zy * (1 - zoom) + dy], [0.0, 0.0, 1.0]])

    def frame_at(self, k: int) -> np.ndarray:
        """Frame number ``k`` (deterministic); a new array each call."""
        bx0, bx1 = self._band_x
        out = np.empty_like(self._bg)
        out[:, :bx0] = self._bg[:, :bx0]  # the band columns are all written by the warp below
        out[:, bx1:] = self._bg[:, bx1:]
        pad = self._band_pad
        M = self._motion(k)
        # band coords → frame coords, motion, frame coords → band-ROI coords (the ROI spans all rows)
        to_frame = np.array([[1, 0, bx0], [0, 1, -pad], [0, 0, 1]], np.float64)
        to_roi = np.array([[1, 0, -bx0], [0, 1, 0], [0, 0, 1]], np.float64)
        A = (to_roi @ M @ to_frame)[:2].astype(np.float32)
        roi = out[:, bx0:bx1]
        cv2.warpAffine(self._band, A, (bx1 - bx0, out.shape[0]), dst=roi, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
        return out

    def read(self) -> np.ndarray | None:
        if self._closed:
            raise SourceEnded("demo")
        if self._pacer is not None:
            k = self._pacer.wait(skip=True)
        else:
            k, self._next = self._next, self._next + 1
        return self.frame_at(k)

    def close(self) -> None:
        self._closed = True


# -- spec parsing -------------------------------------------------------------------------------------
def _size_opts(opts: dict) -> tuple[int | None, int | None]:
    size = opts.get("size")
    w, h = opts.get("width"), opts.get("height")
    if size:
        w, h = size
    return w, h


def open_source(spec, **opts) -> Source:
    """Open a source from its spec (text or a :mod:`vbg_app.specs` dataclass; see ``specs.SOURCES``).

    ``demo`` | ``camera`` / ``camera:N`` / ``camera:/dev/videoN`` | ``video:PATH`` | ``image:PATH``; a bare
    number is a camera and a bare file path is opened by its extension. Options (None = default):
    ``size=(w, h)`` or ``width``/``height`` and ``fps`` (camera, demo; fps also for images), ``mjpg``
    (camera), ``loop`` (video: start again at its end; default False, the source ends), ``realtime`` (video,
    image, demo), ``reconnect`` (camera: wrap it in a :class:`ReconnectingSource` that reopens it when it goes
    away). Options a source does not use are ignored.
    """
    from vbg_app.specs import SOURCES

    w, h = _size_opts(opts)
    realtime = opts.get("realtime")
    return SOURCES.open(spec, size=(w, h) if w and h else None, fps=opts.get("fps"),
                        realtime=True if realtime is None else bool(realtime), loop=bool(opts.get("loop", False)),
                        mjpg=bool(opts.get("mjpg", False)), reconnect=bool(opts.get("reconnect")))
