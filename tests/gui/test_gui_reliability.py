"""What the window shows when the camera goes away and comes back, when the virtual camera stops taking frames,
and when the GPU is dropped for the CPU mid-call (fake camera, fake virtual-camera backend, fake segmenter)."""
import time

import numpy as np
import pytest

from tests.gui.test_gui import WAIT, qimage_to_bgr, wait_running
from vbg_app.errors import DeviceUnavailable
from vbg_app.sources import ReconnectingSource, SourceEnded


class Device:
    """A camera that can be unplugged (``up = False``)."""

    def __init__(self):
        self.up = True

    def open(self):
        if not self.up:
            raise DeviceUnavailable("camera 7 not found (no /dev/video7)", "plug it in")
        return Cam(self)


class Cam:
    live, fps, size_wh, description = True, 30.0, (640, 360), "camera 7"

    def __init__(self, dev):
        self.dev, self.dead, self.closed = dev, False, False

    def read(self):
        if self.closed:
            raise SourceEnded("closed")
        if self.dead or not self.dev.up:
            self.dead = True
            raise DeviceUnavailable("camera 7 stopped delivering frames", "check the cable")
        time.sleep(1 / self.fps)
        return np.full((360, 640, 3), 160, np.uint8)

    def close(self):
        self.closed = True


@pytest.fixture
def unpluggable(monkeypatch):
    """``camera:7`` opens a camera that the test can unplug; everything else opens as usual."""
    from vbg_app import sources

    dev = Device()
    real = sources.open_source

    def open_source(spec, **opts):
        if spec == "camera:7":
            return ReconnectingSource(dev.open)
        return real(spec, **opts)

    monkeypatch.setattr(sources, "open_source", open_source)
    return dev


def test_a_lost_camera_is_shown_while_it_reconnects_and_the_preview_shows_the_card(qtbot, make_window, unpluggable):
    win = make_window(source="camera:7", background="none")
    wait_running(qtbot, win)
    assert win.source_state == "ok"
    with qtbot.waitSignal(win.worker.sourceChanged, timeout=WAIT,
                          check_params_cb=lambda state, spec, text: state == "lost") as lost:
        unpluggable.up = False
    assert lost.args[1] == "camera:7" and "Camera lost — reconnecting…" in lost.args[2]
    assert win.source_state == "lost" and "reconnecting" in win.controls.source_state.text()
    assert win.messages[-1][0] == "warning" and "camera unavailable" in win.banner.text()
    # the preview shows what the meeting sees: the dark card, about a second after the last frame
    qtbot.waitUntil(lambda: qimage_to_bgr(win.preview.image()).mean() < 70, timeout=WAIT)
    with qtbot.waitSignal(win.worker.sourceChanged, timeout=WAIT,
                          check_params_cb=lambda state, spec, text: state == "ok"):
        unpluggable.up = True
    qtbot.waitUntil(lambda: qimage_to_bgr(win.preview.image()).mean() > 150, timeout=WAIT)  # live again
    assert win.source_state == "ok" and "camera is back" in win.banner.text()
    assert win.controls.source_state.text().startswith("Showing:")


def test_a_virtual_camera_that_fails_midway_shows_it_keeps_the_preview_and_can_be_retried(qtbot, make_window,
                                                                                         fake_vcam):
    win = make_window()
    wait_running(qtbot, win)
    win.set_virtual_camera(True)
    qtbot.waitUntil(lambda: win.vcam_state[0] == "on" and fake_vcam.count >= 3, timeout=WAIT)
    fake_vcam.fail_send = "write: No such device"
    qtbot.waitUntil(lambda: win.vcam_state[0] == "lost", timeout=WAIT)
    label = win.vcam_state_label.text()
    assert label.startswith("The virtual camera stopped.") and "turn it on again" in label
    assert "No such device" in win.vcam_state_label.toolTip()  # what failed, at hand
    assert "by itself" not in label + win.vcam_state_label.toolTip()  # the CLI's self-reopen advice is not shown
    assert win.vcam_help_button.isVisible()
    assert not win.vcam_button.isChecked() and "Off" in win.vcam_button.text()
    assert fake_vcam.closed == 1  # the failed camera was released
    wait_running(qtbot, win, frames=5)  # the preview goes on
    fake_vcam.fail_send = None
    sent = fake_vcam.count
    win.vcam_button.click()  # retry
    qtbot.waitUntil(lambda: win.vcam_state[0] == "on", timeout=WAIT)
    qtbot.waitUntil(lambda: fake_vcam.count >= sent + 3, timeout=WAIT)
    assert win.vcam_button.isChecked()


def test_a_gpu_dropped_for_the_cpu_mid_call_is_shown(qtbot, make_window, fake_engine):
    win = make_window()
    wait_running(qtbot, win)
    seg = fake_engine[-1]
    assert "on CPU" in win.controls.engine_state.text()
    seg.fallback_reason = "cuda failed while running (CUDA failure 999)"  # what OnnxSegmenter reports
    qtbot.waitUntil(lambda: "cuda failed while running" in win.controls.engine_state.text(), timeout=WAIT)
    qtbot.waitUntil(lambda: any("cuda failed while running" in text and "CPU" in text  # (the next signal)
                                for level, text in win.messages), timeout=WAIT)
    qtbot.waitUntil(lambda: "provider note: cuda failed" in win.readout.toolTip(), timeout=WAIT)
