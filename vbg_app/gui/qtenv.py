"""Keep OpenCV's bundled Qt from breaking PySide6. Import this module before PySide6 (every GUI module does).

The non-headless ``opencv-contrib-python`` wheel (which mediapipe needs) sets ``QT_QPA_PLATFORM_PLUGIN_PATH``
and ``QT_QPA_FONTDIR`` to its own Qt 5 plugins and fonts when ``cv2`` is imported. PySide6 then tries to load
Qt 5 platform plugins ("Could not load the Qt platform plugin xcb") or finds no fonts. We import cv2 first, so
its changes are made now, and drop the variables that point inside cv2's folder; a value the user set
elsewhere is left alone. Must run before the QApplication is created (Qt reads them then).
"""
from __future__ import annotations

import os


def fix_qt_env() -> list[str]:
    """Remove cv2's Qt variables from the environment; returns the names removed."""
    try:
        import cv2
    except ImportError:
        return []
    cv2_dir = os.path.dirname(os.path.abspath(cv2.__file__))
    removed = []
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(name)
        if value and os.path.abspath(value).startswith(cv2_dir):
            os.environ.pop(name, None)
            removed.append(name)
    return removed


REMOVED = fix_qt_env()
