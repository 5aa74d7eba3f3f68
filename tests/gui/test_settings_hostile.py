"""Settings fall back field by field, for any bytes and any value (issue #17, attacks 2 and 3), and a failed
save is shown in the window, not only logged.

The rules below (``field_ok``) are written out here on their own, not imported from ``settings.py``: they are
what a loaded value must satisfy for the window and the engine to work with it. ``load()`` is checked against
them for a table of known attacks, for arbitrary JSON values in every field and for arbitrary bytes; the
window is built from such files too.
"""
import json
import math
import os
import re
from dataclasses import fields
from pathlib import Path, PurePath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_reliability import FUZZ
from tests.gui.test_gui import WAIT, wait_running
from vbg_app.config import DEFAULT_SMOOTHING, SMOOTHING, parse_size
from vbg_app.engines import ENGINES
from vbg_app.engines.onnx_engine import PROVIDERS
from vbg_app.gui.library import hex_to_bgr
from vbg_app.gui.settings import SETTINGS_FILE, Settings, SettingsStore

NAMES = [f.name for f in fields(Settings) if f.name != "version"]
DEFAULTS = Settings()
# a valid file whose every value differs from the default, so a reset shows
GOOD = dict(source="camera:1", camera_size="1280x720", camera_fps=30.0, background="color:#112233", blur_strength=42,
            custom_colors=["#112233", "#ABCDEF"], engine="connectnet", provider="cpu", model="/models/mine.onnx",
            smoothing="ema", refine=False, mirror=True, battery_saver=True, show_original=True,
            window_geometry="01d9d0cb0003", version=1)
assert all(GOOD[n] != getattr(DEFAULTS, n) for n in NAMES if n != "engine")


def _path_ok(text) -> bool:
    if not isinstance(text, str) or not text.strip() or "\x00" in text or len(text) > 4096:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no file has this name, Qt cannot show it
        return False
    return True


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _size_ok(text) -> bool:
    try:
        parse_size(text)
        return True
    except Exception:
        return False


def _source_ok(s) -> bool:
    """What `vbg run --source` reads (vbg_app/specs.py): kinds in any case, spaces around ignored."""
    if not _path_ok(s):
        return False
    t = s.strip()
    kind, sep, arg = t.partition(":")
    kind = kind.lower()
    if (t.isdigit() and t.isascii()) or kind == "camera":
        return True
    if kind == "demo":
        return not sep
    if kind in ("video", "image") and sep:
        return bool(arg.strip())
    return PurePath(t).suffix.lower() in {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".mpg", ".mpeg",
                                         ".gif", ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def _background_ok(s) -> bool:
    """What `vbg run --background` reads (vbg_app/specs.py): kinds in any case, spaces around ignored."""
    if not _path_ok(s):
        return False
    kind, sep, arg = s.strip().partition(":")
    kind, arg = kind.lower(), arg.strip()
    if kind == "none":
        return not sep
    if kind == "blur":
        return not sep or (re.fullmatch(r"[0-9]+", arg) is not None and 1 <= int(arg) <= 100)
    if kind == "color":
        return bool(sep) and re.fullmatch(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", arg) is not None
    return kind in ("image", "video") and bool(sep) and bool(arg)


def field_ok(name: str, value, s: Settings | None = None) -> bool:
    """``value`` is one the window and the engine can use for ``name`` (``s``: the other fields, for provider)."""
    if name in ("refine", "mirror", "battery_saver", "show_original"):
        return isinstance(value, bool)
    if name == "blur_strength":
        return _number(value) and value == int(value) and 1 <= value <= 100
    if name == "camera_fps":
        return _number(value) and (value == 0 or 1 <= value <= 240)
    if name == "camera_size":
        return isinstance(value, str) and (value == "" or _size_ok(value))
    if name == "custom_colors":
        return isinstance(value, list) and len(value) <= 256 and all(
            isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", c) for c in value)
    if name == "engine":
        return value in ENGINES
    if name == "provider":
        ok = isinstance(value, str) and (value == "auto" or value in PROVIDERS)
        return ok and (s is None or s.engine != "mediapipe" or value in ("auto", "cpu"))
    if name == "model":
        return value is None or _path_ok(value)
    if name == "smoothing":
        return value in SMOOTHING
    if name == "window_geometry":
        return isinstance(value, str) and len(value) <= 8192 and re.fullmatch(r"([0-9a-fA-F]{2})*", value) is not None
    if name == "source":
        return _source_ok(value)
    if name == "background":
        return _background_ok(value)
    raise AssertionError(name)


def assert_all_valid(s: Settings) -> None:
    bad = {n: getattr(s, n) for n in NAMES if not field_ok(n, getattr(s, n), s)}
    assert not bad, bad
    for c in s.custom_colors:
        hex_to_bgr(c)  # what MainWindow does with them
    assert s.version == 1


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{SETTINGS_FILE}.bad-*"))


def load_bytes(folder: Path, raw: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_FILE).write_bytes(raw)
    store = SettingsStore(folder)
    s, notice = store.load()
    return store, s, notice


def check_kept(folder: Path, store: SettingsStore, raw: bytes, notice: str) -> None:
    """Something was reset: the original bytes are in a backup the notice names."""
    assert notice
    assert store.backup_path is not None and store.backup_path.read_bytes() == raw
    assert str(store.backup_path) in notice
    assert store.backup_path in backups(folder)


# -- the known attacks, one field at a time ----------------------------------------------------------
BAD_VALUES = [
    ("custom_colors", ["nothex"], []),
    ("custom_colors", ["#112233", "nothex", 5, None, "#12345G", "#ABCDEF"], ["#112233", "#ABCDEF"]),
    ("custom_colors", "#112233", []),
    ("custom_colors", ["#ABCDEF"] * 300, ["#ABCDEF"] * 256),
    ("provider", "quantum", "auto"),
    ("provider", 3, "auto"),
    ("provider", "", "auto"),
    ("provider", "CUDAExecutionProvider", "auto"),
    ("engine", "quantum", "connectnet"),
    ("engine", ["mediapipe"], "connectnet"),
    ("source", "garbage", "demo"),
    ("source", "video:", "demo"),
    ("source", "camera:/dev/vid\x00eo0", "demo"),
    ("source", "video:/x/caf\udce9.mp4", "demo"),
    ("source", {"camera": 1}, "demo"),
    ("background", "image:", "blur"),
    ("background", "image:/x/a\x00.jpg", "blur"),
    ("background", "color:#GGGGGG", "blur"),
    ("background", "blur:500", "blur"),
    ("background", "blur:1_5", "blur"),
    ("background", "sparkles", "blur"),
    ("background", 42, "blur"),
    ("background", "image:/" + "a" * 5000 + ".jpg", "blur"),
    ("blur_strength", 500, 15),
    ("blur_strength", 0, 15),
    ("blur_strength", 1.5, 15),
    ("blur_strength", True, 15),
    ("blur_strength", "15", 15),
    ("camera_fps", -1, 0.0),
    ("camera_fps", 0.001, 0.0),
    ("camera_fps", 1000, 0.0),
    ("camera_fps", "30", 0.0),
    ("camera_size", "99999x2", ""),
    ("camera_size", "big", ""),
    ("camera_size", 1280, ""),
    ("model", 5, None),
    ("model", "/m/a\x00.onnx", None),
    ("model", "   ", None),
    ("smoothing", "quantum", DEFAULT_SMOOTHING),
    ("refine", "yes", True),
    ("mirror", 1, False),
    ("battery_saver", "on", False),
    ("show_original", None, False),
    ("window_geometry", "zz", ""),
    ("window_geometry", "abc", ""),
    ("window_geometry", 7, ""),
    ("window_geometry", "00" * 10000, ""),
]


@pytest.mark.parametrize("name,value,expected", BAD_VALUES, ids=lambda v: repr(v)[:30])
def test_a_bad_value_falls_back_alone_and_the_file_is_kept(tmp_path, name, value, expected):
    data = dict(GOOD, **{name: value})
    raw = json.dumps(data).encode()
    store, s, notice = load_bytes(tmp_path, raw)
    assert getattr(s, name) == expected
    for other in NAMES:
        if other != name:
            assert getattr(s, other) == GOOD[other], other  # every other field is kept
    assert_all_valid(s)
    assert name in notice and "default" in notice
    check_kept(tmp_path, store, raw, notice)


def test_json_numbers_out_of_any_range_fall_back_alone(tmp_path):
    raw = (b'{"blur_strength": ' + b"9" * 5000 + b', "camera_fps": NaN, "mirror": true, '
           b'"refine": false, "custom_colors": [1e999, "#112233", -Infinity], "provider": "cpu"}')
    store, s, notice = load_bytes(tmp_path, raw)
    assert (s.blur_strength, s.camera_fps) == (DEFAULTS.blur_strength, DEFAULTS.camera_fps)
    assert s.mirror is True and s.refine is False and s.custom_colors == ["#112233"] and s.provider == "cpu"
    assert_all_valid(s)
    for name in ("blur_strength", "camera_fps", "custom_colors"):
        assert name in notice
    check_kept(tmp_path, store, raw, notice)


def test_a_gpu_provider_with_the_mediapipe_engine_is_reset(tmp_path):
    raw = json.dumps(dict(GOOD, engine="mediapipe", provider="cuda")).encode()
    store, s, notice = load_bytes(tmp_path, raw)
    assert s.engine == "mediapipe" and s.provider == "auto" and "provider" in notice
    check_kept(tmp_path, store, raw, notice)


def test_a_file_that_is_not_utf8_keeps_what_it_can_and_is_backed_up(tmp_path):
    # a hand edit in a Latin-1 editor: the é of the background's path is one byte, 0xE9
    raw = json.dumps(dict(GOOD, background="image:/home/u/cafe.jpg")).replace("cafe", "caf\xe9").encode("latin-1")
    store, s, notice = load_bytes(tmp_path, raw)
    assert s.background == DEFAULTS.background  # the path cannot be read back: reset
    for name in NAMES:
        if name != "background":
            assert getattr(s, name) == GOOD[name], name  # the rest is kept
    assert "UTF-8" in notice and "background" in notice
    check_kept(tmp_path, store, raw, notice)


def test_a_utf8_bom_is_not_damage(tmp_path):
    raw = b"\xef\xbb\xbf" + json.dumps(GOOD).encode()
    store, s, notice = load_bytes(tmp_path, raw)
    assert notice == "" and not backups(tmp_path)
    assert all(getattr(s, n) == GOOD[n] for n in NAMES)


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"[1, 2]", b'"text"', b"null", b"3", b'{"mirror": tru', b"\xff\xfe{\x00}\x00",
    b"[" * 100_000, b'{"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"source": "demo"}' + b" " * (2 << 20),  # over 1 MB: not a settings file vbg wrote
], ids=lambda r: repr(r[:20]))
def test_a_file_that_is_not_a_json_object_gives_defaults_and_is_kept(tmp_path, raw):
    store, s, notice = load_bytes(tmp_path, raw)
    assert s == Settings()
    assert "damaged" in notice and "default settings" in notice
    check_kept(tmp_path, store, raw, notice)


def test_the_same_damage_twice_keeps_one_backup_and_never_overwrites_another(tmp_path):
    raw1 = json.dumps(dict(GOOD, provider="quantum")).encode()
    store, _, n1 = load_bytes(tmp_path, raw1)
    first = store.backup_path
    store, _, n2 = load_bytes(tmp_path, raw1)  # started again before the repair was saved: same copy
    assert store.backup_path == first and len(backups(tmp_path)) == 1
    raw2 = json.dumps(dict(GOOD, engine="quantum")).encode()
    store, _, _ = load_bytes(tmp_path, raw2)  # other content within the same second: a new name
    assert store.backup_path != first and store.backup_path.read_bytes() == raw2
    assert first.read_bytes() == raw1


def test_a_valid_file_loads_as_it_is_with_no_backup(tmp_path):
    store, s, notice = load_bytes(tmp_path, json.dumps(GOOD).encode())
    assert notice == "" and not backups(tmp_path) and store.backup_path is None
    assert all(getattr(s, n) == GOOD[n] for n in NAMES)


def test_a_folder_in_place_of_the_file_is_moved_aside_with_what_it_holds(tmp_path):
    (tmp_path / SETTINGS_FILE).mkdir()
    (tmp_path / SETTINGS_FILE / "mine.txt").write_text("keep me")
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    assert s == Settings() and "folder" in notice and str(tmp_path / SETTINGS_FILE) in notice
    assert store.backup_path.is_dir() and (store.backup_path / "mine.txt").read_text() == "keep me"
    assert str(store.backup_path) in notice
    assert store.save(s) == "" and (tmp_path / SETTINGS_FILE).is_file()


def _refuse(monkeypatch, what, mode_has=""):
    """settings.py's open() fails with ``what`` (for modes containing ``mode_has``)."""
    from vbg_app.gui import settings as settings_mod

    def fake_open(path, mode="r", *a, **k):
        if mode_has in mode:
            raise what
        return open(path, mode, *a, **k)

    monkeypatch.setattr(settings_mod, "open", fake_open, raising=False)


def test_a_file_it_may_not_read_is_moved_aside_not_overwritten(tmp_path, monkeypatch):
    raw = json.dumps(GOOD).encode()
    (tmp_path / SETTINGS_FILE).write_bytes(raw)
    _refuse(monkeypatch, PermissionError(13, "Permission denied"), "r")
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    monkeypatch.undo()
    assert s == Settings() and "Permission denied" in notice and str(store.backup_path) in notice
    assert store.backup_path.read_bytes() == raw  # moved, not lost
    assert store.save(s) == ""


def test_a_file_that_can_be_neither_read_nor_moved_is_never_written_over(tmp_path, monkeypatch):
    from vbg_app.gui import settings as settings_mod

    raw = json.dumps(GOOD).encode()
    (tmp_path / SETTINGS_FILE).write_bytes(raw)
    _refuse(monkeypatch, PermissionError(13, "Permission denied"), "r")
    monkeypatch.setattr(settings_mod.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(16, "Device busy")))
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    monkeypatch.undo()
    assert "will not write over it" in notice and store.backup_path is None and not backups(tmp_path)
    why = store.save(s)
    assert why and "leaves it as it is" in why
    assert (tmp_path / SETTINGS_FILE).read_bytes() == raw


def test_a_repair_whose_copy_cannot_be_written_leaves_the_file_alone(tmp_path, monkeypatch):
    raw = json.dumps(dict(GOOD, provider="quantum")).encode()
    (tmp_path / SETTINGS_FILE).write_bytes(raw)
    _refuse(monkeypatch, OSError(28, "No space left on device"), "x")
    store = SettingsStore(tmp_path)
    s, notice = store.load()
    monkeypatch.undo()
    assert s.provider == "auto" and "provider" in notice and "No space left on device" in notice
    assert not backups(tmp_path)
    assert store.save(s) and (tmp_path / SETTINGS_FILE).read_bytes() == raw


# -- properties --------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10)
# values close to valid ones find the edges of each rule faster than random JSON
near_values = st.one_of(
    st.sampled_from([GOOD[n] for n in NAMES] + [getattr(DEFAULTS, n) for n in NAMES]),
    st.sampled_from(["demo", "camera", "camera:", "camera:0", "0", "video:", "image:x", "clip.mp4", "blur:0",
                     "blur:100", "blur:", "none", "color:#abc", "color:", "#ABCDEF", "#abcdeg", "auto", "cpu",
                     "cuda", "mediapipe", "flow", "ema", "640x360", "16x16", "15x16", "7680x4320", "7681x4320"]),
    st.builds(lambda k, t: f"{k}:{t}", st.sampled_from(["image", "video", "camera", "blur", "color"]),
              st.text(max_size=12)),
    st.lists(st.one_of(st.from_regex(r"#[0-9a-fA-F]{6}", fullmatch=True), st.text(max_size=8)), max_size=5),
    st.floats(-1e3, 1e3), st.integers(-5, 300))
settings_dicts = st.fixed_dictionaries(
    {}, optional={**{n: st.one_of(json_values, near_values) for n in NAMES}, "version": json_values,
                  "unknown": json_values})


def _dump(data) -> bytes:
    return json.dumps(data, allow_nan=True).encode()


def _expected(name, value, data) -> bool:
    """Whether ``value`` in the file should survive the load unchanged."""
    if name == "provider":
        engine = data.get("engine", DEFAULTS.engine)
        engine = engine if field_ok("engine", engine) else DEFAULTS.engine
        return field_ok(name, value) and (engine != "mediapipe" or value in ("auto", "cpu"))
    return field_ok(name, value)


@FUZZ
@given(data=settings_dicts)
def test_any_json_values_load_field_by_field(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("s")
    raw = _dump(data)
    store, s, notice = load_bytes(folder, raw)
    assert_all_valid(s)
    reset = []
    for name in NAMES:
        if name not in data:
            assert getattr(s, name) == getattr(DEFAULTS, name)
        elif name == "model" and data[name] == "":
            assert s.model is None  # the same meaning: the shipped model
        elif _expected(name, data[name], data):
            assert getattr(s, name) == data[name], name
        else:
            reset.append(name)
            assert name in notice, (name, notice)
    if reset:
        check_kept(folder, store, raw, notice)
    else:
        assert notice == "" and store.backup_path is None


@FUZZ
@given(raw=st.one_of(st.binary(max_size=300),
                     settings_dicts.map(_dump).flatmap(
                         lambda b: st.tuples(st.integers(0, len(b)), st.binary(min_size=1, max_size=3)).map(
                             lambda ib: b[:ib[0]] + ib[1] + b[ib[0]:]))))
def test_any_bytes_load(tmp_path_factory, raw):
    folder = tmp_path_factory.mktemp("b")
    store, s, notice = load_bytes(folder, raw)
    assert_all_valid(s)
    if notice:
        check_kept(folder, store, raw, notice)


# -- the window built from such files ----------------------------------------------------------------
def _window(qtbot, folder, **kw):
    from vbg_app.gui.main_window import MainWindow

    win = MainWindow(SettingsStore(folder), use_tray=False, preview_width=320, scan_cameras=False,
                     probe_virtual_camera=False, **kw)
    qtbot.addWidget(win)
    return win


@pytest.mark.parametrize("case", ["nothex", "quantum", "latin1", "loop", "list"])
def test_the_window_opens_on_each_attack_says_what_was_reset_once_and_saves_the_repair(qtbot, gui_dirs,
                                                                                        fake_engine, tmp_path, case):
    cfg, _ = gui_dirs
    loop = tmp_path / "loop.jpg"
    os.symlink(tmp_path / "loop2", loop)
    os.symlink(loop, tmp_path / "loop2")
    raw, field = {
        "nothex": (json.dumps({"source": "demo", "custom_colors": ["nothex"]}).encode(), "custom_colors"),
        "quantum": (json.dumps({"source": "demo", "provider": "quantum"}).encode(), "provider"),
        "latin1": ('{"source": "demo", "background": "image:/home/u/caf\xe9.jpg"}'.encode("latin-1"), "background"),
        "loop": (json.dumps({"source": "demo", "background": f"image:{loop}"}).encode(), None),
        "list": (b'["source", "demo"]', None),
    }[case]
    cfg.mkdir(parents=True)
    (cfg / SETTINGS_FILE).write_bytes(raw)
    win = _window(qtbot, cfg)
    win.show()
    wait_running(qtbot, win)  # a picture
    assert_all_valid(win.settings)
    assert win.worker.config.provider in ("auto", *PROVIDERS)
    if case == "loop":
        assert any("link loop" in t or "is gone" in t for _, t in win.messages)
        return
    if field:
        shown = [t for _, t in win.messages if field in t]
        assert len(shown) == 1 and str(win.store.backup_path) in shown[0]
        assert win.store.backup_path.read_bytes() == raw
    # the repair is saved soon, so the next start has nothing to say
    qtbot.waitUntil(lambda: (cfg / SETTINGS_FILE).read_bytes() != raw, timeout=WAIT)
    win.close()
    again = SettingsStore(cfg)
    s, notice = again.load()
    assert notice == "" and s == win.settings


@settings(FUZZ, max_examples=min(FUZZ.max_examples, 8),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=settings_dicts)
def test_the_window_opens_with_any_settings_file(qtbot, gui_dirs, fake_engine, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("w")
    raw = _dump(data)
    (folder / SETTINGS_FILE).write_bytes(raw)
    win = _window(qtbot, folder, persist=False)
    try:
        assert_all_valid(win.settings)
        assert win.gallery.current_entry() is not None
    finally:
        win.shutdown()
        win.close()


# -- a save that fails is shown ----------------------------------------------------------------------
def _save_messages(win):
    return [t for level, t in win.messages if "Could not save your settings" in t]


def test_a_settings_path_that_is_a_folder_is_shown_once_and_the_app_keeps_running(qtbot, gui_dirs, fake_engine):
    cfg, _ = gui_dirs
    win = _window(qtbot, cfg)
    win.show()
    wait_running(qtbot, win)
    (cfg / SETTINGS_FILE).mkdir(parents=True)  # made while vbg runs (at start it would be moved aside)
    for mirror in (True, False, True):
        win.controls.mirror.setChecked(mirror)
        win.save_settings()
    shown = _save_messages(win)
    assert len(shown) == 1, win.messages
    assert str(cfg / SETTINGS_FILE) in shown[0] and "Is a directory" in shown[0]
    assert win.banner_box.isVisible()
    wait_running(qtbot, win)  # still running


def test_a_full_disk_and_then_another_failure_are_each_shown_once(qtbot, gui_dirs, fake_engine, monkeypatch):
    from vbg_app.gui import settings as settings_mod

    cfg, _ = gui_dirs
    win = _window(qtbot, cfg)
    win.show()
    wait_running(qtbot, win)
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_mod.os, "fsync", full)
    win.save_settings()
    win.save_settings()
    monkeypatch.setattr(settings_mod.os, "fsync", real_fsync)
    win.save_settings()  # works again
    assert (cfg / SETTINGS_FILE).is_file()
    monkeypatch.setattr(settings_mod.os, "fsync", full)
    win.save_settings()  # the same failure after a success: said again
    shown = _save_messages(win)
    assert len(shown) == 2 and all("No space left on device" in t and str(cfg / SETTINGS_FILE) in t for t in shown)
    wait_running(qtbot, win)


def test_a_settings_folder_under_a_file_is_shown(qtbot, gui_dirs, fake_engine, tmp_path):
    (tmp_path / "afile").write_text("")
    folder = tmp_path / "afile" / "vbg"
    win = _window(qtbot, folder)
    win.show()
    win.save_settings()
    shown = _save_messages(win)
    assert len(shown) == 1 and str(folder / SETTINGS_FILE) in shown[0] and "Not a directory" in shown[0]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_settings_folder_is_shown(qtbot, gui_dirs, fake_engine):
    cfg, _ = gui_dirs
    cfg.mkdir(parents=True)
    cfg.chmod(0o500)
    try:
        win = _window(qtbot, cfg)
        win.show()
        win.save_settings()
        shown = _save_messages(win)
        assert len(shown) == 1 and "Permission denied" in shown[0]
    finally:
        cfg.chmod(0o700)


# -- the same values from the command line ---------------------------------------------------------------
def test_vbg_gui_refuses_an_unknown_provider_in_one_line(gui_dirs, capsys, restore_log_handlers):
    import vbg_app.gui as gui

    rc = gui.main(["--provider", "quantum", "--screenshot", str(gui_dirs[1] / "shot.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: unknown provider 'quantum'. Use one of auto, cpu, cuda, tensorrt, directml, "
                               "coreml, openvino."]


def test_a_link_loop_given_on_the_command_line_is_kept_as_a_path(tmp_path):
    from vbg_app.gui.app import _absolute, _resolved

    loop = tmp_path / "a.mp4"
    os.symlink(tmp_path / "b.mp4", loop)
    os.symlink(loop, tmp_path / "b.mp4")
    assert _resolved(str(loop)) == str(loop)  # Path.resolve raised RuntimeError here
    assert _absolute(f"video:{loop}") == f"video:{loop}"


@pytest.mark.parametrize("spec, tile, custom", [("color:#abc", "#AABBCC", True), ("color:#12aB3c", "#12AB3C", True),
                                                ("color:fff", "#FFFFFF", False)])  # the last is the White tile
def test_a_saved_colour_without_a_tile_becomes_a_custom_colour(qtbot, gui_dirs, fake_engine, tmp_path, spec, tile,
                                                               custom):
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"background": spec}))
    win = _window(qtbot, tmp_path, persist=False)
    try:
        entry = win.gallery.current_entry()
        assert entry is not None and entry.kind == "color" and entry.spec.upper() == f"COLOR:{tile}"
        assert (tile in win.settings.custom_colors) == custom and win.settings.background == f"color:{tile}"
    finally:
        win.close()
