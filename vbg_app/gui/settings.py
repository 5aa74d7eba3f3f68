"""The GUI's folders and its settings file (no Qt in here).

* ``config_dir()``: ``$VBG_CONFIG_DIR`` or platformdirs' ``user_config_dir("vbg")`` -- holds ``settings.json``;
* ``data_dir()``: ``$VBG_DATA_DIR`` or ``user_data_dir("vbg")`` -- the user's own backgrounds (``backgrounds/``)
  and the GUI log (``logs/``).

``SettingsStore.load()`` never fails: a missing file gives the defaults; an unreadable or corrupt one gives
the defaults plus a notice for the user, and the bad file is kept beside it as
``settings.json.bad-YYYYmmdd-HHMMSS`` so nothing is lost. Single values of the wrong type fall back to their
default one by one. ``save()`` writes a temp file in the same folder, fsyncs it and renames it over the old
one, so a crash mid-write never leaves a half-written settings file.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from vbg_app.config import DEFAULT_SMOOTHING, SMOOTHING, PipelineConfig, parse_size

log = logging.getLogger(__name__)

APP_NAME = "vbg"
SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
ENGINES = ("connectnet", "mediapipe")


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
                              refine=self.refine)

    def as_dict(self) -> dict:
        return asdict(self)


def _coerce(name: str, value, default):
    """``value`` if it fits the field ``name`` (type and range), else raise ValueError."""
    if name in ("model",):
        if value is None or isinstance(value, str):
            return value or None
        raise ValueError
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ValueError
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ValueError
        value = int(value)
        if name == "blur_strength" and not 1 <= value <= 100:
            raise ValueError
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 240:
            raise ValueError
        return float(value)
    if isinstance(default, list):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError
        if name == "smoothing" and value not in SMOOTHING:
            raise ValueError
        if name == "engine" and value not in ENGINES:
            raise ValueError
        if name == "camera_size" and value:
            parse_size(value)
        return value
    raise ValueError


def settings_from_dict(data: dict) -> tuple[Settings, list[str]]:
    """Settings from a parsed JSON object; each bad value falls back to its default. Returns (settings, bad names)."""
    defaults = Settings()
    kwargs, bad = {}, []
    for f in fields(Settings):
        if f.name not in data:
            continue
        try:
            kwargs[f.name] = _coerce(f.name, data[f.name], getattr(defaults, f.name))
        except Exception:  # ValueError, TypeError, BadInput from parse_size
            bad.append(f.name)
    kwargs["version"] = SETTINGS_VERSION
    return Settings(**kwargs), bad


class SettingsStore:
    """Loads and saves :class:`Settings` as JSON in ``folder`` (default :func:`config_dir`)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else config_dir()
        self.path = self.folder / SETTINGS_FILE
        self.backup_path: Path | None = None  # where a corrupt file was kept by the last load()

    def load(self) -> tuple[Settings, str]:
        """(settings, notice); the notice is "" unless the user should be told something."""
        self.backup_path = None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Settings(), ""
        except OSError as exc:
            return Settings(), (f"Could not read your settings file {self.path} ({exc.strerror}); "
                                "vbg started with default settings.")
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"it holds a {type(data).__name__}, not an object")
        except (ValueError, RecursionError) as exc:
            backup = self._keep_bad_file()
            where = f" It was kept as {backup}." if backup else ""
            log.warning("settings file %s is corrupt (%s); using defaults%s", self.path, exc, where)
            return Settings(), (f"Your settings file was damaged ({_short(exc)}), so vbg started with default "
                                f"settings.{where}")
        settings, bad = settings_from_dict(data)
        if bad:
            log.warning("settings %s in %s were invalid; using their defaults", ", ".join(bad), self.path)
            return settings, f"Some settings were invalid and were reset to their defaults: {', '.join(bad)}."
        return settings, ""

    def _keep_bad_file(self) -> Path | None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup = self.path.with_name(f"{SETTINGS_FILE}.bad-{stamp}")
        n = 1
        while backup.exists():
            backup = self.path.with_name(f"{SETTINGS_FILE}.bad-{stamp}-{n}")
            n += 1
        try:
            os.replace(self.path, backup)
        except OSError as exc:
            log.warning("could not keep the corrupt settings file as %s: %s", backup, exc)
            return None
        self.backup_path = backup
        return backup

    def save(self, settings: Settings) -> None:
        """Atomically replace the settings file; errors are logged, never raised (settings are not worth a crash)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(settings.as_dict(), indent=2, sort_keys=True)
            fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=str(self.folder))
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except Exception as exc:  # OSError (disk full, read-only), or a value json cannot write
            log.warning("could not save settings to %s: %s", self.path, exc)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) < 80 else text[:77] + "..."
