"""The background picker: a gallery of thumbnails plus the blur slider and the add/remove buttons.

Tiles, in order: No effect, Blur, solid colours (presets + the user's custom ones), the built-in images from
``assets/backgrounds/``, then the user's own images and videos (added with the button or by dropping files
on the gallery; copied into the app's data folder by :class:`~vbg_app.gui.library.BackgroundLibrary`).
Choosing a tile emits ``backgroundChosen(spec)`` at once; the window forwards it to the running pipeline.
"""
from __future__ import annotations

from vbg_app.gui import qtenv  # noqa: F401  (before PySide6: drops cv2's Qt plugin path)

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QFileDialog, QHBoxLayout, QLabel, QListView,
                               QListWidget, QListWidgetItem, QMenu, QPushButton, QSlider, QVBoxLayout, QWidget)

from vbg_app.errors import BadInput, VbgError
from vbg_app.gui.library import BackgroundLibrary, Entry, path_of_spec, thumbnail
from vbg_app.imagefile import IMAGE_EXTS, VIDEO_EXTS
from vbg_app.specs import BlurSpec, ColorSpec, parse_background

log = logging.getLogger(__name__)

THUMB = QSize(144, 81)
ROLE_ENTRY = Qt.ItemDataRole.UserRole + 1
FILE_FILTER = ("Images and videos (" + " ".join(f"*{e}" for e in IMAGE_EXTS + VIDEO_EXTS) + ");;"
               "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTS) + ");;"
               "Videos (" + " ".join(f"*{e}" for e in VIDEO_EXTS) + ")")


def bgr_to_pixmap(bgr: np.ndarray) -> QPixmap:
    bgr = np.ascontiguousarray(bgr)
    h, w = bgr.shape[:2]
    return QPixmap.fromImage(QImage(bgr.data, w, h, bgr.strides[0], QImage.Format.Format_BGR888).copy())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symbolic link loop (Python < 3.13)
        return False


def blur_spec(strength: int) -> str:
    return str(BlurSpec(int(strength)))


class BackgroundGallery(QWidget):
    """See the module docstring. ``message(level, text)`` reports refusals and failures."""

    backgroundChosen = Signal(str)
    message = Signal(str, str)
    customColorsChanged = Signal(list)

    def __init__(self, library: BackgroundLibrary, custom_colors=(), blur_strength: int = 15, parent=None) -> None:
        super().__init__(parent)
        self.library = library
        self.custom_colors = [c.upper() for c in custom_colors]
        self.setAcceptDrops(True)

        self.list = QListWidget()
        self.list.setObjectName("gallery")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(THUMB)
        self.list.setGridSize(QSize(THUMB.width() + 14, THUMB.height() + 30))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWrapping(True)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.list.setAcceptDrops(False)           # drops go to the gallery widget (dropEvent below)
        self.list.viewport().setAcceptDrops(False)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.setToolTip("Click a background to use it. Drop your own images or videos here to add them.")

        self.blur_label = QLabel()
        self.blur_slider = QSlider(Qt.Orientation.Horizontal)
        self.blur_slider.setRange(1, 100)
        self.blur_slider.setValue(int(blur_strength))
        self.blur_slider.setToolTip("How strongly the room behind you is blurred")
        self.blur_slider.valueChanged.connect(self._on_blur_changed)
        self._blur_timer = QTimer(self)  # the slider emits many values while dragged: apply the last one
        self._blur_timer.setSingleShot(True)
        self._blur_timer.setInterval(80)
        self._blur_timer.timeout.connect(self._emit_blur)

        self.add_button = QPushButton("Add image or video…")
        self.add_button.setToolTip("Copies the file into vbg's own folder; your original is left untouched")
        self.add_button.clicked.connect(self.add_with_dialog)
        self.color_button = QPushButton("Custom colour…")
        self.color_button.clicked.connect(self.pick_color)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Removes vbg's copy of an added background (never your original file)")
        self.remove_button.clicked.connect(self.remove_current)
        self.remove_button.setEnabled(False)

        blur_row = QHBoxLayout()
        blur_row.addWidget(self.blur_label)
        blur_row.addWidget(self.blur_slider, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.color_button)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_button)
        hint = QLabel("Tip: drag images or videos from your file manager onto the gallery.")
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(blur_row)
        layout.addLayout(buttons)
        layout.addWidget(hint)
        self._update_blur_label()
        self.reload()

    # -- content ---------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        return [self.list.item(i).data(ROLE_ENTRY) for i in range(self.list.count())]

    def reload(self, keep_spec: str | None = None) -> None:
        """Rebuild the tiles (after an add/remove); keeps the current selection without emitting."""
        keep = keep_spec if keep_spec is not None else self.current_spec()
        self.list.blockSignals(True)
        self.list.clear()
        entries = (self.library.fixed_entries(self.custom_colors) + self.library.builtin_entries()
                   + self.library.user_entries())
        for entry in entries:
            self.list.addItem(self._item(entry))
        self.list.blockSignals(False)
        if keep:
            self.select_spec(keep, emit=False)
        self._update_buttons()

    def _item(self, entry: Entry) -> QListWidgetItem:
        item = QListWidgetItem(QIcon(bgr_to_pixmap(thumbnail(entry, (THUMB.width(), THUMB.height())))),
                               entry.title)
        item.setData(ROLE_ENTRY, entry)
        tip = {"none": "Your camera picture, unchanged", "blur": "Blur the room behind you",
               "color": f"Solid colour {entry.color}",
               "builtin": f"Built-in background: {entry.title}",
               "user": f"Your {'video' if entry.is_video else 'image'}: {entry.path}"}[entry.kind]
        item.setToolTip(tip)
        return item

    # -- selection -------------------------------------------------------------------------------
    def current_entry(self) -> Entry | None:
        item = self.list.currentItem()
        return item.data(ROLE_ENTRY) if item is not None else None

    def current_spec(self) -> str:
        entry = self.current_entry()
        if entry is None:
            return ""
        return blur_spec(self.blur_slider.value()) if entry.kind == "blur" else entry.spec

    def select_spec(self, spec: str, emit: bool = True) -> bool:
        """Select the tile of ``spec`` (blur:N also moves the slider). False when no tile matches."""
        try:
            parsed = parse_background(spec)
        except BadInput:
            parsed = None
        path = path_of_spec(spec)
        color = parsed.hex if isinstance(parsed, ColorSpec) else ""
        target = None
        for i in range(self.list.count()):
            entry = self.list.item(i).data(ROLE_ENTRY)
            if (isinstance(parsed, BlurSpec) and entry.kind == "blur") or entry.spec == spec or (
                    color and entry.kind == "color" and entry.color == color) or (
                    path is not None and entry.path is not None and _same_file(path, entry.path)):
                target = self.list.item(i)
                break
        if target is None:
            return False
        if isinstance(parsed, BlurSpec) and parsed.strength is not None:
            self.blur_slider.blockSignals(True)
            self.blur_slider.setValue(parsed.strength)
            self.blur_slider.blockSignals(False)
            self._update_blur_label()
        if not emit:
            self.list.blockSignals(True)
        self.list.setCurrentItem(target)
        if not emit:
            self.list.blockSignals(False)
        self.list.scrollToItem(target)
        self._update_buttons()
        return True

    def _on_current(self, current, previous) -> None:
        self._update_buttons()
        if current is not None:
            self.backgroundChosen.emit(self.current_spec())

    def _update_buttons(self) -> None:
        entry = self.current_entry()
        self.remove_button.setEnabled(entry is not None and entry.kind == "user")
        self.blur_slider.setEnabled(entry is None or entry.kind == "blur")

    # -- blur strength ---------------------------------------------------------------------------
    def _update_blur_label(self) -> None:
        self.blur_label.setText(f"Blur strength: {self.blur_slider.value()}")

    def _on_blur_changed(self, value: int) -> None:
        self._update_blur_label()
        entry = self.current_entry()
        if entry is None or entry.kind != "blur":
            self.select_spec(blur_spec(value))  # moving the slider means "I want blur"
        else:
            self._blur_timer.start()

    def _emit_blur(self) -> None:
        entry = self.current_entry()
        if entry is not None and entry.kind == "blur":
            self.backgroundChosen.emit(blur_spec(self.blur_slider.value()))

    # -- adding ----------------------------------------------------------------------------------
    def add_with_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add backgrounds", str(Path.home()), FILE_FILTER)
        if files:
            self.add_files(files)

    def add_files(self, paths) -> list[Entry]:
        """Copy each file into the library (refusing broken ones with a message); selects the last one added."""
        added, refused = [], []
        for p in paths:
            try:
                added.append(self.library.add(p))
            except VbgError as exc:
                refused.append(exc.one_line())
            except OSError as exc:
                refused.append(f"Cannot add {p}: {exc.strerror or exc}.")
        if added:
            self.reload(keep_spec=added[-1].spec)
            self.select_spec(added[-1].spec, emit=False)
            self.backgroundChosen.emit(added[-1].spec)
            names = ", ".join(e.title for e in added)
            self.message.emit("info", f"Added {names}. It is kept in vbg's backgrounds folder.")
        if refused:
            self.message.emit("error", "Not added: " + " ".join(refused))
        return added

    def dragEnterEvent(self, event) -> None:
        if self._local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        files = self._local_files(event.mimeData())
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_files(files)

    @staticmethod
    def _local_files(mime) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if isinstance(u, QUrl) and u.isLocalFile()]

    def pick_color(self) -> None:
        color = QColorDialog.getColor(QColor("#00B140"), self, "Background colour")
        if color.isValid():
            self.add_color(color.name().upper())

    def add_color(self, hex_color: str) -> None:
        hex_color = hex_color.upper()
        if hex_color not in self.custom_colors and not any(
                e.kind == "color" and e.color == hex_color for e in self.entries()):
            self.custom_colors.append(hex_color)
            self.customColorsChanged.emit(list(self.custom_colors))
            self.reload()
        self.select_spec(str(ColorSpec.from_arg(hex_color)))

    # -- removing --------------------------------------------------------------------------------
    def remove_current(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self.remove(entry)

    def remove(self, entry: Entry) -> None:
        if entry.kind == "color" and entry.color in self.custom_colors:
            self.custom_colors.remove(entry.color)
            self.customColorsChanged.emit(list(self.custom_colors))
        elif entry.kind == "user":
            try:
                self.library.remove(entry)
            except VbgError as exc:
                self.message.emit("error", exc.one_line())
                return
        else:
            return
        was_current = self.current_entry() == entry
        self.reload(keep_spec="" if was_current else None)
        if was_current:
            self.select_spec(blur_spec(self.blur_slider.value()))
        self.message.emit("info", f"Removed {entry.title} from the gallery.")

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        entry = item.data(ROLE_ENTRY)
        removable = entry.kind == "user" or (entry.kind == "color"
                                             and entry.color in self.custom_colors)
        if not removable:
            return
        menu = QMenu(self)
        act = QAction("Remove from gallery", menu)
        act.triggered.connect(lambda: self.remove(entry))
        menu.addAction(act)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.remove_button.isEnabled():
            self.remove_current()
            return
        super().keyPressEvent(event)
