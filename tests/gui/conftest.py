"""Fixtures for the GUI tests: offscreen Qt, private settings/data folders, a fast fake segmenter, windows
that are always shut down (no thread outlives its test)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

from vbg_app.gui import qtenv  # noqa: E402,F401  (drops cv2's Qt plugin path before PySide6 starts)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")


class EllipseSegmenter:
    """A deterministic stand-in for the model: a centred ellipse is "person" (1), the rest background (0)."""

    provider = "cpu"
    fallback_reason = ""

    def __init__(self, name="connectnet", size_wh=(64, 36)):
        self.name = name
        self.input_size_wh = size_wh
        w, h = size_wh
        prob = np.zeros((h, w), np.float32)
        cv2.ellipse(prob, (w // 2, h * 3 // 4), (w // 6, h // 2), 0, 0, 360, 1.0, -1)
        self.prob = prob
        self.closed = False
        self.calls = 0

    def segment(self, frame):
        self.calls += 1
        return self.prob.copy()

    def close(self):
        self.closed = True


@pytest.fixture
def restore_log_handlers():
    """gui.main() adds its log handlers to the root logger: remove and close the ones added during the test."""
    import logging

    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for h in root.handlers[:]:
        if h not in before:
            root.removeHandler(h)
            h.close()


@pytest.fixture
def gui_dirs(tmp_path, monkeypatch):
    """VBG_CONFIG_DIR / VBG_DATA_DIR in tmp_path; returns (config_dir, data_dir)."""
    cfg, data = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("VBG_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("VBG_DATA_DIR", str(data))
    return cfg, data


@pytest.fixture
def fake_engine(monkeypatch):
    """create_segmenter → EllipseSegmenter for both engines, unless a model path containing 'missing' is given
    (that raises the real 'model not found' error). Returns the list of segmenters made."""
    from vbg_app import engines
    from vbg_app.errors import BadInput

    made = []

    def create(engine="connectnet", model=None, provider="auto", threads=0, strict=False):
        if model and "missing" in str(model):
            raise BadInput(f"model file {model} not found", "check the path")
        seg = EllipseSegmenter(engine)
        made.append(seg)
        return seg

    monkeypatch.setattr(engines, "create_segmenter", create)
    return made


@pytest.fixture
def make_window(qtbot, gui_dirs, fake_engine):
    """Factory for MainWindow on the demo source at 640x360 (fast), never using a tray unless asked."""
    from vbg_app.gui.main_window import MainWindow

    windows = []

    def make(use_tray=False, scan_cameras=False, probe_virtual_camera=False, **overrides):
        base = {"source": "demo", "camera_size": "640x360", "show_original": True}
        base.update(overrides)
        win = MainWindow(overrides=base, use_tray=use_tray, preview_width=320, scan_cameras=scan_cameras,
                         probe_virtual_camera=probe_virtual_camera)
        qtbot.addWidget(win)
        windows.append(win)
        win.show()
        return win

    yield make
    for win in windows:
        win.shutdown()
