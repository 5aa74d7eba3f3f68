"""The GUI's folders and its settings file (no Qt in here).

* ``config_dir()``: ``$VBG_CONFIG_DIR`` or platformdirs' ``user_config_dir("vbg")`` -- holds ``settings.json``;
* ``data_dir()``: ``$VBG_DATA_DIR`` or ``user_data_dir("vbg")`` -- the user's own backgrounds (``backgrounds/``)
  and the GUI's logs (``logs/``: ``vbg-gui.log`` and the crash log).

``SettingsStore.load()`` never fails and never loses what the file held. Every field has its own rule
(:data:`RULES`: a colour is ``#RRGGBB``, a provider one that the engine accepts, a path a non-empty string
with no NUL, a number finite and within its range, an enum one of its names); a value that breaks its rule
falls back to the field's default alone and the others are kept. A file that is not UTF-8 text is read with
its undecodable bytes kept as such (``surrogateescape``): a string holding one of them breaks its rule (the
rules refuse lone surrogates, so vbg never writes one), so that field falls back and the fields around it
are kept. A file that is
not a JSON object at all (or over 1 MB) gives the defaults. Whenever something was reset, the file as it
was is first copied beside it as ``settings.json.bad-YYYYmmdd-HHMMSS`` (never over an earlier copy of other
bytes; the same bytes again reuse their copy) and the notice that ``load()`` returns names the fields and
the copy. A file that cannot be read at all (no permission, a folder) is moved aside to such a name and
gives the defaults and a notice. A file that could neither be read whole nor kept is never written over.

``save()`` writes a temp file in the same folder, fsyncs it and renames it over the old one, so a crash
mid-write never leaves a half-written settings file; it returns what went wrong ("" when it worked) instead of
raising, for the window to show. Keys this version does not know (written by a newer vbg, or by hand) are kept
as they were and written back. When ``settings.json`` is a symbolic link (a dotfiles manager's), the file it
points to is replaced and the link stays.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import stat
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vbg_app.config import DEFAULT_SMOOTHING, FPS_RANGE, SMOOTHING, PipelineConfig, parse_size
from vbg_app.engines import ENGINES  # the engines create_segmenter accepts (a light import: no onnxruntime)

log = logging.getLogger(__name__)

APP_NAME = "vbg"
SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
MAX_FILE_BYTES = 1 << 20   # vbg writes about 1 KB; a bigger file is not one of its settings files
MAX_TEXT = 4096            # a path or spec longer than PATH_MAX (Linux) cannot name a file
MAX_CUSTOM_COLORS = 256
MAX_GEOMETRY = 8192        # hex characters; QWidget.saveGeometry() gives about 130


def config_dir() -> Path:
    env = os.environ.get("VBG_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    env = os.environ.get("VBG_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    return data_dir() / "logs"


@dataclass
class Settings:
    source: str = "demo"               # demo | camera:N | camera:/dev/videoN | video:PATH
    camera_size: str = ""              # "" = the camera's default, else WIDTHxHEIGHT
    camera_fps: float = 0.0            # 0 = the camera's default
    background: str = "blur"           # a compose.py spec (blur[:N], image:PATH, video:PATH, color:#RRGGBB, none)
    blur_strength: int = 15            # 1..100, the slider under the gallery
    custom_colors: list = field(default_factory=list)  # "#RRGGBB" strings the user picked
    engine: str = "connectnet"
    provider: str = "auto"
    model: str | None = None           # an ONNX file with vbg.* metadata; None = the shipped model
    smoothing: str = DEFAULT_SMOOTHING
    refine: bool = True
    mirror: bool = False
    battery_saver: bool = False        # vbg run --battery-saver (vbg_app/saver.py)
    show_original: bool = False
    window_geometry: str = ""          # QWidget.saveGeometry() as hex
    version: int = SETTINGS_VERSION

    def pipeline_config(self) -> PipelineConfig:
        size = None
        if self.camera_size:
            try:
                size = parse_size(self.camera_size)
            except Exception:
                size = None
        return PipelineConfig(source=self.source, background=self.background, sink="null", engine=self.engine,
                              model=self.model or None, provider=self.provider, size=size,
                              fps=float(self.camera_fps) or None, smoothing=self.smoothing, mirror=self.mirror,
                              refine=self.refine, battery_saver=self.battery_saver)

    def as_dict(self) -> dict:
        return asdict(self)


# -- one rule per field: the value to keep, or ValueError --------------------------------------------------
def _text(value) -> str:
    """A string Qt can show and the file system can take: no NUL, no lone surrogate, at most MAX_TEXT long."""
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise ValueError
    value.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate, e.g. an undecodable byte
    return value


def _path(value) -> str:
    if not _text(value).strip():
        raise ValueError
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _finite(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError
    return value


def _one_of(*names):
    def rule(value):
        if not isinstance(value, str) or value not in names:
            raise ValueError
        return value
    return rule


def _source(value) -> str:
    """A source spec (:func:`vbg_app.specs.parse_source`: demo, camera[:N|:PATH], N, video:PATH, image:PATH, or a
    bare path to a video or image by its extension). The file or camera need not exist now (the window says so)."""
    from vbg_app.specs import parse_source

    parse_source(_path(value))  # BadInput
    return value


def _background(value) -> str:
    """A background spec (:func:`vbg_app.specs.parse_background`: none, blur, blur:1..100, color:#RGB or
    #RRGGBB, image:PATH, video:PATH). The file need not exist now (the window falls back to blur and says so)."""
    from vbg_app.specs import parse_background

    parse_background(_path(value))  # BadInput
    return value


def _blur_strength(value) -> int:
    if _finite(value) != int(value) or not 1 <= value <= 100:
        raise ValueError
    return int(value)


def _camera_fps(value) -> float:
    lo, hi = FPS_RANGE
    if _finite(value) != 0 and not lo <= value <= hi:
        raise ValueError
    return float(value)


def _camera_size(value) -> str:
    if _text(value):
        parse_size(value)  # BadInput
    return value


def _custom_colors(value) -> list:
    """The ``#RRGGBB`` strings of the list (at most MAX_CUSTOM_COLORS); anything else in it is dropped."""
    if not isinstance(value, list):
        raise ValueError
    return [c for c in value if isinstance(c, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", c)][:MAX_CUSTOM_COLORS]


def _provider(value) -> str:
    from vbg_app.engines.onnx_engine import PROVIDERS  # the names create_segmenter accepts
    return _one_of("auto", *PROVIDERS)(value)


def _model(value) -> str | None:
    return None if value is None or value == "" else _path(value)


def _geometry(value) -> str:
    if len(_text(value)) > MAX_GEOMETRY or not re.fullmatch(r"([0-9a-fA-F]{2})*", value):
        raise ValueError
    return value


RULES = {
    "source": _source, "camera_size": _camera_size, "camera_fps": _camera_fps, "background": _background,
    "blur_strength": _blur_strength, "custom_colors": _custom_colors, "engine": _one_of(*ENGINES),
    "provider": _provider, "model": _model, "smoothing": _one_of(*SMOOTHING), "refine": _flag, "mirror": _flag,
    "battery_saver": _flag, "show_original": _flag, "window_geometry": _geometry,
}


def settings_from_dict(data: dict) -> tuple[Settings, list[str]]:
    """Settings from a parsed JSON object; each value that breaks its rule falls back to its default (a list
    keeps its good items). Returns (settings, names of the fields that were reset or changed)."""
    kwargs, bad = {}, []
    for f in fields(Settings):
        if f.name not in RULES or f.name not in data:
            continue
        try:
            kwargs[f.name] = RULES[f.name](data[f.name])
        except Exception:  # ValueError (UnicodeEncodeError), TypeError, OverflowError, BadInput from parse_size
            bad.append(f.name)
            continue
        if kwargs[f.name] != data[f.name] and not (f.name == "model" and data[f.name] == ""):
            bad.append(f.name)  # a list that lost items
    settings = Settings(**kwargs)
    # the mediapipe engine runs on the CPU only: create_segmenter refuses it any other provider
    if settings.engine == "mediapipe" and settings.provider not in ("auto", "cpu"):
        settings.provider = "auto"
        bad.append("provider")
    return settings, bad


def _parse_int(text: str):
    # Python refuses to convert more than 4300 digits (ValueError for the whole file); such a number is out of
    # every field's range anyway, so it becomes a float (inf) that its field's rule refuses alone
    return int(text) if len(text) <= 100 else float(text)


class SettingsStore:
    """Loads and saves :class:`Settings` as JSON in ``folder`` (default :func:`config_dir`)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else config_dir()
        self.path = self.folder / SETTINGS_FILE
        self.backup_path: Path | None = None  # where the last load() kept a file it had to repair
        self.keep_original = False  # load() could neither read nor keep the file: save() must not replace it
        self.extra: dict = {}  # keys of the loaded file that Settings does not have: written back unchanged

    def load(self) -> tuple[Settings, str]:
        """(settings, notice); the notice is "" unless the user should be told something."""
        self.backup_path = None
        self.keep_original = False
        self.extra = {}
        try:
            st = os.stat(self.path)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(21, "it is a folder")
            if not stat.S_ISREG(st.st_mode):  # a pipe would block the open
                raise OSError(0, "it is not a regular file")
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return Settings(), ""
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            backup, failure = self._keep(None)  # moved aside: it needs no reading, and then vbg can save
            kept = (f" It was moved to {backup}." if backup
                    else f" vbg could not move it aside ({failure}) and will not write over it.")
            log.warning("cannot read the settings file %s (%s); using defaults.%s", self.path, why, kept)
            return Settings(), (f"Could not read your settings file {self.path} ({why}), so vbg started with "
                                f"default settings.{kept}")
        damage, data = self._parse(raw)
        settings, bad = settings_from_dict(data)
        known = {f.name for f in fields(Settings)}
        self.extra = {k: v for k, v in data.items() if k not in known}
        if not damage and not bad:
            return settings, ""
        backup, failure = self._keep(None if len(raw) > MAX_FILE_BYTES else raw)
        kept = (f" The file as it was is kept as {backup}." if backup
                else f" vbg could not keep a copy of it ({failure}), so it will not write over it.")
        if damage and not data:
            log.warning("settings file %s is damaged (%s); using defaults.%s", self.path, damage, kept)
            return settings, (f"Your settings file was damaged ({damage}), so vbg started with default "
                              f"settings.{kept}")
        names = ", ".join(dict.fromkeys(bad))
        log.warning("settings %s in %s were invalid%s; using their defaults.%s", names, self.path,
                    f" (the file is damaged: {damage})" if damage else "", kept)
        if damage:
            return settings, (f"Your settings file was damaged ({damage}); these settings could not be read and "
                              f"were reset to their defaults: {names or 'none'}. The others were kept.{kept}")
        return settings, f"Some settings were invalid and were reset to their defaults: {names}.{kept}"

    @staticmethod
    def _parse(raw: bytes) -> tuple[str, dict]:
        """(what is wrong with the file as a whole or "", the JSON object it holds or {})."""
        if len(raw) > MAX_FILE_BYTES:
            return f"it is larger than {MAX_FILE_BYTES >> 20} MB", {}
        if raw.startswith(b"\xef\xbb\xbf"):  # a BOM some editors write: still UTF-8
            raw = raw[3:]
        damage = ""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            damage = f"it is not UTF-8 text: byte 0x{raw[exc.start]:02X} at offset {exc.start}"
            text = raw.decode("utf-8", "surrogateescape")  # the bad bytes stay apart, in the strings they hit
        try:
            data = json.loads(text, parse_int=_parse_int)
        except (ValueError, RecursionError) as exc:
            return "; ".join(filter(None, (damage, f"not JSON: {_short(exc)}"))), {}
        if not isinstance(data, dict):
            return "; ".join(filter(None, (damage, f"it holds a {type(data).__name__}, not an object"))), {}
        return damage, data

    def _keep(self, raw: bytes | None) -> tuple[Path | None, str]:
        """Keep the file as it is as settings.json.bad-DATE: (that path, "") or (None, why not). ``raw``: its
        bytes, copied, so the file stays until the repaired settings are saved over it; None: the file is moved
        (too big to copy, or unreadable). When it can be neither, :meth:`save` leaves it alone."""
        try:
            if raw is not None:
                for old in sorted(self.folder.glob(f"{SETTINGS_FILE}.bad-*")):  # the same bytes kept before
                    try:
                        if old.is_file() and old.stat().st_size == len(raw) and old.read_bytes() == raw:
                            self.backup_path = old
                            return old, ""
                    except OSError:
                        continue
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for n in range(1000):
                backup = self.path.with_name(f"{SETTINGS_FILE}.bad-{stamp}" + (f"-{n}" if n else ""))
                if raw is None:
                    if os.path.lexists(backup):
                        continue
                    os.replace(self.path, backup)
                else:
                    try:
                        fh = open(backup, "xb")  # never over an earlier copy
                    except FileExistsError:
                        continue
                    try:
                        with fh:
                            fh.write(raw)
                            fh.flush()
                            os.fsync(fh.fileno())
                    except BaseException:
                        _unlink(backup)
                        raise
                self.backup_path = backup
                return backup, ""
            why = "too many copies already"
        except OSError as exc:
            why = exc.strerror or str(exc)
        log.warning("could not keep the settings file %s as it was: %s", self.path, why)
        self.keep_original = True
        return None, why

    def save(self, settings: Settings) -> str:
        """Atomically replace the settings file. Returns "" when saved, else why not (also logged): errors are
        never raised (settings are not worth a crash), the caller shows them."""
        if self.keep_original and os.path.lexists(self.path):
            why = "the file there could not be read or copied, so vbg leaves it as it is"
            log.warning("not saving settings to %s: %s", self.path, why)
            return why
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            target = self.path
            if os.path.islink(self.path):  # replace the file the link points to, keep the link
                target = Path(os.path.realpath(self.path))
                if os.path.islink(target):
                    raise OSError(40, "settings.json is a symbolic link that loops")
                target.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({**self.extra, **settings.as_dict()}, indent=2, sort_keys=True)
            fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=str(target.parent))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                _unlink(tmp)
                raise
        except Exception as exc:  # OSError (disk full, read-only), or a value json cannot write
            why = (exc.strerror or str(exc)) if isinstance(exc, OSError) else _short(exc)
            log.warning("could not save settings to %s: %s", self.path, why)
            return why
        return ""


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) < 80 else text[:77] + "..."
