"""How a frame is fitted into a model's input: ``stretch``, ``letterbox`` or ``aspect``.

``stretch`` resizes the frame to the model's size whatever its aspect (PaddleSeg's deploy preprocessing for
the released ConnectNet). ``letterbox`` keeps the frame's aspect: the frame is scaled to fit and centred on a
mid-grey canvas (:data:`PAD_VALUE`, which normalises to ~0 with mean = std = 0.5), and the model's output is
cropped back to the frame's region. A 2:3 portrait photo or a phone held upright is then not squeezed 2.7x
sideways into a 16:9 model; a 16:9 frame in a 16:9 model is unchanged. Models say which one they were
trained for in the ``vbg.fit`` metadata key (absent = ``stretch``). Training (``vbg_app.train``) uses the
same :func:`letterbox_box`, so the bars the model learned on are the bars it gets.

``aspect`` (models exported with a dynamic height and width) spends the model's pixel budget on the frame
instead of on bars: the input size follows the frame's aspect (:func:`fit_size`, same number of pixels as the
nominal ``vbg.input_size_wh``, sides multiples of 16), so a 2:3 photo is run at 240x368 instead of 147x224
inside 398x224, a 16:9 frame at 400x224. Aspects beyond the nominal one and its transpose (16:9 / 9:16) are
clamped and letterboxed. Such models are exported with a dynamic height and width; the engine makes one
onnxruntime session per input size with those dimensions fixed (as fast as a static model).
"""
from __future__ import annotations

import math

FITS = ("stretch", "letterbox", "aspect")
ASPECT_MULTIPLE = 16  # sides of an ``aspect`` input are multiples of this (the network's 1/16 stride)
PAD_VALUE = 127  # uint8 grey of the letterbox bars


def letterbox_box(frame_wh, model_wh) -> tuple[int, int, int, int]:
    """``(x0, y0, w, h)``: where a frame of size ``frame_wh`` goes inside ``model_wh`` when letterboxed.

    >>> letterbox_box((550, 839), (398, 224))   # a 2:3 portrait photo: bars left and right
    (125, 0, 147, 224)
    >>> letterbox_box((1280, 720), (398, 224))  # 16:9 in 16:9: the whole input
    (0, 0, 398, 224)
    """
    fw, fh = (int(v) for v in frame_wh)
    mw, mh = (int(v) for v in model_wh)
    if fw < 1 or fh < 1 or mw < 1 or mh < 1:
        raise ValueError(f"sizes must be positive, got frame {frame_wh} and model {model_wh}")
    s = min(mw / fw, mh / fh)
    w, h = min(mw, max(1, round(fw * s))), min(mh, max(1, round(fh * s)))
    if abs(w - mw) <= 1 and abs(h - mh) <= 1:  # same aspect to within a pixel: no bars
        return 0, 0, mw, mh
    return (mw - w) // 2, (mh - h) // 2, w, h


def fit_size(frame_wh, model_wh, fit: str = "letterbox") -> tuple[int, int]:
    """The model input ``(w, h)`` for a frame of size ``frame_wh``: ``model_wh`` unless ``fit == "aspect"``.

    ``aspect``: about as many pixels as ``model_wh`` at the frame's aspect, clamped to the range between the
    nominal aspect and its transpose, both sides rounded to multiples of :data:`ASPECT_MULTIPLE` (so the
    network's 1/16 -> 1/2 upsampling is a whole 8x). The frame then goes into that size with
    :func:`letterbox_box` (bars of a few pixels from the rounding, or wider ones for a clamped aspect).

    >>> fit_size((1280, 720), (398, 224), "aspect")   # 16:9
    (400, 224)
    >>> fit_size((640, 480), (398, 224), "aspect")    # 4:3
    (352, 256)
    >>> fit_size((550, 839), (398, 224), "aspect")    # a 2:3 portrait photo
    (240, 368)
    >>> fit_size((550, 839), (398, 224), "letterbox")
    (398, 224)
    """
    fw, fh = (int(v) for v in frame_wh)
    mw, mh = (int(v) for v in model_wh)
    if fw < 1 or fh < 1 or mw < 1 or mh < 1:
        raise ValueError(f"sizes must be positive, got frame {frame_wh} and model {model_wh}")
    if fit != "aspect":
        return mw, mh
    lo, hi = sorted((mw / mh, mh / mw))
    a = min(hi, max(lo, fw / fh))
    area, m = mw * mh, ASPECT_MULTIPLE
    w = max(2 * m, int(round(math.sqrt(area * a) / m)) * m)
    h = max(2 * m, int(round(math.sqrt(area / a) / m)) * m)
    return w, h
