"""Meeting-domain pieces of the synthesis (issue #14 item 2), numpy/OpenCV only, each a pure function of a
``numpy.random.Generator``:

* :func:`office_background`: a procedural home-office wall seen by a webcam: a wall (and sometimes a corner
  and a ceiling line) with any of bookshelves, a window (bright, with frame, mullions and blinds), posters
  and framed pictures, a flag on a pole (stripes or a cross, with a wave), potted plants, a door and a
  lamp. The room behind the v1 failures ("a blob grows above a head against a bookshelf", "the flag
  stays sharp");
* :func:`drape_background`: a large draped flag or patterned fabric filling the wall behind the person: bold
  stripes at an angle (sometimes with a starred canton) or a check, bent by folds that move the stripes and
  shade them. A flag hung behind a speaker is a common meeting backdrop; v4 took its stripes for person;
* :func:`draw_held_object`: things people hold or wear in a call, drawn in front of the person: a hand, a
  mug, a phone (in a hand), a headset (band over the head, ear cups) and a helmet-like dome held at the
  chest or beside the head. The drawn pixels are returned as a mask; the caller labels them person;
* :func:`backlight`: a bright window behind the person: the background pushed towards white, the person
  darkened, light wrapping over the outline. Labels are unchanged.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# BGR skin tones (shared with the occluders of synthesis.py)
SKIN = np.array([[80, 110, 190], [60, 90, 160], [110, 150, 220], [40, 60, 110], [90, 130, 200]], np.float32)


def _col(rng, lo=30, hi=230) -> tuple:
    return tuple(float(v) for v in rng.integers(lo, hi, 3))


def _wall(rng) -> np.ndarray:
    base = rng.uniform(80, 235)
    return np.clip(base + rng.uniform(-25, 25, 3), 0, 255).astype(np.float32)


def _bookshelf(img, x0, y0, x1, y1, rng) -> None:
    h = y1 - y0
    frame = _col(rng, 30, 170)
    cv2.rectangle(img, (x0, y0), (x1, y1), frame, -1)
    rows = int(rng.integers(2, 6))
    gap = h / rows
    t = max(2, int(gap * 0.08))
    for r in range(rows):
        top, base = int(y0 + r * gap + t), int(y0 + (r + 1) * gap)
        cv2.rectangle(img, (x0 + t, top), (x1 - t, base - t), tuple(0.55 * v for v in frame), -1)
        x = x0 + t
        while x < x1 - t - 2:
            bw = int(rng.integers(max(2, (x1 - x0) // 40), max(3, (x1 - x0) // 12)))
            bh = int((base - t - top) * rng.uniform(0.55, 0.95))
            if rng.random() < 0.85:
                if rng.random() < 0.1:  # a leaning book
                    pts = np.array([[x, base - t], [x + bw, base - t], [x + bw + bh // 3, base - t - bh],
                                    [x + bh // 3, base - t - bh]], np.int32)
                    cv2.fillPoly(img, [pts], _col(rng, 20, 230))
                else:
                    cv2.rectangle(img, (x, base - t - bh), (min(x1 - t, x + bw), base - t), _col(rng, 20, 230), -1)
            x += bw + int(rng.integers(0, 3))
        if rng.random() < 0.3:  # an object on the shelf (vase, box, globe)
            ox = int(rng.integers(x0 + t, max(x0 + t + 1, x1 - t - 6)))
            cv2.circle(img, (ox, base - t - int(gap * 0.2)), max(2, int(gap * 0.2)), _col(rng), -1)


def _window(img, x0, y0, x1, y1, rng) -> None:
    sky = np.array([rng.uniform(200, 255), rng.uniform(200, 255), rng.uniform(180, 255)], np.float32)
    h, w = y1 - y0, x1 - x0
    if h < 4 or w < 4:
        return
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    pane = np.repeat(sky[None, None, :] * (1 - 0.2 * ys), w, axis=1)
    if rng.random() < 0.5:  # outside: trees/buildings as dark blobs in the lower part
        for _ in range(int(rng.integers(2, 7))):
            c = np.array(_col(rng, 30, 140), np.float32)
            cx, cy = int(rng.integers(0, w)), int(h * rng.uniform(0.5, 1.0))
            cv2.ellipse(pane, (cx, cy), (int(w * rng.uniform(0.1, 0.3)), int(h * rng.uniform(0.1, 0.4))), 0, 0, 360,
                        tuple(float(v) for v in c), -1)
        pane = cv2.GaussianBlur(pane, (0, 0), 1.0 + 0.02 * w)
    ys0, xs0 = max(0, y0), max(0, x0)
    ys1, xs1 = min(img.shape[0], y1), min(img.shape[1], x1)
    if ys1 > ys0 and xs1 > xs0:
        img[ys0:ys1, xs0:xs1] = pane[ys0 - y0:ys1 - y0, xs0 - x0:xs1 - x0]
    frame = (245.0, 245.0, 245.0) if rng.random() < 0.6 else _col(rng, 40, 200)
    t = max(2, min(h, w) // 25)
    cv2.rectangle(img, (x0, y0), (x1, y1), frame, t)
    if rng.random() < 0.7:  # mullions
        cv2.line(img, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1), frame, t)
        if rng.random() < 0.5:
            cv2.line(img, (x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), frame, t)
    if rng.random() < 0.4:  # blinds: slats over the upper part
        stop = y0 + int(h * rng.uniform(0.2, 0.9))
        slat = max(2, h // 30)
        col = _col(rng, 150, 250)
        for y in range(y0, stop, 2 * slat):
            cv2.rectangle(img, (x0, y), (x1, y + slat), col, -1)


def _poster(img, x0, y0, x1, y1, rng) -> None:
    cv2.rectangle(img, (x0, y0), (x1, y1), _col(rng, 10, 90) if rng.random() < 0.6 else _col(rng, 180, 250), -1)
    m = max(2, (x1 - x0) // 12)
    bx0, by0, bx1, by1 = x0 + m, y0 + m, x1 - m, y1 - m
    if bx1 <= bx0 or by1 <= by0:
        return
    cv2.rectangle(img, (bx0, by0), (bx1, by1), _col(rng), -1)
    kind = rng.random()
    if kind < 0.35:  # shapes (a movie poster, a rocket, a map)
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = int(rng.integers(bx0, bx1)), int(rng.integers(by0, by1))
            r = max(2, int(min(bx1 - bx0, by1 - by0) * rng.uniform(0.1, 0.35)))
            if rng.random() < 0.5:
                cv2.circle(img, (cx, cy), r, _col(rng), -1)
            else:
                pts = np.array([[cx, cy - r], [cx + r // 2, cy + r], [cx - r // 2, cy + r]], np.int32)
                cv2.fillPoly(img, [pts], _col(rng))
    elif kind < 0.7:  # text lines
        lh = max(2, (by1 - by0) // 12)
        col = _col(rng, 0, 80) if rng.random() < 0.5 else _col(rng, 180, 255)
        for y in range(by0 + lh, by1 - lh, 2 * lh):
            cv2.rectangle(img, (bx0 + lh, y), (bx0 + lh + int((bx1 - bx0 - 2 * lh) * rng.uniform(0.3, 1.0)), y + lh // 2 + 1),
                          col, -1)
    else:  # a face-like portrait in a frame: the hardest "person in the background" distractor
        cx, cy = (bx0 + bx1) // 2, (by0 + by1) // 2
        r = max(2, (bx1 - bx0) // 5)
        cv2.ellipse(img, (cx, by1), (int(r * 1.8), int(r * 1.5)), 0, 180, 360, _col(rng), -1)
        cv2.circle(img, (cx, cy - r // 2), r, tuple(float(v) for v in SKIN[int(rng.integers(len(SKIN)))]), -1)


def _flag(img, x, y, fw, fh, rng) -> None:
    pole = _col(rng, 60, 200)
    cv2.line(img, (x, y - fh // 3), (x, y + int(fh * rng.uniform(1.5, 4))), pole, max(2, fw // 30))
    cols = [_col(rng, 0, 256) for _ in range(3)]
    wave = rng.uniform(0, 0.12) * fh
    pattern = int(rng.integers(4))
    flag = np.zeros((fh, fw, 3), np.float32)
    if pattern == 0:  # horizontal stripes
        n = int(rng.integers(2, 4))
        for i in range(n):
            flag[i * fh // n:(i + 1) * fh // n] = cols[i % 3]
    elif pattern == 1:  # vertical tricolour
        for i in range(3):
            flag[:, i * fw // 3:(i + 1) * fw // 3] = cols[i]
    elif pattern == 2:  # a cross
        flag[:] = cols[0]
        t = max(1, fh // 6)
        flag[fh // 2 - t:fh // 2 + t] = cols[1]
        flag[:, fw // 3 - t:fw // 3 + t] = cols[1]
    else:  # canton with stars and stripes
        for i in range(7):
            flag[i * fh // 7:(i + 1) * fh // 7] = cols[i % 2]
        flag[:fh // 2, :fw // 2] = cols[2]
        for _ in range(6):
            cv2.circle(flag, (int(rng.integers(0, fw // 2)), int(rng.integers(0, fh // 2))), max(1, fh // 25),
                       (250.0, 250.0, 250.0), -1)
    # the wave: a vertical sine displacement growing away from the pole, with shading
    xs = np.arange(fw, dtype=np.float32)
    phase = rng.uniform(0, 2 * math.pi)
    dy = wave * (xs / max(1, fw)) * np.sin(xs / max(1, fw) * 2 * math.pi * rng.uniform(0.8, 1.8) + phase)
    shade = 1.0 + 0.25 * np.cos(xs / max(1, fw) * 2 * math.pi * 1.3 + phase)
    H, W = img.shape[:2]
    for c in range(fw):
        xx = x + 1 + c
        if not 0 <= xx < W:
            continue
        top = int(round(y + dy[c]))
        y0, y1 = max(0, top), min(H, top + fh)
        if y1 > y0:
            img[y0:y1, xx] = np.clip(flag[y0 - top:y1 - top, c] * shade[c], 0, 255)


def _plant(img, x, y, s, rng) -> None:
    pot = _col(rng, 30, 200)
    cv2.rectangle(img, (x - s // 3, y), (x + s // 3, y + s // 2), pot, -1)
    for _ in range(int(rng.integers(6, 16))):
        a = rng.uniform(-math.pi * 0.95, -math.pi * 0.05)
        length = s * rng.uniform(0.5, 1.4)
        tip = (int(x + math.cos(a) * length), int(y + math.sin(a) * length))
        green = (float(rng.uniform(20, 80)), float(rng.uniform(90, 180)), float(rng.uniform(20, 80)))
        mid = ((x + tip[0]) // 2, (y + tip[1]) // 2)
        cv2.ellipse(img, mid, (max(2, int(length / 2)), max(1, int(s * rng.uniform(0.06, 0.15)))),
                    math.degrees(a), 0, 360, green, -1)


def drape_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A draped flag or patterned fabric filling the frame (see the module docstring), BGR uint8 (h, w, 3)."""
    palettes = [((40, 40, 200), (235, 235, 235), (110, 50, 30)),   # red / white / navy (BGR)
                ((60, 140, 30), (240, 240, 240), (30, 30, 190)),
                ((30, 170, 230), (30, 30, 30), (40, 40, 200)),
                ((150, 80, 20), (230, 230, 230), (20, 160, 220))]
    cols = np.array(palettes[int(rng.integers(len(palettes)))], np.float32)
    cols = np.clip(cols * rng.uniform(0.8, 1.15, (3, 1)), 0, 255)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(rng.uniform(-45, 45))
    b = a + math.radians(rng.uniform(50, 130))  # folds run across the stripes
    fold_period = min(h, w) * rng.uniform(0.25, 0.8)
    fold = np.sin(2 * math.pi * (xs * math.cos(b) + ys * math.sin(b)) / fold_period + rng.uniform(0, 2 * math.pi))
    u = xs * math.cos(a) + ys * math.sin(a) + fold * fold_period * rng.uniform(0.02, 0.1)
    period = min(h, w) * rng.uniform(0.06, 0.2)
    if rng.random() < 0.75:  # stripes of two colours, maybe a starred canton
        idx = (np.floor(u / period).astype(np.int64) % 2)
        img = cols[idx]
        if rng.random() < 0.6:
            cw, ch = int(w * rng.uniform(0.3, 0.6)), int(h * rng.uniform(0.3, 0.6))
            x0 = 0 if rng.random() < 0.5 else w - cw
            img[:ch, x0:x0 + cw] = cols[2]
            r = max(1, int(min(h, w) * rng.uniform(0.008, 0.02)))
            step = max(3 * r, int(min(cw, ch) / rng.uniform(4, 8)))
            for yy in range(step // 2, ch, step):
                for xx in range(x0 + step // 2, x0 + cw, step):
                    cv2.circle(img, (xx, yy), r, tuple(float(c) for c in cols[1]), -1)
    else:  # a check
        v = -xs * math.sin(a) + ys * math.cos(a)
        idx = (np.floor(u / period).astype(np.int64) + np.floor(v / period).astype(np.int64)) % 3
        img = cols[idx]
    shade = 1.0 + rng.uniform(0.1, 0.35) * fold
    img = img * shade[..., None]
    sigma = rng.uniform(0, 2.0)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img, 0, 255).astype(np.uint8)


def office_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A webcam's view of a home office / meeting room wall (see the module docstring)."""
    img = np.empty((h, w, 3), np.float32)
    wall = _wall(rng)
    img[:] = wall
    if rng.random() < 0.35:  # a corner: the other wall a shade darker
        cx = int(rng.integers(w // 5, 4 * w // 5))
        side = slice(cx, w) if rng.random() < 0.5 else slice(0, cx)
        img[:, side] *= rng.uniform(0.6, 0.9)
    if rng.random() < 0.3:  # ceiling line
        cy = int(h * rng.uniform(0.02, 0.15))
        img[:cy] = np.clip(wall * rng.uniform(1.0, 1.2), 0, 255)
    items = ["shelf", "window", "poster", "poster", "flag", "plant", "door", "lamp", "frame"]
    n = int(rng.integers(2, 6))
    for _ in range(n):
        kind = items[int(rng.integers(len(items)))]
        if kind == "shelf":
            sw, sh = int(w * rng.uniform(0.2, 0.6)), int(h * rng.uniform(0.5, 1.1))
            x0 = int(rng.integers(-sw // 3, w - sw // 2))
            y0 = int(h * rng.uniform(-0.1, 0.4))
            _bookshelf(img, x0, y0, x0 + sw, y0 + sh, rng)
        elif kind == "window":
            ww, wh = int(w * rng.uniform(0.15, 0.45)), int(h * rng.uniform(0.3, 0.8))
            x0, y0 = int(rng.integers(-ww // 3, w - ww // 2)), int(h * rng.uniform(-0.05, 0.3))
            _window(img, x0, y0, x0 + ww, y0 + wh, rng)
        elif kind in ("poster", "frame"):
            pw = int(w * rng.uniform(0.06, 0.22))
            ph = int(pw * rng.uniform(0.7, 1.5))
            x0, y0 = int(rng.integers(-pw // 3, w - pw // 2)), int(h * rng.uniform(0.0, 0.55))
            _poster(img, x0, y0, x0 + pw, y0 + ph, rng)
        elif kind == "flag":
            fw = int(w * rng.uniform(0.08, 0.2))
            _flag(img, int(rng.integers(0, max(1, w - fw))), int(h * rng.uniform(0.05, 0.4)), fw,
                  max(4, int(fw * rng.uniform(0.55, 0.7))), rng)
        elif kind == "plant":
            _plant(img, int(rng.integers(0, w)), int(h * rng.uniform(0.45, 0.9)), max(4, int(h * rng.uniform(0.1, 0.3))),
                   rng)
        elif kind == "door":
            dw = int(w * rng.uniform(0.12, 0.25))
            x0 = int(rng.integers(0, max(1, w - dw)))
            col = _col(rng, 60, 240)
            cv2.rectangle(img, (x0, int(h * rng.uniform(0.0, 0.2))), (x0 + dw, h), col, -1)
            cv2.circle(img, (x0 + int(dw * 0.85), int(h * 0.6)), max(1, dw // 20), (40.0, 40.0, 40.0), -1)
        else:  # lamp: a bright shade on a thin stand, a glow on the wall
            lx, ly, r = int(rng.integers(0, w)), int(h * rng.uniform(0.2, 0.6)), max(3, int(h * rng.uniform(0.04, 0.1)))
            glow = np.zeros((h, w), np.float32)
            cv2.circle(glow, (lx, ly), r * 4, 1.0, -1)
            glow = cv2.GaussianBlur(glow, (0, 0), r * 2 + 1) * rng.uniform(30, 90)
            img += glow[..., None]
            cv2.line(img, (lx, ly), (lx, h), (50.0, 50.0, 50.0), max(1, r // 4))
            pts = np.array([[lx - r, ly + r // 2], [lx + r, ly + r // 2], [lx + r // 2, ly - r], [lx - r // 2, ly - r]], np.int32)
            cv2.fillPoly(img, [pts], (235.0, 245.0, 250.0))
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 2.0))  # focus: the wall is behind the person
    return np.clip(img, 0, 255).astype(np.uint8)


# -- held and worn objects ---------------------------------------------------------------------------------------------
HELD_KINDS = ("hand", "mug", "phone", "headset", "helmet")


def _hand(m, cx, cy, size, rng, angle_deg=None) -> None:
    cv2.ellipse(m, (cx, cy), (int(size * 0.45), int(size * 0.55)), float(rng.uniform(-30, 30)), 0, 360, 1, -1)
    base = float(rng.uniform(-120, -60)) if angle_deg is None else angle_deg
    for j in range(4):
        a = math.radians(base + (j - 1.5) * 14)
        fx, fy = cx + int(math.cos(a) * size * 0.75), cy + int(math.sin(a) * size * 0.75)
        cv2.line(m, (cx, cy), (fx, fy), 1, max(2, size // 6))


def draw_held_object(img: np.ndarray, label: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Draw a held or worn ``kind`` (one of :data:`HELD_KINDS`) on ``img`` in place, placed by the person
    pixels of ``label`` (1 = person); returns the bool mask of the drawn pixels (empty when there is no
    person). Hands, mugs and phones go over the lower part of the person, a headset over the head, a
    helmet at the chest or beside the head, partly outside the person."""
    h, w = label.shape
    out = np.zeros((h, w), bool)
    ys, xs = np.nonzero(label == 1)
    if len(ys) < 20:
        return out
    top = int(ys.min())
    head_rows = ys < top + max(4, int((ys.max() - top) * 0.25))
    hx = int(np.median(xs[head_rows]))  # head centre column
    head_w = int(np.ptp(xs[head_rows])) + 1
    lower = ys > np.percentile(ys, 35)
    i = int(rng.integers(int(lower.sum())))
    cy, cx = int(ys[lower][i]), int(xs[lower][i])
    size = max(4, int(min(h, w) * rng.uniform(0.08, 0.22)))
    m = np.zeros((h, w), np.uint8)
    colors = []  # (mask, BGR) layers, drawn in order
    if kind == "hand":
        _hand(m, cx, cy, size, rng)
        colors.append((m, SKIN[int(rng.integers(len(SKIN)))] * rng.uniform(0.85, 1.15)))
    elif kind == "mug":
        bw, bh = int(size * 0.55), int(size * 0.75)
        cv2.rectangle(m, (cx - bw // 2, cy - bh // 2), (cx + bw // 2, cy + bh // 2), 1, -1)
        side = 1 if rng.random() < 0.5 else -1
        cv2.ellipse(m, (cx + side * bw // 2, cy), (max(2, bw // 3), max(2, bh // 4)), 0, -90 if side > 0 else 90,
                    90 if side > 0 else 270, 1, max(2, size // 10))
        colors.append((m, np.array(_col(rng), np.float32)))
        hand = np.zeros_like(m)
        _hand(hand, cx - side * bw // 2, cy + bh // 4, int(size * 0.6), rng, angle_deg=-90 - side * 60)
        colors.append((hand, SKIN[int(rng.integers(len(SKIN)))]))
    elif kind == "phone":
        pw, ph = max(3, int(size * 0.45)), max(5, int(size * 0.85))
        rect = ((cx, cy - ph // 3), (pw, ph), float(rng.uniform(-35, 35)))
        box = cv2.boxPoints(rect).astype(np.int32)
        hand = np.zeros_like(m)
        _hand(hand, cx, cy + ph // 3, int(size * 0.6), rng)
        colors.append((hand, SKIN[int(rng.integers(len(SKIN)))]))
        cv2.fillPoly(m, [box], 1)
        colors.append((m, np.array(_col(rng, 10, 70) if rng.random() < 0.7 else _col(rng, 150, 250), np.float32)))
    elif kind == "headset":
        r = max(4, int(head_w * rng.uniform(0.5, 0.65)))
        cyh = top + int(r * rng.uniform(0.8, 1.1))
        cv2.ellipse(m, (hx, cyh), (r, r), 0, 180, 360, 1, max(2, r // 7))  # the band over the head
        cup = (max(2, r // 4), max(3, r // 3))
        for sx in (-1, 1):
            cv2.ellipse(m, (hx + sx * r, cyh), cup, 0, 0, 360, 1, -1)
        if rng.random() < 0.6:  # a boom microphone towards the mouth
            sx = 1 if rng.random() < 0.5 else -1
            cv2.line(m, (hx + sx * r, cyh), (hx + sx * r // 3, cyh + int(r * 0.9)), 1, max(1, r // 10))
        colors.append((m, np.array(_col(rng, 10, 90) if rng.random() < 0.7 else _col(rng), np.float32)))
    elif kind == "helmet":
        r = max(4, int(max(head_w, size) * rng.uniform(0.5, 0.9)))
        if rng.random() < 0.5:  # held at the chest
            hcx, hcy = cx, cy
        else:  # held up beside the head, partly outside the person
            hcx = hx + (1 if rng.random() < 0.5 else -1) * int(head_w * rng.uniform(0.8, 1.6))
            hcy = top + int(r * rng.uniform(1.0, 2.0))
        cv2.ellipse(m, (hcx, hcy), (r, int(r * 0.9)), 0, 180, 360, 1, -1)  # dome
        cv2.rectangle(m, (hcx - r, hcy), (hcx + r, hcy + int(r * 0.35)), 1, -1)  # rim / neck ring
        colors.append((m, np.array(_col(rng, 150, 255) if rng.random() < 0.6 else _col(rng), np.float32)))
        visor = np.zeros_like(m)
        cv2.ellipse(visor, (hcx, hcy - r // 5), (int(r * 0.6), int(r * 0.4)), 0, 0, 360, 1, -1)
        colors.append((visor & m, np.array(_col(rng, 10, 120), np.float32)))
        hand = np.zeros_like(m)
        _hand(hand, hcx + int(r * 0.8), hcy + int(r * 0.2), int(r * 0.6), rng)
        colors.append((hand, SKIN[int(rng.integers(len(SKIN)))]))
    else:
        raise ValueError(f"unknown held object {kind!r}")
    for layer, color in colors:
        mask = layer.astype(bool)
        _shade(img, mask, np.asarray(color, np.float32), rng)
        out |= mask
    return out


def _shade(img, mask, color, rng) -> None:
    """Fill ``mask`` pixels of ``img`` with ``color`` under a soft vertical shading (the synthesizer's figures
    use it too)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    y0, y1 = ys.min(), ys.max() + 1
    ramp = np.linspace(rng.uniform(0.75, 1.1), rng.uniform(0.6, 1.0), y1 - y0, dtype=np.float32)[ys - y0]
    img[ys, xs] = np.clip(color[None, :] * ramp[:, None], 0, 255).astype(np.uint8)


# -- lighting ------------------------------------------------------------------------------------------------------------
def backlight(img: np.ndarray, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright source behind the person: background lifted towards white (``person`` float 0..1 or bool),
    the person darkened, and the bright background bleeding over the outline (light wrap). Returns a new
    uint8 image of the same shape."""
    a = cv2.GaussianBlur(np.asarray(person, np.float32), (0, 0), 0.8)[..., None]
    f = img.astype(np.float32)
    lift = rng.uniform(0.3, 0.8)
    bg = f + (255.0 - f) * lift
    fg = f * rng.uniform(0.35, 0.75)
    out = bg * (1 - a) + fg * a
    wrap = cv2.GaussianBlur(bg * (1 - a), (0, 0), max(1.0, img.shape[0] * rng.uniform(0.01, 0.03)))
    out += wrap * a * rng.uniform(0.3, 0.8)
    return np.clip(out, 0, 255).astype(np.uint8)
