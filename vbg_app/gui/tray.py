"""The tray icon: lets the virtual camera keep running while the window is closed.

Menu: Show vbg, Virtual camera (on/off), Quit. Quitting from the tray stops the pipeline and the virtual
camera cleanly. When the platform has no system tray (``QSystemTrayIcon.isSystemTrayAvailable()`` is false),
the window does not use one and closing the window quits.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6: drops cv2's Qt plugin path)

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QLinearGradient, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon


def app_icon(active: bool = False) -> QIcon:
    """vbg's icon, drawn (no image files): a person in front of a gradient; a red dot when sending."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = float(size)
        grad = QLinearGradient(QPointF(0, 0), QPointF(s, s))
        grad.setColorAt(0, QColor("#5a6fa8"))
        grad.setColorAt(1, QColor("#f2a488"))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(grad))
        p.drawRoundedRect(QRectF(0, 0, s, s), s * 0.22, s * 0.22)
        p.setBrush(QColor("#ffffff"))
        p.drawEllipse(QPointF(s * 0.5, s * 0.40), s * 0.16, s * 0.16)
        body = QPainterPath()
        body.addEllipse(QPointF(s * 0.5, s * 0.98), s * 0.32, s * 0.30)
        clip = QPainterPath()
        clip.addRoundedRect(QRectF(0, 0, s, s), s * 0.22, s * 0.22)
        p.drawPath(body.intersected(clip))
        if active:
            p.setBrush(QColor("#e63946"))
            p.setPen(QColor("#ffffff"))
            p.drawEllipse(QPointF(s * 0.8, s * 0.2), s * 0.16, s * 0.16)
        p.end()
        icon.addPixmap(pm)
    return icon


def tray_available() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Tray(QSystemTrayIcon):
    showRequested = Signal()
    vcamToggled = Signal(bool)
    quitRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(app_icon(), parent)
        self.setToolTip("vbg — virtual background")
        menu = QMenu()
        self._menu = menu  # QSystemTrayIcon does not own its menu
        self.show_action = QAction("Show vbg", menu)
        self.show_action.triggered.connect(self.showRequested)
        self.vcam_action = QAction("Virtual camera", menu)
        self.vcam_action.setCheckable(True)
        self.vcam_action.toggled.connect(self.vcamToggled)
        self.quit_action = QAction("Quit vbg", menu)
        self.quit_action.triggered.connect(self.quitRequested)
        menu.addAction(self.show_action)
        menu.addAction(self.vcam_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        self.setContextMenu(menu)
        self.activated.connect(self._on_activated)

    def _on_activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.showRequested.emit()

    def set_vcam_state(self, state: str, text: str) -> None:
        on = state == "on"
        self.vcam_action.blockSignals(True)
        self.vcam_action.setChecked(on)
        self.vcam_action.blockSignals(False)
        self.setIcon(app_icon(active=on))
        self.setToolTip("vbg — " + ("sending to the virtual camera" if on else
                                    "virtual camera off" if state == "off" else text))
