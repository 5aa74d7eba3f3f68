"""Matte stage: a solid person and a tight edge, between the temporal filter and the blend (issue #15).

Stage protocol (the compositor calls it; see docs/ARCHITECTURE.md)::

    m = Matte()
    prob = m.solidify(prob)      # float32 (h, w) 0..1 at model resolution -> same shape, may be a new array
    alpha = m.tighten(alpha)     # uint8 (H, W) 0..255 at any resolution -> a tighter alpha (out=: into that)

* :meth:`Matte.solidify` (model resolution, after the compositor's blob clean-up): holes in the person --
  regions at or below 0.5 that the person surrounds (they do not reach the image border) -- are filled
  when they are small (under ``hole_frac`` of the person's area: the pinholes a segmenter leaves in a
  shirt) or unsure (their mean value at least ``unsure``: a held object the model half believes in).
  A gap the model is sure of and that is large (between an arm and the body) stays.  Then, deeper than
  ``core_px`` model pixels inside the person (holes included), every value of at least ``unsure`` becomes
  1: a held helmet the model gives 0.45-0.75 is solid, while the outline itself is left as it is.
* :meth:`Matte.tighten` (the refined alpha, before the blend): ``alpha = smoothstep(lo, hi, alpha)``, a
  table lookup.  The segmenter's edge ramp is several pixels wide; a camera's edge is about one.  The wide
  ramp is what shows the old background as a light rim round hair and shoulders, and what makes a held
  object that the model gives 0.7 see-through.  The curve keeps 0.5 where it was (the outline does not
  move, a mask thresholded at 0.5 is unchanged), sends values under ``lo`` to 0 (faint ghosts of
  background objects disappear) and values over ``hi`` to 1 (a 0.75 helmet becomes solid).

Measured on the exact-GT clips (docs/temporal.md): composite error in the 10-px edge band 5.68 -> 4.57
levels with ``lo, hi = 0.2, 0.8`` (none filter, ConnectNet).  The blurred background does not depend on
it: the compositor renders it from the untightened alpha, so blur without halo stays as it was.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import BadInput


def smoothstep_lut(lo: float, hi: float) -> np.ndarray:
    """uint8 (256,) table of ``255 * smoothstep(lo, hi, i / 255)``."""
    if not 0.0 <= lo < 0.5 < hi <= 1.0:
        raise BadInput(f"matte ramp {lo}..{hi} does not surround 0.5", "use 0 <= lo < 0.5 < hi <= 1, e.g. 0.2, 0.8")
    t = np.clip((np.arange(256, dtype=np.float64) / 255.0 - lo) / (hi - lo), 0.0, 1.0)
    return np.round(255.0 * t * t * (3.0 - 2.0 * t)).astype(np.uint8)


class Matte:
    """See the module docstring.  ``solid=False`` / ``tight=False`` switch either half off."""

    def __init__(self, lo: float = 0.2, hi: float = 0.8, hole_frac: float = 0.02, unsure: float = 0.3,
                 core_px: int = 3, solid: bool = True, tight: bool = True) -> None:
        self.lut = smoothstep_lut(lo, hi)
        self.lo, self.hi = float(lo), float(hi)
        self.hole_frac = float(hole_frac)
        self.unsure = float(unsure)
        self._core_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(core_px) + 1,) * 2)
        self.solid = bool(solid)
        self.tight = bool(tight)

    def solidify(self, prob: np.ndarray) -> np.ndarray:
        """``prob`` with the person made solid (see the module docstring); ``prob`` itself if unchanged."""
        if not self.solid:
            return prob
        h, w = prob.shape
        person = (prob > 0.5).view(np.uint8)  # 0/1
        area = cv2.countNonZero(person)
        if area == 0:
            return prob
        # holes: background (4-connected: a diagonal chink in the outline does not open a hole) that the
        # image border does not reach -- flooded from a 1-px frame round the image, so every stretch of
        # border background is reached at once (0.04 ms; labelling the whole background took 0.6 ms)
        bg = np.ones((h + 2, w + 2), np.uint8)
        np.subtract(1, person, out=bg[1:-1, 1:-1])
        cv2.floodFill(bg, None, (0, 0), 0, flags=4)
        holes = bg[1:-1, 1:-1]
        out = prob.copy()
        filled = person.copy()
        if cv2.countNonZero(holes):
            bx, by, bw, bh = cv2.boundingRect(holes)
            box = (slice(by, by + bh), slice(bx, bx + bw))
            n, labels, stats, _ = cv2.connectedComponentsWithStats(holes[box], connectivity=4)
            pbox, obox, fbox = prob[box], out[box], filled[box]
            for lab in range(1, n):
                hole = labels == lab
                if stats[lab, cv2.CC_STAT_AREA] > self.hole_frac * area and float(pbox[hole].mean()) < self.unsure:
                    continue  # a large gap the model is sure of: real background between arm and body
                obox[hole] = 1.0
                fbox[hole] = 1
        # deeper than core_px inside the (filled) person, whatever the model half believes in is person
        core = cv2.erode(filled, self._core_kernel)
        out[core.view(bool) & (out >= self.unsure)] = 1.0
        return out

    def tighten(self, alpha8: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The smoothstep curve applied to a uint8 alpha, into ``out`` (may be ``alpha8`` itself: in place)."""
        if not self.tight:
            return alpha8
        return cv2.LUT(alpha8, self.lut, dst=out)
