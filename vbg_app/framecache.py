"""Images made from one camera frame by one stage and needed again by a later one, kept for that frame.

The ONNX engine shrinks every frame for the model by exact halvings (INTER_AREA) and one bilinear step; the
compositor's pyramid needs the very same images (the halvings, and the frame at the mask's size to fit the
guided filter on). Instead of computing them twice (0.5 ms at 1280x720, 1.1 ms at 1920x1080, on the
compositing thread, which sets the frame rate at 1080p), the engine leaves them here and the compositor takes
them::

    framecache.put(frame, ("half", 1), half)      # the producer, for this very frame object
    half = framecache.get(frame, ("half", 1))     # a later stage: the image, or None (then it computes it)
    small = framecache.shrink(frame, (w, h))      # what both engines do: shrink the frame, leaving each image

The MediaPipe engine shrinks its frames with :func:`shrink` too (#16), so the compositor's pyramid and the
``steady`` filter's small frame come from here whichever engine runs.

Entries belong to the frame *object* (its ``id`` with a weak reference that must still point at it) and go when
the frame is garbage-collected, so every stage of the frame's way can read them (the pipeline keeps 2-4 frames
alive: about 1 MB of entries per 1280x720 frame). Stored arrays are fresh ones, never the producer's scratch buffers, because the consumer
reads them on another thread while the producer already shrinks the next frame. A frame that is changed
in place after ``put`` would be served stale images; no vbg source does that (they hand out a new array
per frame, which the pipeline's two threads rely on anyway).
"""
from __future__ import annotations

import threading
import weakref

import cv2
import numpy as np

_lock = threading.Lock()
_entries: dict[int, tuple[weakref.ref, dict]] = {}


def _forget(key: int, ref: weakref.ref) -> None:
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry[0] is ref:
            del _entries[key]


def put(frame: np.ndarray, key, value: np.ndarray) -> None:
    """Keep ``value`` (an array nobody writes to any more) for ``frame`` under ``key``."""
    fid = id(frame)
    with _lock:
        entry = _entries.get(fid)
        if entry is None or entry[0]() is not frame:
            ref = weakref.ref(frame, lambda r, fid=fid: _forget(fid, r))
            entry = _entries[fid] = (ref, {})
        entry[1][key] = value


def get(frame: np.ndarray, key) -> np.ndarray | None:
    """The image kept for ``frame`` under ``key``, or None. Treat it as read-only."""
    fid = id(frame)
    with _lock:
        entry = _entries.get(fid)
        if entry is None or entry[0]() is not frame:
            return None
        return entry[1].get(key)


def shrink(frame: np.ndarray, size_wh) -> np.ndarray:
    """``frame`` (uint8, any size) at ``size_wh``: halved with INTER_AREA (a 2x2 box, OpenCV's fast path) while it
    stays at least twice the target in both sides, then one bilinear step (a factor under 2). Each halving is left
    here as ``("half", k)`` and the bilinear step as ``("fit", (w, h))`` for this frame object; the result is
    that last image (the frame itself when it already has that size). Treat it as read-only.

    One INTER_AREA resize by a non-integer factor (1280x720 -> 398x224: 3.2x) costs 3.9-4.6 ms of CPU, by 5x
    (-> 256x144, the MediaPipe engine's) 1.4 ms; this costs 0.6 ms, and a 1280x720 frame reaches the model the
    way a 640x360 one does (docs/bench.md: how the masks differ)."""
    w, h = size_wh
    img, level = frame, 0
    while img.shape[1] >= 2 * w and img.shape[0] >= 2 * h:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        level += 1
        put(frame, ("half", level), img)
    if img.shape[:2] != (h, w):
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        put(frame, ("fit", (w, h)), img)
    return img


def size() -> int:
    """Frames with entries (tests: nothing is left behind)."""
    with _lock:
        return len(_entries)
