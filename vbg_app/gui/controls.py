"""Camera and quality controls: camera (with resolution and frame rate), engine and provider, smoothing,
edge refinement, mirror.

The panel only emits what the user chose; the window forwards it to the worker and to the settings. What is
*actually* running (a provider that fell back to the CPU, a camera that failed and the demo shown instead)
is shown by :meth:`ControlsPanel.show_engine` and :meth:`show_source`.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6: drops cv2's Qt plugin path)

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from vbg_app.config import SMOOTHING
from vbg_app.engines import ENGINE_TITLES
from vbg_app.errors import BadInput
from vbg_app.imagefile import VIDEO_EXTS
from vbg_app.temporal import FILTER_HINTS, FILTER_TITLES
from vbg_app.specs import CameraSpec, DemoSpec, VideoSpec, parse_source

log = logging.getLogger(__name__)

VIDEO_ITEM = "__video_file__"
SIZES = ("", "640x360", "640x480", "960x540", "1280x720", "1920x1080")
RATES = (0.0, 15.0, 24.0, 30.0, 60.0)


def _parsed(spec):
    """The source spec as a :mod:`vbg_app.specs` dataclass, or None when it is not one."""
    try:
        return parse_source(spec or "")
    except BadInput:
        return None


def _video_path(spec) -> str:
    """The file of a video source spec (``video:PATH`` or a bare video path), "" for any other."""
    parsed = _parsed(spec)
    return parsed.path if isinstance(parsed, VideoSpec) else ""


def _shrinkable(combo: QComboBox, chars: int = 14) -> None:
    """Let ``combo`` be narrower than its longest entry (the text is cut, the list still shows it whole): a long
    entry (a camera's full name, a longer smoothing title) must not push the row's label out
    of the side panel."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)


class _CameraScan(QObject):
    """Enumerates cameras off the GUI thread (probing devices can take a moment)."""

    done = Signal(list)

    def start(self) -> threading.Thread:
        def body() -> None:
            try:
                from vbg_app.sources import list_cameras
                cams = list_cameras()
            except Exception as exc:
                log.warning("listing cameras failed: %s", exc)
                cams = []
            self.done.emit(cams)

        t = threading.Thread(target=body, name="vbg-gui-camera-scan", daemon=True)
        t.start()
        return t


def available_providers() -> list[str]:
    try:
        from vbg_app.engines.onnx_engine import available_providers as ap
        return ap()
    except Exception:
        return ["cpu"]


class ControlsPanel(QWidget):
    sourceChosen = Signal(str, object, object)   # spec, size (w, h) | None, fps | None
    engineChosen = Signal(str, str)              # engine, provider
    smoothingChosen = Signal(str)
    refineChosen = Signal(bool)
    mirrorChosen = Signal(bool)
    batterySaverChosen = Signal(bool)

    def __init__(self, settings, parent=None) -> None:
        super().__init__(parent)
        self._video_path = _video_path(settings.source)
        self._scan_thread: threading.Thread | None = None
        self._cams: list = []
        self._last_source = settings.source
        self._scanner = _CameraScan(self)
        self._scanner.done.connect(self.set_cameras)

        # camera ----------------------------------------------------------------------------------
        self.camera = QComboBox()
        self.camera.setObjectName("camera")
        self.camera.setToolTip("Where the picture comes from")
        _shrinkable(self.camera)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for cameras again (after plugging one in)")
        self.refresh_button.clicked.connect(self.scan_cameras)
        self.size = QComboBox()
        for s in SIZES:
            self.size.addItem(s or "Camera default", s)
        self.rate = QComboBox()
        for r in RATES:
            self.rate.addItem(f"{r:g} fps" if r else "Camera default", r)
        self.source_state = QLabel("")
        self.source_state.setObjectName("sourceState")
        self.source_state.setWordWrap(True)
        self.source_state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        cam_row = QHBoxLayout()
        cam_row.addWidget(self.camera, 1)
        cam_row.addWidget(self.refresh_button)
        cam_box = QGroupBox("Camera")
        form = QFormLayout(cam_box)
        form.addRow(cam_row)
        form.addRow("Resolution", self.size)
        form.addRow("Frame rate", self.rate)
        form.addRow(self.source_state)

        # engine ----------------------------------------------------------------------------------
        self.engine = QComboBox()
        self.engine.setObjectName("engine")
        for key, title in ENGINE_TITLES.items():
            self.engine.addItem(title, key)
        self.provider = QComboBox()
        self.provider.setObjectName("provider")
        self.provider.addItem("Automatic (best available)", "auto")
        for p in available_providers():
            self.provider.addItem(p.upper() if len(p) <= 4 else p.capitalize(), p)
        self.engine_state = QLabel("")
        self.engine_state.setObjectName("engineState")
        self.engine_state.setWordWrap(True)
        self.engine_state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        eng_box = QGroupBox("Person detection")
        form = QFormLayout(eng_box)
        form.addRow("Engine", self.engine)
        form.addRow("Runs on", self.provider)
        form.addRow(self.engine_state)

        # quality ---------------------------------------------------------------------------------
        self.smoothing = QComboBox()
        self.smoothing.setObjectName("smoothing")
        for s in SMOOTHING:
            self.smoothing.addItem(FILTER_TITLES[s], s)
            self.smoothing.setItemData(self.smoothing.count() - 1, FILTER_HINTS[s], Qt.ItemDataRole.ToolTipRole)
        self.smoothing.setToolTip("Steadies the outline between frames (less flicker)")
        _shrinkable(self.smoothing)
        self.refine = QCheckBox("Refine edges (hair, shoulders)")
        self.mirror = QCheckBox("Mirror the picture")
        self.mirror.setToolTip("Flip left and right, like a mirror. Others in the meeting see it flipped too.")
        self.battery_saver = QCheckBox("Battery saver")
        self.battery_saver.setObjectName("batterySaver")
        self.battery_saver.setToolTip("Runs person detection only when the picture changes in a way the last outline "
                                      "cannot follow (at least every third frame): less CPU, the same picture "
                                      "in the measured meeting clips")
        q_box = QGroupBox("Quality")
        form = QFormLayout(q_box)
        form.addRow("Smoothing", self.smoothing)
        form.addRow(self.refine)
        form.addRow(self.mirror)
        form.addRow(self.battery_saver)

        layout = QVBoxLayout(self)
        layout.addWidget(cam_box)
        layout.addWidget(eng_box)
        layout.addWidget(q_box)
        layout.addStretch(1)

        self.apply_settings(settings)
        self.camera.activated.connect(self._on_camera)
        self.size.activated.connect(self._emit_source)
        self.rate.activated.connect(self._emit_source)
        self.engine.activated.connect(self._emit_engine)
        self.provider.activated.connect(self._emit_engine)
        self.smoothing.activated.connect(lambda _i: self.smoothingChosen.emit(self.smoothing.currentData()))
        self.refine.toggled.connect(self.refineChosen)
        self.mirror.toggled.connect(self.mirrorChosen)
        self.battery_saver.toggled.connect(self.batterySaverChosen)

    # -- settings ----------------------------------------------------------------------------------
    def apply_settings(self, s) -> None:
        widgets = (self.camera, self.size, self.rate, self.engine, self.provider, self.smoothing, self.refine,
                   self.mirror, self.battery_saver)
        for w in widgets:
            w.blockSignals(True)
        try:
            self._fill_cameras(s.source)
            _select_data(self.size, s.camera_size)
            _select_data(self.rate, float(s.camera_fps))
            _select_data(self.engine, s.engine)
            if not _select_data(self.provider, s.provider):
                self.provider.addItem(s.provider, s.provider)
                _select_data(self.provider, s.provider)
            _select_data(self.smoothing, s.smoothing)
            self.refine.setChecked(s.refine)
            self.mirror.setChecked(s.mirror)
            self.battery_saver.setChecked(s.battery_saver)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._update_enabled()

    # -- cameras -----------------------------------------------------------------------------------
    def scan_cameras(self) -> None:
        if self._scan_thread is not None and self._scan_thread.is_alive():
            return
        self.refresh_button.setEnabled(False)
        self._scan_thread = self._scanner.start()

    def join_scan(self, timeout: float = 5.0) -> None:
        if self._scan_thread is not None:
            self._scan_thread.join(timeout)

    def set_cameras(self, cams: list) -> None:
        self.refresh_button.setEnabled(True)
        self._cams = list(cams)
        current = self.camera.currentData()
        self._fill_cameras(self._last_source if current in (None, VIDEO_ITEM) else current)
        if not cams:
            self.camera.setToolTip("No camera found. The demo shows how vbg works; plug in a camera and press Refresh.")

    def _fill_cameras(self, current: str) -> None:
        self.camera.blockSignals(True)
        self.camera.clear()
        self.camera.addItem("Demo (no camera needed)", "demo")
        for cam in self._cams:
            label = cam.get("name") or f"Camera {cam['index']}"
            size = f" — {cam['size']}" if cam.get("size") else ""
            virtual = " (virtual)" if cam.get("virtual") else ""
            self.camera.addItem(f"{label}{virtual}{size}", cam.get("spec") or f"camera:{cam['index']}")
        if self._video_path:
            self.camera.addItem(f"Video: {Path(self._video_path).name}", str(VideoSpec(self._video_path)))
        if isinstance(_parsed(current), CameraSpec) and self.camera.findData(current) < 0:
            self.camera.addItem(f"{current} (not found)", current)
        self.camera.addItem("Video file…", VIDEO_ITEM)
        if not _select_data(self.camera, current):
            self.camera.setCurrentIndex(0)
        self.camera.blockSignals(False)
        self._update_enabled()

    def _on_camera(self, _index: int) -> None:
        if self.camera.currentData() == VIDEO_ITEM:
            path, _ = QFileDialog.getOpenFileName(self, "Play a video file as the camera", str(Path.home()),
                                                  "Videos (" + " ".join(f"*{e}" for e in VIDEO_EXTS) + ")")
            if not path:
                _select_data(self.camera, self._last_source)
                return
            self._video_path = path
            self._fill_cameras(str(VideoSpec(path)))
        self._update_enabled()
        self._emit_source()

    def _update_enabled(self) -> None:
        camera_like = isinstance(_parsed(str(self.camera.currentData() or "")), (DemoSpec, CameraSpec))
        self.size.setEnabled(camera_like)
        self.rate.setEnabled(camera_like)

    def _emit_source(self, *_args) -> None:
        spec = self.camera.currentData()
        if not spec or spec == VIDEO_ITEM:
            return
        self._last_source = spec
        size_text = self.size.currentData() or ""
        size = tuple(int(v) for v in size_text.split("x")) if size_text else None
        fps = self.rate.currentData() or None
        self.sourceChosen.emit(spec, size, fps)

    def choose_source(self, spec: str) -> None:
        """Select ``spec`` (a test or the CLI) and emit it like a user choice."""
        if _video_path(spec):
            self._video_path = _video_path(spec)
            spec = str(VideoSpec(self._video_path))
            self._fill_cameras(spec)
        elif not _select_data(self.camera, spec):
            self._fill_cameras(spec)
        self._emit_source()

    def show_source(self, state: str, spec: str, text: str) -> None:
        """What the worker reports: opening | ok | error."""
        if state == "ok":
            self.camera.blockSignals(True)
            if _video_path(spec):
                self._video_path = _video_path(spec)
                spec = str(VideoSpec(self._video_path))
            if not _select_data(self.camera, spec):
                self._fill_cameras(spec)
            self.camera.blockSignals(False)
            self._last_source = spec
            self.source_state.setText(f"Showing: {text}")
            self.source_state.setProperty("level", "ok")
        elif state == "opening":
            self.source_state.setText(text)
            self.source_state.setProperty("level", "busy")
        else:
            self.source_state.setText(text)
            self.source_state.setProperty("level", "error")
        self.source_state.style().unpolish(self.source_state)
        self.source_state.style().polish(self.source_state)
        self._update_enabled()

    # -- engine ------------------------------------------------------------------------------------
    def _emit_engine(self, *_args) -> None:
        engine = self.engine.currentData()
        provider = self.provider.currentData()
        self.provider.setEnabled(engine != "mediapipe")
        self.engineChosen.emit(engine, provider if engine != "mediapipe" else "auto")

    def show_engine(self, info: dict) -> None:
        """The engine and provider that actually run, and why they differ from the choice."""
        engine, provider = info.get("engine", ""), info.get("provider", "")
        title = ENGINE_TITLES.get(engine, engine)
        text = f"Running: {title} on {provider.upper() if provider else '?'}"
        notes = [n for n in (info.get("note"), info.get("fallback_reason")) if n]
        if notes:
            text += " — " + "; ".join(notes)
        self.engine_state.setText(text)
        self.provider.setEnabled(self.engine.currentData() != "mediapipe")


def _select_data(combo: QComboBox, data) -> bool:
    i = combo.findData(data)
    if i < 0:
        return False
    combo.setCurrentIndex(i)
    return True
