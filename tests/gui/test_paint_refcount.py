"""Issue #13: painting the app's widgets must not lower ``None``'s reference count.

PySide6-Essentials 6.12.0 takes one reference to ``None`` away on nearly every QPainter call (setBrush, setPen,
fillRect, drawRoundedRect, drawImage...). Before Python 3.12 ``None`` is an ordinary object, so after some
thousands of paints it is freed and the app aborts with ``Fatal Python error: none_dealloc`` (25-52 s into a
call). These tests paint the real widgets a few hundred times and fail on such a PySide6; they give ``None``
back what it lost, so a broken install fails them without killing the test process. On Python 3.12+ ``None``
is immortal and they pass trivially. The start-up guard against it is tested in test_qtcheck.py.
"""
import sys

import numpy as np
import PySide6
import pytest
from PySide6.QtGui import QImage

from tests.gui.test_gui import wait_running
from vbg_app.gui.qtcheck import restore_none_refs

MAX_DROP = 50  # a sound PySide6 stays within a few references; the bug loses about one per QPainter call


def none_refcount_drop(paint, times: int, warmup: int = 5) -> int:
    """How far ``None``'s reference count fell over ``times`` calls of ``paint()`` (after ``warmup`` unmeasured
    ones, which fill PySide6's caches); what was lost is given back."""
    ballast = [None] * 200_000  # noqa: F841  (None cannot reach zero while a broken PySide6 paints)
    restore_none_refs(_measured(paint, warmup))
    drop = _measured(paint, times)
    restore_none_refs(drop)
    return drop


def _measured(paint, times: int) -> int:
    before = sys.getrefcount(None)
    for _ in range(times):
        paint()
    return before - sys.getrefcount(None)


def broken(drop: int, times: int, what: str) -> str:
    return (f"None's reference count fell by {drop} over {times} paints of {what} (PySide6 {PySide6.__version__}, "
            f"Python {sys.version.split()[0]}): the app would abort with none_dealloc (issue #13)")


def frame_image(w: int = 640, h: int = 360) -> QImage:
    bgr = np.zeros((h, w, 3), np.uint8)
    bgr[:, :, 0] = np.linspace(0, 255, w, dtype=np.uint8)
    bgr[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = (60, 170, 230)
    return QImage(bgr.data, w, h, bgr.strides[0], QImage.Format.Format_BGR888).copy()


@pytest.mark.parametrize("with_image", [True, False], ids=["frame-and-caption", "placeholder"])
def test_painting_the_preview_keeps_nones_refcount(qtbot, with_image):
    from vbg_app.gui.main_window import PreviewView

    view = PreviewView("What others see")
    qtbot.addWidget(view)
    view.resize(480, 270)
    if with_image:
        view.set_image(frame_image())
    drop = none_refcount_drop(view.grab, 300)
    assert drop < MAX_DROP, broken(drop, 300, "the preview")


def test_drawing_the_app_icon_keeps_nones_refcount(qtbot):
    from vbg_app.gui.tray import app_icon

    drop = none_refcount_drop(lambda: app_icon(active=True), 40)  # 7 sizes, ~10 QPainter calls each
    assert drop < MAX_DROP, broken(drop, 40, "the app icon")


def test_painting_the_whole_window_keeps_nones_refcount(qtbot, make_window):
    """Previews, banner, virtual-camera row, gallery tiles and tabs, as the screen shows them."""
    win = make_window()
    wait_running(qtbot, win, frames=3)
    win.worker.shutdown()  # the last frame stays in the previews; no other thread runs while we count
    win.show_message("warning", "A banner, painted too.")
    assert not win.preview.image().isNull()
    drop = none_refcount_drop(win.grab, 100)
    assert drop < MAX_DROP, broken(drop, 100, "the main window")
