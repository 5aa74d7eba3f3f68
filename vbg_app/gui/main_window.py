"""The main window: live preview, readout, the virtual-camera switch, the background gallery and the controls.

Everything slow happens in :class:`~vbg_app.gui.worker.PipelineWorker`'s thread; this window only sends it
the user's choices and shows what it reports. Messages (a camera that failed, a refused file, a settings
file that was damaged, settings that could not be saved) appear in a bar above the preview that says what
to do; nothing here blocks. A settings file that had to be repaired is said once: the repair is saved soon
after start, so the next start finds nothing to say.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6: drops cv2's Qt plugin path)

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QPushButton, QSizePolicy, QSplitter, QTabWidget, QToolButton, QVBoxLayout, QWidget)

from vbg_app.gui.controls import ControlsPanel
from vbg_app.gui.gallery import BackgroundGallery
from vbg_app.gui.library import BackgroundLibrary
from vbg_app.gui.settings import SettingsStore, data_dir
from vbg_app.gui.tray import Tray, app_icon, tray_available
from vbg_app.gui.vcamhelp import HELP_INTRO, HELP_STATES, HELP_TITLE, setup_steps, steps_html, vcam_label
from vbg_app.engines import ENGINE_TITLES
from vbg_app.errors import BadInput
from vbg_app.specs import BlurSpec, ColorSpec, ImageSpec, VideoSpec, parse_background
from vbg_app.gui.worker import PipelineWorker

log = logging.getLogger(__name__)

STYLE = """
QLabel#banner { padding: 8px 10px; border-radius: 6px; }
QLabel#banner[level="info"] { background: #e7f1ff; color: #0b3d91; }
QLabel#banner[level="warning"] { background: #fff4d6; color: #6b4a00; }
QLabel#banner[level="error"] { background: #fde2e1; color: #8a1c14; }
QLabel#vcamState[state="on"] { color: #1b7a33; font-weight: bold; }
QLabel#vcamState[state="error"], QLabel#vcamState[state="missing"], QLabel#vcamState[state="lost"] { color: #a1241a; }
QLabel#vcamState[state="unavailable"] { color: #8a5a00; }
QLabel#sourceState[level="error"], QLabel#engineState[level="error"] { color: #a1241a; }
QLabel#readout { color: #555; font-family: monospace; }
QLabel#hint { color: #777; }
QListWidget#gallery::item { border: 2px solid transparent; border-radius: 6px; padding: 2px; }
QListWidget#gallery::item:selected { border: 2px solid #2f6fdb; background: #dbe7ff; color: #0b2e6b; }
QListWidget#gallery::item:hover:!selected { background: #eef2fa; }
QPushButton#vcamButton { padding: 8px 18px; font-weight: bold; border-radius: 6px;
                         background: #eceef2; border: 1px solid #b8bcc6; }
QPushButton#vcamButton:hover { background: #e1e5ee; }
QPushButton#vcamButton:checked { background: #1b7a33; color: white; border-color: #145c26; }
"""



def _background_spec(text):
    """The background spec as a :mod:`vbg_app.specs` dataclass, or None when it is not one."""
    try:
        return parse_background(text)
    except BadInput:
        return None

class PreviewView(QWidget):
    """Paints the newest frame scaled to fit (aspect kept), with a caption in the corner."""

    def __init__(self, caption: str, parent=None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.placeholder = "Starting…"
        self._image = QImage()
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def image(self) -> QImage:
        return self._image

    def set_image(self, image: QImage) -> None:
        self._image = image
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(800, 450)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f24"))
        if self._image.isNull():
            p.setPen(QColor("#c8c8c8"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        iw, ih = self._image.width(), self._image.height()
        s = min(self.width() / iw, self.height() / ih)
        w, h = iw * s, ih * s
        target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        p.drawImage(target, self._image)
        if self.caption:
            font = QFont(p.font())
            font.setBold(True)
            p.setFont(font)
            metrics = p.fontMetrics()
            tw = metrics.horizontalAdvance(self.caption) + 16
            box = QRectF(target.left() + 10, target.top() + 10, tw, metrics.height() + 8)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 140))
            p.drawRoundedRect(box, 5, 5)
            p.setPen(QColor("white"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, self.caption)


class PreviewArea(QWidget):
    """The output preview, and the original beside it (side by side or stacked, whichever shows them larger)."""

    def __init__(self, original: PreviewView, output: PreviewView, parent=None) -> None:
        super().__init__(parent)
        self.original, self.output = original, output
        self.box = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.addWidget(original, 1)
        self.box.addWidget(output, 1)

    def _arrange(self) -> None:
        if self.original.isHidden():
            return
        w, h = max(1, self.width()), max(1, self.height())
        side_by_side = min(w / 2 / 16, h / 9)
        stacked = min(w / 16, h / 2 / 9)
        direction = (QBoxLayout.Direction.LeftToRight if side_by_side >= stacked
                     else QBoxLayout.Direction.TopToBottom)
        if self.box.direction() != direction:
            self.box.setDirection(direction)

    def resizeEvent(self, event) -> None:
        self._arrange()
        super().resizeEvent(event)

    def set_original_visible(self, on: bool) -> None:
        self.original.setVisible(on)
        self._arrange()


class MainWindow(QMainWindow):
    """vbg's window. ``quitRequested`` asks the application to end (after :meth:`shutdown`)."""

    quitRequested = Signal()
    screenshotSaved = Signal(str)

    def __init__(self, store: SettingsStore | None = None, overrides: dict | None = None,
                 use_tray: bool | None = None, persist: bool = True, preview_width: int = 960,
                 scan_cameras: bool = True, probe_virtual_camera: bool = True, parent=None) -> None:
        super().__init__(parent)
        self.store = store or SettingsStore()
        self.settings, notice = self.store.load()
        for key, value in (overrides or {}).items():
            if value is not None and hasattr(self.settings, key):
                setattr(self.settings, key, value)
        self.persist = persist
        self.frames_shown = 0
        self.last_stats: dict = {}
        self.messages: list[tuple[str, str]] = []   # every (level, text) shown, newest last
        self.vcam_state = ("off", "")
        self.source_state = "opening"               # as the worker last reported it (opening | ok | error | lost)
        self._shut_down = False
        self._quitting = False
        self._tray_hint_shown = False
        self._screenshot: tuple[int, str] | None = None
        self._save_failure = ""                     # why the last save failed ("" after one that worked)

        self.setWindowTitle("vbg — virtual background")
        self.setWindowIcon(app_icon())
        self.setStyleSheet(STYLE)
        self.library = BackgroundLibrary(data_dir())

        # -- left: banner, previews, readout, virtual camera -------------------------------------
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextFormat(Qt.TextFormat.PlainText)  # file names and values from files are not markup
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_close = QToolButton()
        self.banner_close.setText("✕")
        self.banner_close.setToolTip("Dismiss")
        self.banner_close.clicked.connect(self.clear_message)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner_box = QWidget()
        self.banner_box.setLayout(banner_row)
        banner_row.setContentsMargins(0, 0, 0, 0)
        self.banner_box.hide()

        self.preview = PreviewView("What others see")
        self.original = PreviewView("Original")
        self.original.setVisible(self.settings.show_original)
        self.previews = PreviewArea(self.original, self.preview)

        self.show_original = QCheckBox("Show the original beside it")
        self.show_original.setChecked(self.settings.show_original)
        self.show_original.toggled.connect(self._on_show_original)
        self.readout = QLabel("Starting…")
        self.readout.setObjectName("readout")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        info_row = QHBoxLayout()
        info_row.addWidget(self.show_original)
        info_row.addStretch(1)
        info_row.addWidget(self.readout)

        self.vcam_button = QPushButton("Virtual camera: Off")
        self.vcam_button.setObjectName("vcamButton")
        self.vcam_button.setCheckable(True)
        self.vcam_button.setToolTip("Send this picture to a virtual camera that Zoom, Meet or Teams can select")
        self.vcam_button.clicked.connect(self._on_vcam_clicked)
        self.vcam_state_label = QLabel("Off. Turn it on, then choose the virtual camera in your meeting app.")
        self.vcam_state_label.setObjectName("vcamState")
        self.vcam_state_label.setWordWrap(True)
        self.vcam_state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.vcam_help_button = QPushButton("How to set it up")
        self.vcam_help_button.setToolTip("The steps that give this computer a virtual camera")
        self.vcam_help_button.clicked.connect(self.show_vcam_help)
        self.vcam_help_button.hide()
        self.vcam_help_box: QMessageBox | None = None
        vcam_row = QHBoxLayout()
        vcam_row.addWidget(self.vcam_button)
        vcam_row.addWidget(self.vcam_state_label, 1)
        vcam_row.addWidget(self.vcam_help_button)
        vcam_frame = QFrame()
        vcam_frame.setFrameShape(QFrame.Shape.StyledPanel)
        vcam_frame.setLayout(vcam_row)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.banner_box)
        lv.addWidget(self.previews, 1)
        lv.addLayout(info_row)
        lv.addWidget(vcam_frame)

        # -- right: gallery and controls ---------------------------------------------------------
        self.gallery = BackgroundGallery(self.library, self.settings.custom_colors, self.settings.blur_strength)
        self.controls = ControlsPanel(self.settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.gallery, "Background")
        self.tabs.addTab(self.controls, "Camera && quality")
        self.tabs.setMinimumWidth(360)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)
        self.resize(1360, 800)
        if self.settings.window_geometry:
            try:
                self.restoreGeometry(QByteArray.fromHex(self.settings.window_geometry.encode()))
            except Exception:
                pass

        # -- background selection: the saved one, or blur when it no longer exists ---------------
        bg = _background_spec(self.settings.background)
        if isinstance(bg, ColorSpec):  # as the gallery writes it (#RGB, hand-edited case: #RRGGBB)
            self.settings.background = str(bg)
        if not self.gallery.select_spec(self.settings.background, emit=False):
            if isinstance(bg, ColorSpec):  # a colour with no tile (hand-edited, or #RGB): it becomes one of the user's
                self.gallery.add_color(bg.hex)
                self.settings.custom_colors = list(self.gallery.custom_colors)
                self.settings.background = str(bg)
            elif isinstance(bg, (ImageSpec, VideoSpec)) and not Path(bg.path).expanduser().is_file():
                self.show_message("warning", f"Your background {bg.path} is "
                                             "gone; using blur. Pick another one in the gallery.")
                self.settings.background = str(BlurSpec(self.settings.blur_strength))
                self.gallery.select_spec(self.settings.background, emit=False)

        # -- the worker ------------------------------------------------------------------------------
        self.worker = PipelineWorker(self.settings.pipeline_config(), preview_width=preview_width,
                                     probe_vcam=probe_virtual_camera, parent=self)
        self.worker.set_show_original(self.settings.show_original)
        self.worker.frameReady.connect(self._on_frame)
        self.worker.statsReady.connect(self._on_stats)
        self.worker.message.connect(self.show_message)
        self.worker.vcamChanged.connect(self._on_vcam_state)
        self.worker.sourceChanged.connect(self._on_source_state)
        self.worker.engineChanged.connect(self.controls.show_engine)
        self.worker.backgroundApplied.connect(self._on_background_applied)

        self.gallery.backgroundChosen.connect(self._on_background_chosen)
        self.gallery.message.connect(self.show_message)
        self.gallery.customColorsChanged.connect(self._on_custom_colors)
        self.controls.sourceChosen.connect(self._on_source_chosen)
        self.controls.engineChosen.connect(self._on_engine_chosen)
        self.controls.smoothingChosen.connect(lambda v: self._change(smoothing=v) or self.worker.set_smoothing(v))
        self.controls.refineChosen.connect(lambda v: self._change(refine=v) or self.worker.set_refine(v))
        self.controls.mirrorChosen.connect(lambda v: self._change(mirror=v) or self.worker.set_mirror(v))
        self.controls.batterySaverChosen.connect(
            lambda v: self._change(battery_saver=v) or self.worker.set_battery_saver(v))

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)
        self._save_timer.timeout.connect(self.save_settings)

        # -- tray ------------------------------------------------------------------------------------
        self.tray: Tray | None = None
        if use_tray is None:
            use_tray = tray_available()
        if use_tray:
            self.tray = Tray(self)
            self.tray.showRequested.connect(self.bring_to_front)
            self.tray.vcamToggled.connect(self.set_virtual_camera)
            self.tray.quitRequested.connect(self.quit_app)
            self.tray.show()

        if notice:
            self.show_message("warning", notice)
            self._save_timer.start()  # the repaired settings replace the file: said once, not at every start
        self.worker.start()
        if scan_cameras:
            self.controls.scan_cameras()

    # -- messages ----------------------------------------------------------------------------------
    def show_message(self, level: str, text: str) -> None:
        self.messages.append((level, text))
        log.log(logging.ERROR if level == "error" else logging.WARNING if level == "warning" else logging.INFO,
                "%s", text)
        self.banner.setText(text)
        self.banner.setProperty("level", level)
        self.banner.style().unpolish(self.banner)
        self.banner.style().polish(self.banner)
        self.banner_box.show()

    def clear_message(self) -> None:
        self.banner_box.hide()

    # -- frames and stats ------------------------------------------------------------------------
    def _on_frame(self, out: QImage, orig: QImage) -> None:
        self.preview.set_image(out)
        if not orig.isNull():
            self.original.set_image(orig)
        self.frames_shown += 1
        self.worker.frame_consumed()
        if self._screenshot and self.frames_shown >= self._screenshot[0]:
            n, path = self._screenshot
            self._screenshot = None
            QTimer.singleShot(50, lambda: self.save_screenshot(path))

    def _on_stats(self, d: dict) -> None:
        self.last_stats = d
        engine = ENGINE_TITLES.get(d.get("engine", ""), d.get("engine", ""))
        provider = (d.get("provider") or "?").upper()
        self.readout.setText(f"{d.get('fps', 0):4.1f} fps · latency {d.get('latency_ms', 0):3.0f} ms · "
                             f"{engine} on {provider} · CPU {d.get('cpu_percent', 0):3.0f}% of {d.get('cores', 1)} "
                             f"core{'s' if d.get('cores', 1) != 1 else ''}")
        tip = [f"source: {d.get('source', '')}", f"output: {d.get('sink', '')}",
               "stage ms: " + ", ".join(f"{k} {v:.1f}" for k, v in d.get("stage_ms", {}).items()),
               f"frames: {d.get('frames', 0)}, errors: {d.get('errors', 0)}"]
        if d.get("fallback"):
            tip.append(f"provider note: {d['fallback']}")
        if d.get("last_error"):
            tip.append(f"last error: {d['last_error']}")
        self.readout.setToolTip("\n".join(tip))

    def _on_show_original(self, on: bool) -> None:
        self.previews.set_original_visible(on)
        if not on:
            self.original.set_image(QImage())
        self.worker.set_show_original(on)
        self._change(show_original=on)

    # -- virtual camera --------------------------------------------------------------------------
    def set_virtual_camera(self, on: bool) -> None:
        """Turn the virtual camera on or off (the button, the tray, tests)."""
        self.vcam_button.setChecked(on)
        self._on_vcam_clicked(on)

    def _on_vcam_clicked(self, on: bool) -> None:
        if on:
            self._on_vcam_state("starting", "Starting the virtual camera…")
        self.worker.set_virtual_camera(on)

    def _on_vcam_state(self, state: str, text: str) -> None:
        self.vcam_state = (state, text)
        on = state in ("on", "starting")
        self.vcam_button.blockSignals(True)
        self.vcam_button.setChecked(on)
        self.vcam_button.blockSignals(False)
        self.vcam_button.setText({"on": "Virtual camera: On", "starting": "Virtual camera: …"}.get(
            state, "Virtual camera: Off"))
        detail = text
        text = vcam_label(state, detail)
        self.vcam_state_label.setText(text)
        self.vcam_state_label.setToolTip(detail if state in HELP_STATES else "")  # the sink's own words
        self.vcam_help_button.setVisible(state in HELP_STATES)
        self.vcam_state_label.setProperty("state", state)
        self.vcam_state_label.style().unpolish(self.vcam_state_label)
        self.vcam_state_label.style().polish(self.vcam_state_label)
        if self.tray is not None:
            self.tray.set_vcam_state(state, text)

    def show_vcam_help(self) -> None:
        """The set-up steps for this system in a dialog (not modal to the app: the preview goes on), with the
        last failure's own text under "Show Details..."."""
        if self.vcam_help_box is not None:
            self.vcam_help_box.close()
        box = QMessageBox(QMessageBox.Icon.Information, HELP_TITLE, HELP_INTRO, QMessageBox.StandardButton.Close,
                          self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 600px; }")  # the commands fit
        box.setInformativeText(steps_html(setup_steps()))
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        state, detail = self.vcam_state
        if state in HELP_STATES and detail:
            box.setDetailedText(detail)
        box.setWindowModality(Qt.WindowModality.NonModal)
        self.vcam_help_box = box
        box.show()

    # -- choices ---------------------------------------------------------------------------------
    def _change(self, **values) -> None:
        for k, v in values.items():
            setattr(self.settings, k, v)
        self._save_timer.start()

    def _on_background_chosen(self, spec: str) -> None:
        changes = {"background": spec}
        bg = _background_spec(spec)
        if isinstance(bg, BlurSpec) and bg.strength is not None:
            changes["blur_strength"] = bg.strength
        self._change(**changes)
        self.worker.set_background(spec)

    def _on_background_applied(self, spec: str, error: str) -> None:
        if error:
            self.show_message("error", f"{error} Pick another background.")
        elif spec != self.gallery.current_spec():
            self.gallery.select_spec(spec, emit=False)

    def _on_custom_colors(self, colors: list) -> None:
        self._change(custom_colors=list(colors))

    def _on_source_chosen(self, spec: str, size, fps) -> None:
        self._change(source=spec, camera_size=f"{size[0]}x{size[1]}" if size else "", camera_fps=float(fps or 0))
        self.worker.set_source(spec, size, fps)

    def _on_source_state(self, state: str, spec: str, text: str) -> None:
        self.controls.show_source(state, spec, text)
        self.source_state = state
        if state == "error":
            self.show_message("error", text)
        elif state == "lost":  # the camera went away; the worker reopens it, the meeting sees a card meanwhile
            self.show_message("warning", f"{text} Others see a “camera unavailable” picture until it is back.")
        elif state == "ok" and self.messages and self.messages[-1][1].startswith("Camera lost"):
            self.show_message("info", f"The camera is back: {text}.")
        if state == "opening" and self.frames_shown == 0:
            self.preview.placeholder = text

    def _on_engine_chosen(self, engine: str, provider: str) -> None:
        self._change(engine=engine, provider=provider)
        self.worker.set_engine(engine, provider, self.settings.model)

    # -- settings, screenshot, closing -----------------------------------------------------------
    def save_settings(self) -> None:
        if not self.persist:
            return
        self.settings.window_geometry = bytes(self.saveGeometry().toHex()).decode()
        why = self.store.save(self.settings)
        if why and why != self._save_failure:  # each failure once, not at every change
            self.show_message("warning", f"Could not save your settings to {self.store.path} ({why}). vbg keeps "
                                         "running with them, and saves them at the next change once that works.")
        self._save_failure = why

    def screenshot_after(self, frames: int, path: str) -> None:
        """Save the window to ``path`` (PNG) once ``frames`` frames have been shown; emits screenshotSaved."""
        self._screenshot = (max(1, int(frames)), str(path))

    def save_screenshot(self, path: str) -> None:
        pm = self.grab()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if not pm.save(str(path), "PNG", 0):  # 0 = smallest file (strongest zlib compression)
            self.show_message("error", f"Could not save the screenshot to {path}.")
            path = ""
        self.screenshotSaved.emit(path)

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def quit_app(self) -> None:
        self._quitting = True
        self.shutdown()
        self.hide()
        self.quitRequested.emit()

    def shutdown(self) -> None:
        """Save settings, stop the pipeline and the virtual camera, join the threads (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._save_timer.stop()
        self.save_settings()
        self.worker.shutdown()
        self.controls.join_scan()
        if self.tray is not None:
            self.tray.hide()

    def closeEvent(self, event) -> None:
        if (self.tray is not None and not self._quitting and self.worker.virtual_camera_on
                and not self._shut_down):
            self.save_settings()
            event.ignore()
            self.hide()
            if not self._tray_hint_shown:
                self._tray_hint_shown = True
                self.tray.showMessage("vbg keeps running", "The virtual camera stays on. Use the tray icon to "
                                      "open vbg again or to quit.", app_icon(), 4000)
            return
        self.shutdown()
        event.accept()
        self.quitRequested.emit()
