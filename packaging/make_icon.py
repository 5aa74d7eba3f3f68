"""Draw vbg's application icon into packaging/icons/ (vbg.png 256x256, vbg.ico 16..256).

The picture is the one the app draws for its window and tray (``vbg_app.gui.tray.app_icon``: a white person
in front of a blue-to-peach gradient, rounded square), so the launcher, the window and the tray agree. The
files are committed; rerun this only when that drawing changes::

    QT_QPA_PLATFORM=offscreen python packaging/make_icon.py

License: the icon is vbg's own drawing, Apache-2.0 like the rest of vbg (packaging/icons/LICENSE.md).
"""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def _png_bytes(image) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    return bytes(data)


def _ico(pngs: list[bytes], sizes) -> bytes:
    """ICONDIR + one ICONDIRENTRY per image + the PNG payloads (size 256 is written as 0)."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, payload = b"", b""
    for size, png in zip(sizes, pngs):
        dim = 0 if size >= 256 else size
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset + len(payload))
        payload += png
    return header + entries + payload


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from vbg_app.gui.tray import app_icon  # imports qtenv first (cv2's Qt variables)

    from PySide6.QtCore import QSize
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841  (QPixmap needs one)
    out = HERE / "icons"
    out.mkdir(exist_ok=True)
    icon = app_icon()
    png = icon.pixmap(QSize(256, 256)).toImage()
    if png.width() != 256 or not png.save(str(out / "vbg.png"), "PNG"):
        print("error: could not write vbg.png", file=sys.stderr)
        return 1
    # Windows (PyInstaller's EXE icon): an .ico holding PNG-compressed images (Vista and later read them)
    (out / "vbg.ico").write_bytes(_ico([_png_bytes(icon.pixmap(QSize(s, s)).toImage()) for s in ICO_SIZES],
                                       ICO_SIZES))
    for f in sorted(out.glob("vbg.*")):
        print(f"{f.relative_to(ROOT)}  {f.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
