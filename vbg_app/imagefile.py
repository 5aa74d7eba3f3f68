"""Opening a user's file safely: say what a path is when it is not a file, and read an image's size from its
header before decoding it.

``check_path`` never opens the file (a named pipe would block the open until something writes to it), so a
folder, a symbolic link loop, a dangling link, a pipe, a device or a socket is named as what it is instead
of "not found". ``image_size`` parses the header of a PNG, JPEG, BMP, WebP, GIF or TIFF file (a few bytes,
no decoding): an 855 KB PNG can declare 30000x30000 pixels, which OpenCV would decode into 2.7 GB (5 GB at
the peak). ``read_image`` refuses anything over ``max_pixels`` (40 megapixels by default) before decoding it,
except a sequential JPEG of up to 200 megapixels, which libjpeg itself decodes at 1/2, 1/4 or 1/8 of its
size, in little memory, to bring it under the limit (a 50 MP camera photo works as a background; a
progressive JPEG is decoded whole, so its full size counts). OpenCV has no header-only reader in Python, and
Pillow is not a dependency, hence the small parser.
"""
from __future__ import annotations

import errno
import math
import os
import shlex
import stat
import struct
from pathlib import Path

import numpy as np

from vbg_app.errors import BadInput

MAX_PIXELS = 40_000_000
REDUCIBLE = 5  # a sequential JPEG of up to 5 x MAX_PIXELS (200 MP, more than any camera) is decoded reduced
FORMATS = "JPEG, PNG, BMP, WebP, GIF or TIFF"
# The one list of file extensions vbg treats as still images and as videos (sources, backgrounds, the GUI's
# library and file dialogs, evaluation and training folders, vbg label). A GIF plays as a video.
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".mpg", ".mpeg", ".gif")
_REDUCED = {1: None, 2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


# -- paths --------------------------------------------------------------------------------------------
def _a(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file, folder or link"


def check_path(path, what: str, missing_fix: str = "check the path (relative paths start in the current folder)",
               noun: str = "file") -> Path:
    """``path`` as a :class:`Path` if it is a non-empty regular file (or a link to one), else :class:`BadInput`
    saying what it is: ``"<what> <path> not found"``, ``"... is a folder, not a <noun>"``, ``"... is a symbolic
    link loop"``, ``"... is not a regular file (a pipe)"``, ``"... is empty"``. Never opens the file."""
    p = Path(os.path.expanduser(str(path)))
    try:
        st = os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadInput(f"{what} {p} is a symbolic link loop",
                           "point the link at a real file, or give the file's own path") from None
        if os.path.islink(p):
            try:
                target = os.readlink(p)
            except OSError:
                target = "?"
            raise BadInput(f"{what} {p} is a symbolic link to {target}, which does not exist",
                           "point the link at a real file, or give the file's own path") from None
        if isinstance(exc, PermissionError):
            raise BadInput(f"no permission to look at {what} {p}", "check the permissions of its folders") from None
        raise BadInput(f"{what} {p} not found", missing_fix) from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{what} {p} is a folder, not {_a(noun)}", f"give the path of {_a(noun)} inside it")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{what} {p} is not a regular file ({_special_kind(st.st_mode)})",
                       f"save it to {_a(noun)} first and give that path")
    if st.st_size == 0:
        raise BadInput(f"{what} {p} is empty", f"use a complete {noun}")
    return p


# -- image headers --------------------------------------------------------------------------------------
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(b) -> tuple[str, int, int] | None:
    i, n = 2, len(b)
    while i + 4 <= n:
        if b[i] != 0xFF:  # stray bytes between segments: libjpeg skips them too
            i += 1
            continue
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        length = struct.unpack_from(">H", b, i + 2)[0]
        if marker in _JPEG_SOF:
            if i + 9 > n:
                return None
            h, w = struct.unpack_from(">HH", b, i + 5)
            # sequential (baseline, extended, arithmetic) JPEGs decode at 1/2..1/8 in little memory; libjpeg
            # holds a progressive (or lossless, hierarchical) one's coefficients whole: ~3 bytes a pixel
            return ("JPEG" if marker in (0xC0, 0xC1, 0xC9) else "progressive JPEG"), w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def _tiff_size(b) -> tuple[int, int] | None:
    end = "<" if bytes(b[:2]) == b"II" else ">"
    if len(b) < 8 or struct.unpack_from(end + "H", b, 2)[0] != 42:  # 43 = BigTIFF: not parsed, refused
        return None
    off = struct.unpack_from(end + "I", b, 4)[0]
    if off + 2 > len(b):
        return None
    count = struct.unpack_from(end + "H", b, off)[0]
    size = {}
    for k in range(min(count, 4096)):
        e = off + 2 + 12 * k
        if e + 12 > len(b):
            break
        tag, typ = struct.unpack_from(end + "HH", b, e)
        if tag in (256, 257):
            if typ == 3:
                size[tag] = struct.unpack_from(end + "H", b, e + 8)[0]
            elif typ == 4:
                size[tag] = struct.unpack_from(end + "I", b, e + 8)[0]
    return (size[256], size[257]) if 256 in size and 257 in size else None


def image_size(data) -> tuple[str, int, int] | None:
    """``(format, width, height)`` from an image file's header (bytes or a uint8 array of the whole file, or
    of its start), or None when it is not a PNG, JPEG, BMP, WebP, GIF or TIFF header this can read."""
    b = memoryview(np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1))
    head = bytes(b[:32])
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            fmt, (w, h) = "PNG", struct.unpack_from(">II", b, 16)
        elif head.startswith(b"\xff\xd8"):
            info = _jpeg_size(b)
            if info is None:
                return None
            fmt, w, h = info
        elif head.startswith(b"BM"):
            fmt = "BMP"
            if struct.unpack_from("<I", b, 14)[0] == 12:  # OS/2 header
                w, h = struct.unpack_from("<HH", b, 18)
            else:
                w, h = struct.unpack_from("<ii", b, 18)
                w, h = abs(w), abs(h)  # a negative height is a top-down bitmap
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            if len(head) < 30:
                return None
            fmt, chunk = "WebP", head[12:16]
            if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
                w, h = (v & 0x3FFF for v in struct.unpack_from("<HH", b, 26))
            elif chunk == b"VP8L" and head[20] == 0x2F:
                bits = struct.unpack_from("<I", b, 21)[0]
                w, h = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            elif chunk == b"VP8X":
                w = int.from_bytes(head[24:27], "little") + 1
                h = int.from_bytes(head[27:30], "little") + 1
            else:
                return None
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            fmt, (w, h) = "GIF", struct.unpack_from("<HH", b, 6)
        elif head[:4] in (b"II*\x00", b"MM\x00*"):
            fmt, size = "TIFF", _tiff_size(b)
            if size is None:
                return None
            w, h = size
        else:
            return None
    except (struct.error, IndexError):  # a file that ends inside its header
        return None
    if w <= 0 or h <= 0:
        return None
    return fmt, int(w), int(h)


# -- decoding -----------------------------------------------------------------------------------------
def _resize_fix(p: Path) -> str:
    out = p.with_name(f"{p.stem}_4k{p.suffix or '.png'}")
    return f"make it smaller first, e.g. ffmpeg -i {shlex.quote(str(p))} -vf scale=3840:-2 {shlex.quote(str(out))}"


def probe_image(path, what: str = "image", missing_fix: str = "check the path (relative paths start in the "
                "current folder)") -> tuple[np.ndarray, str, int, int]:
    """Check ``path`` (:func:`check_path`) and read it: ``(file bytes, format, width, height)``. BadInput when
    it cannot be read or its header is not one of the formats vbg reads."""
    p = check_path(path, what, missing_fix, noun="image file")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as exc:
        raise BadInput(f"{what} {p} cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    info = image_size(data)
    if info is None:
        raise BadInput(f"{what} {p} is not a {FORMATS} image (or it is damaged)", "use a JPEG, PNG, BMP or WebP file")
    return (data, *info)


def decode_size(fmt: str, w: int, h: int, max_pixels: int = MAX_PIXELS, reduce: int = 1) -> int:
    """The reduction (1, 2, 4 or 8, at least ``reduce``) at which a ``fmt`` image of ``w`` x ``h`` decodes
    within ``max_pixels``, or 0 when none does. Only a sequential JPEG decodes at a reduced size natively (and
    only up to ``REDUCIBLE`` times ``max_pixels``: its whole data is still read); OpenCV decodes any other
    format, a progressive JPEG included, whole before shrinking it, so its full size is what counts."""
    reducible = fmt == "JPEG" and w * h <= REDUCIBLE * max_pixels
    for r in (1, 2, 4, 8):
        if r < reduce:
            continue
        if not reducible:
            return r if w * h <= max_pixels else 0
        if math.ceil(w / r) * math.ceil(h / r) <= max_pixels:
            return r
    return 0


def decode(data: np.ndarray, path, what: str, fmt: str, w: int, h: int, max_pixels: int = MAX_PIXELS,
           reduce: int = 1) -> np.ndarray:
    """Decode the bytes :func:`probe_image` read into BGR uint8, refusing (BadInput) a size over ``max_pixels``
    before decoding; quietly (libpng's and OpenCV's own warnings are not printed)."""
    import cv2

    from vbg_app.quiet import quiet_decoding

    p = Path(path)
    r = decode_size(fmt, w, h, max_pixels, reduce)
    if not r:
        raise BadInput(f"{what} {p} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), over the "
                       f"{max_pixels / 1e6:.0f}-megapixel limit", _resize_fix(p))
    flag = getattr(cv2, _REDUCED[r]) if _REDUCED[r] else cv2.IMREAD_COLOR
    try:
        with quiet_decoding():
            img = cv2.imdecode(data, flag)
    except (cv2.error, MemoryError):
        img = None
    if img is None or not img.size:
        raise BadInput(f"{what} {p} is a damaged {fmt} file that OpenCV cannot decode",
                       "open it in an image editor and save it again as JPEG or PNG")
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:  # IMREAD_COLOR promises BGR uint8
        raise BadInput(f"{what} {p} decodes to {img.dtype} {img.shape}, not an 8-bit colour image",
                       "save it again as an 8-bit JPEG or PNG")
    return img


def read_image(path, what: str = "image", max_pixels: int = MAX_PIXELS, reduce: int = 1,
               missing_fix: str = "check the path (relative paths start in the current folder)") -> np.ndarray:
    """Check, probe and decode an image file into BGR uint8 (see the module docstring); BadInput with the fix
    for anything that is not a usable image. ``reduce`` 2, 4 or 8 asks for a smaller decode (thumbnails):
    exact for JPEG, a resize after decoding for the other formats."""
    data, fmt, w, h = probe_image(path, what, missing_fix)
    return decode(data, path, what, fmt, w, h, max_pixels, reduce)
