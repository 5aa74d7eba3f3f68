"""Recording to a file when things go wrong (#17): a disk that fills up or stops taking data ends `vbg run`
with exit 4 and a playable file; an existing recording is never overwritten unless asked; two recordings to
one file cannot interleave (frames go to NAME.partial.EXT, renamed when the recording ends)."""
import itertools
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import CountingSource, EchoSegmenter, PassFilter, TagCompositor
from tests.tinymodel import make_model
from tests.util import read_frames
from vbg_app import cli
from vbg_app.errors import EXIT_OUTPUT_FAILED, BadInput, OutputFailed
from vbg_app.pipeline import Pipeline
from vbg_app.sinks import FileSink, open_sink, partial_path

ROOT = Path(__file__).resolve().parent.parent
REAL_WRITER = cv2.VideoWriter
EXTS = ("mp4", "mkv", "avi")


def _noise(w, h, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _moving(w, h, k):
    """A blurred picture sliding sideways: compresses like a real scene (a few KB per frame)."""
    base = getattr(_moving, "base", None)
    if base is None or base.shape[:2] != (h, w):
        base = _moving.base = cv2.GaussianBlur(_noise(w, h, 1), (31, 31), 0)
    return np.roll(base, 3 * k, axis=1)


def _leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if ".partial." in p.name)


class FailingWriter:
    """A cv2.VideoWriter that writes ``good`` frames, then fails as ``mode`` says:

    refused: write() returns False and writes nothing (OpenCV 5 reports a failed write);
    silent:  write() returns None and writes nothing (OpenCV 4 reports nothing at all: only the file not
             growing tells);
    full:    write() returns None and writes nothing, the disk's free space down to 100 KB (shutil.disk_usage);
    removed: the file being written is deleted (a pulled USB disk, a cleaner)."""

    def __init__(self, path, fourcc, fps, size, good, mode):
        self.path, self.good, self.mode, self.n = path, good, mode, 0
        self.real = REAL_WRITER(path, fourcc, fps, size)

    def isOpened(self):
        return self.real.isOpened()

    def write(self, frame):
        self.n += 1
        if self.n > self.good:
            if self.mode == "refused":
                return False
            if self.mode in ("silent", "full"):
                return None
            if self.mode == "removed" and os.path.exists(self.path):
                os.unlink(self.path)
        ok = self.real.write(frame)
        return None if self.mode in ("silent", "full") else ok

    def release(self):
        self.real.release()


@pytest.fixture
def failing_writer(monkeypatch):
    """``install(good, mode)``: every VideoWriter opened from now on fails after ``good`` frames."""
    state = {}

    def install(good, mode):
        state.update(good=good, mode=mode, writers=[])
        if mode == "full":
            real_usage = shutil.disk_usage

            def usage(path):
                u = real_usage(path)
                full = any(w.n >= good for w in state["writers"])
                return u._replace(free=100_000 if full else 10_000_000)  # 10 MB: checked every frame

            monkeypatch.setattr(shutil, "disk_usage", usage)

    def factory(path, fourcc, fps, size):
        w = FailingWriter(path, fourcc, fps, size, state["good"], state["mode"])
        state["writers"].append(w)
        return w

    monkeypatch.setattr(cv2, "VideoWriter", factory)
    return install


# -- a disk that fails mid-recording (fake writers) -----------------------------------------------------
CASES = [  # mode, what the message says, frames still playable (of 8 good ones), kept at the asked name
    ("refused", "failed at frame 9", 8, True),
    ("silent", "has not grown for", 8, True),
    ("full", "is full (0.1 MB free)", 8, True),
    ("removed", "went away (its disk was removed", 0, False),
]


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("mode,says,playable,kept", CASES, ids=[c[0] for c in CASES])
def test_a_failing_output_stops_with_exit_4_and_keeps_what_was_written(tmp_path, failing_writer, ext, mode,
                                                                       says, playable, kept):
    failing_writer(8, mode)
    path = tmp_path / f"rec.{ext}"
    sink = FileSink(path, 320, 240, 30)
    frames = [_noise(320, 240, k) for k in range(4)]  # MJPEG/mp4v of noise: the file grows every few frames
    with pytest.raises(OutputFailed) as err:
        for k in itertools.count():
            sink.send(frames[k % 4])
            assert k < 15_000, "the failure was never noticed"  # silent .mp4 at 320x240: ~11,500
    text = err.value.one_line()
    assert err.value.exit_code == EXIT_OUTPUT_FAILED == 4
    assert "\n" not in text and says in text and sink.failure is err.value
    assert sink.frames_sent >= 8
    if kept:
        assert f"{sink.frames_sent} frames" in text and f"is in {path}" in text
        assert len(read_frames(path)) == playable
        assert sink.saved_to == path
    else:
        assert "lost" in text and not path.exists()
    assert _leftovers(tmp_path) == []
    with pytest.raises(OutputFailed):  # it stays failed: the pipeline gets the same answer
        sink.send(frames[0])
    sink.close()
    sink.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=st.integers(0, 20), ext=st.sampled_from(EXTS))
def test_whatever_frame_fails_every_frame_before_it_plays(tmp_path, failing_writer, good, ext):
    failing_writer(good, "refused")
    folder = tmp_path / uuid.uuid4().hex
    path = folder / f"rec.{ext}"
    sink = FileSink(path, 64, 48, 25)
    with pytest.raises(OutputFailed) as err:
        for k in range(good + 1):
            sink.send(np.full((48, 64, 3), 10 * k, np.uint8))
    assert sink.frames_sent == good
    if good == 0:
        assert "nothing was recorded" in str(err.value) and not path.exists()
    else:
        frames = read_frames(path)
        assert len(frames) == good and abs(float(frames[-1].mean()) - 10 * (good - 1)) < 8
    assert _leftovers(folder) == []


def test_vbg_run_whose_recording_fails_exits_4_with_one_line(tmp_path, failing_writer, capsys):
    failing_writer(10, "refused")
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    out = tmp_path / "meeting.avi"
    rc = cli.main(["run", "--source", "demo", "--size", "160x120", "--model", str(model), "--sink", f"file:{out}",
                   "--frames", "300", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 4, err
    errors = [line for line in err if line.startswith("error:")]
    assert errors == [err[-1]] and "Traceback" not in "\n".join(err)
    assert err[-1].startswith(f"error: writing {out} failed at frame 11")
    assert f"(up to 10 frames, 0.3 s) is in {out}." in err[-1]
    assert not any(line.startswith("vbg: ") and " frames" in line for line in err)  # no success summary
    assert len(read_frames(out)) == 10 and _leftovers(tmp_path) == []


def test_vbg_run_on_a_full_disk_says_how_much_is_free_and_where_the_recording_is(tmp_path, failing_writer,
                                                                                  capsys):
    failing_writer(6, "full")
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    out = tmp_path / "meeting.mp4"
    rc = cli.main(["run", "--source", "demo", "--size", "160x120", "--model", str(model), "--sink", f"file:{out}",
                   "--frames", "300", "--quiet"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 4
    assert line.startswith(f"error: the disk holding {tmp_path} is full (0.1 MB free). Free space or record "
                           "elsewhere; what was recorded until then (")
    assert f"6 frames, 0.2 s) is in {out}." in line
    assert len(read_frames(out)) == 6


# -- the pipeline -------------------------------------------------------------------------------------
class DyingSink:
    description = "dying"

    def __init__(self, fail_at):
        self.fail_at, self.sent, self.calls, self.closed = fail_at, 0, 0, False

    def send(self, frame):
        self.calls += 1
        if self.sent >= self.fail_at:
            raise OutputFailed("the disk holding /rec is full (0.1 MB free)", "free space or record elsewhere")
        self.sent += 1

    def close(self):
        self.closed = True


@pytest.mark.parametrize("threaded", [False, True])
def test_the_pipeline_stops_on_a_failed_output_and_exposes_it(threaded):
    sink = DyingSink(fail_at=5)
    pipe = Pipeline(CountingSource(200), EchoSegmenter(), PassFilter(), TagCompositor(), sink)
    stats = pipe.run(threaded=threaded)
    assert isinstance(pipe.output_failure, OutputFailed) and not pipe.ended
    assert sink.sent == 5 and sink.calls == 6 and stats.frames < 20
    assert stats.sink_state == "error" and stats.sink_problem == "the disk holding /rec is full (0.1 MB free)"
    assert "Free space or record elsewhere" in stats.sink_error and "output failing" in stats.summary()
    pipe.close()
    assert sink.closed


def test_a_shell_that_keeps_running_sees_a_failed_sink_and_can_swap_it():
    """The GUI's way: no stop; the failed sink gets no more frames; sink_errors_in_row climbs (its
    'turn it off after 3' rule), sink_problem has the text; set_sink starts afresh."""
    sink = DyingSink(fail_at=3)
    pipe = Pipeline(CountingSource(30), EchoSegmenter(), PassFilter(), TagCompositor(), sink)
    pipe.stop_on_output_failure = False
    stats = pipe.run(threaded=False)
    assert pipe.ended and stats.frames == 30
    assert sink.calls == 4 and stats.sink_errors_in_row == 27 and stats.sink_problem.startswith("the disk")
    pipe.set_sink(DyingSink(fail_at=100))
    assert pipe.output_failure is None and stats.sink_state == "ok" and sink.closed
    pipe.close()


# -- overwriting, the partial name, two recordings at once ------------------------------------------------
def test_an_existing_file_is_refused_unless_overwrite(tmp_path):
    path = tmp_path / "talk.mp4"
    path.write_bytes(b"last week's recording")
    with pytest.raises(BadInput) as err:
        open_sink(f"file:{path}", (64, 48), 30)
    assert str(path) in str(err.value) and "--overwrite" in str(err.value) and err.value.exit_code == 2
    assert path.read_bytes() == b"last week's recording" and _leftovers(tmp_path) == []
    sink = open_sink(f"file:{path}", (64, 48), 30, overwrite=True)
    for k in range(4):
        sink.send(np.full((48, 64, 3), 40 * k, np.uint8))
    assert path.read_bytes() == b"last week's recording"  # replaced only once the new recording is finished
    sink.close()
    assert len(read_frames(path)) == 4 and _leftovers(tmp_path) == []


def test_frames_go_to_a_partial_name_renamed_when_the_recording_ends(tmp_path):
    path = tmp_path / "out.mkv"
    sink = FileSink(path, 64, 48, 30)
    sink.send(_noise(64, 48))
    assert partial_path(path) == tmp_path / "out.partial.mkv"
    assert partial_path(path).exists() and not path.exists()
    sink.close()
    assert path.exists() and not partial_path(path).exists() and sink.saved_to == path
    assert len(read_frames(path)) == 1


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_second_recording_to_the_same_file_is_refused(tmp_path, overwrite):
    path = tmp_path / "same.avi"
    first = FileSink(path, 64, 48, 30)
    with pytest.raises(BadInput) as err:
        FileSink(path, 64, 48, 30, overwrite=overwrite)
    assert "another vbg is recording to same.avi" in str(err.value) and "same.partial.avi" in str(err.value)
    for k in range(6):
        first.send(np.full((48, 64, 3), 30 * k, np.uint8))
    first.close()
    means = [f.mean() for f in read_frames(path)]
    assert len(means) == 6 and means == sorted(means)  # the first one's frames only, in order


def test_a_recording_in_another_process_blocks_the_same_file(tmp_path):
    path = tmp_path / "shared.mp4"
    script = ("import sys, numpy as np\n"
              "from vbg_app.sinks import FileSink\n"
              "s = FileSink(sys.argv[1], 64, 48, 30)\n"
              "for k in range(5): s.send(np.full((48, 64, 3), 40 * k, np.uint8))\n"
              "print('recording', flush=True)\n"
              "sys.stdin.read()\n"
              "s.close()\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "recording"
        with pytest.raises(BadInput, match="another vbg is recording"):
            FileSink(path, 64, 48, 30, overwrite=True)
        proc.communicate("", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and len(read_frames(path)) == 5
    with pytest.raises(BadInput, match="already exists"):  # and once it is done, it is a finished recording
        FileSink(path, 64, 48, 30)


def test_vbg_run_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    model = make_model(tmp_path / "tiny.onnx", size_wh=(64, 36))
    out = tmp_path / "out.avi"
    out.write_bytes(b"keep me")
    argv = ["run", "--source", "demo", "--size", "160x120", "--model", str(model), "--sink", f"file:{out}",
            "--frames", "3", "--quiet"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out} already exists") and "--overwrite" in err[0]
    assert out.read_bytes() == b"keep me"
    assert cli.main(argv + ["--overwrite"]) == 0
    assert len(read_frames(out)) == 3 and _leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_link_to_dev_full_is_an_existing_file_not_a_silent_sink(tmp_path):
    """Before: recording through a symlink to /dev/full said '60 frames' (exit 0) and kept nothing."""
    link = tmp_path / "full.avi"
    link.symlink_to("/dev/full")
    with pytest.raises(BadInput, match="already exists"):
        FileSink(link, 64, 48, 30)
    sink = FileSink(link, 64, 48, 30, overwrite=True)  # replaces the link, never writes through it
    for k in range(5):
        sink.send(np.full((48, 64, 3), 40 * k, np.uint8))
    sink.close()
    assert not link.is_symlink() and len(read_frames(link)) == 5


# -- a real full disk: a small tmpfs (root on Linux; skipped elsewhere) -------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not sys.platform.startswith("linux") or not shutil.which("mount"):
        pytest.skip("needs Linux's mount")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode})")
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.mark.parametrize("ext", EXTS)
def test_a_full_disk_stops_the_recording_in_time_to_keep_every_frame(small_disk, ext):
    """Before: exit 0 and '300 frames' on a 2 MB tmpfs, with 0 playable frames in an .mp4 (its index never
    fit), 174 in an .mkv, 35 in an .avi. Now vbg stops while the index still fits: every frame it counts plays."""
    path = small_disk / f"out.{ext}"
    sink = FileSink(path, 320, 240, 30)
    frames = [_noise(320, 240, k) for k in range(8)]  # ~100 KB a frame: the 3 MB fill up in a few dozen
    with pytest.raises(OutputFailed) as err:
        for k in range(5000):
            sink.send(frames[k % 8])
    text = err.value.one_line()
    assert f"the disk holding {small_disk} is full" in text and f"({sink.frames_sent} frames, " in text
    assert sink.frames_sent > 10
    assert len(read_frames(path)) == sink.frames_sent
    assert _leftovers(small_disk) == []


@pytest.mark.parametrize("ext", EXTS)
def test_a_disk_filled_by_another_program_is_reported_truthfully(small_disk, ext):
    """Someone else takes the last byte: what is buffered cannot be written any more. The message says what
    is left: an .mp4 without its index does not play and stays under its partial name, said so; .mkv/.avi
    play up to the last data that reached the disk."""
    path = small_disk / f"out.{ext}"
    sink = FileSink(path, 640, 360, 30)
    for k in range(40):
        sink.send(_moving(640, 360, k))
    with open(small_disk / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OutputFailed) as err:
        for k in range(40, 5000):
            sink.send(_moving(640, 360, k))
    text = err.value.one_line()
    assert "is full (0.0 MB free)" in text
    if "could not be finished into a playable file" in text:
        assert str(partial_path(path)) in text and not path.exists() and partial_path(path).exists()
        assert read_frames(partial_path(path)) == []
    else:
        assert f"(up to {sink.frames_sent} frames" in text and 0 < len(read_frames(path)) <= sink.frames_sent
        assert _leftovers(small_disk) == []


def test_a_disk_that_is_full_already_is_refused_before_recording(small_disk):
    with open(small_disk / "filler", "wb") as f:
        f.write(b"\0" * (3 * 1024 * 1024 - 200 * 1024))
    with pytest.raises(OutputFailed, match=r"is full \(0\.\d MB free\).*nothing was recorded"):
        FileSink(small_disk / "out.mp4", 64, 48, 30)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
