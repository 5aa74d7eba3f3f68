"""The built-in demo: a public-domain portrait moving in front of a drawn room, for trying vbg without a camera."""
from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from vbg_app.errors import BadInput
from vbg_app.frames import MAX_SIZE_WH, MIN_SIDE, read_image
from vbg_app.sources.base import SourceEnded, _Pacer, _SourceBase, _valid_fps

log = logging.getLogger("vbg_app.sources")


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
