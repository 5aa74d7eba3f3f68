"""Spec strings as dataclasses (vbg_app/specs.py): parsing, the canonical text round trip, the registries,
and one clear line for every spec that cannot be read."""
import pytest

from vbg_app import specs
from vbg_app.errors import BadInput
from vbg_app.specs import (BACKGROUNDS, ENGINES, FILTERS, SINKS, SOURCES, BlurSpec, CameraSpec, ColorSpec,
                           DemoSpec, FileSpec, ImageSpec, NameSpec, NoneSpec, NullSpec, VcamSpec, VideoSpec)

PARSED = [
    (SOURCES, "demo", DemoSpec()),
    (SOURCES, " DEMO ", DemoSpec()),
    (SOURCES, "camera", CameraSpec(0)),
    (SOURCES, "camera:2", CameraSpec(2)),
    (SOURCES, "camera: 3 ", CameraSpec(3)),
    (SOURCES, "4", CameraSpec(4)),
    (SOURCES, "camera:/dev/video2", CameraSpec("/dev/video2")),
    (SOURCES, "video:talk.mp4", VideoSpec("talk.mp4")),
    (SOURCES, "image:C:\\me.jpg", ImageSpec("C:\\me.jpg")),
    (SOURCES, "talk.MOV", VideoSpec("talk.MOV")),
    (SOURCES, "C:\\photos\\me.png", ImageSpec("C:\\photos\\me.png")),
    (SOURCES, "video:a:b.mp4", VideoSpec("a:b.mp4")),
    (BACKGROUNDS, "blur", BlurSpec()),
    (BACKGROUNDS, "blur:25", BlurSpec(25)),
    (BACKGROUNDS, "Blur:100", BlurSpec(100)),
    (BACKGROUNDS, "color:#abc", ColorSpec("#AABBCC")),
    (BACKGROUNDS, "color:2b5797", ColorSpec("#2B5797")),
    (BACKGROUNDS, "none", NoneSpec()),
    (BACKGROUNDS, "image:~/beach.jpg", ImageSpec("~/beach.jpg")),
    (BACKGROUNDS, "video:waves.mp4", VideoSpec("waves.mp4")),
    (SINKS, "vcam", VcamSpec()),
    (SINKS, "vcam:/dev/video10", VcamSpec("/dev/video10")),
    (SINKS, "file:out.mp4", FileSpec("out.mp4")),
    (SINKS, "rec.avi", FileSpec("rec.avi")),
    (SINKS, "null", NullSpec()),
    (ENGINES, "connectnet", NameSpec("connectnet")),
    (ENGINES, "MediaPipe", NameSpec("mediapipe")),
    (FILTERS, "steady", NameSpec("steady")),
]


@pytest.mark.parametrize("registry, text, spec", PARSED, ids=[t for _, t, _ in PARSED])
def test_parse_and_round_trip(registry, text, spec):
    parsed = registry.parse(text)
    assert parsed == spec
    assert registry.parse(str(parsed)) == parsed  # the canonical text reads back to the same spec
    assert registry.parse(parsed) is parsed       # a spec passes as is
    with pytest.raises(Exception):
        parsed.__setattr__("kind", "x")            # frozen


def test_canonical_texts():
    assert [str(s) for s in (CameraSpec(0), BlurSpec(), BlurSpec(25), ColorSpec("#00B140"), VcamSpec(),
                             VcamSpec("/dev/video10"), FileSpec("o.mp4"), NullSpec(), NoneSpec(), DemoSpec())] == \
        ["camera:0", "blur", "blur:25", "color:#00B140", "vcam", "vcam:/dev/video10", "file:o.mp4", "null",
         "none", "demo"]
    assert ColorSpec.from_arg("#2b5797").bgr == (0x97, 0x57, 0x2B)
    assert BlurSpec().value == specs.DEFAULT_BLUR and BlurSpec(40).value == 40
    assert specs.parse_background(None) == specs.parse_background("") == BlurSpec()


BAD = [
    (SOURCES, "", "demo, camera:N, camera:/dev/videoN, video:PATH, image:PATH"),
    (SOURCES, "ftp://x", "demo, camera:N"),
    (SOURCES, "demo:1", "demo, camera:N"),
    (SOURCES, "talk.txt", "video:PATH, image:PATH"),
    (SOURCES, "video:", "video:PATH"),
    (SOURCES, "image: ", "image:PATH"),
    (SOURCES, 7, "demo, camera:N"),
    (BACKGROUNDS, "sepia", "blur[:1-100], image:PATH, video:PATH, color:#RRGGBB, none"),
    (BACKGROUNDS, "blur:x", "blur:N with N from 1 to 100"),
    (BACKGROUNDS, "blur:0", "from 1 to 100"),
    (BACKGROUNDS, "blur:101", "from 1 to 100"),
    (BACKGROUNDS, "blur:1.5", "blur:N"),
    (BACKGROUNDS, "color:", "color:#00B140"),
    (BACKGROUNDS, "color:#12345g", "color:#00B140"),
    (BACKGROUNDS, "none:1", "color:#RRGGBB, none"),
    (BACKGROUNDS, "image:", "image:PATH"),
    (SINKS, "ftp:x", "vcam, vcam:DEVICE, file:PATH (.mp4 or .avi), null"),
    (SINKS, "null:3", "vcam, vcam:DEVICE"),
    (SINKS, "out.txt", "file:PATH"),
    (ENGINES, "yolo", "connectnet, mediapipe"),
    (ENGINES, None, "connectnet, mediapipe"),
    (FILTERS, "kalman", "none, ema, flow, steady"),
]


@pytest.mark.parametrize("registry, text, forms", BAD, ids=[repr(t) for _, t, _ in BAD])
def test_bad_specs_say_what_is_accepted_in_one_line(registry, text, forms):
    with pytest.raises(BadInput) as info:
        registry.parse(text)
    line = info.value.one_line()
    assert "\n" not in line and forms in line, line
    assert "Traceback" not in line


def test_registries_match_the_stage_modules():
    from vbg_app.config import SMOOTHING
    from vbg_app.engines import ENGINE_TITLES
    from vbg_app.engines import ENGINES as ENGINE_NAMES
    from vbg_app.temporal import FILTER_NAMES

    assert set(FILTERS.names) == set(FILTER_NAMES) and SMOOTHING == FILTERS.names
    assert ENGINE_NAMES == ENGINES.names and set(ENGINE_TITLES) == set(ENGINES.names)


def test_open_goes_through_the_registered_factory():
    from vbg_app.compose import BlurBackground, ColorBackground, parse_background
    from vbg_app.sinks import NullSink, open_sink
    from vbg_app.sources import DemoSource, open_source

    src = open_source(DemoSpec(), size=(64, 48), realtime=False)
    assert isinstance(src, DemoSource) and src.size_wh == (64, 48)
    src.close()
    assert isinstance(open_sink("null", (64, 48), 30.0), NullSink)
    bg = parse_background("color:#abc")
    assert isinstance(bg, ColorBackground) and bg.bgr == (0xCC, 0xBB, 0xAA) and bg.spec == "color:#AABBCC"
    assert isinstance(parse_background(BlurSpec(30)), BlurBackground) and parse_background("blur:30").strength == 30
    with pytest.raises(BadInput, match="not found"):
        open_source("missing_clip.mp4")  # a bare path is read by its extension; the source says what is wrong


def test_a_new_kind_is_one_register_call():
    reg = specs.Registry("widget")
    reg.register("demo", DemoSpec, lambda spec, scale=1: ("made", str(spec), scale), "demo")
    assert reg.open("demo", scale=3) == ("made", "demo", 3)
    with pytest.raises(BadInput) as info:
        reg.parse("camera:0")
    assert info.value.one_line() == "unknown widget 'camera:0'. Use one of: demo."
