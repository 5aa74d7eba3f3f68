"""How a frame is fitted into a model's fixed input size: ``stretch`` or ``letterbox``.

``stretch`` resizes the frame to the model's size whatever its aspect (PaddleSeg's deploy preprocessing for
the released ConnectNet). ``letterbox`` keeps the frame's aspect: the frame is scaled to fit and centred on a
mid-grey canvas (:data:`PAD_VALUE`, which normalises to ~0 with mean = std = 0.5), and the model's output is
cropped back to the frame's region. A 2:3 portrait photo or a phone held upright is then not squeezed 2.7x
sideways into a 16:9 model; a 16:9 frame in a 16:9 model is unchanged. Models say which one they were
trained for in the ``vbg.fit`` metadata key (absent = ``stretch``). Training (``vbg_app.train``) uses the
same :func:`letterbox_box`, so the bars the model learned on are the bars it gets.
"""
from __future__ import annotations

FITS = ("stretch", "letterbox")
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
