"""Spec strings (``camera:0``, ``video:talk.mp4``, ``blur:25``, ``color:#2b5797``, ``file:out.mp4`` ...) as small
frozen dataclasses, and one name → factory registry per stage: the CLI, the GUI and the tools parse and open
stages only through these.

    spec = parse_source("camera:1")          # CameraSpec(device=1); str(spec) == "camera:1"
    src = SOURCES.open(spec, fps=30)         # or SOURCES.open("camera:1", ...): the same
    parse_background("color:#abc")           # ColorSpec(hex='#AABBCC')
    parse_sink("out.mp4")                    # FileSpec(path='out.mp4'): a bare recording path is a file

``str(spec)`` is the canonical spec text and parses back to an equal spec. A spec that cannot be parsed raises
:class:`~vbg_app.errors.BadInput` with one line naming the accepted forms. Parsing touches no file and no
device (a missing file is reported when the stage is opened, by the stage). The factories import their
stage module when called, so parsing loads nothing heavy (the GUI's settings check specs at start-up).

A registry maps a spec's *kind* (the text before the colon) to its dataclass and factory, like pyvirtualcam's
backends or the training losses' registry (vbg_app/train/losses); a new kind of source is one
``SOURCES.register(...)`` call.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Callable, ClassVar

from vbg_app.errors import BadInput


# -- the registry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    spec: type
    factory: Callable[..., Any]
    form: str  # how the user writes it, for error messages and --help


class Registry:
    """Kind name → (spec dataclass, factory). ``parse(text)`` → a spec; ``open(spec_or_text, ...)`` → the stage.

    ``bare``: how text without a known kind is read (a camera number, a file path by its extension), or None.
    """

    def __init__(self, what: str, bare: Callable[[str], Any] | None = None) -> None:
        self.what = what
        self._kinds: dict[str, _Kind] = {}
        self._bare = bare

    def register(self, name: str, spec: type, factory: Callable[..., Any], form: str) -> None:
        self._kinds[name] = _Kind(spec, factory, form)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    @property
    def forms(self) -> str:
        """``"demo, camera[:N], ..."``: every accepted form, for messages."""
        return ", ".join(k.form for k in self._kinds.values())

    def error(self, text: str) -> BadInput:
        return BadInput(f"unknown {self.what} {text!r}", f"use one of: {self.forms}")

    def parse(self, spec) -> Any:
        """A spec dataclass from its text (or the spec itself); BadInput naming the accepted forms."""
        if isinstance(spec, tuple(k.spec for k in self._kinds.values())):
            return spec
        if not isinstance(spec, str):
            raise BadInput(f"{self.what} {spec!r} is not a spec", f"use one of: {self.forms}")
        text = spec.strip()
        kind, sep, arg = text.partition(":")
        entry = self._kinds.get(kind.lower())
        if entry is not None:
            return entry.spec.from_arg(arg.strip() if sep else None, self)
        found = self._bare(text) if self._bare is not None and text else None
        if found is None:
            raise self.error(spec)
        return found

    def open(self, spec, *args, **opts) -> Any:
        """The stage for ``spec`` (text or dataclass): the kind's factory called with the spec and the options."""
        spec = self.parse(spec)
        return self._kinds[spec.kind].factory(spec, *args, **opts)


def _path(kind: str, arg: str | None) -> str:
    if not arg:
        raise BadInput(f"no {kind} file given", f"write {kind}:PATH")
    return arg


def _no_arg(cls, arg, registry):
    if arg is not None:
        raise registry.error(f"{cls.kind}:{arg}")
    return cls()


# -- the dataclasses ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Bare:
    """A kind with no argument: its text is its name."""
    kind: ClassVar[str]
    from_arg = classmethod(_no_arg)

    def __str__(self) -> str:
        return self.kind


@dataclass(frozen=True)
class _PathSpec:
    """``kind:PATH``."""
    kind: ClassVar[str]
    path: str

    @classmethod
    def from_arg(cls, arg, registry=None):
        return cls(_path(cls.kind, arg))

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


@dataclass(frozen=True)
class DemoSpec(_Bare):
    """The built-in moving portrait."""
    kind: ClassVar[str] = "demo"


@dataclass(frozen=True)
class CameraSpec:
    """A camera by number (``camera:0``) or device path (``camera:/dev/video2``)."""
    kind: ClassVar[str] = "camera"
    device: int | str = 0

    @classmethod
    def from_arg(cls, arg, registry=None) -> "CameraSpec":
        return cls(int(arg) if arg and arg.isdigit() and arg.isascii() else (arg or 0))

    def __str__(self) -> str:
        return f"camera:{self.device}"


@dataclass(frozen=True)
class VideoSpec(_PathSpec):
    """A video file: a source (``--source``) or a moving background (``--background``)."""
    kind: ClassVar[str] = "video"


@dataclass(frozen=True)
class ImageSpec(_PathSpec):
    """A still image file: a source or a background."""
    kind: ClassVar[str] = "image"


MIN_BLUR, MAX_BLUR, DEFAULT_BLUR = 1, 100, 15


@dataclass(frozen=True)
class BlurSpec:
    """The room blurred; ``strength`` 1..100 (None: the default, 15)."""
    kind: ClassVar[str] = "blur"
    strength: int | None = None

    def __post_init__(self) -> None:
        if self.strength is not None and not MIN_BLUR <= int(self.strength) <= MAX_BLUR:
            raise BadInput(f"blur strength {self.strength} is out of range",
                           f"use a whole number from {MIN_BLUR} to {MAX_BLUR}, e.g. blur:{DEFAULT_BLUR}")

    @classmethod
    def from_arg(cls, arg, registry=None) -> "BlurSpec":
        if arg is None:
            return cls()
        if not re.fullmatch(r"[0-9]+", arg):
            raise BadInput(f"blur strength '{arg}' is not a whole number from {MIN_BLUR} to {MAX_BLUR}",
                           f"use blur:N with N from {MIN_BLUR} to {MAX_BLUR}, e.g. blur:{DEFAULT_BLUR}")
        return cls(int(arg))

    @property
    def value(self) -> int:
        return DEFAULT_BLUR if self.strength is None else int(self.strength)

    def __str__(self) -> str:
        return "blur" if self.strength is None else f"blur:{self.strength}"


@dataclass(frozen=True)
class ColorSpec:
    """A solid colour; ``hex`` is ``#RRGGBB`` in capitals (``#abc`` is read as ``#AABBCC``)."""
    kind: ClassVar[str] = "color"
    hex: str

    @classmethod
    def from_arg(cls, arg, registry=None) -> "ColorSpec":
        t = (arg or "").strip().removeprefix("#")
        if len(t) == 3:
            t = "".join(c * 2 for c in t)
        if not re.fullmatch(r"[0-9a-fA-F]{6}", t):
            raise BadInput(f"background color '{arg or ''}' is not a #RRGGBB hex color",
                           "write it like color:#00B140 (green) or color:#FFFFFF (white)")
        return cls("#" + t.upper())

    @property
    def bgr(self) -> tuple[int, int, int]:
        t = self.hex.lstrip("#")
        return int(t[4:6], 16), int(t[2:4], 16), int(t[0:2], 16)

    def __str__(self) -> str:
        return f"color:{self.hex}"


@dataclass(frozen=True)
class NoneSpec(_Bare):
    """No background change: the camera picture as it is."""
    kind: ClassVar[str] = "none"


@dataclass(frozen=True)
class VcamSpec:
    """The virtual camera (``device``: a particular one, e.g. ``/dev/video10``)."""
    kind: ClassVar[str] = "vcam"
    device: str | None = None

    @classmethod
    def from_arg(cls, arg, registry=None) -> "VcamSpec":
        return cls(arg or None)

    def __str__(self) -> str:
        return f"vcam:{self.device}" if self.device else "vcam"


@dataclass(frozen=True)
class FileSpec(_PathSpec):
    """A recording (``.mp4``, ``.avi`` ...; the sink checks the extension)."""
    kind: ClassVar[str] = "file"

    @classmethod
    def from_arg(cls, arg, registry=None) -> "FileSpec":
        return cls(arg or "")  # FileSink says what is wrong with an empty or unknown name, with the fix


@dataclass(frozen=True)
class NullSpec(_Bare):
    """Frames go nowhere (benchmarks, the GUI's preview)."""
    kind: ClassVar[str] = "null"


@dataclass(frozen=True)
class NameSpec:
    """An engine or a temporal filter: a bare name (``connectnet``, ``flow``)."""
    kind: str

    def __str__(self) -> str:
        return self.kind


# -- sources ------------------------------------------------------------------------------------------
def _bare_source(text: str):
    """A camera number, or a file path read by its extension (``talk.mp4``, ``C:\\me.jpg``)."""
    from vbg_app.imagefile import IMAGE_EXTS, VIDEO_EXTS

    if text.isdigit() and text.isascii():
        return CameraSpec(int(text))
    ext = PurePath(text).suffix.lower()
    if ext in VIDEO_EXTS:
        return VideoSpec(text)
    if ext in IMAGE_EXTS:
        return ImageSpec(text)
    return None


def _open_demo(spec, size=None, fps=None, realtime=True, **_):
    from vbg_app.sources import DemoSource
    w, h = size or (1280, 720)
    return DemoSource(w, h, fps or 30.0, realtime=realtime)


def _open_camera(spec, size=None, fps=None, mjpg=False, reconnect=False, **_):
    from vbg_app.sources import CameraSource, ReconnectingSource
    w, h = size or (None, None)
    if reconnect:
        # a reopen waits at most 2 s for the first frame, so a half-working camera is retried sooner
        return ReconnectingSource(lambda: CameraSource(spec.device, w, h, fps, mjpg, first_frame_timeout=2.0),
                                  source=CameraSource(spec.device, w, h, fps, mjpg))
    return CameraSource(spec.device, w, h, fps, mjpg)


def _open_video(spec, realtime=True, loop=False, **_):
    from vbg_app.sources import VideoSource
    return VideoSource(spec.path, loop=loop, realtime=realtime)


def _open_image(spec, fps=None, realtime=True, **_):
    from vbg_app.sources import ImageSource
    return ImageSource(spec.path, fps=fps or 30.0, realtime=realtime)


SOURCES = Registry("source", _bare_source)
SOURCES.register("demo", DemoSpec, _open_demo, "demo")
SOURCES.register("camera", CameraSpec, _open_camera, "camera:N, camera:/dev/videoN")
SOURCES.register("video", VideoSpec, _open_video, "video:PATH")
SOURCES.register("image", ImageSpec, _open_image, "image:PATH")


# -- backgrounds --------------------------------------------------------------------------------------
def _bg_blur(spec):
    from vbg_app.compose import BlurBackground
    return BlurBackground(spec.value)


def _bg_color(spec):
    from vbg_app.compose import ColorBackground
    return ColorBackground(spec.bgr, spec=str(spec))


def _bg_image(spec):
    from vbg_app.compose import ImageBackground
    return ImageBackground(os.path.expanduser(spec.path))


def _bg_video(spec):
    from vbg_app.compose import VideoBackground
    return VideoBackground(os.path.expanduser(spec.path))


def _bg_none(spec):
    from vbg_app.compose import NoneBackground
    return NoneBackground()


BACKGROUNDS = Registry("background")
BACKGROUNDS.register("blur", BlurSpec, _bg_blur, f"blur[:{MIN_BLUR}-{MAX_BLUR}]")
BACKGROUNDS.register("image", ImageSpec, _bg_image, "image:PATH")
BACKGROUNDS.register("video", VideoSpec, _bg_video, "video:PATH")
BACKGROUNDS.register("color", ColorSpec, _bg_color, "color:#RRGGBB")
BACKGROUNDS.register("none", NoneSpec, _bg_none, "none")


# -- sinks --------------------------------------------------------------------------------------------
def _bare_sink(text: str):
    from vbg_app.sinks import FILE_CODECS
    return FileSpec(text) if PurePath(text).suffix.lower() in FILE_CODECS else None


def _open_vcam(spec, size_wh, fps, overwrite=False):
    from vbg_app.sinks import VirtualCameraSink
    return VirtualCameraSink(size_wh[0], size_wh[1], fps, device=spec.device)


def _open_file(spec, size_wh, fps, overwrite=False):
    from vbg_app.sinks import FileSink
    return FileSink(spec.path, size_wh[0], size_wh[1], fps, overwrite=overwrite)


def _open_null(spec, size_wh=None, fps=None, overwrite=False):
    from vbg_app.sinks import NullSink
    return NullSink()


SINKS = Registry("sink", _bare_sink)
SINKS.register("vcam", VcamSpec, _open_vcam, "vcam, vcam:DEVICE")
SINKS.register("file", FileSpec, _open_file, "file:PATH (.mp4 or .avi)")
SINKS.register("null", NullSpec, _open_null, "null")


# -- engines and temporal filters: bare names ---------------------------------------------------------
class _Names(Registry):
    """A registry of bare names (no ``kind:arg``): ``connectnet``, ``flow`` ..."""

    def parse(self, spec) -> NameSpec:
        if isinstance(spec, NameSpec) and spec.kind in self._kinds:
            return spec
        key = spec.strip().lower() if isinstance(spec, str) else None
        if key not in self._kinds:
            raise self.error(spec if isinstance(spec, str) else repr(spec))
        return NameSpec(key)

    @property
    def forms(self) -> str:
        return ", ".join(self._kinds)


def _connectnet(spec, model=None, provider="auto", threads=None, strict=False):
    from vbg_app import resources
    from vbg_app.engines.onnx_engine import OnnxSegmenter
    return OnnxSegmenter(model or resources.model_path(resources.DEFAULT_MODEL), provider=provider,
                         threads=threads, strict=strict)


def _mediapipe(spec, model=None, provider="auto", threads=None, strict=False):
    from vbg_app.engines.mediapipe_engine import MediaPipeSegmenter
    if provider not in ("auto", "cpu"):
        raise BadInput(f"the mediapipe engine runs on the CPU only (asked for {provider})",
                       "use --provider auto or cpu with --engine mediapipe")
    return MediaPipeSegmenter(model)


ENGINES = _Names("engine")
ENGINES.register("connectnet", NameSpec, _connectnet, "connectnet")
ENGINES.register("mediapipe", NameSpec, _mediapipe, "mediapipe")


def _filter(spec, **kwargs):
    from vbg_app.temporal import create_filter
    return create_filter(spec.kind, **kwargs)


FILTERS = _Names("smoothing")
for _name in ("none", "ema", "flow", "steady"):  # the one list of smoothing names (temporal.FILTER_NAMES is this)
    FILTERS.register(_name, NameSpec, _filter, _name)


def parse_source(text) -> DemoSpec | CameraSpec | VideoSpec | ImageSpec:
    return SOURCES.parse(text)


def parse_background(text) -> BlurSpec | ImageSpec | VideoSpec | ColorSpec | NoneSpec:
    """``None`` and ``""`` are the default blur."""
    return BACKGROUNDS.parse("blur" if text is None or (isinstance(text, str) and not text.strip()) else text)


def parse_sink(text) -> VcamSpec | FileSpec | NullSpec:
    return SINKS.parse(text)
