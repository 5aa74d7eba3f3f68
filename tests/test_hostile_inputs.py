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
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.test_reliability import FUZZ
from tests.tinymodel import make_model
from vbg_app.engines.meta import MAX_INPUT_SIDE, ModelMeta, parse_meta
from vbg_app.engines.onnx_engine import OnnxSegmenter
from vbg_app.errors import BadInput

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

