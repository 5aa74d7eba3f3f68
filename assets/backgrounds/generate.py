"""Generate vbg's built-in backgrounds (1920x1080 JPEGs) with numpy and OpenCV only.

Run from anywhere::

    python assets/backgrounds/generate.py            # writes the JPEGs next to this script
    python assets/backgrounds/generate.py --out DIR  # somewhere else

Every image is a pure function of this script (fixed random seeds), so the files can be regenerated
byte-for-byte with the same OpenCV build and are our own work (CC0, see LICENSES.md). Each scene is drawn
sharp and then blurred like a camera's depth of field, because a virtual background that is sharper than
the person in front of it looks pasted on.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

W, H = 1920, 1080
QUALITY = 90
MAX_BYTES = 400_000


# -- helpers ------------------------------------------------------------------------------------------
def rgb(hex_text: str) -> np.ndarray:
    """'#RRGGBB' -> float32 BGR triple (0..255)."""
    h = hex_text.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return np.array([b, g, r], np.float32)


def grid() -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates x in 0..1 (left→right), y in 0..1 (top→bottom), shape (H, W)."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return x / (W - 1), y / (H - 1)


def value_noise(rng: np.random.Generator, cells: tuple[int, int], size=(W, H)) -> np.ndarray:
    """Smooth noise in 0..1: a random grid of ``cells`` (cols, rows) upsampled bicubically."""
    small = rng.random((cells[1] + 3, cells[0] + 3)).astype(np.float32)
    big = cv2.resize(small, (size[0] + size[0] * 3 // cells[0], size[1] + size[1] * 3 // cells[1]),
                     interpolation=cv2.INTER_CUBIC)
    ox, oy = size[0] * 3 // cells[0] // 2, size[1] * 3 // cells[1] // 2
    return np.clip(big[oy:oy + size[1], ox:ox + size[0]], 0, 1)


def fbm(rng: np.random.Generator, base: int = 4, octaves: int = 5, size=(W, H)) -> np.ndarray:
    """Fractal noise in about 0..1 (sum of value-noise octaves)."""
    out = np.zeros((size[1], size[0]), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        c = base * 2 ** o
        out += amp * value_noise(rng, (c, max(1, round(c * size[1] / size[0]))), size)
        total += amp
        amp *= 0.5
    return out / total


def lerp_stops(t: np.ndarray, stops: list[tuple[float, str]]) -> np.ndarray:
    """Colour ramp: t (H, W) in 0..1 -> (H, W, 3) BGR float, piecewise-linear between (pos, '#hex') stops."""
    pos = np.array([p for p, _ in stops], np.float32)
    cols = np.stack([rgb(c) for _, c in stops])
    out = np.empty(t.shape + (3,), np.float32)
    for ch in range(3):
        out[..., ch] = np.interp(t, pos, cols[:, ch])
    return out


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def blend(img: np.ndarray, color, alpha: np.ndarray) -> np.ndarray:
    """img * (1 - alpha) + color * alpha; alpha (H, W) in 0..1, colour a triple or an image."""
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(color, np.float32) * a


def rounded_rect(x0: int, y0: int, x1: int, y1: int, r: int, steps: int = 12) -> np.ndarray:
    """Polygon (N, 2) int32 of a rectangle with rounded corners of radius r."""
    pts = []
    for cx, cy, a0 in ((x1 - r, y0 + r, -90), (x1 - r, y1 - r, 0), (x0 + r, y1 - r, 90), (x0 + r, y0 + r, 180)):
        for k in range(steps + 1):
            a = math.radians(a0 + 90 * k / steps)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.array(pts, np.int32)


def vignette(img: np.ndarray, strength: float = 0.25, cx: float = 0.5, cy: float = 0.45) -> np.ndarray:
    x, y = grid()
    d = np.sqrt(((x - cx) * 1.2) ** 2 + (y - cy) ** 2)
    return img * (1 - strength * smoothstep(0.25, 0.95, d))[..., None]


def depth_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0 else img


def finish(img: np.ndarray, rng: np.random.Generator, grain: float = 1.6) -> np.ndarray:
    """Add a little film grain (hides gradient banding after JPEG) and convert to uint8."""
    noise = rng.normal(0, grain, img.shape[:2]).astype(np.float32)[..., None]
    return np.clip(img + noise, 0, 255).astype(np.uint8)


# -- scenes -------------------------------------------------------------------------------------------
def soft_gradient() -> np.ndarray:
    """A calm studio gradient: dusk blue into warm peach, with two large soft glows."""
    rng = np.random.default_rng(11)
    x, y = grid()
    t = np.clip(0.62 * y + 0.38 * x + 0.06 * (fbm(rng, 2, 3) - 0.5), 0, 1)
    img = lerp_stops(t, [(0.0, "#2b3a67"), (0.45, "#5a6fa8"), (0.78, "#c99aa8"), (1.0, "#f2c4a4")])
    for cx, cy, r, col, a in ((0.78, 0.22, 0.55, "#ffd9b8", 0.45), (0.18, 0.85, 0.5, "#7f9cf5", 0.35)):
        d = np.sqrt(((x - cx) * W / H) ** 2 + (y - cy) ** 2) / r
        img = blend(img, rgb(col), a * np.exp(-3.0 * d * d))
    return finish(vignette(img, 0.18), rng, 1.4)


def bokeh_lights() -> np.ndarray:
    """Out-of-focus warm lights on a dark evening backdrop (like a café after dark)."""
    rng = np.random.default_rng(22)
    x, y = grid()
    img = lerp_stops(np.clip(y * 0.8 + 0.2 * x, 0, 1), [(0, "#1d1a2e"), (0.55, "#2c2140"), (1, "#3b2330")])
    palette = [rgb(c) for c in ("#ffcf7a", "#ffb35c", "#ffe3a3", "#ff8f6b", "#9fd3ff", "#f7a8d8")]
    light = np.zeros((H, W, 3), np.float32)
    # far lights: small and many; near lights: big, few, dimmer; all with a bright rim like a real lens
    for n, rmin, rmax, gain in ((140, 10, 26, 0.55), (60, 30, 60, 0.42), (18, 70, 120, 0.26)):
        for _ in range(n):
            cx = rng.uniform(-0.05, 1.05) * W
            cy = (0.18 + 0.55 * rng.beta(2.0, 2.2)) * H + rng.normal(0, 40)
            r = rng.uniform(rmin, rmax)
            col = palette[rng.choice(len(palette), p=[0.3, 0.25, 0.2, 0.12, 0.07, 0.06])]
            g = gain * rng.uniform(0.5, 1.0)
            x0, x1 = int(max(0, cx - r - 2)), int(min(W, cx + r + 3))
            y0, y1 = int(max(0, cy - r - 2)), int(min(H, cy + r + 3))
            if x0 >= x1 or y0 >= y1:
                continue
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / r
            disc = np.clip((1.0 - d) * r / 1.5, 0, 1)  # anti-aliased edge
            rim = 0.75 + 0.25 * smoothstep(0.6, 1.0, d)
            light[y0:y1, x0:x1] += (disc * rim * g)[..., None] * col
    light = cv2.GaussianBlur(light, (0, 0), 2.2)
    glow = cv2.GaussianBlur(light, (0, 0), 60) * 0.8
    img = img + light + glow
    img = 255 * (1 - np.exp(-img / 255 * 1.1)) / (1 - math.exp(-1.1))  # soft highlight roll-off
    return finish(vignette(img, 0.35), rng, 2.0)


def bookshelf() -> np.ndarray:
    """A wall-to-wall wooden bookshelf with books, a plant and a lamp, softly out of focus."""
    rng = np.random.default_rng(33)
    x, y = grid()
    wood_dark, wood = rgb("#4a3222"), rgb("#7a5238")
    back = lerp_stops(y, [(0, "#3b2a20"), (1, "#2a1d16")])
    img = back * (0.85 + 0.3 * fbm(rng, 6, 4)[..., None])
    grain = fbm(rng, 3, 5, (W, H))
    shelf_rows = [0.04, 0.36, 0.68, 1.0]  # shelf boards' top edges (relative)
    board = 26
    book_cols = ["#8c2f39", "#2f4858", "#d9b26f", "#33658a", "#6b4e71", "#c8553d", "#2a9d8f", "#e9d8a6",
                 "#264653", "#9b2226", "#588157", "#bc6c25", "#3d405b", "#f2cc8f", "#81b29a", "#e07a5f"]
    # uprights
    for ux in (0, W - 40):
        img[:, ux:ux + 40] = wood_dark * (0.8 + 0.4 * grain[:, ux:ux + 40, None])
    for i in range(3):
        top = int(shelf_rows[i] * H) + board
        bottom = int(shelf_rows[i + 1] * H)
        xpos = 50
        while xpos < W - 60:
            if rng.random() < 0.08:  # a gap with a decoration
                gap = int(rng.uniform(110, 200))
                kind = rng.integers(3)
                cx = xpos + gap // 2
                if kind == 0:   # a plant in a pot
                    pot_h = int(0.28 * (bottom - top))
                    cv2.rectangle(img, (cx - 34, bottom - pot_h), (cx + 34, bottom), rgb("#d8cfc4").tolist(), -1)
                    for k in range(11):
                        ang = math.radians(-80 + 16 * k + rng.normal(0, 5))
                        ln = rng.uniform(0.45, 0.75) * (bottom - top)
                        tip = (int(cx + ln * math.sin(ang)), int(bottom - pot_h - ln * math.cos(ang)))
                        cv2.line(img, (cx, bottom - pot_h), tip, (rgb("#4f772d") * rng.uniform(0.7, 1.2)).tolist(),
                                 int(rng.uniform(10, 16)), cv2.LINE_AA)
                elif kind == 1:  # a small stack of books lying flat
                    yb = bottom
                    for k in range(int(rng.integers(3, 6))):
                        th = int(rng.uniform(16, 28))
                        wdt = int(rng.uniform(0.7, 0.95) * gap)
                        col = rgb(book_cols[rng.integers(len(book_cols))]) * rng.uniform(0.8, 1.05)
                        cv2.rectangle(img, (cx - wdt // 2, yb - th), (cx + wdt // 2, yb), col.tolist(), -1)
                        yb -= th
                else:  # a vase
                    vh = int(rng.uniform(0.35, 0.5) * (bottom - top))
                    cv2.ellipse(img, (cx, bottom - vh // 2), (gap // 4, vh // 2), 0, 0, 360,
                                rgb("#9fb8ad").tolist(), -1, cv2.LINE_AA)
                xpos += gap
                continue
            bw = int(rng.uniform(22, 48))
            bh = int(rng.uniform(0.62, 0.9) * (bottom - top))
            col = rgb(book_cols[rng.integers(len(book_cols))]) * rng.uniform(0.75, 1.05)
            if rng.random() < 0.06 and xpos > 80:  # a leaning book
                pts = np.array([[xpos, bottom], [xpos + bw, bottom], [xpos + bw + int(0.35 * bh), bottom - bh + 8],
                                [xpos + int(0.35 * bh), bottom - bh - 4]], np.int32)
                cv2.fillConvexPoly(img, pts, col.tolist(), cv2.LINE_AA)
                xpos += bw + int(0.35 * bh) + 4
                continue
            img[bottom - bh:bottom, xpos:xpos + bw] = col
            # spine details: shading across the spine and a couple of bands
            shade = 0.78 + 0.3 * np.sin(np.linspace(0.2, math.pi - 0.2, bw))
            img[bottom - bh:bottom, xpos:xpos + bw] *= shade[None, :, None]
            for band_y in (0.12, 0.8):
                yb = bottom - int(bh * (1 - band_y))
                img[yb:yb + 5, xpos + 3:xpos + bw - 3] = col * 0.55 + rgb("#e8d5a0") * 0.45
            xpos += bw + int(rng.uniform(1, 4))
    # shelf boards on top of everything, lit from above, with a shadow underneath
    for r in shelf_rows[:3]:
        top = int(r * H)
        img[top:top + board, :] = wood * (0.85 + 0.35 * grain[top:top + board, :, None])
        img[top:top + 4, :] *= 1.25
        shadow = np.linspace(0.55, 1.0, 40, dtype=np.float32)
        img[top + board:top + board + 40, :] *= shadow[:, None, None]
    # warm lamp light from the upper left
    light = 0.75 + 0.45 * np.exp(-(((x - 0.2) * 1.6) ** 2 + ((y - 0.15) * 1.3) ** 2) * 2.0)
    img = img * light[..., None]
    img = depth_blur(img, 7.0)
    return finish(vignette(img, 0.3), rng)


def office_window() -> np.ndarray:
    """A bright, minimal office wall: window light falling on it, a framed print, a plant, a desk edge."""
    rng = np.random.default_rng(44)
    x, y = grid()
    wall = lerp_stops(y, [(0, "#e9e4dc"), (0.75, "#d9d2c7"), (1, "#cfc6b9")])
    img = wall * (0.97 + 0.05 * fbm(rng, 5, 4)[..., None])
    # the window's light on the wall: a sheared rectangle split by mullions, soft-edged
    u = x + 0.35 * (1 - y)                  # shear: the sun comes from the upper left
    patch = smoothstep(0.50, 0.53, u) * (1 - smoothstep(0.95, 0.98, u))
    patch *= smoothstep(0.08, 0.12, y) * (1 - smoothstep(0.78, 0.82, y))
    for m in (0.66, 0.81):                  # vertical mullions' shadows
        patch *= 1 - (smoothstep(m - 0.012, m - 0.006, u) * (1 - smoothstep(m + 0.006, m + 0.012, u)))
    patch *= 1 - (smoothstep(0.43, 0.445, y) * (1 - smoothstep(0.455, 0.47, y)))  # the transom
    leaves = fbm(rng, 10, 4)                 # dappled shadow of leaves outside
    patch *= 0.75 + 0.25 * smoothstep(0.35, 0.65, leaves)
    img = blend(img, rgb("#fff4df"), 0.55 * patch)
    img *= (1 + 0.12 * patch)[..., None]
    # a framed print on the left
    fx0, fy0, fx1, fy1 = 250, 260, 640, 760
    cv2.rectangle(img, (fx0 + 14, fy0 + 18), (fx1 + 14, fy1 + 18), (rgb("#b9b0a4")).tolist(), -1)  # shadow
    cv2.rectangle(img, (fx0, fy0), (fx1, fy1), rgb("#2f2a26").tolist(), -1)
    cv2.rectangle(img, (fx0 + 18, fy0 + 18), (fx1 - 18, fy1 - 18), rgb("#f4f1ea").tolist(), -1)
    ax0, ay0, ax1, ay1 = fx0 + 70, fy0 + 70, fx1 - 70, fy1 - 70
    art_y, art_x = np.mgrid[0:ay1 - ay0, 0:ax1 - ax0].astype(np.float32)
    art_t = art_y / (ay1 - ay0)
    art = lerp_stops(art_t, [(0, "#e8c9a0"), (0.55, "#d98e6a"), (1, "#5b7c8d")])
    sun = np.sqrt((art_x - (ax1 - ax0) * 0.6) ** 2 + (art_y - (ay1 - ay0) * 0.42) ** 2) < 60
    art[sun] = rgb("#f6e6c8")
    hill = art_y > (ay1 - ay0) * (0.68 + 0.06 * np.sin(art_x / 40.0))
    art[hill] = rgb("#3e5c6b")
    img[ay0:ay1, ax0:ax1] = art
    # a tall plant on the right: pot, stems and leaves
    px, base = 1620, 1000
    cv2.rectangle(img, (px - 95 + 16, base - 230 + 16), (px + 95 + 16, base), rgb("#bdb4a7").tolist(), -1)
    pot = np.array([[px - 95, base - 230], [px + 95, base - 230], [px + 75, base], [px - 75, base]], np.int32)
    cv2.fillConvexPoly(img, pot, rgb("#f0ede8").tolist(), cv2.LINE_AA)
    for k in range(26):
        ang = math.radians(rng.uniform(-55, 55))
        ln = rng.uniform(250, 560)
        sx, sy = px + rng.normal(0, 10), base - 230
        tx, ty = sx + ln * math.sin(ang), sy - ln * math.cos(ang)
        cv2.line(img, (int(sx), int(sy)), (int(tx), int(ty)), rgb("#4a6b3a").tolist(), 5, cv2.LINE_AA)
        col = (rgb("#3f7d3a") * rng.uniform(0.7, 1.25)).tolist()
        cv2.ellipse(img, (int(tx), int(ty)), (int(rng.uniform(45, 75)), int(rng.uniform(18, 28))),
                    math.degrees(ang) + 90 + rng.normal(0, 25), 0, 360, col, -1, cv2.LINE_AA)
    # the desk edge at the bottom
    desk_top = int(0.9 * H)
    img[desk_top:, :] = lerp_stops(y[desk_top:, :], [(0.9, "#b08b67"), (1.0, "#8d6b4d")])
    img[desk_top:desk_top + 6, :] *= 1.15
    img = depth_blur(img, 6.0)
    return finish(vignette(img, 0.16), rng, 1.4)


def hills() -> np.ndarray:
    """Layered hills under a morning sky: atmospheric perspective, a low sun, a few soft clouds."""
    rng = np.random.default_rng(55)
    x, y = grid()
    sky = lerp_stops(y, [(0, "#6f9fd8"), (0.42, "#b9d3ea"), (0.62, "#f4dcc0"), (1, "#f7e3c8")])
    sun_d = np.sqrt(((x - 0.7) * W / H) ** 2 + (y - 0.46) ** 2)
    sky = blend(sky, rgb("#fff2d6"), np.exp(-(sun_d / 0.22) ** 2) * 0.85)
    sky = blend(sky, rgb("#fffaf0"), smoothstep(0.05, 0.035, sun_d))
    clouds = smoothstep(0.56, 0.78, fbm(rng, 3, 5)) * (1 - smoothstep(0.25, 0.5, y))
    img = blend(sky, rgb("#fbf7f2"), 0.7 * clouds)
    layers = [  # (baseline, amplitude, roughness, near colour, haze)
        (0.55, 0.07, 2, "#8fa7b8", 0.55),
        (0.62, 0.08, 3, "#6d8a7e", 0.38),
        (0.71, 0.09, 3, "#4d7255", 0.22),
        (0.82, 0.08, 4, "#355c3c", 0.1),
        (0.93, 0.06, 5, "#24442b", 0.0),
    ]
    xs = np.linspace(0, 1, W, dtype=np.float32)
    for i, (base, amp, rough, col, haze) in enumerate(layers):
        prof = np.zeros(W, np.float32)
        for o in range(4):
            f = rough * 2 ** o
            phase = rng.uniform(0, 2 * math.pi)
            prof += (0.5 ** o) * np.sin(2 * math.pi * f * xs + phase)
        ridge = (base - amp * prof / 1.9) * H
        inside = smoothstep(-1.5, 1.5, (np.arange(H, dtype=np.float32)[:, None] - ridge[None, :]))
        shade = 1 - 0.18 * smoothstep(0, 0.25, y - base)
        c = rgb(col) * (1 - haze) + rgb("#dfe6ea") * haze
        tex = 0.92 + 0.16 * fbm(rng, 12 + 6 * i, 3)
        img = blend(img, c * (shade * tex)[..., None], inside)
        # a few trees on the two nearest ridges
        if i >= 3:
            for _ in range(60 if i == 3 else 35):
                tx = int(rng.uniform(0, W))
                ty = int(ridge[tx]) + int(rng.uniform(0, 0.03 * H))
                th = int(rng.uniform(40, 90) * (1.6 if i == 4 else 1.0))
                tw = int(th * rng.uniform(0.28, 0.38))
                pts = np.array([[tx, ty - th], [tx - tw, ty], [tx + tw, ty]], np.int32)
                cv2.fillConvexPoly(img, pts, (rgb(col) * rng.uniform(0.7, 0.95)).tolist(), cv2.LINE_AA)
    img = depth_blur(img, 3.5)
    return finish(vignette(img, 0.12, 0.6, 0.5), rng, 1.4)


def brick_wall() -> np.ndarray:
    """A whitewashed-and-worn brick wall, lit from one side (loft style)."""
    rng = np.random.default_rng(66)
    x, y = grid()
    bh, bw, mortar = 62, 190, 9
    mortar_col = rgb("#c9c0b4")
    img = np.empty((H, W, 3), np.float32)
    img[:] = mortar_col
    brick_cols = [rgb(c) for c in ("#9c4a32", "#a8553a", "#8a3f2c", "#b2614a", "#94503c", "#7d3b2b")]
    noise_fine = fbm(rng, 40, 3)
    wash = fbm(rng, 4, 5)
    rows = H // bh + 2
    for r in range(rows):
        y0 = r * bh
        offset = (bw // 2) * (r % 2) - int(rng.uniform(0, 10))
        xpos = -offset
        while xpos < W:
            col = brick_cols[rng.integers(len(brick_cols))] * rng.uniform(0.85, 1.12)
            x0, x1 = max(0, xpos + mortar // 2), min(W, xpos + bw - mortar // 2)
            y0b, y1b = max(0, y0 + mortar // 2), min(H, y0 + bh - mortar // 2)
            if x0 < x1 and y0b < y1b:
                img[y0b:y1b, x0:x1] = col
                # bevel: top edge lit, bottom edge shaded
                img[y0b:y0b + 3, x0:x1] *= 1.12
                img[y1b - 4:y1b, x0:x1] *= 0.82
            xpos += bw
    img *= (0.85 + 0.3 * noise_fine)[..., None]
    # whitewash: paint left in the mortar and partly on the bricks
    img = blend(img, rgb("#ece6dc"), 0.55 * smoothstep(0.35, 0.75, wash))
    # side light from the right, falling off to the left, plus a floor-level darkening
    light = 0.62 + 0.5 * smoothstep(0.0, 1.0, x) ** 1.3
    light *= 1 - 0.15 * smoothstep(0.7, 1.0, y)
    img *= light[..., None]
    img = depth_blur(img, 2.6)
    return finish(vignette(img, 0.22), rng, 1.8)


def wood_panels() -> np.ndarray:
    """Warm vertical oak slats (a popular acoustic-panel wall) with soft top light."""
    rng = np.random.default_rng(77)
    x, y = grid()
    img = np.empty((H, W, 3), np.float32)
    img[:] = rgb("#1f1813")  # the dark felt between slats
    slat, gap = 64, 18
    xpos = 10
    while xpos < W:
        x0, x1 = xpos, min(W, xpos + slat)
        n = x1 - x0
        if n <= 0:
            break
        xx = np.arange(n, dtype=np.float32)[None, :]
        yy = np.arange(H, dtype=np.float32)[:, None]
        # long grain lines along the slat: stripes across x whose position wanders slowly down the slat
        wander = 14 * value_noise(rng, (2, 5), (n, H)) + 6 * value_noise(rng, (3, 14), (n, H))
        period = rng.uniform(5.0, 9.0)
        lines = 0.5 + 0.5 * np.sin(2 * math.pi * (xx + wander) / period)
        rings = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * 0.35 + 40 * value_noise(rng, (2, 3), (n, H))) / 23.0)
        local = value_noise(rng, (2, 6), (n, H))
        grain = 0.55 * lines ** 3 + 0.45 * rings
        base = rgb("#a8774f") * rng.uniform(0.82, 1.08)
        tone = (0.8 + 0.25 * grain + 0.14 * (local - 0.5) - 0.0 * yy)[..., None]
        panel = base * tone
        edge = np.ones(n, np.float32)
        edge[:4] = np.linspace(0.7, 1.0, 4)
        edge[-6:] = np.linspace(1.0, 0.6, 6)
        img[:, x0:x1] = panel * edge[None, :, None]
        xpos += slat + gap
    light = 0.55 + 0.6 * np.exp(-(((x - 0.35) * 1.4) ** 2 + ((y + 0.1) * 1.2) ** 2) * 2.2)
    img *= light[..., None]
    img = depth_blur(img, 3.0)
    return finish(vignette(img, 0.28), rng, 1.6)


def living_room() -> np.ndarray:
    """A cosy living room corner: sofa back, floor lamp glow, a painting and a plant, very soft focus."""
    rng = np.random.default_rng(88)
    x, y = grid()
    img = lerp_stops(y, [(0, "#cdd6d0"), (0.7, "#b7c3bc"), (1, "#a9b5ae")])  # sage wall
    img *= (0.97 + 0.06 * fbm(rng, 4, 4))[..., None]
    # a floor lamp's warm pool of light on the wall
    lamp_d = np.sqrt(((x - 0.2) * W / H) ** 2 + (y - 0.3) ** 2)
    img = blend(img, rgb("#ffe2b0"), 0.6 * np.exp(-(lamp_d / 0.35) ** 2))
    cv2.line(img, (int(0.2 * W), int(0.38 * H)), (int(0.2 * W), H), rgb("#2b2b2b").tolist(), 12, cv2.LINE_AA)
    shade = np.array([[0.2 * W - 110, 0.18 * H], [0.2 * W + 110, 0.18 * H], [0.2 * W + 150, 0.38 * H],
                      [0.2 * W - 150, 0.38 * H]], np.int32)
    cv2.fillConvexPoly(img, shade, rgb("#fff0d0").tolist(), cv2.LINE_AA)
    # two paintings
    for (cx, cy, w2, h2, c1, c2) in ((0.52, 0.3, 190, 140, "#e0a458", "#2e6171"),
                                     (0.72, 0.34, 120, 160, "#c1666b", "#f4e9cd")):
        X, Y = int(cx * W), int(cy * H)
        cv2.rectangle(img, (X - w2 + 12, Y - h2 + 14), (X + w2 + 12, Y + h2 + 14), rgb("#9aa59f").tolist(), -1)
        cv2.rectangle(img, (X - w2, Y - h2), (X + w2, Y + h2), rgb("#f7f4ee").tolist(), -1)
        yy, xx = np.mgrid[Y - h2 + 20:Y + h2 - 20, X - w2 + 20:X + w2 - 20].astype(np.float32)
        t = (yy - yy.min()) / max(1.0, float(yy.max() - yy.min()))
        img[Y - h2 + 20:Y + h2 - 20, X - w2 + 20:X + w2 - 20] = lerp_stops(t, [(0, c1), (1, c2)])
    # the sofa back across the bottom, with an arm on the left and cushions leaning on it
    sofa_top = int(0.74 * H)
    back = np.zeros((H, W), np.float32)
    cv2.fillPoly(back, [rounded_rect(int(0.3 * W), sofa_top, W + 60, H + 60, 60)], 1.0, cv2.LINE_AA)
    cv2.fillPoly(back, [rounded_rect(int(0.26 * W), sofa_top + 70, int(0.33 * W), H + 60, 45)], 1.0, cv2.LINE_AA)
    fabric = lerp_stops(y, [(0.7, "#5b6f8a"), (1.0, "#3b4a5f")]) * (0.95 + 0.1 * fbm(rng, 30, 2))[..., None]
    img = blend(img, fabric, back)
    arm = np.zeros((H, W), np.float32)
    cv2.fillPoly(arm, [rounded_rect(int(0.26 * W), sofa_top + 70, int(0.33 * W), H + 60, 45)], 1.0, cv2.LINE_AA)
    img = blend(img, fabric * 1.12, arm)
    for cx, ang, col in ((0.43, -8, "#e9c46a"), (0.53, 6, "#f4a261"), (0.78, -5, "#e76f51"), (0.88, 9, "#f1faee")):
        pts = rounded_rect(int(cx * W) - 120, sofa_top - 90, int(cx * W) + 120, sofa_top + 150, 50)
        M = cv2.getRotationMatrix2D((cx * W, sofa_top + 30), ang, 1.0)
        pts = cv2.transform(pts[None].astype(np.float32), M)[0].astype(np.int32)
        cush = np.zeros((H, W), np.float32)
        cv2.fillPoly(cush, [pts], 1.0, cv2.LINE_AA)
        shade = 1.0 - 0.25 * smoothstep(0.7, 0.95, y)
        img = blend(img, rgb(col) * shade[..., None], cush)
    # a plant on the right
    px, base = int(0.94 * W), sofa_top
    for k in range(18):
        ang = math.radians(rng.uniform(-70, 30))
        ln = rng.uniform(200, 420)
        tx, ty = px + ln * math.sin(ang), base - ln * math.cos(ang)
        cv2.line(img, (px, base), (int(tx), int(ty)), rgb("#3b5d32").tolist(), 6, cv2.LINE_AA)
        cv2.ellipse(img, (int(tx), int(ty)), (70, 30), math.degrees(ang) + 90, 0, 360,
                    (rgb("#4c8a44") * rng.uniform(0.7, 1.2)).tolist(), -1, cv2.LINE_AA)
    img = depth_blur(img, 9.0)
    return finish(vignette(img, 0.2), rng, 1.5)


SCENES = {
    "soft_gradient": soft_gradient,
    "bokeh_lights": bokeh_lights,
    "bookshelf": bookshelf,
    "office_window": office_window,
    "hills": hills,
    "brick_wall": brick_wall,
    "wood_panels": wood_panels,
    "living_room": living_room,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--only", nargs="*", help="scene names to generate (default: all)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fn in SCENES.items():
        if args.only and name not in args.only:
            continue
        img = fn()
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        quality = QUALITY
        while True:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
            if not ok:
                raise SystemExit(f"cannot encode {name}")
            if len(buf) <= MAX_BYTES or quality <= 70:
                break
            quality -= 2
        (args.out / f"{name}.jpg").write_bytes(buf.tobytes())
        print(f"{name}.jpg  {len(buf) / 1000:.0f} KB  (quality {quality})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
