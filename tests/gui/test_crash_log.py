"""A GUI crash leaves a log a user can attach to a bug report, and the user is told where it is (issue #17).

The subprocess tests run the real start-up (``vbg_app.gui.main``: logging, crash log, hooks, window) from a
small script that patches two things before it starts: a fake segmenter (fast, no model) and the window's
frame slot, which injects the fault once the third frame was shown -- an exception in a Qt slot, in another
thread, a segmentation fault (``faulthandler._sigsegv``) -- or the gallery, which raises while the window is
built. No test
hook lives in vbg itself.
"""
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from vbg_app.gui.app import CRASH_FILE, CrashLog, CrashReporter

ROOT = Path(__file__).resolve().parents[2]

CHILD = """\
import faulthandler, sys, threading
import numpy as np
from vbg_app import engines
from vbg_app.gui import main_window

class Fake:
    name, provider, fallback_reason, input_size_wh = "connectnet", "cpu", "", (64, 36)
    def segment(self, frame):
        return np.ones((36, 64), np.float32)
    def close(self):
        pass

engines.create_segmenter = lambda *a, **k: Fake()
mode = sys.argv[1]
shown = main_window.MainWindow._on_frame

def crash_test_in_a_thread():
    raise ValueError("crash test: an error in a thread")

def on_frame(self, out, orig):
    shown(self, out, orig)
    if self.frames_shown != 3:
        return
    if mode == "slot":
        raise RuntimeError("crash test: an error in a slot")
    if mode == "thread":
        threading.Thread(target=crash_test_in_a_thread, name="crash-test").start()
    if mode == "native":
        faulthandler._sigsegv()

class Gallery(main_window.BackgroundGallery):  # as a bad custom colour once made it (issue #17)
    def __init__(self, *a, **k):
        raise KeyError("crash test: an error while building the window")

main_window.MainWindow._on_frame = on_frame
if mode == "start":
    main_window.BackgroundGallery = Gallery
from vbg_app import gui
sys.exit(gui.main(["--source", "demo", "--no-tray", "--quit-after-frames", "12", *sys.argv[2:]]))
"""


def run_child(tmp_path, *args):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VBG_CONFIG_DIR=str(tmp_path / "c"),
               VBG_DATA_DIR=str(tmp_path / "d"))
    env.pop("PYTHONFAULTHANDLER", None)
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)
    return proc, tmp_path / "d" / "logs" / CRASH_FILE


def our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("vbg gui:")]


@pytest.mark.parametrize("mode, error", [("slot", "RuntimeError: crash test: an error in a slot"),
                                         ("thread", "ValueError: crash test: an error in a thread")])
def test_an_uncaught_exception_is_written_to_the_crash_log_and_named_on_stderr(tmp_path, mode, error):
    proc, crash = run_child(tmp_path, mode)
    assert proc.returncode == 0, proc.stderr[-3000:]  # vbg kept running and quit after its frames
    text = crash.read_text()
    assert "Traceback (most recent call last)" in text and error in text
    assert "in on_frame" in text or "crash_test_in_a_thread" in text  # the frames, not only the message
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]  # one line says where it is
    lines = our_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    assert error in lines[0] and str(crash) in lines[0] and "keeps running" in lines[0]
    assert error in (tmp_path / "d" / "logs" / "vbg-gui.log").read_text()


def test_an_exception_while_the_window_is_built_ends_with_one_line_and_the_log(tmp_path):
    proc, crash = run_child(tmp_path, "start", "--screenshot", str(tmp_path / "shot.png"))  # no dialog to wait on
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]  # it is in the log, not on the terminal
    lines = our_lines(proc.stderr)
    assert len(lines) == 1 and "could not start" in lines[0] and str(crash) in lines[0]
    text = crash.read_text()
    assert "Traceback (most recent call last)" in text and "crash test: an error while building" in text


@pytest.mark.skipif(not hasattr(signal, "SIGSEGV") or os.name != "posix", reason="a POSIX signal")
def test_a_native_crash_leaves_its_stack_in_the_crash_log_and_the_next_start_says_where(tmp_path):
    proc, crash = run_child(tmp_path, "native")
    assert proc.returncode == -signal.SIGSEGV, proc.stderr[-3000:]
    text = crash.read_text()
    assert "Fatal Python error: Segmentation fault" in text
    assert "in on_frame" in text and "Current thread" in text  # the Python stack at the crash
    # the next start keeps that report and has the window say where it is
    log = CrashLog(crash.parent)
    notice = log.open(native=False)
    try:
        assert log.previous.read_text() == text
        assert "stopped unexpectedly" in notice and str(log.previous) in notice and "Segmentation fault" in notice
        assert "Fatal" not in crash.read_text()  # this run's log starts afresh
    finally:
        log.close()


# -- in this process -----------------------------------------------------------------------------------
def test_a_clean_run_leaves_no_previous_report_and_a_report_is_kept_once(tmp_path):
    log = CrashLog(tmp_path)
    assert log.open(native=False) == ""
    log.close()
    log = CrashLog(tmp_path)
    assert log.open(native=False) == "" and not log.previous.exists()  # nothing to keep
    assert log.write("uncaught exception in the GUI thread:\nTraceback ...\nRuntimeError: x")
    log.close()
    log = CrashLog(tmp_path)
    assert log.open(native=False) == ""  # a Python error was shown when it happened: kept, not said again
    log.close()
    assert "RuntimeError: x" in log.previous.read_text()
    log = CrashLog(tmp_path)
    log.open(native=False)
    log.close()
    assert "RuntimeError: x" in log.previous.read_text()  # a clean run does not push the last report out


def test_the_crash_log_stays_small(tmp_path):
    from vbg_app.gui import app

    log = CrashLog(tmp_path)
    log.open(native=False)
    try:
        while log.write("x" * 10_000):
            pass
    finally:
        log.close()
    size = (tmp_path / CRASH_FILE).stat().st_size
    assert app.CRASH_LIMIT < size < app.CRASH_LIMIT + 1000
    assert "[cut: the rest is in vbg-gui.log]" in (tmp_path / CRASH_FILE).read_text()


def test_the_reporter_shows_a_dialog_that_does_not_block_and_one_stderr_line(qtbot, tmp_path, capsys):
    log = CrashLog(tmp_path)
    log.open(native=False)
    rep = CrashReporter(str(tmp_path / "vbg-gui.log"), interactive=True, crash_log=log)
    try:
        for _ in range(3):  # the same error again and again (a per-frame slot): one line
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                rep.excepthook(*sys.exc_info())
        t = threading.Thread(target=lambda: 1 / 0, name="worker-x")
        old = threading.excepthook
        threading.excepthook = rep.thread_excepthook
        try:
            t.start()
            t.join()
        finally:
            threading.excepthook = old
        qtbot.waitUntil(lambda: rep.box is not None and rep.box.isVisible(), timeout=5000)
        assert str(log.path) in rep.box.text() and "keeps running" in rep.box.text()
        assert not rep.box.isModal()
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vbg gui:")]
        assert len(lines) == 2 and "RuntimeError: boom" in lines[0] and "ZeroDivisionError" in lines[1]
        assert all(str(log.path) in line for line in lines)
        text = log.path.read_text()
        assert text.count("RuntimeError: boom") == 3 and "thread worker-x" in text
        first = rep.box
        rep.box.close()
        try:
            raise RuntimeError("again")
        except RuntimeError:
            rep.excepthook(*sys.exc_info())
        qtbot.waitUntil(lambda: rep.box is not first and rep.box.isVisible(), timeout=5000)  # a closed one is not
        rep.box.close()  # in the way of the next
    finally:
        log.close()


def test_two_guis_at_once_write_two_crash_logs_and_a_dead_ones_slot_is_taken_over(tmp_path):
    """A second GUI started while the first runs must not truncate or interleave the first's crash log."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom vbg_app.gui.app import CrashLog\n"
         "log = CrashLog(sys.argv[1]); log.open(native=False); log.write('first gui: its own report')\n"
         "print(log.path, flush=True); time.sleep(60)", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = Path(holder.stdout.readline().strip())
        assert first.name == CRASH_FILE
        second = CrashLog(tmp_path)
        second.open(native=False)
        try:
            assert second.path != first and second.path.name == "vbg-gui-crash-2.log"
            second.write("second gui: another report")
            assert "first gui: its own report" in first.read_text()  # not truncated by the second start
            assert "first gui" not in second.path.read_text()
        finally:
            second.close()
    finally:
        holder.kill()
        holder.wait()
    # the first GUI died without closing its log: the next start takes its slot and keeps its report
    third = CrashLog(tmp_path)
    third.open(native=False)
    try:
        assert third.path == first and "first gui: its own report" in third.previous.read_text()
    finally:
        third.close()
    # and with both slots free again, a start uses the first
    fourth = CrashLog(tmp_path)
    fourth.open(native=False)
    fourth.close()
    assert fourth.path == first
