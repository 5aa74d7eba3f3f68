"""Every real stage and every fake in tests/fakes.py satisfies its protocol in vbg_app.protocols (the methods
and attributes the pipeline uses exist on the object as built), and a stage missing one is refused."""
import numpy as np
import pytest

from tests import fakes
from tests.tinymodel import make_model
from vbg_app.protocols import STAGE_PROTOCOLS, Compositor, Segmenter, Sink, Source, TemporalFilter


class _Capture:
    """A cv2.VideoCapture stand-in: gray 16x16 frames at 30 fps."""

    def read(self):
        return True, np.zeros((16, 16, 3), np.uint8)

    def get(self, prop):
        import cv2
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        pass


def _sources(tmp_path):
    import cv2

    from vbg_app.sources import CameraSource, DemoSource, ImageSource, ReconnectingSource, VideoSource

    cv2.imwrite(str(tmp_path / "still.png"), np.full((32, 48, 3), 90, np.uint8))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (48, 32))
    for _ in range(3):
        writer.write(np.full((32, 48, 3), 90, np.uint8))
    writer.release()
    return {
        "DemoSource": lambda: DemoSource(64, 48, realtime=False),
        "ImageSource": lambda: ImageSource(tmp_path / "still.png", realtime=False),
        "VideoSource": lambda: VideoSource(tmp_path / "clip.avi", realtime=False),
        "CameraSource": lambda: CameraSource(capture=_Capture()),
        "ReconnectingSource": lambda: ReconnectingSource(lambda: CameraSource(capture=_Capture())),
        "fakes.CountingSource": fakes.CountingSource,
    }


def _segmenters(tmp_path):
    from vbg_app.engines import create_segmenter
    from vbg_app.saver import BatterySaver

    model = make_model(tmp_path / "tiny.onnx")
    made = {
        "OnnxSegmenter": lambda: create_segmenter("connectnet", str(model), "cpu", 1),
        "BatterySaver": lambda: BatterySaver(create_segmenter("connectnet", str(model), "cpu", 1)),
        "fakes.EchoSegmenter": fakes.EchoSegmenter,
        "fakes.HalfSegmenter": fakes.HalfSegmenter,
    }
    try:
        import mediapipe  # noqa: F401
        made["MediaPipeSegmenter"] = lambda: create_segmenter("mediapipe")
    except ImportError:
        pass
    return made


def _filters(_tmp_path):
    from vbg_app.temporal import FILTER_NAMES, create_filter

    made = {name: (lambda n=name: create_filter(n)) for name in FILTER_NAMES}
    made["fakes.PassFilter"] = fakes.PassFilter
    return made


def _compositors(_tmp_path):
    from vbg_app.compose import Compositor as RealCompositor

    return {"Compositor": lambda: RealCompositor("blur"), "fakes.TagCompositor": fakes.TagCompositor,
            "fakes.CopyCompositor": fakes.CopyCompositor}


def _sinks(tmp_path):
    from vbg_app.sinks import FileSink, NullSink, VirtualCameraSink

    return {"NullSink": NullSink, "FileSink": lambda: FileSink(tmp_path / "out.avi", 48, 32, 30.0),
            "VirtualCameraSink": lambda: VirtualCameraSink(48, 32, 30.0), "fakes.ListSink": fakes.ListSink}


def _members(protocol) -> list:
    """The attributes and methods a protocol asks for (what the failure message names)."""
    return sorted(set(getattr(protocol, "__annotations__", {}))
                  | {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")})


KINDS = {"source": (Source, _sources), "segmenter": (Segmenter, _segmenters), "filter": (TemporalFilter, _filters),
         "compositor": (Compositor, _compositors), "sink": (Sink, _sinks)}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_stage_satisfies_its_protocol(kind, tmp_path, fake_vcam):
    protocol, makers = KINDS[kind]
    assert STAGE_PROTOCOLS[kind] is protocol
    failures = []
    for name, make in makers(tmp_path).items():
        stage = make()
        try:
            if not isinstance(stage, protocol):
                missing = [m for m in _members(protocol) if not hasattr(stage, m)]
                failures.append(f"{name} lacks {missing}")
        finally:
            if hasattr(stage, "close"):
                stage.close()
    assert not failures, failures


def test_a_stage_missing_a_member_is_refused():
    class NoClose:
        name, provider, fallback_reason = "x", "cpu", ""

        def segment(self, frame):
            return frame

    class NoProvider:
        name, fallback_reason = "x", ""

        def segment(self, frame):
            return frame

        def close(self):
            pass

    assert not isinstance(NoClose(), Segmenter) and not isinstance(NoProvider(), Segmenter)
    assert _members(Segmenter) == ["close", "fallback_reason", "name", "provider", "segment"]
    assert not isinstance(fakes.PassFilter(), Sink) and not isinstance(fakes.ListSink(), Source)
