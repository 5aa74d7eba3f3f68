"""The background library behind the gallery (no Qt): built-in images, preset colours, the user's own files.

The user's images and videos are *copied* into ``<data_dir>/backgrounds/`` when added, so they survive the
original being moved or deleted and stay across restarts; removing one deletes only that copy, never a file
outside the library folder. A file is checked before it is copied (an image must decode, a video must give a
first frame), so a broken file is refused with a message instead of failing later in the pipeline.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vbg_app import resources
from vbg_app.errors import BadInput
from vbg_app.imagefile import IMAGE_EXTS, MAX_PIXELS, VIDEO_EXTS, decode_size, probe_image, read_image
from vbg_app.resources import file_digest
from vbg_app.quiet import quiet_decoding
from vbg_app.specs import ColorSpec, ImageSpec, VideoSpec, parse_background

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 2 * 1024 ** 3
PRESET_COLORS = (
    ("#00B140", "Green screen"),
    ("#FFFFFF", "White"),
    ("#2B2D42", "Charcoal"),
    ("#1D3557", "Navy"),
    ("#E9E4DC", "Warm grey"),
    ("#A8DADC", "Mint"),
)
BUILTIN_TITLES = {
    "soft_gradient": "Soft gradient", "bokeh_lights": "Bokeh lights", "bookshelf": "Bookshelf",
    "office_window": "Office window", "hills": "Hills", "brick_wall": "Brick wall", "wood_panels": "Wood panels",
    "living_room": "Living room",
}


@dataclass(frozen=True)
class Entry:
    """One gallery tile: ``kind`` is none | blur | color | builtin | user; ``spec`` a compose.py spec."""

    kind: str
    spec: str
    title: str
    path: Path | None = None

    @property
    def parsed(self):
        """The spec as a :mod:`vbg_app.specs` dataclass (None for one that does not parse)."""
        try:
            return parse_background(self.spec)
        except BadInput:
            return None

    @property
    def is_video(self) -> bool:
        return isinstance(self.parsed, VideoSpec)

    @property
    def color(self) -> str:
        """``#RRGGBB`` of a colour tile, "" for any other."""
        parsed = self.parsed
        return parsed.hex if isinstance(parsed, ColorSpec) else ""


def builtin_dir() -> Path:
    return resources.asset_path("backgrounds")


def spec_for_file(path: Path) -> str:
    return str(VideoSpec(str(path)) if path.suffix.lower() in VIDEO_EXTS else ImageSpec(str(path)))


def path_of_spec(spec: str) -> Path | None:
    """The file of an ``image:PATH`` or ``video:PATH`` background spec, None for any other."""
    try:
        parsed = parse_background(spec or "")
    except BadInput:
        return None
    return Path(parsed.path).expanduser() if isinstance(parsed, (ImageSpec, VideoSpec)) else None


def _title(path: Path) -> str:
    stem = re.sub(r"-[0-9a-f]{8}$", "", path.stem)  # the dedup suffix added by add()
    return stem.replace("_", " ").strip() or path.name


def hex_to_bgr(text: str) -> tuple[int, int, int]:
    """'#RRGGBB' -> (b, g, r); ValueError when it is not one."""
    if not re.fullmatch(r"#?[0-9a-fA-F]{6}", text.strip()):
        raise ValueError(f"not a #RRGGBB colour: {text!r}")
    return ColorSpec.from_arg(text).bgr


def check_file(path: Path) -> None:
    """Raise :class:`BadInput` unless ``path`` is an image or video this app can show."""
    if not path.is_file():
        raise BadInput(f"{path} is not a file", "pick an image (JPEG, PNG, BMP, WebP) or a video (MP4, MOV, AVI, MKV, WebM)")
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS + VIDEO_EXTS:
        raise BadInput(f"{path.name} is not a supported image or video type",
                       f"use one of {', '.join(e.lstrip('.') for e in IMAGE_EXTS + VIDEO_EXTS)}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise BadInput(f"{path.name} is larger than 2 GB", "use a shorter or smaller video")
    if ext in IMAGE_EXTS:
        try:
            _data, fmt, w, h = probe_image(path, "background image")  # the header only
        except BadInput:
            fmt = ""  # not an image it can read: the decode below says so
        if fmt and not decode_size(fmt, w, h):
            raise BadInput(f"{path.name} is too large: {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), over the "
                           f"{MAX_PIXELS / 1e6:.0f}-megapixel limit for backgrounds",
                           "make it smaller first (a 3840x2160 image is plenty), then add it again")
    if first_frame(path) is None:
        what = "video" if ext in VIDEO_EXTS else "image"
        raise BadInput(f"{path.name} cannot be read as an {what} (damaged, empty or an unknown format)",
                       "open it in another program and save it again as JPEG/PNG or MP4")


def first_frame(path: Path, reduce: int = 1) -> np.ndarray | None:
    """The image itself (or a video's first frame) as BGR uint8, or None if it does not decode.

    ``reduce`` 2, 4 or 8 decodes JPEGs at reduced size (much faster thumbnails). An image over 40 megapixels
    (after that reduction, for a JPEG) is not decoded: None.
    """
    try:
        if path.suffix.lower() in VIDEO_EXTS:
            with quiet_decoding():  # FFmpeg's and OpenCV's own complaints about a damaged file stay off stderr
                cap = cv2.VideoCapture(str(path))
                try:
                    ok, frame = cap.read() if cap.isOpened() else (False, None)
                finally:
                    cap.release()
            return frame if ok and frame is not None and frame.size else None
        # the header first: nothing over 40 MP is decoded (a JPEG is decoded at 1/2..1/8 size instead), so a
        # small file declaring 30000x30000 pixels costs no gigabytes at every start of the GUI
        return read_image(path, "background image", reduce=reduce)
    except BadInput as exc:
        log.info("no thumbnail for %s: %s", path, exc.what)
        return None
    except Exception as exc:  # cv2.error, OSError
        log.info("cannot decode %s: %s", path, exc)
        return None


def thumbnail(entry: Entry, size_wh: tuple[int, int] = (160, 90), sample: np.ndarray | None = None) -> np.ndarray:
    """A BGR uint8 thumbnail of ``entry`` at ``size_wh`` (aspect-filled). ``sample`` is a frame to show
    for "none" and "blur" (default: a neutral drawing)."""
    return _framed(_thumbnail(entry, size_wh, sample))


def _framed(img: np.ndarray) -> np.ndarray:
    """A thin grey border, so a white or very light tile is still visible on a light window."""
    cv2.rectangle(img, (0, 0), (img.shape[1] - 1, img.shape[0] - 1), (170, 170, 170), 1)
    return img


def _thumbnail(entry: Entry, size_wh, sample) -> np.ndarray:
    from vbg_app.compose import aspect_fill

    w, h = size_wh
    if entry.kind == "color":
        img = np.empty((h, w, 3), np.uint8)
        img[:] = ColorSpec.from_arg(entry.color).bgr
        return img
    if entry.kind in ("none", "blur"):
        base = sample if sample is not None else _sample_scene(w * 2, h * 2)
        img = aspect_fill(base, h, w)
        if entry.kind == "blur":
            img = cv2.GaussianBlur(img, (0, 0), max(1.5, h / 25))
        return img
    path = entry.path or path_of_spec(entry.spec)
    frame = first_frame(path, reduce=4) if path else None
    if frame is None:
        img = np.full((h, w, 3), 90, np.uint8)
        cv2.line(img, (0, 0), (w - 1, h - 1), (60, 60, 200), 2, cv2.LINE_AA)
        return img
    img = aspect_fill(frame, h, w)
    if entry.is_video:  # a play triangle marks videos
        c = (w // 2, h // 2)
        r = max(6, h // 6)
        cv2.circle(img, c, r + 4, (30, 30, 30), -1, cv2.LINE_AA)
        tri = np.array([[c[0] - r // 2, c[1] - r + 2], [c[0] - r // 2, c[1] + r - 2], [c[0] + r, c[1]]], np.int32)
        cv2.fillConvexPoly(img, tri, (255, 255, 255), cv2.LINE_AA)
    return img


def _sample_scene(w: int, h: int) -> np.ndarray:
    """A little drawn scene (wall, window, shelf, a person's silhouette) for the none/blur tiles."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (176, 186, 200)
    cv2.rectangle(img, (w // 12, h // 8), (w // 3, h * 2 // 3), (236, 236, 230), -1)
    cv2.rectangle(img, (w * 2 // 3, h // 2), (w * 11 // 12, h // 2 + h // 20), (60, 85, 120), -1)
    for i, c in enumerate(((40, 40, 150), (120, 80, 30), (50, 120, 60), (30, 110, 170))):
        x = w * 2 // 3 + 6 + i * (w // 28)
        cv2.rectangle(img, (x, h // 2 - h // 6), (x + w // 32, h // 2), c, -1)
    cx = w // 2
    cv2.ellipse(img, (cx, h + h // 10), (w // 5, h // 2), 0, 180, 360, (90, 70, 50), -1, cv2.LINE_AA)
    cv2.ellipse(img, (cx, h // 2), (w // 11, h // 6), 0, 0, 360, (120, 150, 200), -1, cv2.LINE_AA)
    return img


class BackgroundLibrary:
    """The tiles of the gallery; the user's files live in ``<data_dir>/backgrounds``."""

    def __init__(self, data_dir: Path, builtin: Path | None = None) -> None:
        self.user_dir = Path(data_dir) / "backgrounds"
        self.builtin = Path(builtin) if builtin is not None else builtin_dir()

    # -- listing ---------------------------------------------------------------------------------
    def builtin_entries(self) -> list[Entry]:
        if not self.builtin.is_dir():
            return []
        files = sorted(p for p in self.builtin.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        order = list(BUILTIN_TITLES)
        files.sort(key=lambda p: (order.index(p.stem) if p.stem in order else len(order), p.name))
        return [Entry("builtin", f"image:{p}", BUILTIN_TITLES.get(p.stem, _title(p)), p) for p in files]

    def user_entries(self) -> list[Entry]:
        if not self.user_dir.is_dir():
            return []
        files = [p for p in self.user_dir.iterdir()
                 if p.is_file() and p.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS and not p.name.startswith(".")]
        files.sort(key=lambda p: (p.stat().st_mtime, p.name))
        return [Entry("user", spec_for_file(p), _title(p), p) for p in files]

    @staticmethod
    def fixed_entries(custom_colors=()) -> list[Entry]:
        out = [Entry("none", "none", "No effect"), Entry("blur", "blur", "Blur")]
        seen = set()
        for hex_color, name in list(PRESET_COLORS) + [(c, c.upper()) for c in custom_colors]:
            key = hex_color.upper()
            if key in seen:
                continue
            seen.add(key)
            out.append(Entry("color", f"color:{key}", name))
        return out

    def is_user_file(self, path: Path) -> bool:
        try:
            return Path(path).resolve().parent == self.user_dir.resolve()
        except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
            return False

    # -- changes ---------------------------------------------------------------------------------
    def add(self, source: str | Path) -> Entry:
        """Check ``source`` and copy it into the library; returns its entry. Adding the same content twice
        returns the existing copy. Raises :class:`BadInput` for a file that cannot be used."""
        src = Path(source).expanduser()
        check_file(src)
        if self.is_user_file(src):
            return Entry("user", spec_for_file(src), _title(src), src)
        try:
            self.user_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"cannot create the backgrounds folder {self.user_dir} ({exc.strerror})",
                           "check that your home folder is writable") from None
        digest = _digest(src)
        for existing in self.user_dir.glob(f"*-{digest[:8]}{src.suffix.lower()}"):
            if existing.is_file() and _digest(existing) == digest:
                return Entry("user", spec_for_file(existing), _title(existing), existing)
        stem = re.sub(r"[^\w.-]+", "_", src.stem).strip("._") or "background"
        dest = self.user_dir / f"{stem[:60]}-{digest[:8]}{src.suffix.lower()}"
        # copy to a hidden ".part" file, flush it to disk, then rename: a crash or a full disk never leaves
        # a half-copied background in the gallery (a leftover .part is hidden and overwritten next time)
        tmp = dest.with_name("." + dest.name + ".part")
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            tmp.replace(dest)
        except BaseException as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            if not isinstance(exc, OSError):
                raise
            raise BadInput(f"cannot copy {src.name} into {self.user_dir} ({exc.strerror})",
                           "check free disk space and that the folder is writable") from None
        log.info("added background %s as %s", src, dest)
        return Entry("user", spec_for_file(dest), _title(dest), dest)

    def remove(self, entry: Entry) -> None:
        """Delete the library's copy of a user background (never anything outside the library folder)."""
        if entry.kind != "user" or entry.path is None or not self.is_user_file(entry.path):
            raise BadInput(f"{entry.title} is not one of your added backgrounds", "only added backgrounds can be removed")
        try:
            entry.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise BadInput(f"cannot remove {entry.path} ({exc.strerror})", "check the folder's permissions") from None


def _digest(path: Path) -> str:
    """sha1: its first 8 hex digits name the copies made so far (``NAME-1a2b3c4d.jpg``)."""
    return file_digest(path, "sha1")
