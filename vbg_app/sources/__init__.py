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

from vbg_app.frames import MAX_SIZE_WH, MIN_SIDE, check_frame_size, read_image, to_bgr8  # noqa: F401
from vbg_app.protocols import Source
from vbg_app.quiet import quiet_opencv  # noqa: F401  (imported from here too)
from vbg_app.sources.base import SourceEnded, _Pacer, _SourceBase, _valid_fps  # noqa: F401
from vbg_app.sources.camera import CameraSource, LatestFrameGrabber, ReconnectingSource, list_cameras  # noqa: F401
from vbg_app.sources.demo import DEMO_PORTRAIT, DemoSource  # noqa: F401
from vbg_app.sources.files import ImageSource, VideoSource  # noqa: F401

__all__ = ["Source", "SourceEnded", "open_source", "CameraSource", "ReconnectingSource", "LatestFrameGrabber",
           "list_cameras", "VideoSource", "ImageSource", "DemoSource", "DEMO_PORTRAIT", "read_image", "to_bgr8",
           "check_frame_size"]


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
