import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakecam import FakeVirtualCamera, installed, no_backends
from tests.util import read_frames
from vbg_app.errors import BadInput, DeviceUnavailable
from vbg_app.sinks import (FileSink, NullSink, Sink, VirtualCameraSink, open_sink, virtual_camera_fix,
                           virtual_camera_status)

ROOT = Path(__file__).resolve().parent.parent


def _pattern(w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _halves(w, h):
    """Left half pure red, right half pure blue (BGR): survives resizing and lossy codecs."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:, : w // 2] = (0, 0, 255)
    f[:, w // 2:] = (255, 0, 0)
    return f


# -- virtual camera -----------------------------------------------------------------------------------
def test_vcam_frame_arrives_unchanged_in_bgr(fake_vcam):
    frame = _pattern(64, 48)
    with VirtualCameraSink(64, 48, 30) as sink:
        assert isinstance(sink, Sink)
        sink.send(frame)
        sink.send(frame[::-1])  # a non-contiguous view is fine too
        assert "/dev/fakecam0" in sink.description
    assert fake_vcam.fourcc == "24BG"  # pyvirtualcam asked the backend for BGR
    assert (fake_vcam.width, fake_vcam.height, fake_vcam.fps) == (64, 48, 30)
    assert fake_vcam.count == 2
    assert np.array_equal(fake_vcam.frames[0], frame)
    assert np.array_equal(fake_vcam.frames[1], frame[::-1])
    assert fake_vcam.raw[0].shape == (64 * 48 * 3,)
    assert fake_vcam.closed == 1


def test_vcam_that_goes_away_is_reopened_without_a_restart(fake_vcam, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("vbg_app.sinks.time.monotonic", lambda: clock[0])
    sink = VirtualCameraSink(64, 48, 30, reopen_every_s=2.0)
    sink.send(_pattern(seed=1))
    fake_vcam.fail_send = "device removed"
    with pytest.raises(DeviceUnavailable, match="stopped accepting frames") as exc:
        sink.send(_pattern(seed=2))
    assert "reopens it by itself" in exc.value.one_line() and fake_vcam.closed == 1
    fake_vcam.fail_send, fake_vcam.fail = None, "No such device"  # the device is gone for a while
    clock[0] += 0.5
    with pytest.raises(DeviceUnavailable, match="device removed"):  # too early: no attempt, same cause
        sink.send(_pattern(seed=3))
    assert fake_vcam.opened == 1
    clock[0] += 2.0
    with pytest.raises(DeviceUnavailable, match="stopped accepting"):  # one attempt, still missing
        sink.send(_pattern(seed=4))
    assert fake_vcam.opened == 1
    fake_vcam.fail = None  # it is back
    clock[0] += 1.0
    with pytest.raises(DeviceUnavailable, match="device removed"):  # not before 2 s after the last attempt
        sink.send(_pattern(seed=5))
    clock[0] += 1.5
    frame = _pattern(seed=6)
    sink.send(frame)
    assert fake_vcam.opened == 2 and sink.reopened == 1 and fake_vcam.device == sink.device
    assert np.array_equal(fake_vcam.last, frame) and sink.frames_sent == 2
    sink.close()
    with pytest.raises(RuntimeError, match="closed"):
        sink.send(frame)
    assert fake_vcam.opened == 2  # a closed sink never reopens


def test_vcam_resizes_frames_of_another_size(fake_vcam):
    sink = VirtualCameraSink(64, 48, 30)
    sink.send(_halves(160, 120))   # downscale
    sink.send(_halves(32, 24))     # upscale
    for got in fake_vcam.frames:
        assert got.shape == (48, 64, 3)
        assert np.all(got[:, :28] == (0, 0, 255)) and np.all(got[:, 36:] == (255, 0, 0))
    sink.close()
    sink.close()  # idempotent
    assert fake_vcam.closed == 1
    with pytest.raises(RuntimeError):
        sink.send(_halves(64, 48))


def test_vcam_normalises_gray_and_bgra(fake_vcam):
    sink = VirtualCameraSink(8, 6, 30)
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    sink.send(gray)
    assert np.array_equal(fake_vcam.last, np.dstack([gray] * 3))
    bgra = np.dstack([_pattern(8, 6), np.zeros((6, 8), np.uint8)])
    sink.send(bgra)
    assert np.array_equal(fake_vcam.last, bgra[:, :, :3])
    with pytest.raises(BadInput):
        sink.send(np.zeros((6, 8, 3), np.float32))
    sink.close()


def test_vcam_device_from_spec(fake_vcam):
    sink = open_sink("vcam:/dev/video42", (32, 24), 15)
    assert fake_vcam.device == "/dev/video42" and sink.device == "/dev/video42"
    assert "/dev/video42" in sink.description and "32x24" in sink.description
    sink.close()


def test_no_backend_is_device_unavailable_with_the_modprobe_fix(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    with no_backends(), pytest.raises(DeviceUnavailable) as err:
        VirtualCameraSink(64, 48, 30)
    text = str(err.value)
    assert "modprobe v4l2loopback" in text and "v4l2loopback-dkms" in text
    assert err.value.exit_code == 3
    assert "\n" not in text


def test_backend_error_text_is_kept_as_detail(monkeypatch):
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    rec = FakeVirtualCamera(fail="No v4l2 loopback device found at /dev/video[0-99].\nDid you run 'modprobe v4l2loopback'?")
    with installed(rec), pytest.raises(DeviceUnavailable) as err:
        open_sink("vcam:/dev/video9", (64, 48), 30)
    text = err.value.one_line()
    assert "No v4l2 loopback device found" in text and "/dev/video9" in text
    assert 'exclusive_caps=1 card_label="vbg"' in text


def test_backend_that_refuses_bgr_is_device_unavailable():
    rec = FakeVirtualCamera(accept=("I420",))
    with installed(rec), pytest.raises(DeviceUnavailable, match="unsupported pixel format"):
        VirtualCameraSink(64, 48, 30)


def test_fix_text_per_os():
    assert "modprobe v4l2loopback" in virtual_camera_fix("Linux")
    for system in ("Windows", "Darwin"):
        assert "OBS" in virtual_camera_fix(system) and "virtual camera" in virtual_camera_fix(system)
    assert "30" in virtual_camera_fix("Darwin")


def test_unknown_backend_name_is_bad_input(fake_vcam):
    with pytest.raises(BadInput, match="vbg-fake"):
        VirtualCameraSink(64, 48, 30, backend="nope")


def test_virtual_camera_status(fake_vcam, monkeypatch):
    ok, text = virtual_camera_status()
    assert ok and "/dev/fakecam0" in text and fake_vcam.closed == 1
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    with no_backends():
        ok, text = virtual_camera_status()
    assert not ok and "modprobe v4l2loopback" in text


# -- file ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_file_sink_writes_a_readable_video(tmp_path, name):
    path = tmp_path / "sub" / name  # missing folders are created
    with open_sink(f"file:{path}", (64, 48), 25) as sink:
        assert isinstance(sink, FileSink) and str(path) in sink.description
        for i in range(12):
            sink.send(np.full((48, 64, 3), 20 * i, np.uint8))
    frames = read_frames(path)
    assert len(frames) == 12
    assert frames[0].shape == (48, 64, 3)
    means = [f.mean() for f in frames]
    assert means[-1] > means[0] + 150  # the content is the frames sent, in order
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == pytest.approx(25, abs=0.5)


def test_file_sink_resizes_and_rounds_odd_sizes(tmp_path):
    path = tmp_path / "odd.mp4"
    sink = FileSink(path, 65, 47, 30)
    assert (sink.width, sink.height) == (64, 46)
    sink.send(_halves(200, 100))
    sink.send(_halves(64, 46))
    sink.close()
    frames = read_frames(path)
    assert len(frames) == 2 and frames[0].shape == (46, 64, 3)
    assert frames[0][:, :24, 2].mean() > 200 and frames[0][:, 40:, 0].mean() > 200


def test_file_closed_early_is_playable_and_close_is_idempotent(tmp_path):
    path = tmp_path / "early.mp4"
    sink = FileSink(path, 64, 48, 30)
    for i in range(5):
        sink.send(_pattern(seed=i))
    sink.close()
    sink.close()
    with pytest.raises(RuntimeError):
        sink.send(_pattern())
    assert len(read_frames(path)) == 5


def test_interrupted_recording_is_still_playable(tmp_path):
    """Ctrl+C while a pipeline thread (a daemon, never torn down at exit) still holds the sink: OpenCV's
    own destructor never runs, so only FileSink's exit hook can finalise the file."""
    path = tmp_path / "interrupted.mp4"
    script = textwrap.dedent(f"""
        import threading, time
        import numpy as np
        from vbg_app.sinks import FileSink
        sink = FileSink({str(path)!r}, 64, 48, 30)
        for i in range(7):
            sink.send(np.full((48, 64, 3), 30 * i, np.uint8))
        threading.Thread(target=lambda s: time.sleep(60), args=(sink,), daemon=True).start()
        del sink
        raise KeyboardInterrupt
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" in proc.stderr
    assert len(read_frames(path)) == 7


def test_file_sink_bad_paths(tmp_path):
    with pytest.raises(BadInput, match=r"\.mp4"):
        FileSink(tmp_path / "out.xyz", 64, 48, 30)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(BadInput):
        FileSink(blocker / "out.mp4", 64, 48, 30)
    with pytest.raises(BadInput):
        FileSink(tmp_path, 64, 48, 30)
    with pytest.raises(BadInput):
        FileSink(tmp_path / "o.mp4", 0, 48, 30)


# -- null and parsing ---------------------------------------------------------------------------------
def test_null_sink_counts():
    sink = open_sink("null", (64, 48), 30)
    assert isinstance(sink, NullSink) and isinstance(sink, Sink)
    for _ in range(3):
        sink.send(_pattern())
    assert sink.frames_sent == 3 and sink.frames == 3 and sink.last_frame.shape == (48, 64, 3)
    sink.close()


def test_open_sink_rejects_unknown_specs(tmp_path):
    with pytest.raises(BadInput) as err:
        open_sink("webcam", (64, 48), 30)
    assert "vcam" in str(err.value) and "file:PATH" in str(err.value)
    bare = open_sink(str(tmp_path / "bare.avi"), (64, 48), 30)
    assert isinstance(bare, FileSink) and bare.codec == "MJPG"
    bare.close()
