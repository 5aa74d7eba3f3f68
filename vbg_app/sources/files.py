"""Files as sources: a video (:class:`VideoSource`, paced at its own rate or as fast as asked, once or looping)
and a still image repeated (:class:`ImageSource`)."""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.frames import check_frame_size, read_image, to_bgr8
from vbg_app.quiet import quiet_decoding, quiet_opencv
from vbg_app.sources.base import SourceEnded, _check_file, _Pacer, _SourceBase, _valid_fps

log = logging.getLogger("vbg_app.sources")


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
