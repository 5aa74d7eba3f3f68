"""The desktop app, driven like a user would (pytest-qt, offscreen Qt, fake virtual camera, fake segmenter)."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QFileDialog

from tests.fakecam import no_backends
from vbg_app import resources
from vbg_app.compose import aspect_fill

WAIT = 15_000  # ms: generous, the machine may be busy


# -- helpers ---------------------------------------------------------------------------------------
def qimage_to_bgr(img: QImage) -> np.ndarray:
    img = img.convertToFormat(QImage.Format.Format_BGR888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes()).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def next_pair(qtbot, win):
    """(output, original) of one frame shown after now, as BGR arrays."""
    with qtbot.waitSignal(win.worker.frameReady, timeout=WAIT) as blocker:
        pass
    out, orig = blocker.args
    assert not orig.isNull(), "show_original is on in these tests"
    return qimage_to_bgr(out), qimage_to_bgr(orig)


def choose_background(qtbot, win, spec):
    """Select ``spec`` in the gallery like a click; wait until the worker applied it; return a frame pair."""
    with qtbot.waitSignal(win.worker.backgroundApplied, timeout=WAIT,
                          check_params_cb=lambda s, err: s == spec) as blocker:
        assert win.gallery.select_spec(spec)
    assert blocker.args[1] == "", blocker.args[1]
    return next_pair(qtbot, win)


def corners(img, frac=0.12):
    """The four corner patches (far from the centred "person"), stacked."""
    h, w = img.shape[:2]
    ch, cw = max(2, int(h * frac)), max(2, int(w * frac))
    return np.concatenate([img[:ch, :cw], img[:ch, -cw:], img[-ch:, :cw], img[-ch:, -cw:]]).astype(np.float32)


def wait_running(qtbot, win, frames=3):
    start = win.frames_shown
    qtbot.waitUntil(lambda: win.frames_shown >= start + frames, timeout=WAIT)


def vbg_threads():
    return [t.name for t in threading.enumerate() if t.is_alive() and t.name.startswith("vbg-")]


def write_image(path: Path, color=(40, 120, 200), size=(320, 180)) -> Path:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    img[:] = color
    cv2.circle(img, (size[0] // 3, size[1] // 2), size[1] // 4, (255, 255, 255), -1)
    assert cv2.imwrite(str(path), img)
    return path


def write_video(path: Path, frames=6, size=(160, 90)) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for k in range(frames):
        img = np.full((size[1], size[0], 3), (30 * k) % 255, np.uint8)
        vw.write(img)
    vw.release()
    return path


# -- the window ------------------------------------------------------------------------------------
def test_window_builds_on_demo_and_shows_frames(qtbot, make_window):
    win = make_window()
    qtbot.waitUntil(lambda: win.frames_shown >= 2, timeout=WAIT)
    first = win.frames_shown
    assert not win.preview.image().isNull() and win.preview.image().width() == 320
    assert not win.original.image().isNull()
    qtbot.waitUntil(lambda: win.frames_shown >= first + 5, timeout=WAIT)
    qtbot.waitUntil(lambda: win.last_stats.get("fps", 0) > 0, timeout=WAIT)
    text = win.readout.text()
    assert "fps" in text and "latency" in text and "CPU" in text and "on CPU" in text
    assert win.vcam_state[0] == "off" and not win.vcam_button.isChecked()
    assert "Running: ConnectNet on CPU" in win.controls.engine_state.text()
    assert win.controls.camera.currentData() == "demo"


def test_each_kind_of_background_changes_the_output(qtbot, make_window):
    win = make_window(background="color:#FFFFFF")
    wait_running(qtbot, win)

    out, orig = choose_background(qtbot, win, "none")
    assert np.array_equal(out, orig)  # no effect: the camera picture itself

    out, orig = choose_background(qtbot, win, "blur:40")
    assert np.abs(corners(out) - corners(orig)).mean() > 2
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()
    assert lap(corners(out).astype(np.uint8)) < lap(corners(orig).astype(np.uint8))
    assert win.settings.blur_strength == 40

    out, orig = choose_background(qtbot, win, "color:#00B140")
    assert np.abs(corners(out) - np.array([0x40, 0xB1, 0x00], np.float32)).mean() < 3

    builtin = win.library.builtin_entries()[0]
    out, orig = choose_background(qtbot, win, builtin.spec)
    bg = cv2.imread(str(builtin.path))
    expected = cv2.resize(aspect_fill(bg, 360, 640), (out.shape[1], out.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(corners(out) - corners(expected)).mean() < 6
    assert np.abs(corners(out) - corners(orig)).mean() > 10
    assert win.settings.background == builtin.spec


def test_blur_slider_and_custom_colour_apply_at_once(qtbot, make_window, monkeypatch):
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog

    win = make_window(background="none")
    wait_running(qtbot, win)
    with qtbot.waitSignal(win.worker.backgroundApplied, timeout=WAIT,
                          check_params_cb=lambda s, err: s == "blur:60"):
        win.gallery.blur_slider.setValue(60)  # moving the slider picks blur
    assert win.gallery.current_entry().kind == "blur" and win.settings.blur_strength == 60
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor("#123456")))
    with qtbot.waitSignal(win.worker.backgroundApplied, timeout=WAIT,
                          check_params_cb=lambda s, err: s == "color:#123456"):
        win.gallery.color_button.click()
    assert win.settings.custom_colors == ["#123456"]
    out, _ = next_pair(qtbot, win)
    assert np.abs(corners(out) - np.array([0x56, 0x34, 0x12], np.float32)).mean() < 3


def test_gallery_lists_none_blur_colours_builtins(make_window):
    win = make_window()
    kinds = [e.kind for e in win.gallery.entries()]
    assert kinds[:2] == ["none", "blur"] and kinds.count("color") >= 6
    builtins = [e for e in win.gallery.entries() if e.kind == "builtin"]
    assert len(builtins) >= 6 and all(e.path.is_file() for e in builtins)


def test_add_user_image_with_the_dialog_persists_and_removing_keeps_the_original(qtbot, make_window, tmp_path,
                                                                                   gui_dirs, monkeypatch):
    _, data = gui_dirs
    original = write_image(tmp_path / "my beach.png")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(original)], "")))
    win = make_window()
    wait_running(qtbot, win)
    with qtbot.waitSignal(win.worker.backgroundApplied, timeout=WAIT) as blocker:
        win.gallery.add_button.click()
    copies = list((data / "backgrounds").iterdir())
    assert len(copies) == 1 and copies[0].read_bytes() == original.read_bytes()
    assert blocker.args == [f"image:{copies[0]}", ""]
    entry = win.gallery.current_entry()
    assert entry.kind == "user" and entry.path == copies[0] and "my beach" in entry.title
    out, _ = next_pair(qtbot, win)
    expected = cv2.resize(aspect_fill(cv2.imread(str(original)), 360, 640), (out.shape[1], out.shape[0]),
                          interpolation=cv2.INTER_AREA)
    assert np.abs(corners(out) - corners(expected)).mean() < 6
    win.close()
    assert not win.worker.is_alive()

    win2 = make_window(show_original=True)  # a restart: the addition and the choice are still there
    users = [e for e in win2.gallery.entries() if e.kind == "user"]
    assert [e.path for e in users] == copies
    assert win2.gallery.current_entry() == users[0]
    wait_running(qtbot, win2)

    win2.gallery.select_spec(users[0].spec)
    assert win2.gallery.remove_button.isEnabled()
    win2.gallery.remove_button.click()
    assert not copies[0].exists() and original.is_file()
    assert not [e for e in win2.gallery.entries() if e.kind == "user"]
    assert win2.gallery.current_entry().kind == "blur"  # the removed one was in use: back to blur


def test_drop_adds_images_and_videos(qtbot, make_window, tmp_path, gui_dirs):
    _, data = gui_dirs
    img = write_image(tmp_path / "office.jpg", color=(90, 60, 30))
    vid = write_video(tmp_path / "waves.avi")
    win = make_window()
    wait_running(qtbot, win)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(img)), QUrl.fromLocalFile(str(vid))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(win.worker.backgroundApplied, timeout=WAIT) as blocker:
        win.gallery.dropEvent(drop)
    assert drop.isAccepted()
    names = sorted(p.suffix for p in (data / "backgrounds").iterdir())
    assert names == [".avi", ".jpg"]
    users = [e for e in win.gallery.entries() if e.kind == "user"]
    assert len(users) == 2 and users[-1].is_video
    assert blocker.args[0].startswith("video:") and blocker.args[1] == ""
    assert img.is_file() and vid.is_file()


def test_broken_image_is_refused_with_a_message(qtbot, make_window, tmp_path, gui_dirs, monkeypatch):
    _, data = gui_dirs
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 10)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        staticmethod(lambda *a, **k: ([str(broken), str(text_file)], "")))
    win = make_window()
    before = win.gallery.current_spec()
    win.gallery.add_button.click()
    level, text = win.messages[-1]
    assert level == "error" and "broken.jpg cannot be read" in text and "notes.txt is not a supported" in text
    assert win.banner_box.isVisible() and "broken.jpg" in win.banner.text()
    assert not (data / "backgrounds").exists() or not list((data / "backgrounds").iterdir())
    assert win.gallery.current_spec() == before


# -- virtual camera --------------------------------------------------------------------------------
def test_virtual_camera_switch_sends_frames_to_the_backend(qtbot, make_window, fake_vcam):
    win = make_window()
    wait_running(qtbot, win)
    win.vcam_button.click()
    qtbot.waitUntil(lambda: win.vcam_state[0] == "on", timeout=WAIT)
    assert "/dev/fakecam0" in win.vcam_state_label.text() and win.vcam_button.isChecked()
    qtbot.waitUntil(lambda: fake_vcam.count >= 5, timeout=WAIT)
    assert (fake_vcam.width, fake_vcam.height) == (640, 360)
    assert fake_vcam.last.shape == (360, 640, 3)
    wait_running(qtbot, win)  # the preview keeps running meanwhile

    win.vcam_button.click()
    qtbot.waitUntil(lambda: win.vcam_state[0] == "off", timeout=WAIT)
    qtbot.waitUntil(lambda: fake_vcam.closed == 1, timeout=WAIT)
    sent = fake_vcam.count
    wait_running(qtbot, win)
    assert fake_vcam.count == sent and not win.vcam_button.isChecked()


def test_missing_virtual_camera_says_so_in_the_guis_words_and_keeps_the_preview(qtbot, make_window, monkeypatch):
    import platform
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    win = make_window()
    wait_running(qtbot, win)
    assert not win.vcam_help_button.isVisible()
    with no_backends():
        win.set_virtual_camera(True)
        qtbot.waitUntil(lambda: win.vcam_state[0] == "missing", timeout=WAIT)
    label = win.vcam_state_label.text()
    assert label.startswith("No virtual camera found.")
    assert "--sink" not in label and "modprobe" not in label and "pyvirtualcam" not in label  # no CLI advice
    assert "pyvirtualcam" in win.vcam_state_label.toolTip()  # the sink's own words stay at hand
    assert not win.vcam_button.isChecked() and "Off" in win.vcam_button.text()
    assert win.vcam_help_button.isVisible()
    win.vcam_help_button.click()
    box = win.vcam_help_box
    assert box is not None and box.isVisible() and box.windowTitle() == "Set up a virtual camera"
    steps = box.informativeText()
    assert "sudo apt install v4l2loopback-dkms" in steps
    assert 'sudo modprobe v4l2loopback exclusive_caps=1 card_label="vbg"' in steps
    assert "pyvirtualcam" in box.detailedText()
    box.close()
    wait_running(qtbot, win, frames=5)
    win.set_virtual_camera(False)
    qtbot.waitUntil(lambda: win.vcam_state[0] == "off", timeout=WAIT)
    assert not win.vcam_help_button.isVisible() and win.vcam_state_label.toolTip() == ""


def test_start_up_says_when_no_virtual_camera_exists(qtbot, make_window, monkeypatch):
    import platform
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    with no_backends():
        win = make_window(probe_virtual_camera=True)
        qtbot.waitUntil(lambda: win.vcam_state[0] == "unavailable", timeout=WAIT)
    label = win.vcam_state_label.text()
    assert "No virtual camera found yet" in label and "--sink" not in label and "modprobe" not in label
    assert "modprobe v4l2loopback" in win.vcam_state_label.toolTip()
    assert win.vcam_help_button.isVisible()
    assert win.vcam_button.isEnabled() and not win.vcam_button.isChecked()


@pytest.mark.parametrize("system, wanted", [
    ("Linux", ["sudo apt install v4l2loopback-dkms", 'sudo modprobe v4l2loopback exclusive_caps=1 card_label="vbg"']),
    ("Windows", ["OBS Studio", "Start Virtual Camera", "OBS Virtual Camera"]),
    ("Darwin", ["OBS Studio 30 or newer", "Start Virtual Camera", "system extension"]),
    ("FreeBSD", ["no virtual camera for FreeBSD"]),
])
def test_virtual_camera_set_up_steps_per_system(system, wanted):
    from vbg_app.gui.vcamhelp import setup_steps

    steps = setup_steps(system)
    assert all(w in steps for w in wanted), steps
    assert "--sink" not in steps


def test_closing_the_window_with_the_camera_on_stops_every_thread(qtbot, make_window, fake_vcam):
    win = make_window()
    wait_running(qtbot, win)
    win.set_virtual_camera(True)
    qtbot.waitUntil(lambda: fake_vcam.count >= 2, timeout=WAIT)
    assert win.worker.is_alive() and "vbg-gui-worker" in vbg_threads()
    win.close()
    assert not win.worker.is_alive()
    assert vbg_threads() == []
    assert fake_vcam.closed == 1


def test_with_a_tray_closing_keeps_the_camera_running_until_quit(qtbot, make_window, fake_vcam):
    win = make_window(use_tray=True)
    quit_requests = []
    win.quitRequested.connect(lambda: quit_requests.append(1))
    wait_running(qtbot, win)
    win.set_virtual_camera(True)
    qtbot.waitUntil(lambda: win.vcam_state[0] == "on", timeout=WAIT)
    assert win.tray.vcam_action.isChecked()
    win.close()
    assert not win.isVisible() and win.worker.is_alive() and not quit_requests
    n = fake_vcam.count
    qtbot.waitUntil(lambda: fake_vcam.count > n + 2, timeout=WAIT)  # still sending while hidden
    win.tray.quit_action.trigger()
    assert quit_requests == [1] and not win.worker.is_alive() and vbg_threads() == []
    assert fake_vcam.closed == 1


# -- controls and engines --------------------------------------------------------------------------
def test_switching_to_a_video_source_and_a_bad_camera(qtbot, make_window, tmp_path):
    vid = write_video(tmp_path / "clip.avi", frames=10, size=(320, 180))
    win = make_window()
    wait_running(qtbot, win)
    with qtbot.waitSignal(win.worker.sourceChanged, timeout=WAIT,
                          check_params_cb=lambda state, spec, text: state == "ok"):
        win.controls.choose_source(f"video:{vid}")
    out, orig = next_pair(qtbot, win)
    assert orig.shape[:2] == (180, 320)
    assert win.settings.source == f"video:{vid}"

    with qtbot.waitSignal(win.worker.sourceChanged, timeout=WAIT,
                          check_params_cb=lambda state, spec, text: state == "error"):
        win.controls.choose_source("camera:/dev/video-does-not-exist")
    level, text = win.messages[-1]
    assert level == "error" and "keeps showing" in text
    wait_running(qtbot, win)  # the video keeps playing


def test_a_saved_video_source_loops_from_the_start(qtbot, make_window, tmp_path):
    """The GUI plays a video as a camera stand-in, again and again, also when it is the source the window
    starts with (it used to play once and end there: only a video chosen later looped)."""
    vid = write_video(tmp_path / "short.avi", frames=4, size=(160, 90))  # 0.4 s at 10 fps
    win = make_window(source=f"video:{vid}")
    wait_running(qtbot, win, frames=12)  # three times through the clip
    assert not any("ended" in text for _level, text in win.messages), win.messages
    assert win.worker.config.loop


def test_a_camera_that_takes_seconds_to_open_never_freezes_the_preview(qtbot, make_window, monkeypatch):
    import time

    from vbg_app import sources

    real_open = sources.open_source
    opened = threading.Event()

    def slow_open(spec, **opts):
        if spec == "camera:slow":
            time.sleep(3.0)  # like a webcam negotiating its format
            opened.set()
            return real_open("demo", size=(320, 180), fps=30)
        return real_open(spec, **opts)

    monkeypatch.setattr(sources, "open_source", slow_open)
    win = make_window()
    wait_running(qtbot, win)
    states = []
    win.worker.sourceChanged.connect(lambda state, spec, text: states.append(state))
    win.controls.choose_source("camera:slow")
    qtbot.waitUntil(lambda: "opening" in states, timeout=WAIT)
    assert "Opening camera:slow" in win.controls.source_state.text()
    wait_running(qtbot, win, frames=5)  # the old source keeps the preview going meanwhile
    assert not opened.is_set()
    qtbot.waitUntil(lambda: "ok" in states, timeout=WAIT)
    out, orig = next_pair(qtbot, win)
    assert orig.shape[:2] == (180, 320)


def test_engine_that_cannot_load_keeps_the_running_one(qtbot, make_window, fake_engine):
    win = make_window()
    wait_running(qtbot, win)
    win.settings.model = "/nowhere/missing.onnx"
    with qtbot.waitSignal(win.worker.message, timeout=WAIT):
        win.controls.engine.setCurrentIndex(win.controls.engine.findData("connectnet"))
        win.controls._emit_engine()
    assert "could not start" in win.messages[-1][1] and "Still running" in win.messages[-1][1]
    wait_running(qtbot, win)
    win.settings.model = None
    with qtbot.waitSignal(win.worker.engineChanged, timeout=WAIT):
        win.controls.engine.setCurrentIndex(win.controls.engine.findData("mediapipe"))
        win.controls._emit_engine()
    assert "MediaPipe" in win.controls.engine_state.text()
    assert fake_engine[0].closed  # the replaced segmenter was released


def test_missing_model_at_start_falls_back_to_the_other_engine(qtbot, make_window):
    win = make_window(model="/nowhere/missing.onnx")
    wait_running(qtbot, win)
    assert any("could not start" in t and "MediaPipe selfie instead" in t for _, t in win.messages)
    assert "MediaPipe" in win.controls.engine_state.text()


def test_smoothing_mirror_refine_apply_and_persist(qtbot, make_window, gui_dirs):
    cfg, _ = gui_dirs
    win = make_window()
    wait_running(qtbot, win)
    c = win.controls
    c.smoothing.setCurrentIndex(c.smoothing.findData("ema"))
    c.smoothing.activated.emit(c.smoothing.currentIndex())
    c.mirror.setChecked(True)
    c.refine.setChecked(False)
    qtbot.waitUntil(lambda: win.worker.config.mirror and not win.worker.config.refine
                    and win.worker.config.smoothing == "ema", timeout=WAIT)
    qtbot.waitUntil(lambda: type(win.worker._pipe.temporal).__name__ == "EmaFilter", timeout=WAIT)
    assert win.worker._pipe.compositor.mirror and not win.worker._pipe.compositor.refine
    win.close()
    saved = json.loads((cfg / "settings.json").read_text())
    assert saved["smoothing"] == "ema" and saved["mirror"] is True and saved["refine"] is False
    win2 = make_window()
    assert win2.controls.smoothing.currentData() == "ema"
    assert win2.controls.mirror.isChecked() and not win2.controls.refine.isChecked()


def test_every_control_row_shows_its_label_in_the_side_panel(qtbot, make_window):
    """A long entry (the steady filter's title, a camera's full name) once pushed the "Smoothing" label to zero width:
    the side panel is narrower than the combo box's longest text."""
    from PySide6.QtWidgets import QFormLayout, QGroupBox

    from PySide6.QtWidgets import QTabWidget

    win = make_window()
    win.resize(1280, 800)
    win.controls.camera.addItem("A camera with a very long name indeed (/dev/video12, 1920x1080 MJPEG)", "camera:12")
    tabs = [t for t in win.findChildren(QTabWidget) if t.indexOf(win.controls) >= 0][0]
    tabs.setCurrentWidget(win.controls)  # a hidden tab is not laid out
    qtbot.waitUntil(lambda: win.controls.isVisible(), timeout=WAIT)
    qtbot.wait(100)
    labels = []
    for box in win.controls.findChildren(QGroupBox):
        form = box.layout()
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            if item is not None and item.widget() is not None:
                labels.append(item.widget())
    assert {lab.text() for lab in labels} >= {"Resolution", "Frame rate", "Engine", "Runs on", "Smoothing"}
    for lab in labels:
        assert lab.width() >= lab.sizeHint().width(), f"{lab.text()!r} is cut to {lab.width()} px"


def test_battery_saver_applies_live_survives_an_engine_change_and_persists(qtbot, make_window, gui_dirs):
    from vbg_app.saver import BatterySaver

    cfg, _ = gui_dirs
    win = make_window()
    wait_running(qtbot, win)
    c = win.controls
    assert not c.battery_saver.isChecked() and not isinstance(win.worker._pipe.segmenter, BatterySaver)
    inner = win.worker._pipe.segmenter
    c.battery_saver.setChecked(True)
    qtbot.waitUntil(lambda: isinstance(win.worker._pipe.segmenter, BatterySaver), timeout=WAIT)
    assert win.worker._pipe.segmenter.inner is inner  # wrapped, not reopened
    frames = win.worker._pipe.stats.frames
    qtbot.waitUntil(lambda: win.worker._pipe.stats.frames > frames + 5, timeout=WAIT)  # and it keeps running
    c.engine.setCurrentIndex(c.engine.findData("mediapipe"))
    c.engine.activated.emit(c.engine.currentIndex())
    qtbot.waitUntil(lambda: getattr(win.worker._pipe.segmenter, "inner", None) is not None
                    and win.worker._pipe.segmenter.inner.name != inner.name, timeout=WAIT)
    win.close()
    assert json.loads((cfg / "settings.json").read_text())["battery_saver"] is True
    win2 = make_window()
    assert win2.controls.battery_saver.isChecked()
    wait_running(qtbot, win2)
    assert isinstance(win2.worker._pipe.segmenter, BatterySaver)
    win2.controls.battery_saver.setChecked(False)
    qtbot.waitUntil(lambda: not isinstance(win2.worker._pipe.segmenter, BatterySaver), timeout=WAIT)


# -- settings --------------------------------------------------------------------------------------
def test_settings_round_trip(tmp_path):
    from vbg_app.gui.settings import Settings, SettingsStore

    store = SettingsStore(tmp_path / "cfg")
    s = Settings(source="camera:1", camera_size="1280x720", camera_fps=30.0, background="color:#112233",
                 blur_strength=42, custom_colors=["#112233"], engine="mediapipe", provider="cpu",
                 smoothing="none", refine=False, mirror=True, battery_saver=True, show_original=True)
    store.save(s)
    loaded, notice = store.load()
    assert notice == "" and loaded == s
    assert not [p for p in (tmp_path / "cfg").iterdir() if p.name != "settings.json"]  # no temp files left
    cfg = loaded.pipeline_config()
    assert cfg.size == (1280, 720) and cfg.fps == 30.0 and cfg.sink == "null" and cfg.mirror


def test_invalid_values_fall_back_one_by_one(tmp_path):
    from vbg_app.gui.settings import Settings, SettingsStore

    store = SettingsStore(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps(
        {"blur_strength": 500, "mirror": "yes", "smoothing": "flow", "engine": "nope", "unknown": 1}))
    s, notice = store.load()
    assert s.blur_strength == Settings().blur_strength and s.mirror is False and s.engine == "connectnet"
    assert "blur_strength" in notice and "mirror" in notice and "engine" in notice


def test_corrupt_settings_give_defaults_a_notice_and_a_backup(qtbot, make_window, gui_dirs):
    cfg, _ = gui_dirs
    cfg.mkdir(parents=True)
    bad = '{"background": "color:#FF0000", "mirror": tru'
    (cfg / "settings.json").write_text(bad)
    win = make_window()
    assert any(level == "warning" and "damaged" in text and "default settings" in text for level, text in win.messages)
    backups = list(cfg.glob("settings.json.bad-*"))
    assert len(backups) == 1 and backups[0].read_text() == bad
    assert str(backups[0]) in win.banner.text()
    assert win.settings.mirror is False and win.gallery.current_entry().kind == "blur"
    win.close()
    assert json.loads((cfg / "settings.json").read_text())["background"].startswith("blur")


def test_saved_background_that_is_gone_falls_back_to_blur(qtbot, make_window, tmp_path):
    win = make_window(background=f"image:{tmp_path / 'deleted.jpg'}")
    assert any("is gone" in t for _, t in win.messages)
    assert win.gallery.current_entry().kind == "blur"
    wait_running(qtbot, win)


# -- start-up pieces -------------------------------------------------------------------------------
def test_qt_env_guard_drops_opencvs_plugin_path(monkeypatch):
    import cv2 as cv
    from vbg_app.gui.qtenv import fix_qt_env

    plugins = os.path.join(os.path.dirname(cv.__file__), "qt", "plugins")
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", plugins)
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts/mine")
    assert fix_qt_env() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ and os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts/mine"


def test_crash_reporter_logs_instead_of_crashing(qtbot, caplog):
    from vbg_app.gui.app import CrashReporter

    rep = CrashReporter("", interactive=False)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rep.excepthook(*sys.exc_info())
    assert rep.count == 1 and "boom" in caplog.text


def test_add_arguments_and_entry_points():
    import argparse

    import vbg_app.gui as gui

    p = argparse.ArgumentParser()
    gui.add_arguments(p)
    args = p.parse_args(["--source", "demo", "--screenshot", "x.png", "--quit-after-frames", "5"])
    assert args.screenshot == "x.png" and args.quit_after_frames == 5
    assert callable(gui.run) and callable(gui.main)


def test_screenshot_command_renders_the_real_window(tmp_path):
    from tests.tinymodel import make_model

    pytest.importorskip("onnx")
    model = make_model(tmp_path / "tiny.onnx")
    shot = tmp_path / "shot.png"
    bg = resources.asset_path("backgrounds", "hills.jpg")
    env = dict(os.environ)
    env.update(VBG_CONFIG_DIR=str(tmp_path / "c"), VBG_DATA_DIR=str(tmp_path / "d"), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-m", "vbg_app.gui", "--source", "demo", "--engine", "connectnet", "--model", str(model),
         "--background", f"image:{bg}", "--screenshot", str(shot), "--quit-after-frames", "5", "--size", "1000x640"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[0] == 640 and 1000 <= img.shape[1] < 1200
    assert img.std() > 20  # not a blank window
    assert not (tmp_path / "c" / "settings.json").exists()  # screenshot mode does not touch the settings
