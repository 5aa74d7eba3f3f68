"""PP-HumanSeg-style data synthesis: webcam framing, new backgrounds, occluders (numpy/OpenCV only).

The PP-HumanSeg paper makes meeting-like training data by cutting people out with their masks and pasting
them onto other backgrounds. :class:`Synthesizer` does that and more, per sample, as a pure function of a
``numpy.random.Generator``:

1. **framing**: full-body photos (person bbox taller than ``full_body_aspect`` x its width) get a webcam
   crop with probability ``p_webcam``: from a little above the head down to 40-60 % of the person's
   height, at the output aspect (16:9), the person centred ± ``center_jitter``; other images get a box
   around the person with scale jitter. Plus rotation (± ``max_rotation``°) and a horizontal flip;
   all of it is one affine warp from the source photo straight to the output size;
2. **background** (probability ``p_composite``): the person (warped with a zero border) is alpha-blended
   with a slightly feathered mask onto a new background: a random crop of an image from ``backgrounds``
   folders, or a generated one (gradient, blurred noise, room with "furniture" rectangles, bookshelves);
   without compositing the photo's own background is kept (mirrored at the borders);
3. **occluders** (probability ``p_occluder``): a hand, a mug/cup or a random blob drawn over the lower
   part of the person; the drawn pixels become person (hands; blobs/mugs with ``p_occluder_foreground``)
   or background, so image and label always agree;
4. **photometric** changes of the whole frame (:class:`~vbg_app.train.data.augment.Photometric`).

With probability ``p_letterbox`` the sample is instead the whole photo at its own aspect (scale
``letterbox_fill`` of the fitted size, small rotation, flip), steps 2-4 applied to it, centred on the grey
bars of :func:`vbg_app.engines.fit.letterbox_box` (label 0 there): exactly what the engine feeds a model with
``vbg.fit = letterbox`` for a frame whose aspect is not the model's (portrait photos, 4:3 cameras).

Labels are uint8 0 = background, 1 = person, 255 = ignore.

Meeting-domain options (issue #14; all off by default, so earlier recipes draw the same samples):
``frame_aspects`` (camera frames of other aspects, e.g. 4:3, letterboxed into the output as the engine does),
``p_side_cut`` (the person partly out of frame at the left or right), ``p_far`` (a small, distant person),
``p_held`` with ``held_kinds`` (hands, mugs, phones, headsets, helmets drawn and labelled as person, see
:mod:`~vbg_app.train.data.meeting`), ``p_backlight`` (a bright window behind the person), the ``office``
background generator, per-folder background weights (``background_weights``), and ``anchor_cuts`` (where
the photo itself cuts its person, that edge is kept outside the frame: :func:`anchor_cut_edges`), and
``p_bystander`` with ``bystanders`` (a smaller, defocused person from another labelled photo standing behind the
composited person, labelled **background**: the val sets and a meeting keep only the main person, and
the released weights take people walking past for person; :class:`PeopleBank`).

Soft targets: :meth:`Synthesizer.render` also carries a per-pixel person probability (a cached teacher label,
see ``vbg label``) through the same geometry: whole-photo samples get the cached label warped (bilinear;
with ``soft_label_edges`` the hard label becomes ``soft >= 0.5`` too, so the teachers' edges replace coarse
mask edges), composites get the alpha they were composited with (the ground-truth cut; with
``composite_alpha: soft`` the cached label itself is the cut, so a generous mask pastes no halo of the photo's
own background), drawn held objects 1 and letterbox bars 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vbg_app.engines.fit import PAD_VALUE, letterbox_box
from vbg_app.imagefile import IMAGE_EXTS
from vbg_app.train.data.augment import Photometric, _prescale, anchor_cut_edges, similarity, warp_pair
from vbg_app.train.data.meeting import (HELD_KINDS, _shade, backlight, draw_held_object, drape_background,
                                        office_background)
from vbg_app.train.data.people import PeopleBank, add_bystander



# -- generated backgrounds ------------------------------------------------------------------------------------------
def _rand_color(rng, lo=30, hi=230) -> np.ndarray:
    return rng.integers(lo, hi, 3).astype(np.float32)


def _muted(rng) -> np.ndarray:
    """A wall-like colour: a random hue, low saturation."""
    base = rng.uniform(90, 230)
    tint = rng.uniform(-25, 25, 3)
    return np.clip(base + tint, 0, 255).astype(np.float32)


def gradient_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    c0, c1 = _rand_color(rng), _rand_color(rng)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:  # linear
        a = rng.uniform(0, 2 * math.pi)
        t = (xs / w - 0.5) * math.cos(a) + (ys / h - 0.5) * math.sin(a)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    else:  # radial
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / math.hypot(w, h)
        t = np.clip(t * rng.uniform(1.0, 2.0), 0, 1)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def noise_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Blurred multi-scale colour noise (out-of-focus clutter, bokeh-like)."""
    img = np.zeros((h, w, 3), np.float32)
    amp = 1.0
    for cells in (3, 7, 16):
        small = rng.uniform(0, 255, (cells, max(2, int(cells * w / h)), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.45
    img /= 1.0 + 0.45 + 0.45 ** 2
    if rng.random() < 0.5:  # a few bright discs (lights)
        for _ in range(int(rng.integers(3, 12))):
            cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(2, max(3, h // 8))),
                       tuple(float(v) for v in rng.uniform(150, 255, 3)), -1)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.0, 4.0))
    return np.clip(img, 0, 255).astype(np.uint8)


def room_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A wall, a floor band, "furniture" rectangles (cabinets, frames, a bright window) and a plant."""
    wall = _muted(rng)
    img = np.empty((h, w, 3), np.float32)
    img[:] = wall
    floor_y = int(h * rng.uniform(0.65, 0.95))
    img[floor_y:] = np.clip(wall * rng.uniform(0.4, 0.8), 0, 255)
    for _ in range(int(rng.integers(2, 7))):
        rw, rh = int(w * rng.uniform(0.08, 0.4)), int(h * rng.uniform(0.1, 0.6))
        x0, y0 = int(rng.integers(-rw // 2, w)), int(rng.integers(0, max(1, floor_y)))
        kind = rng.random()
        color = tuple(float(v) for v in (_rand_color(rng, 200, 255) if kind < 0.2 else _rand_color(rng)))
        cv2.rectangle(img, (x0, y0), (x0 + rw, y0 + rh), color, -1)
        if kind >= 0.2 and rng.random() < 0.6:  # inner panel / picture
            m = max(2, min(rw, rh) // 8)
            inner = tuple(float(v) for v in _rand_color(rng))
            cv2.rectangle(img, (x0 + m, y0 + m), (x0 + rw - m, y0 + rh - m), inner, -1)
        if kind < 0.2:  # window bars
            cv2.line(img, (x0 + rw // 2, y0), (x0 + rw // 2, y0 + rh), (60.0, 60.0, 60.0), max(1, w // 200))
    if rng.random() < 0.4:  # a plant: green ellipses on a pot
        px, py = int(rng.integers(0, w)), int(h * rng.uniform(0.4, 0.8))
        cv2.rectangle(img, (px - w // 40, py), (px + w // 40, py + h // 8), (40.0, 70.0, 140.0), -1)
        for _ in range(8):
            cv2.ellipse(img, (px + int(rng.integers(-w // 20, w // 20)), py - int(rng.integers(0, h // 5))),
                        (int(w * 0.02) + 1, int(h * 0.06) + 1), float(rng.uniform(0, 180)), 0, 360,
                        (float(rng.uniform(20, 70)), float(rng.uniform(90, 160)), float(rng.uniform(20, 60))), -1)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.5))
    return np.clip(img, 0, 255).astype(np.uint8)


def shelves_background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Bookshelves: horizontal planks with rows of book spines of random colours and heights."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = _muted(rng) * rng.uniform(0.5, 1.0)
    plank = tuple(float(v) for v in _rand_color(rng, 40, 160))
    n = int(rng.integers(2, 5))
    gap = h / n
    x_left, x_right = int(rng.integers(-w // 4, w // 3)), int(rng.integers(2 * w // 3, w + w // 4))
    for i in range(n):
        base = int((i + 1) * gap - gap * 0.1)
        x = x_left
        while x < x_right:
            bw = int(rng.integers(max(2, w // 120), max(3, w // 30)))
            bh = int(gap * rng.uniform(0.45, 0.85))
            col = tuple(float(v) for v in _rand_color(rng, 20, 220))
            if rng.random() < 0.85:
                cv2.rectangle(img, (x, base - bh), (x + bw, base), col, -1)
            x += bw + int(rng.integers(0, 3))
        cv2.rectangle(img, (x_left, base), (x_right, base + max(2, h // 40)), plank, -1)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 2.0))
    return np.clip(img, 0, 255).astype(np.uint8)


GENERATORS = {
    "gradient": gradient_background,
    "noise": noise_background,
    "room": room_background,
    "shelves": shelves_background,
    "office": office_background,
    "drape": drape_background,
}
CLASSIC_KINDS = ("gradient", "noise", "room", "shelves")  # the default set (the recipes before v4)


class BackgroundBank:
    """Backgrounds at a requested size: random crops of image files from ``folders`` (with probability
    ``p_folder`` when there are any), else one of the generated kinds. Files are decoded once per process
    and kept downscaled to ``cache_long_side``."""

    def __init__(self, folders=(), p_folder: float = 0.5, kinds=CLASSIC_KINDS, cache_long_side: int = 640,
                 weights=None) -> None:
        self.files: list[Path] = []
        self.groups: list[list[int]] = []  # file indices per folder (for ``weights``)
        for f in folders or ():
            p = Path(f)
            start = len(self.files)
            if p.is_dir():
                self.files += sorted(x for x in p.rglob("*") if x.suffix.lower() in IMAGE_EXTS)
            elif p.is_file():
                self.files.append(p)
            else:
                from vbg_app.errors import BadInput
                raise BadInput(f"background folder {p} does not exist", "fix data.backgrounds in the config")
            self.groups.append(list(range(start, len(self.files))))
        # weights: one per folder, the chance that a file background comes from that folder (None: every
        # file equally likely, as before)
        self.weights = None
        if weights is not None:
            from vbg_app.errors import BadInput
            w = np.asarray(weights, np.float64)
            if len(w) != len(self.groups) or (w < 0).any() or not w.sum() > 0:
                raise BadInput(f"background_weights {list(weights)} do not match the {len(self.groups)} folders",
                               "give one non-negative weight per backgrounds folder")
            w = np.where([len(g) > 0 for g in self.groups], w, 0.0)
            self.weights = w / w.sum() if w.sum() > 0 else None
        unknown = set(kinds) - set(GENERATORS)
        if unknown:
            from vbg_app.errors import BadInput
            raise BadInput(f"unknown background kinds {sorted(unknown)}", f"use: {', '.join(GENERATORS)}")
        self.kinds = list(kinds)
        self.p_folder = float(p_folder) if self.files else 0.0
        self.cache_long_side = int(cache_long_side)
        self._cache: dict[int, np.ndarray] = {}

    def _load(self, i: int) -> np.ndarray:
        img = self._cache.get(i)
        if img is None:
            img = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if img is None:
                img = np.full((64, 64, 3), 128, np.uint8)
            s = self.cache_long_side / max(img.shape[:2])
            if s < 1:
                img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            self._cache[i] = img
        return img

    def sample(self, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        if self.files and rng.random() < self.p_folder:
            if self.weights is None:
                i = int(rng.integers(len(self.files)))
            else:
                g = self.groups[int(rng.choice(len(self.groups), p=self.weights))]
                i = g[int(rng.integers(len(g)))]
            src = self._load(i)
            sh, sw = src.shape[:2]
            scale = rng.uniform(0.5, 1.0)
            ch = min(sh, int(sw * h / w)) * scale
            cw = ch * w / h
            x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
            M = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]])
            if rng.random() < 0.5:
                M = np.array([[-1, 0, w - 1], [0, 1, 0]]) @ np.vstack([M, [0, 0, 1]])
            out, _ = warp_pair(src, None, M, (w, h))
            return out
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        return GENERATORS[kind](h, w, rng)


# -- occluders ---------------------------------------------------------------------------------------------------------
SKIN = np.array([[80, 110, 190], [60, 90, 160], [110, 150, 220], [40, 60, 110], [90, 130, 200]], np.float32)  # BGR


def draw_occluder(img: np.ndarray, label: np.ndarray, rng: np.random.Generator, p_foreground: float = 0.5) -> str:
    """Draw a hand, a mug or a blob over the lower part of the person; update ``label`` in place to match.

    Returns the kind drawn (or ``""`` when there is no person to occlude).
    """
    h, w = label.shape
    ys, xs = np.nonzero(label == 1)
    if len(ys) < 20:
        return ""
    lower = ys > np.percentile(ys, 35)
    i = int(rng.integers(int(lower.sum()))) if lower.any() else int(rng.integers(len(ys)))
    cy, cx = int(ys[lower][i] if lower.any() else ys[i]), int(xs[lower][i] if lower.any() else xs[i])
    size = max(4, int(min(h, w) * rng.uniform(0.08, 0.22)))
    m = np.zeros((h, w), np.uint8)
    kind = ("hand", "mug", "blob")[int(rng.integers(3))]
    if kind == "hand":
        cv2.ellipse(m, (cx, cy), (int(size * 0.45), int(size * 0.55)), float(rng.uniform(-30, 30)), 0, 360, 1, -1)
        base = float(rng.uniform(-120, -60))
        for j in range(4):  # fingers fanning out upward
            a = math.radians(base + (j - 1.5) * 14)
            fx, fy = cx + int(math.cos(a) * size * 0.75), cy + int(math.sin(a) * size * 0.75)
            cv2.line(m, (cx, cy), (fx, fy), 1, max(2, size // 6))
        color = SKIN[int(rng.integers(len(SKIN)))] * rng.uniform(0.85, 1.15)
        foreground = True
    elif kind == "mug":
        bw, bh = int(size * 0.55), int(size * 0.75)
        cv2.rectangle(m, (cx - bw // 2, cy - bh // 2), (cx + bw // 2, cy + bh // 2), 1, -1)
        cv2.ellipse(m, (cx + bw // 2, cy), (max(2, bw // 3), max(2, bh // 4)), 0, -90, 90, 1, max(2, size // 10))
        color = _rand_color(rng)
        foreground = rng.random() < p_foreground
    else:
        pts = []
        n = int(rng.integers(5, 10))
        for j in range(n):
            a = 2 * math.pi * j / n
            r = size * rng.uniform(0.3, 0.7)
            pts.append((cx + int(r * math.cos(a)), cy + int(r * math.sin(a))))
        cv2.fillPoly(m, [np.array(pts, np.int32)], 1)
        color = _rand_color(rng)
        foreground = rng.random() < p_foreground
    mask = m.astype(bool)
    _shade(img, mask, np.asarray(color, np.float32), rng)
    label[mask] = 1 if foreground else 0
    return kind


# -- framing -----------------------------------------------------------------------------------------------------------
def person_bbox(label: np.ndarray):
    """(x0, y0, x1, y1) of the person pixels (exclusive end), or None."""
    rows = np.flatnonzero((label == 1).any(1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero((label == 1).any(0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _warp_soft(soft, M, out_wh, border: int) -> np.ndarray:
    """A soft label (float 0..1 at the photo's size) warped like the image: bilinear, clipped to 0..1."""
    s, _, Ms = _prescale(np.asarray(soft, np.float32), None, M)
    return np.clip(cv2.warpAffine(s, Ms, tuple(out_wh), flags=cv2.INTER_LINEAR, borderMode=border), 0.0, 1.0)


@dataclass
class Synthesizer:
    """Turns a (photo, label) pair into a training sample of size ``out_wh``; see the module docstring."""

    out_wh: tuple = (256, 144)
    p_composite: float = 0.6
    backgrounds: list = field(default_factory=list)  # folders of background images
    p_folder_background: float = 0.5
    background_kinds: tuple = CLASSIC_KINDS
    background_weights: tuple | None = None  # per backgrounds folder (None: every file equally likely)
    p_webcam: float = 0.8
    full_body_aspect: float = 1.7
    webcam_height: tuple = (0.4, 0.6)  # crop height as a fraction of the person's height
    headroom: tuple = (0.03, 0.15)  # space above the head, as a fraction of the crop height
    center_jitter: float = 0.12  # of the crop width
    person_fill: tuple = (0.55, 1.1)  # non-webcam framing: person bbox height / crop height
    scale_jitter: float = 0.1
    max_rotation: float = 8.0
    p_flip: float = 0.5
    p_occluder: float = 0.2
    p_occluder_foreground: float = 0.5
    feather: float = 0.8  # sigma (px) of the composite alpha's edge softening
    p_letterbox: float = 0.0  # whole photo at its own aspect on grey bars (the engine's vbg.fit = letterbox)
    letterbox_fill: tuple = (0.85, 1.0)  # scale of the photo within its fitted box
    # meeting domain (see the module docstring); off by default
    frame_aspects: tuple = ()  # ((W, H, weight), ...): the camera frame's aspect, letterboxed when not the output's
    p_side_cut: float = 0.0  # the person partly out of frame at the left or right
    side_cut: tuple = (0.15, 0.5)  # ... by this fraction of the person's width
    p_far: float = 0.0  # a distant person: person height / frame height drawn from far_fill
    far_fill: tuple = (0.35, 0.9)
    p_held: float = 0.0  # a held or worn object (person) drawn from held_kinds
    held_kinds: tuple = HELD_KINDS
    p_backlight: float = 0.0
    soft_label_edges: bool = False  # whole photos with a soft label: hard label = soft >= 0.5
    # a labelled frame with more than this share outside the photo is composited (1.0: never forced; the
    # photo's mirrored border would otherwise show mirrored copies of the person)
    max_outside: float = 1.0
    # where the photo itself cuts the person (the person touches a photo edge), move the frame so that edge
    # stays outside it: a webcam never shows a torso ending above the frame's bottom edge with room below
    anchor_cuts: bool = False
    # composites: cut the person with the cached soft label (``soft``: vbg label's fused_gt, the teachers' edge
    # within a band of the mask's outline) instead of the hard mask. humanseg290's masks run a few pixels outside
    # the person all round, so a hard-mask cut pastes a halo of the photo's own background, labelled person
    composite_alpha: str = "mask"  # "mask" | "soft"
    p_bystander: float = 0.0  # composites: another, smaller person behind the main one, labelled background
    bystanders: list = field(default_factory=list)  # labelled folders (images/, masks/) to cut them from
    photometric: Photometric = field(default_factory=Photometric)

    def __post_init__(self) -> None:
        self.out_wh = tuple(int(v) for v in self.out_wh)
        self._check()
        self.bank = self._bank()
        self.people = PeopleBank(self.bystanders)

    def _bank(self) -> BackgroundBank:
        return BackgroundBank(self.backgrounds, self.p_folder_background, self.background_kinds,
                              cache_long_side=2 * max(self.out_wh), weights=self.background_weights)

    def _check(self) -> None:
        from vbg_app.errors import BadInput

        bad = [k for k in self.held_kinds if k not in HELD_KINDS]
        if bad:
            raise BadInput(f"unknown held_kinds {bad}", f"use: {', '.join(HELD_KINDS)}")
        if self.p_held > 0 and not self.held_kinds:
            raise BadInput("p_held > 0 but held_kinds is empty", f"list some of: {', '.join(HELD_KINDS)}")
        if self.composite_alpha not in ("mask", "soft"):
            raise BadInput(f"composite_alpha {self.composite_alpha!r} is not mask or soft",
                           "use mask (the photo's person mask) or soft (the cached soft label where given)")
        if self.p_bystander > 0 and not self.bystanders:
            raise BadInput("p_bystander > 0 but no bystanders folders",
                           "set synthesis.bystanders to labelled folders, e.g. [../shared/data/portraits/ccp/train]")
        for a in self.frame_aspects:
            if not (len(a) == 3 and a[0] > 0 and a[1] > 0 and a[2] >= 0):
                raise BadInput(f"frame_aspects entry {list(a)} is not [W, H, weight]", "e.g. [[16, 9, 0.6], [4, 3, 0.4]]")
        if self.frame_aspects and not sum(a[2] for a in self.frame_aspects) > 0:
            raise BadInput("frame_aspects weights sum to 0", "give at least one aspect a positive weight")

    # framing -------------------------------------------------------------------------------------------------
    def frame_box(self, label: np.ndarray | None, shape, rng: np.random.Generator, out_wh=None, far: bool = False):
        """(center_x, center_y, crop_height) of the source region that becomes the output frame; ``far``: a
        distant person (``far_fill``), a crop larger than most photos, so :meth:`render` composites it."""
        h, w = shape[:2]
        out_w, out_h = out_wh or self.out_wh
        aspect = out_w / out_h
        box = person_bbox(label) if label is not None else None
        if box is None:  # no person: a random crop at the output aspect
            ch = min(h, w / aspect) * rng.uniform(0.6, 1.0)
            cw = ch * aspect
            return rng.uniform(cw / 2, max(cw / 2, w - cw / 2)), rng.uniform(ch / 2, max(ch / 2, h - ch / 2)), ch
        x0, y0, x1, y1 = box
        ph, pw = y1 - y0, x1 - x0
        if far:  # distant: small, head near the top, maybe cut below
            ch = ph / rng.uniform(*self.far_fill)
            cy = y0 - ch * rng.uniform(0.05, 0.25) + ch / 2
            cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * 0.25 * ch * aspect
            return self._side_cut(cx, ch * aspect, x0, x1, rng), cy, ch
        if ph >= self.full_body_aspect * pw and rng.random() < self.p_webcam:
            # webcam: from a little above the head to 40-60 % of the person's height
            body = ph * rng.uniform(*self.webcam_height)
            ch = body / (1.0 - rng.uniform(*self.headroom))
            top = y0 - (ch - body)
            cy = top + ch / 2
            band = label[max(0, y0):int(min(h, y0 + body))] == 1
            cols = np.flatnonzero(band.any(0))
            cx = (cols[0] + cols[-1] + 1) / 2 if len(cols) else (x0 + x1) / 2
            cx += rng.uniform(-1, 1) * self.center_jitter * ch * aspect
            if len(cols):
                cx = self._side_cut(cx, ch * aspect, cols[0], cols[-1] + 1, rng)
            return cx, cy, ch
        fill = rng.uniform(*self.person_fill)
        ch = ph / fill
        ch = max(ch, pw / aspect / 1.1)  # keep most of a wide person in frame
        cx = (x0 + x1) / 2 + rng.uniform(-1, 1) * self.center_jitter * ch * aspect
        if ph > 0.85 * ch:  # the head near the top of the frame, like a webcam; the body runs out at the bottom
            cy = y0 - ch * rng.uniform(0.02, 0.15) + ch / 2
        else:
            cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * ch
        return self._side_cut(cx, ch * aspect, x0, x1, rng), cy, ch

    def _side_cut(self, cx: float, cw: float, px0: float, px1: float, rng) -> float:
        """``cx``, or with probability ``p_side_cut`` a centre that puts ``side_cut`` of the person's width
        (columns ``px0..px1``) outside the frame of width ``cw`` at the left or the right."""
        if not (self.p_side_cut > 0 and rng.random() < self.p_side_cut):
            return cx
        out = rng.uniform(*self.side_cut) * (px1 - px0)
        if rng.random() < 0.5:
            return px0 + out + cw / 2  # the frame's left edge cuts the person
        return px1 - out - cw / 2

    def geometry(self, label, shape, rng, out_wh=None, far: bool = False) -> np.ndarray:
        out_wh = tuple(out_wh or self.out_wh)
        cx, cy, ch = self.frame_box(label, shape, rng, out_wh, far)
        ch *= math.exp(rng.uniform(-self.scale_jitter, self.scale_jitter))
        angle = rng.uniform(-self.max_rotation, self.max_rotation)
        flip = rng.random() < self.p_flip
        M = similarity((cx, cy), max(ch, 4.0), out_wh, angle, flip)
        if self.anchor_cuts and label is not None:
            M = anchor_cut_edges(M, label, out_wh)
        return M

    # the sample ------------------------------------------------------------------------------------------------
    def __call__(self, image: np.ndarray, label: np.ndarray | None, rng: np.random.Generator, out_wh=None):
        """``(image BGR uint8 out_h x out_w x 3, label uint8 or None)``; ``label`` None = unlabeled frame.
        ``out_wh`` overrides the output size for this sample (the loop's per-batch aspect, ``data.aspects``)."""
        img, lab, _ = self.render(image, label, rng, out_wh)
        return img, lab

    def render(self, image: np.ndarray, label: np.ndarray | None, rng: np.random.Generator, out_wh=None,
               soft: np.ndarray | None = None):
        """``(image, label, soft)``: as :meth:`__call__`, plus ``soft`` float32 0..1 at the output size when
        a ``soft`` person probability of the source photo (its size) is given (else None); the same draws
        from ``rng`` as :meth:`__call__`."""
        out_wh = tuple(int(v) for v in (out_wh or self.out_wh))
        if self.p_letterbox > 0 and rng.random() < self.p_letterbox:
            return self._letterboxed(image, label, rng, out_wh, soft)
        # a far person's frame reaches past the photo: always composited (no mirrored copies of the person)
        far = label is not None and self.p_far > 0 and rng.random() < self.p_far
        if self.frame_aspects:
            p = np.array([a[2] for a in self.frame_aspects], np.float64)
            aw, ah, _ = self.frame_aspects[int(rng.choice(len(p), p=p / p.sum()))]
            if abs(aw / ah - out_wh[0] / out_wh[1]) > 0.01:  # a camera frame of another aspect, letterboxed
                x0, y0, iw, ih = letterbox_box((int(aw * 1000), int(ah * 1000)), out_wh)
                M = self.geometry(label, image.shape, rng, (iw, ih), far)
                force = far or self._outside(M, image.shape, (iw, ih)) > self.max_outside
                return self._on_bars(*self._render(image, label, M, (iw, ih), rng, soft, force), out_wh, (x0, y0))
        M = self.geometry(label, image.shape, rng, out_wh, far)
        force = far or self._outside(M, image.shape, out_wh) > self.max_outside
        return self._render(image, label, M, out_wh, rng, soft, force)

    @staticmethod
    def _outside(M, shape, out_wh, n: int = 12) -> float:
        """The share of the output frame (an n x n grid of points) that ``M`` maps from outside the photo."""
        inv = cv2.invertAffineTransform(np.asarray(M, np.float64))
        xs, ys = np.meshgrid((np.arange(n) + 0.5) * out_wh[0] / n, (np.arange(n) + 0.5) * out_wh[1] / n)
        sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        h, w = shape[:2]
        return float(((sx < 0) | (sx > w) | (sy < 0) | (sy > h)).mean())

    def _render(self, image, label, M, out_wh, rng, soft=None, force_composite: bool = False):
        """Warp with ``M`` onto ``out_wh``, then background, occluders, held objects, backlight and
        photometric changes. Returns ``(image, label, soft)``."""
        out_w, out_h = out_wh
        composite = label is not None and (rng.random() < self.p_composite or force_composite)
        soft_out = None
        if composite:
            img, lab = warp_pair(image, label, M, out_wh, border="constant", label_border=0)
            if self.composite_alpha == "soft" and soft is not None:
                alpha = _warp_soft(soft, M, out_wh, cv2.BORDER_CONSTANT)
                lab = (alpha >= 0.5).astype(np.uint8)
            else:
                alpha = (lab != 0).astype(np.float32)  # person and ignore band
                if self.feather > 0:
                    alpha = cv2.GaussianBlur(alpha, (0, 0), self.feather)
            bg = self.bank.sample(out_h, out_w, rng)
            if self.p_bystander > 0 and rng.random() < self.p_bystander:
                box = person_bbox(lab)
                if box is not None:
                    x0, y0, x1, y1 = box
                    add_bystander(bg, y1 - y0, (x0 + x1) / 2, self.people, rng)
            bg = bg.astype(np.float32)
            img = (bg + alpha[..., None] * (img.astype(np.float32) - bg)).clip(0, 255).astype(np.uint8)
            if soft is not None:
                soft_out = alpha.copy()  # the composite's own matte: its exact person probability
        else:
            img, lab = warp_pair(image, label, M, out_wh, border="reflect")
            if soft is not None:
                soft_out = _warp_soft(soft, M, out_wh, cv2.BORDER_REFLECT_101)
                if self.soft_label_edges and lab is not None:
                    lab = (soft_out >= 0.5).astype(np.uint8)
        if lab is not None and self.p_occluder > 0 and rng.random() < self.p_occluder:
            before = lab.copy()
            draw_occluder(img, lab, rng, self.p_occluder_foreground)
            if soft_out is not None:
                changed = lab != before
                soft_out[changed] = (lab[changed] == 1).astype(np.float32)
        if lab is not None and self.p_held > 0 and rng.random() < self.p_held:
            kind = self.held_kinds[int(rng.integers(len(self.held_kinds)))]
            drawn = draw_held_object(img, lab, rng, kind)
            lab[drawn] = 1
            if soft_out is not None:
                soft_out[drawn] = 1.0
        if lab is not None and self.p_backlight > 0 and rng.random() < self.p_backlight:
            img = backlight(img, soft_out if soft_out is not None else (lab == 1), rng)
        img = self.photometric(img, rng)
        return img, lab, soft_out

    @staticmethod
    def _on_bars(inner, inner_lab, inner_soft, out_wh, xy=None):
        """The rendered ``inner`` frame centred (or at ``xy``) on the engine's grey bars: label and soft 0."""
        out_w, out_h = out_wh
        ih, iw = inner.shape[:2]
        x0, y0 = xy if xy is not None else ((out_w - iw) // 2, (out_h - ih) // 2)
        img = np.full((out_h, out_w, 3), PAD_VALUE, np.uint8)
        img[y0:y0 + ih, x0:x0 + iw] = inner
        lab = soft = None
        if inner_lab is not None:
            lab = np.zeros((out_h, out_w), np.uint8)
            lab[y0:y0 + ih, x0:x0 + iw] = inner_lab
        if inner_soft is not None:
            soft = np.zeros((out_h, out_w), np.float32)
            soft[y0:y0 + ih, x0:x0 + iw] = inner_soft
        return img, lab, soft

    def _letterboxed(self, image, label, rng, out_wh=None, soft=None):
        h, w = image.shape[:2]
        out_wh = tuple(out_wh or self.out_wh)
        _, _, fw, fh = letterbox_box((w, h), out_wh)
        fill = rng.uniform(*self.letterbox_fill)
        iw, ih = max(8, round(fw * fill)), max(8, round(fh * fill))
        angle = rng.uniform(-self.max_rotation, self.max_rotation) / 2
        src_h = ih / min(iw / w, ih / h)  # the source height that fills the inner box: the whole photo
        M = similarity((w / 2.0, h / 2.0), src_h, (iw, ih), angle, rng.random() < self.p_flip)
        return self._on_bars(*self._render(image, label, M, (iw, ih), rng, soft), out_wh)

    @classmethod
    def from_config(cls, out_wh, cfg: dict | None) -> "Synthesizer":
        cfg = dict(cfg or {})
        photometric = Photometric.from_config(cfg.pop("photometric", None))
        fields = set(cls.__dataclass_fields__) - {"out_wh", "photometric"}
        unknown = set(cfg) - fields
        if unknown:
            from vbg_app.errors import BadInput
            raise BadInput(f"unknown synthesis options {sorted(unknown)}", f"use: {', '.join(sorted(fields))}")
        cfg = {k: (tuple(tuple(a) for a in v) if k == "frame_aspects" else tuple(v))
               if isinstance(v, list) and k not in ("backgrounds", "bystanders") else v for k, v in cfg.items()}
        return cls(out_wh=tuple(out_wh), photometric=photometric, **cfg)

    def __getstate__(self):  # the background and people caches are per process
        state = self.__dict__.copy()
        state["bank"] = state["people"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.bank = self._bank()
        self.people = PeopleBank(self.bystanders)

