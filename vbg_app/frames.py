"""What a frame and a mask must be, checked in one place, and reading an image file as a frame.

Every stage that takes a frame from outside (a source's decoder, the pipeline, the compositor, a sink) goes
through these, so the limits and the error messages are the same everywhere:

* :func:`to_bgr8` - any frame a camera, decoder or user may hand over, as C-contiguous BGR uint8 (H, W, 3);
* :func:`check_frame` - refuse a frame no stage should see (under ``MIN_SIDE`` px, over 8K), before a copy;
* :func:`check_frame_size` - the same limits for a source being opened (all its frames would be refused);
* :func:`check_mask` - a segmenter's answer as a finite (h, w) float32 map;
* :func:`read_image` - an image file as a frame (the header's size checked before decoding; see
  :mod:`vbg_app.imagefile`, which reads backgrounds, thumbnails and training images the same way).

Numpy and OpenCV only: importing this loads no stage.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import cv2
import numpy as np

from vbg_app.errors import BadInput

MIN_SIDE = 16                 # frames smaller than this are refused (no camera sends them)
MAX_SIZE_WH = (7680, 4320)    # 8K; larger frames are refused before anything copies them


def to_bgr8(frame) -> np.ndarray:
    """Any frame a camera, decoder or user may hand over → C-contiguous BGR uint8 (H, W, 3).

    Gray (H, W) / (H, W, 1) → BGR, BGRA → BGR; a valid BGR uint8 frame is returned as is (no copy).
    Non-uint8 frames are refused with :class:`BadInput` rather than guessed at (float 0..1 or 0..255?).
    """
    if not isinstance(frame, np.ndarray):
        raise BadInput(f"a frame is a {type(frame).__name__}, not an image array",
                       "pass numpy arrays of shape (H, W, 3) in BGR order")
    if frame.dtype != np.uint8:
        raise BadInput(f"a frame has pixel type {frame.dtype}, vbg works on 8-bit frames",
                       "convert it to uint8 first, e.g. np.clip(frame * 255, 0, 255).astype(np.uint8) for 0..1 floats")
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.size:
        return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)
    if frame.size == 0 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 4)):
        raise BadInput(f"a frame has shape {frame.shape}, not an image",
                       "pass (H, W) gray, (H, W, 3) BGR or (H, W, 4) BGRA frames")
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    gray = frame if frame.ndim == 2 else frame[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2BGR)


def check_frame(frame):
    """Refuse a frame no stage should see, cheaply and before any copy: not an array, empty, under
    ``MIN_SIDE`` px or over 8K. Type and channel problems are left to ``to_bgr8`` (also BadInput)."""
    if isinstance(frame, np.ndarray) and frame.ndim in (2, 3):
        h, w = frame.shape[:2]
        if h < MIN_SIDE or w < MIN_SIDE or w > MAX_SIZE_WH[0] or h > MAX_SIZE_WH[1]:
            raise BadInput(f"a frame is {w}x{h} pixels, outside {MIN_SIDE}x{MIN_SIDE} to "
                           f"{MAX_SIZE_WH[0]}x{MAX_SIZE_WH[1]}", "use a camera or video of a usual size, e.g. 1280x720")
    return frame


def check_frame_size(size_wh, what: str, noun: str, name: str = "IN") -> None:
    """BadInput when frames of ``size_wh`` can never pass :func:`check_frame`: a source that would only ever
    give unusable frames is refused when it is opened. ``name``: the file, for the ffmpeg command in the fix."""
    w, h = int(size_wh[0]), int(size_wh[1])
    if w < MIN_SIDE or h < MIN_SIDE:
        raise BadInput(f"{what} is {w}x{h}: frames must be at least {MIN_SIDE}x{MIN_SIDE}", f"use a larger {noun}")
    if w > MAX_SIZE_WH[0] or h > MAX_SIZE_WH[1]:
        stem, ext = os.path.splitext(name)
        raise BadInput(f"{what} is {w}x{h}: frames can be at most {MAX_SIZE_WH[0]}x{MAX_SIZE_WH[1]}",
                       f"resize it, e.g. ffmpeg -i {shlex.quote(name)} -vf scale=1920:-2 "
                       f"{shlex.quote(stem + '_1080p' + (ext or '.mp4'))}")


def check_mask(prob, repair: bool = True, who: str = "the segmenter returned") -> np.ndarray:
    """A person-probability map as (h, w) float32. ``repair``: NaN/inf are replaced (0 / clipped), so one bad
    inference cannot poison the temporal filter's history for the rest of the call. ``who`` starts the error
    message (which stage handed the mask over)."""
    if not isinstance(prob, np.ndarray) or prob.ndim != 2 or prob.size == 0:
        shape = getattr(prob, "shape", type(prob).__name__)
        raise BadInput(f"{who} a mask of shape {shape}", "use a model with one (h, w) output")
    if prob.dtype != np.float32:
        prob = prob.astype(np.float32)
    if repair and not np.isfinite(prob).all():
        prob = np.nan_to_num(prob, nan=0.0, posinf=1.0, neginf=0.0)
    return prob


def read_image(path, kind: str = "image", frame: bool = False) -> np.ndarray:
    """Decode an image file to BGR uint8 (works with non-ASCII paths); BadInput when it is not one.

    The size is read from the file's header first (:mod:`vbg_app.imagefile`): nothing over 40 megapixels is
    decoded, and with ``frame`` (the image is a source's every frame) a size the pipeline would refuse on
    every frame (under 16x16, over 7680x4320) is refused before decoding, with the fix."""
    from vbg_app.imagefile import decode, probe_image

    if not str(path):
        raise BadInput(f"no {kind} file given", f"write {kind}:PATH")
    data, fmt, w, h = probe_image(path, f"{kind} file")
    p = Path(os.path.expanduser(str(path)))
    if frame:
        check_frame_size((w, h), f"{kind} {p.name}", kind, str(p))
    img = to_bgr8(decode(data, p, f"{kind} file", fmt, w, h))
    if frame:  # the header's size, turned by the EXIF orientation
        check_frame_size((img.shape[1], img.shape[0]), f"{kind} {p.name}", kind, str(p))
    return img
