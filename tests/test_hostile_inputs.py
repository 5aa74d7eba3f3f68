"""Nothing lost, nothing stuck (issue #17): inputs that can never work are refused with one line that says
why and what to do, before they cost time or memory.

* sources that can never give a usable frame (1x1, 8x8, 7696x4336) are refused when opened, and a source
  whose frames keep coming unusable ends the run (30 tries and 3 s) instead of running forever;
* a model declaring a huge input, or NaN/Infinity/absurd numbers in its normalisation, is refused before an
  onnxruntime session is built;
* an image's size is read from its header: a 0.9 MB PNG declaring 30000x30000 pixels costs no gigabytes, as
  a background, a source or a gallery thumbnail;
* a folder, a symbolic link loop, a dangling link or a pipe is named as what it is (and a pipe cannot hang
  the open); libpng's own warnings do not reach the terminal.

The command-line checks run ``vbg run`` in a subprocess and read its peak memory with ``os.wait4``.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import CopyCompositor, HalfSegmenter, PassFilter
from tests.test_reliability import FUZZ, _usable, hostile_frames
from tests.tinymodel import make_model
from vbg_app.compose import parse_background
from vbg_app.engines.meta import MAX_INPUT_SIDE, ModelMeta, parse_meta
from vbg_app.engines.onnx_engine import OnnxSegmenter
from vbg_app.errors import BadInput
from vbg_app.imagefile import decode_size, image_size, read_image
from vbg_app.pipeline import Pipeline
from vbg_app.quiet import native_stderr_quiet
from vbg_app.sinks import NullSink
from vbg_app.sources import ImageSource, ReconnectingSource, SourceEnded, VideoSource, open_source

ROOT = Path(__file__).resolve().parents[1]
POSIX = os.name == "posix"


# -- helpers ---------------------------------------------------------------------------------------
def zero_png(w: int, h: int, rows_per_block: int = 100) -> bytes:
    """A valid 8-bit gray PNG of w x h black pixels, built without ever holding its pixels: one deflate block
    of ``rows_per_block`` zero rows, ended by a full flush (so it is byte-aligned and independent of what came
    before), repeated; the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1. 30000x30000 is 0.9 MB."""
    row = 1 + w  # a filter byte, then the pixels
    assert h % rows_per_block == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(row * rows_per_block)) + c.flush(zlib.Z_FULL_FLUSH)
    stream = b"\x78\xda" + block * (h // rows_per_block) + c.flush() + struct.pack(">I", ((row * h) % 65521) << 16 | 1)

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", stream) + chunk(b"IEND", b""))


def png_with_warning(path: Path) -> Path:
    """A PNG that decodes fine but makes libpng print "libpng warning: tEXt: CRC error" (an ancillary chunk
    with a bad checksum; an iCCP sRGB profile that libpng knows is wrong prints the same kind of line)."""
    ok, png = cv2.imencode(".png", np.full((48, 64, 3), 120, np.uint8))
    png = png.tobytes()
    bad_text = struct.pack(">I", 3) + b"tEXt" + b"k\0v" + b"\0\0\0\1"
    path.write_bytes(png[:33] + bad_text + png[33:])  # after the signature (8) and IHDR (25)
    return path


# Runs a Python command as its child and prints {"rc", "maxrss_kb"} from os.wait4. The measured process must
# be a child of this small one, not of pytest: Linux keeps the peak RSS a process had before exec(), and a
# process forked from pytest starts with pytest's (hundreds of MB).
_MEASURE = """
import json, os, subprocess, sys
proc = subprocess.Popen([sys.executable] + sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
kb = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss_kb": kb}))
"""


def run_python(args, timeout=120):
    """``python ARGS`` → (exit code, stderr text, peak RSS in MB; 0 where os.wait4 is missing)."""
    if not POSIX:
        proc = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        return proc.returncode, proc.stderr, 0.0
    proc = subprocess.Popen([sys.executable, "-c", _MEASURE, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the measured process too
        proc.communicate()
        raise AssertionError(f"python {' '.join(map(str, args))} still running after {timeout} s") from None
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    return result["rc"], err, result["maxrss_kb"] / 1024


def run_vbg(args, timeout=120):
    """``vbg ARGS`` (``python -m vbg_app``) → (exit code, stderr text, peak RSS in MB)."""
    return run_python(["-m", "vbg_app", *args], timeout)


def _write_video(path: Path, w: int, h: int, n: int = 3) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((h, w, 3), 40 * i, np.uint8))
    vw.release()
    return path


# -- 4. sources that can never give a usable frame ----------------------------------------------------
@pytest.fixture(scope="module")
def never_usable(tmp_path_factory):
    d = tmp_path_factory.mktemp("never")
    cv2.imwrite(str(d / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    return {
        "image 1x1": (f"image:{d / 'dot.png'}", "1x1: frames must be at least 16x16", "larger image"),
        "video 1x1": (f"video:{_write_video(d / 'dot.avi', 1, 1)}", "1x1: frames must be at least 16x16",
                      "larger video"),
        "video 8x8": (f"video:{_write_video(d / 'tiny.avi', 8, 8)}", "8x8: frames must be at least 16x16",
                      "larger video"),
        "video 7696x4336": (f"video:{_write_video(d / 'huge.avi', 7696, 4336, n=1)}",
                            "7696x4336: frames can be at most 7680x4320", "-vf scale=1920:-2"),
    }


@pytest.mark.parametrize("case", ["image 1x1", "video 1x1", "video 8x8", "video 7696x4336"])
def test_a_source_that_can_never_give_a_usable_frame_is_refused_when_opened(never_usable, case):
    spec, words, fix = never_usable[case]
    for loop in (False, True):
        with pytest.raises(BadInput) as err:
            open_source(spec, loop=loop, realtime=False)
        assert words in err.value.what and fix in err.value.fix
    # vbg run, even with --loop and --frames: exit 2 and one line, before the first frame (it ran forever, or
    # played the whole video skipping every frame and said "0 frames" with exit 0)
    rc, err, _ = run_vbg(["run", "--source", spec, "--sink", "null", "--loop", "--frames", "5", "--quiet"], 60)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


class _Feed:
    """A source made of a function of the read count: a frame, None (nothing yet), or an exception to raise."""

    def __init__(self, produce, live=True, fps=200.0, description="camera 9", state="ok"):
        self.produce, self.live, self.fps, self.description, self.state = produce, live, fps, description, state
        self.size_wh, self.k, self.t0, self.error = (64, 48), 0, time.monotonic(), ""

    def read(self):
        time.sleep(1.0 / self.fps)
        self.k += 1
        out = self.produce(self.k, time.monotonic() - self.t0, self)
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self):
        pass


GOOD = np.full((48, 64, 3), 128, np.uint8)
TINY = np.zeros((8, 8, 3), np.uint8)
N, SECONDS = 10, 0.3  # the watchdog's limits in these tests (30 and 3 s in vbg run)


def _pipe(source):
    pipe = Pipeline(source, HalfSegmenter(), PassFilter(), CopyCompositor(), NullSink())
    pipe.unusable_after_n, pipe.unusable_after_s = N, SECONDS
    return pipe


def _run_at_most(pipe, seconds, **kwargs):
    """pipe.run(**kwargs), stopped after ``seconds`` if it has not ended by itself (a test fails, not hangs)."""
    timer = threading.Timer(seconds, pipe.stop)
    timer.start()
    try:
        return pipe.run(**kwargs)
    finally:
        timer.cancel()


ENDS = {  # sources whose frames all come unusable: the run ends with BadInput (frames=5 never arrive)
    "8x8 frames from a camera": (lambda k, t, s: TINY, True, "8x8 pixels"),
    "float frames from a file": (lambda k, t, s: GOOD.astype(np.float32), False, "float32"),
    "a file whose every read fails": (lambda k, t, s: BadInput("frame is damaged", "re-encode it"), False,
                                      "frame is damaged"),
    "a file that ends before a usable frame": (lambda k, t, s: TINY if k < 4 else SourceEnded(), False,
                                               "ended before giving one usable frame"),
}
def _reopening(k, t, source):
    """Raises while it says it is reconnecting (a source like ReconnectingSource, but one that raises)."""
    source.state = "reconnecting" if t < 3 * SECONDS else "ok"
    return RuntimeError("device gone") if source.state != "ok" else GOOD


GOES_ON = {  # sources that are slow, reconnecting or briefly bad: never ended by the watchdog; (produce, fps)
    "a camera that is slow to start": (lambda k, t, s: None if t < 2 * SECONDS else GOOD, 200),
    "a burst of many bad frames in less than the time limit": (lambda k, t, s: TINY if k <= 4 * N else GOOD, 1000),
    "a few bad frames over more than the time limit": (
        lambda k, t, s: (TINY if k % 40 == 0 else None) if t < 3 * SECONDS else GOOD, 200),
    "errors while the device is being reopened": (_reopening, 200),
}


@pytest.mark.parametrize("threaded", [True, False])
@pytest.mark.parametrize("case", list(ENDS))
def test_a_source_that_keeps_giving_unusable_frames_ends_the_run(case, threaded):
    produce, live, words = ENDS[case]
    pipe = _pipe(_Feed(produce, live=live))
    t0 = time.monotonic()
    with pytest.raises(BadInput) as err:  # it ran until stopped (here: 5 s), skipping every frame
        _run_at_most(pipe, 5.0, frames=5, threaded=threaded)
    assert time.monotonic() - t0 < SECONDS + 3
    assert pipe.ended and pipe.stats.frames == 0 and pipe.source_failure is err.value
    text = err.value.one_line()
    assert "\n" not in text and text.startswith("camera 9 ") and words in text and err.value.fix
    if "ends before" not in case:
        assert "no usable frame" in text


@pytest.mark.parametrize("case", list(GOES_ON))
def test_a_slow_reconnecting_or_briefly_bad_source_is_not_ended(case):
    produce, fps = GOES_ON[case]
    pipe = _pipe(_Feed(produce, fps=fps))
    pipe.holdover = False
    stats = _run_at_most(pipe, 10.0, frames=5)
    assert stats.frames == 5 and pipe.source_failure is None and not pipe.ended


def test_a_real_reconnecting_camera_gone_longer_than_the_limits_is_not_ended():
    t0 = time.monotonic()

    def factory():
        if time.monotonic() - t0 < 3 * SECONDS:
            raise BadInput("camera 9 not found", "plug it in")
        return _Feed(lambda k, t, s: GOOD)

    source = ReconnectingSource(factory, source=_Feed(lambda k, t, s: BadInput("camera 9 stopped", "check it")
                                                      if k > 2 else GOOD), first_backoff=0.02, max_backoff=0.05)
    pipe = _pipe(source)
    stats = _run_at_most(pipe, 10.0, frames=8)
    assert stats.frames == 8 and pipe.source_failure is None and source.reconnects == 1


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 15))
@given(frames=st.lists(hostile_frames().filter(lambda f: f is not None and not _usable(f)), min_size=1, max_size=4))
def test_fuzz_a_stream_of_never_usable_frames_always_ends_the_run(frames):
    pipe = _pipe(_Feed(lambda k, t, s: frames[k % len(frames)], fps=1000))
    pipe.unusable_after_s = 0.05
    with pytest.raises(BadInput) as err:
        _run_at_most(pipe, 3.0, frames=3, threaded=False)
    assert "\n" not in err.value.one_line() and err.value.fix


# -- 5. models declaring a huge input or nonsense normalisation ---------------------------------------------
HUGE = "[100000, 100000]"
MODELS = {  # make_model arguments → words of the message
    "vbg.input_size_wh of 100000x100000": (dict(props={"vbg.input_size_wh": HUGE}), "vbg.input_size_wh"),
    "fixed input dims of 100000x100000": (dict(size_wh=(100000, 100000)), "over 4096"),
    "fixed input dims of 100000x100000 under small metadata": (
        dict(size_wh=(100000, 100000), props={"vbg.input_size_wh": "[32, 16]"}), "input 'x'"),
    "NaN in vbg.mean": (dict(props={"vbg.mean": "[NaN, 0.5, 0.5]"}), "vbg.mean"),
    "Infinity in vbg.std": (dict(props={"vbg.std": "[0.5, Infinity, 0.5]"}), "vbg.std"),
    "-Infinity in vbg.mean": (dict(props={"vbg.mean": "[-Infinity, 0.5, 0.5]"}), "vbg.mean"),
    "a std of 1e-30": (dict(props={"vbg.std": "[1e-30, 0.5, 0.5]"}), "vbg.std"),
    "a mean of 1e30": (dict(props={"vbg.mean": "[1e30, 0.5, 0.5]"}), "vbg.mean"),
    "true as a mean": (dict(props={"vbg.mean": "[true, 0.5, 0.5]"}), "vbg.mean"),
}


@pytest.mark.parametrize("case", list(MODELS))
def test_a_model_declaring_a_huge_input_or_nonsense_numbers_is_refused_before_onnxruntime(tmp_path, monkeypatch,
                                                                                          case):
    import onnxruntime as ort

    kwargs, words = MODELS[case]
    path = make_model(tmp_path / "m.onnx", **kwargs)

    def no_session(*a, **k):
        raise AssertionError("an onnxruntime session was built for a model that declares nonsense")

    monkeypatch.setattr(ort, "InferenceSession", no_session)
    with pytest.raises(BadInput) as err:
        OnnxSegmenter(path, provider="cpu", threads=1)
    assert words in err.value.what and "\n" not in err.value.one_line() and err.value.fix


def test_vbg_run_with_a_model_declaring_a_huge_input_exits_2_with_one_line(tmp_path):
    # it exited 1 with a MemoryError traceback ("Unable to allocate 112. GiB")
    path = make_model(tmp_path / "huge.onnx", size_wh=(100000, 100000))
    rc, err, rss = run_vbg(["run", "--source", "demo", "--model", path, "--sink", "null", "--frames", "1", "--quiet"])
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and f"over {MAX_INPUT_SIDE}" in lines[0] and "Traceback" not in err, err


_NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.booleans())


@FUZZ
@given(mean=st.lists(_NUMBER, min_size=3, max_size=3), std=st.lists(_NUMBER, min_size=3, max_size=3),
       wh=st.lists(st.one_of(st.integers(-5, 10**6), st.floats()), min_size=2, max_size=2))
def test_fuzz_model_metadata_numbers_are_finite_and_in_range_or_refused_naming_the_key(mean, std, wh):
    props = ModelMeta(input_size_wh=(32, 16)).to_props()
    props.update({"vbg.mean": json.dumps(mean), "vbg.std": json.dumps(std), "vbg.input_size_wh": json.dumps(wh)})
    try:
        meta = parse_meta(props)
    except BadInput as exc:
        assert any(key in exc.what for key in ("vbg.mean", "vbg.std", "vbg.input_size_wh")) and exc.fix
        return
    assert all(np.isfinite(meta.mean)) and all(-10 <= m <= 10 for m in meta.mean)
    assert all(1e-4 <= s <= 100 for s in meta.std)
    assert all(8 <= v <= MAX_INPUT_SIDE for v in meta.input_size_wh)


# -- 6. decompression bombs -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(zero_png(30000, 30000))
    assert path.stat().st_size < 1_000_000
    return path


def test_the_compact_png_generator_makes_real_pngs():
    img = cv2.imdecode(np.frombuffer(zero_png(300, 200), np.uint8), cv2.IMREAD_UNCHANGED)
    assert img.shape == (200, 300) and not img.any()


@pytest.mark.skipif(not POSIX, reason="peak memory of a child through os.wait4")
@pytest.mark.parametrize("option", ["--background", "--source"])
def test_a_png_declaring_30000x30000_pixels_is_refused_without_decoding_it(bomb, option):
    # as a background it was decoded and kept: peak RSS 5.3 GB
    rc, err, rss_mb = run_vbg(["run", option, f"image:{bomb}", "--sink", "null", "--frames", "1", "--quiet"])
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "30000x30000" in lines[0] and "scale=" in lines[0], err
    assert rss_mb < 500, f"peak RSS {rss_mb:.0f} MB"


@pytest.mark.skipif(not POSIX, reason="peak memory of a child through os.wait4")
def test_a_bomb_in_the_backgrounds_folder_costs_no_memory_for_its_thumbnail(bomb, tmp_path):
    # it cost 2.9 GB at every start of the GUI
    (tmp_path / "backgrounds").mkdir()
    (tmp_path / "backgrounds" / "big-0123abcd.png").write_bytes(bomb.read_bytes())
    script = ("import sys\nfrom pathlib import Path\nfrom vbg_app.gui.library import BackgroundLibrary, thumbnail\n"
              "lib = BackgroundLibrary(Path(sys.argv[1]), builtin=Path(sys.argv[1]) / 'none')\n"
              "[entry] = lib.user_entries()\nimg = thumbnail(entry)\n"
              "assert img.shape == (90, 160, 3), img.shape\n")
    rc, err, rss_mb = run_python(["-c", script, tmp_path])
    assert rc == 0, err
    assert rss_mb < 500, f"peak RSS {rss_mb:.0f} MB"


def test_a_jpeg_over_40_megapixels_is_decoded_at_a_reduced_size(tmp_path):
    path = tmp_path / "photo.jpg"
    ok, jpg = cv2.imencode(".jpg", np.zeros((5000, 8200, 3), np.uint8))  # 41 MP
    path.write_bytes(jpg.tobytes())
    del jpg
    assert read_image(path).shape == (2500, 4100, 3)
    assert parse_background(f"image:{path}").image.shape == (2500, 4100, 3)
    assert decode_size("JPEG", 8200, 5000) == 2 and decode_size("JPEG", 16000, 12000) == 4
    assert decode_size("PNG", 6000, 6000, reduce=4) == 4 and decode_size("JPEG", 6000, 6000, reduce=4) == 4
    # a PNG or a progressive JPEG is decoded whole (libjpeg keeps a progressive one's coefficients, ~3 bytes a
    # pixel, even for a 1/8 decode); a 900 MP JPEG would take long to read even at 1/8
    for fmt, w, h in [("PNG", 8200, 5000), ("progressive JPEG", 8200, 5000), ("JPEG", 30000, 30000)]:
        assert decode_size(fmt, w, h) == 0, fmt


@FUZZ
@given(w=st.integers(1, 400), h=st.integers(1, 300), ext=st.sampled_from([".png", ".jpg", ".bmp", ".webp", ".tiff",
                                                                          ".gif"]),
       gray=st.booleans())
def test_fuzz_the_header_size_is_the_decoded_size(w, h, ext, gray):
    img = np.zeros((h, w) if gray else (h, w, 3), np.uint8)
    try:
        ok, data = cv2.imencode(ext, img)
    except cv2.error:
        ok = False
    if not ok:  # a format this OpenCV build cannot write (GIF before 4.11)
        return
    fmt, hw, hh = image_size(data)
    names = {".png": "PNG", ".jpg": "JPEG", ".bmp": "BMP", ".webp": "WebP", ".tiff": "TIFF", ".gif": "GIF"}
    assert (hw, hh) == (w, h) and fmt == names[ext], fmt
    assert image_size(data[: len(data) // 3]) in (None, (fmt, w, h))  # a cut file: never a wrong size


@FUZZ
@given(data=st.one_of(st.binary(max_size=200), st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"BM", b"RIFF",
                                                                  b"GIF89a", b"II*\x00", b"MM\x00*"]).flatmap(
    lambda magic: st.binary(max_size=120).map(lambda rest: magic + rest))))
def test_fuzz_image_headers_of_random_bytes_never_raise(data):
    info = image_size(data)
    assert info is None or (info[1] > 0 and info[2] > 0)


# -- 8. not a file; native noise ------------------------------------------------------------------------
@pytest.fixture
def odd_paths(tmp_path):
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path / "loop_b.png", tmp_path / "loop_a.png")
    os.symlink(tmp_path / "loop_a.png", tmp_path / "loop_b.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    paths = {"folder": (tmp_path / "folder.png", "is a folder, not a"),
             "link loop": (tmp_path / "loop_a.png", "is a symbolic link loop"),
             "dangling link": (tmp_path / "dangling.png", "is a symbolic link to")}
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "pipe.png")
        paths["pipe"] = (tmp_path / "pipe.png", "is not a regular file (a pipe)")
    return paths


OPENERS = {
    "background image": lambda p: parse_background(f"image:{p}"),
    "background video": lambda p: parse_background(f"video:{p}"),
    "image source": lambda p: ImageSource(p),
    "video source": lambda p: VideoSource(p),
    "thumbnail image": lambda p: read_image(p, reduce=4),
}


@pytest.mark.parametrize("opener", list(OPENERS))
@pytest.mark.parametrize("kind", ["folder", "link loop", "dangling link", "pipe"])
def test_a_path_that_is_not_a_file_is_named_as_what_it_is_and_never_hangs(odd_paths, opener, kind):
    if kind not in odd_paths:
        pytest.skip("no named pipes here")
    path, words = odd_paths[kind]
    box = {}

    def attempt():
        try:
            OPENERS[opener](path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            box["exc"] = exc

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # a pipe opened for reading blocks until a writer comes: be that writer, then fail
        fd = os.open(path, os.O_RDWR)
        os.close(fd)
        pytest.fail(f"opening {kind} as {opener} hung")
    exc = box.get("exc")
    assert isinstance(exc, BadInput), repr(exc)
    assert words in exc.what and str(path) in exc.what and "not found" not in exc.what and exc.fix


def test_libpng_warnings_stay_off_the_terminal(tmp_path):
    noisy = png_with_warning(tmp_path / "noisy.png")
    probe = subprocess.run([sys.executable, "-c", "import cv2, numpy as np, sys; "
                            "cv2.imdecode(np.fromfile(sys.argv[1], np.uint8), cv2.IMREAD_COLOR)", str(noisy)],
                           capture_output=True, text=True, timeout=60)
    assert "libpng warning" in probe.stderr  # the file really is noisy when decoded plainly
    rc, err, _ = run_vbg(["run", "--source", f"image:{noisy}", "--background", f"image:{noisy}", "--sink", "null",
                          "--frames", "2", "--quiet"])
    assert rc == 0, err
    assert err.strip() and all(line.startswith("vbg: ") for line in err.strip().splitlines()), err


def test_the_stderr_mute_nests_across_threads_and_always_restores_fd_2(capfd):
    def worker():
        for _ in range(50):
            with native_stderr_quiet():
                os.write(2, b"muted\n")
                with native_stderr_quiet():
                    os.write(2, b"muted\n")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"heard\n")
    err = capfd.readouterr().err
    assert "heard" in err and "muted" not in err


@pytest.mark.parametrize("w, h", [(30000, 30000), (8200, 5000)])
def test_an_image_over_the_limit_added_to_the_gallery_is_called_too_large_not_damaged(tmp_path, w, h):
    from vbg_app.gui.library import BackgroundLibrary

    path = tmp_path / f"big{w}.png"
    path.write_bytes(zero_png(w, h))
    with pytest.raises(BadInput) as err:
        BackgroundLibrary(tmp_path / "data").add(path)
    line = err.value.one_line()
    assert "too large" in line and f"{w}x{h}" in line and "40-megapixel" in line, line
    assert "damaged" not in line
    assert not (tmp_path / "data" / "backgrounds").exists() or not any((tmp_path / "data" / "backgrounds").iterdir())
