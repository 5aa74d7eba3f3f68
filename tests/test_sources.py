import os
import threading
import time

import cv2
import numpy as np
import pytest

from vbg_app.errors import BadInput, DeviceUnavailable
from vbg_app.sources import (CameraSource, DemoSource, ImageSource, LatestFrameGrabber, Source, SourceEnded,
                             VideoSource, list_cameras, open_source, to_bgr8)

N_FRAMES = 10  # frames in the generated test video


def _write_video(path, n=N_FRAMES, fps=30, size=(64, 48), codec="mp4v"):
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), 20 + 10 * i, np.uint8))  # frame i has brightness 20 + 10 i
    vw.release()
    return path


@pytest.fixture
def video(tmp_path):
    return _write_video(tmp_path / "clip.mp4")


def _index(frame):
    """Which frame of the generated video this is (by brightness; survives mp4v compression)."""
    return int(round((float(frame.mean()) - 20) / 10))


# -- to_bgr8 ------------------------------------------------------------------------------------------
def test_to_bgr8_gray_bgra_and_passthrough():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for g in (gray, gray[:, :, None]):
        out = to_bgr8(g)
        assert out.shape == (3, 4, 3) and out.dtype == np.uint8
        assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)
    bgra = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    assert np.array_equal(to_bgr8(bgra), bgra[:, :, :3])
    bgr = bgra[:, :, :3].copy()
    assert to_bgr8(bgr) is bgr  # no copy for frames that are already right
    flipped = bgr[:, ::-1]
    out = to_bgr8(flipped)
    assert out.flags.c_contiguous and np.array_equal(out, flipped)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 3), np.uint16),
                                 np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8),
                                 np.zeros((2, 4, 4, 3), np.uint8), [[0, 1], [2, 3]]])
def test_to_bgr8_refuses_what_it_cannot_convert(bad):
    with pytest.raises(BadInput) as err:
        to_bgr8(bad)
    assert err.value.fix  # says what to do


def test_to_bgr8_float_message_names_uint8():
    with pytest.raises(BadInput, match="uint8"):
        to_bgr8(np.zeros((4, 4, 3), np.float64))


# -- video --------------------------------------------------------------------------------------------
def test_video_loops(video):
    with VideoSource(video, loop=True, realtime=False) as src:
        assert isinstance(src, Source)
        assert src.size_wh == (64, 48) and src.fps == pytest.approx(30, abs=0.5) and not src.live
        got = [_index(src.read()) for _ in range(N_FRAMES * 2 + 3)]
    assert got == list(range(N_FRAMES)) * 2 + [0, 1, 2]
    assert src.loops == 2


def test_video_without_loop_ends(video):
    src = VideoSource(video, loop=False, realtime=False)
    frames = [src.read() for _ in range(N_FRAMES)]
    assert [_index(f) for f in frames] == list(range(N_FRAMES))
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    for _ in range(2):  # and keeps saying so
        with pytest.raises(SourceEnded):
            src.read()
    src.close()
    src.close()


def test_video_realtime_is_paced_without_spinning(video):
    n = 16
    with VideoSource(video, loop=True, realtime=True) as src:
        assert src.live
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            assert src.read() is not None
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert elapsed >= 0.9 * (n - 1) / 30          # paced at the file's 30 fps
    assert cpu < 0.5 * elapsed                    # by sleeping, not busy-waiting


def test_video_as_fast_as_possible_is_not_paced(video):
    with VideoSource(video, loop=True, realtime=False) as src:
        t0 = time.perf_counter()
        for _ in range(30):
            src.read()
        assert time.perf_counter() - t0 < 0.5 * 29 / 30


def test_video_bad_files_are_bad_input(tmp_path, video):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(20000))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    image = cv2.imwrite(str(tmp_path / "still.png"), np.zeros((8, 8, 3), np.uint8))
    assert image
    for path in (garbage, truncated, empty, tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(BadInput) as err:
            VideoSource(path)
        assert err.value.exit_code == 2 and str(path.name) in str(err.value)


def test_video_corrupt_midway_ends_or_loops_without_crashing(tmp_path):
    """An AVI cut at 80 %: decodable at first, then broken. loop=False ends cleanly; loop=True goes on."""
    full = _write_video(tmp_path / "full.avi", n=20, codec="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.8)])
    src = VideoSource(cut, loop=False, realtime=False)
    n = 0
    with pytest.raises(SourceEnded):
        while n < 100:
            src.read()
            n += 1
    assert 1 <= n < 20
    with VideoSource(cut, loop=True, realtime=False) as src:
        got = [_index(src.read()) for _ in range(3 * n)]
    assert got[:n] == got[n:2 * n] == list(range(n))


# -- image --------------------------------------------------------------------------------------------
def test_image_source_repeats_copies(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    path = tmp_path / "me.png"
    cv2.imwrite(str(path), img)
    with open_source(f"image:{path}", realtime=False) as src:
        assert isinstance(src, ImageSource) and src.size_wh == (40, 30)
        a = src.read()
        a[:] = 0  # a consumer scribbling on its frame must not change the next one
        assert np.array_equal(src.read(), img)
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), img[:, :, 0])
    assert ImageSource(gray, realtime=False).read().shape == (30, 40, 3)


def test_image_source_paces(tmp_path):
    path = tmp_path / "me.png"
    cv2.imwrite(str(path), np.zeros((16, 16, 3), np.uint8))
    src = ImageSource(path, fps=50)
    t0 = time.perf_counter()
    for _ in range(6):
        src.read()
    assert time.perf_counter() - t0 >= 0.9 * 5 / 50


def test_image_bad_files(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all" * 10)
    for path in (bad, tmp_path / "missing.png"):
        with pytest.raises(BadInput):
            ImageSource(path)


# -- demo ---------------------------------------------------------------------------------------------
def test_demo_is_deterministic_and_moves():
    a, b = DemoSource(realtime=False), DemoSource(realtime=False)
    f0 = a.frame_at(0)
    assert f0.shape == (720, 1280, 3) and f0.dtype == np.uint8 and a.size_wh == (1280, 720)
    for k in (0, 7, 123):
        assert np.array_equal(a.frame_at(k), b.frame_at(k))
    for k in (0, 40, 200):
        diff = np.abs(a.frame_at(k).astype(np.int16) - a.frame_at(k + 15)).mean()
        assert diff > 1.0  # the person moved
    # only the portrait moves: the far left of the room is the same in every frame
    assert np.array_equal(a.frame_at(0)[:, :150], a.frame_at(77)[:, :150])
    # read() without pacing walks the frame indices
    assert np.array_equal(a.read(), a.frame_at(0)) and np.array_equal(a.read(), a.frame_at(1))


def test_demo_shows_a_portrait_not_a_blank_room():
    f = DemoSource(realtime=False).frame_at(0)
    centre, side = f[200:500, 520:760], f[200:500, 0:100]
    assert centre.std() > 30 and np.abs(centre.mean(axis=(0, 1)) - side.mean(axis=(0, 1))).max() > 10


def test_demo_other_sizes_via_open_source():
    src = open_source("demo", size=(320, 180), fps=15, realtime=False)
    assert isinstance(src, DemoSource) and src.size_wh == (320, 180) and src.fps == 15
    assert src.read().shape == (180, 320, 3)


def test_demo_realtime_follows_the_clock():
    src = DemoSource(320, 180, fps=50)
    assert src.live
    t0 = time.perf_counter()
    for _ in range(6):
        src.read()
    assert time.perf_counter() - t0 >= 0.9 * 5 / 50


# -- camera -------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.path.exists("/dev/video7"), reason="this machine has a /dev/video7")
def test_missing_camera_is_device_unavailable(capfd):
    t0 = time.perf_counter()
    for spec in ("camera:7", "7"):
        with pytest.raises(DeviceUnavailable) as err:
            open_source(spec)
        assert err.value.exit_code == 3 and "vbg devices" in str(err.value) and "7" in str(err.value)
    with pytest.raises(DeviceUnavailable):
        CameraSource("/dev/video77")
    assert time.perf_counter() - t0 < 5
    assert "WARN" not in capfd.readouterr().err


def test_list_cameras_is_quiet_without_cameras(capfd):
    cams = list_cameras()
    assert isinstance(cams, list)
    for cam in cams:
        assert {"index", "spec", "name", "size"} <= cam.keys()
    if not any(os.path.exists(f"/dev/video{i}") for i in range(64)):
        assert cams == []
    out = capfd.readouterr()
    assert "WARN" not in out.err and "ERROR" not in out.err


class NumberedCapture:
    """A cv2.VideoCapture stand-in producing numbered frames every ``period`` s (faster than read)."""

    def __init__(self, period=0.001, fail_after=None):
        self.period = period
        self.fail_after = fail_after
        self.produced = 0
        self.released = False

    def read(self):
        time.sleep(self.period)
        if self.fail_after is not None and self.produced >= self.fail_after:
            return False, None
        n = self.produced
        frame = np.zeros((16, 16, 3), np.uint8)  # the smallest size a camera may send
        frame[0, 0] = (n & 255, (n >> 8) & 255, (n >> 16) & 255)
        self.produced += 1
        return True, frame

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def _number(frame):
    b, g, r = (int(v) for v in frame[0, 0])
    return b | (g << 8) | (r << 16)


def test_camera_hands_over_the_newest_frame_never_an_old_one():
    cap = NumberedCapture(period=0.001)
    src = CameraSource(capture=cap)
    assert src.live and src.size_wh == (16, 16) and src.fps == 30
    seen = []
    for _ in range(15):
        time.sleep(0.015)  # a slow consumer: the camera produced several frames meanwhile
        newest_before = cap.produced - 1
        frame = src.read()
        n = _number(frame)
        assert n >= newest_before - 1  # the newest (one may be in flight between read and publish)
        seen.append(n)
    assert seen == sorted(set(seen))  # strictly increasing: never the same or an older frame twice
    assert max(np.diff(seen)) > 1 and src.dropped > 0  # stale frames were dropped, not queued
    src.close()
    src.close()
    assert cap.released
    with pytest.raises(SourceEnded):
        src.read()


def test_camera_read_returns_none_when_nothing_new():
    cap = NumberedCapture(period=0.3)
    src = CameraSource(capture=cap)
    assert src.read(timeout=1.0) is not None
    assert src.read(timeout=0) is None            # nothing new right now, and no waiting
    assert src.read(timeout=1.0) is not None      # waits for the next one
    src.close()


def test_grabber_wakes_a_waiting_reader_promptly():
    grabber = LatestFrameGrabber(NumberedCapture(period=0.05))
    assert grabber.wait_first(2.0) is not None
    grabber.read()
    t0 = time.perf_counter()
    assert grabber.read(timeout=2.0) is not None
    assert time.perf_counter() - t0 < 1.0
    grabber.close()


def test_camera_that_stops_delivering_is_device_unavailable():
    with pytest.raises(DeviceUnavailable, match="stopped delivering"):
        CameraSource(capture=NumberedCapture(fail_after=0), stall_timeout=0.2, first_frame_timeout=2.0)
    src = CameraSource(capture=NumberedCapture(fail_after=3), stall_timeout=0.2)
    deadline = time.monotonic() + 3
    with pytest.raises(DeviceUnavailable):
        while time.monotonic() < deadline:
            src.read(timeout=0.05)
    src.close()


def test_camera_grabber_thread_ends_on_close():
    src = CameraSource(capture=NumberedCapture())
    thread = src._grabber._thread
    src.close()
    assert not thread.is_alive()
    assert not any(t.name.startswith("vbg-grab") and t.is_alive() for t in threading.enumerate())


# -- spec parsing -------------------------------------------------------------------------------------
def test_open_source_specs(tmp_path, video):
    with pytest.raises(BadInput) as err:
        open_source("webcam:0")
    assert "camera:N" in str(err.value) and "video:PATH" in str(err.value)
    for spec in ("video:", "image:", ""):
        with pytest.raises(BadInput):
            open_source(spec)
    with open_source(f"video:{video}", realtime=False, loop=False) as src:
        assert isinstance(src, VideoSource) and not src.loop
    with open_source(str(video), realtime=False) as src:  # a bare path is opened by its extension
        assert isinstance(src, VideoSource) and not src.loop  # a video plays once unless asked to loop
