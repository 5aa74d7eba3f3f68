"""Cameras: the newest frame of a device (:class:`CameraSource`), reopened when it goes away
(:class:`ReconnectingSource`), and the list of cameras this machine has (``vbg devices``, the GUI)."""
from __future__ import annotations

import glob
import logging
import os
import platform
import re
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput, DeviceUnavailable, VbgError
from vbg_app.frames import check_frame_size, to_bgr8
from vbg_app.quiet import quiet_opencv
from vbg_app.sources.base import SourceEnded, _SourceBase, _valid_fps

log = logging.getLogger("vbg_app.sources")

_CAMERA_FIX = "check the camera is plugged in and not used by another app; `vbg devices` lists cameras"


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
