"""MediaPipe selfie segmentation through mediapipe's Tasks ``ImageSegmenter`` (optional extra).

Runs ``models/selfie_segmentation.tflite`` (Apache-2.0, from the mediapipe 0.10.21 wheel; mediapipe 0.10.30+
no longer ships it). Used for side-by-side comparison and as a fallback engine::

    from vbg_app.engines.mediapipe_engine import MediaPipeSegmenter
    seg = MediaPipeSegmenter()
    prob = seg.segment(frame_bgr)   # (144, 256) float32 for a 16:9 frame

The frame is resized to ``input_size_wh`` (long side 256, the frame's aspect kept) before it is handed to
MediaPipe, which returns the confidence mask at that size. The resize is :func:`vbg_app.framecache.shrink`, as
the ONNX engine's (exact halvings, then one bilinear step: 0.3 ms at 720p instead of 1.4 for one INTER_AREA by
5x), and leaves its images for this frame, so the compositor's pyramid and the ``steady`` filter's small frame
are not made again (#16; how the masks differ: docs/bench.md).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from vbg_app import framecache, resources
from vbg_app.errors import BadInput
from vbg_app.quiet import native_stderr_quiet as _native_stderr_quiet  # TFLite/glog lines on fd 2


class MediaPipeSegmenter:
    name = "mediapipe"
    provider = "cpu"  # TFLite XNNPACK
    fallback_reason = ""

    def __init__(self, model_path: str | os.PathLike | None = None, long_side: int = 256) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging off the console
        try:
            import mediapipe as mp
            from mediapipe.tasks import python as mp_tasks
            from mediapipe.tasks.python import vision
        except ImportError:
            raise BadInput("the mediapipe engine needs the mediapipe package",
                           "install it with: pip install 'vbg[mediapipe]'") from None
        path = Path(model_path) if model_path else resources.model_path(resources.MEDIAPIPE_MODEL)
        if not path.is_file():
            raise BadInput(f"MediaPipe model {path} not found",
                           "pass --model with the path of selfie_segmentation.tflite")
        options = vision.ImageSegmenterOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            output_confidence_masks=True,
            output_category_mask=False,
        )
        self._mp = mp
        with _native_stderr_quiet():
            try:
                self._segmenter = vision.ImageSegmenter.create_from_options(options)
            except (RuntimeError, ValueError) as exc:
                raise BadInput(f"{path} is not a MediaPipe segmentation model ({str(exc)[:160]})",
                               "use selfie_segmentation.tflite from models/") from None
            # the first inference creates the XNNPACK delegate (and logs it): do it here, quietly
            warm = np.zeros((long_side * 9 // 16, long_side, 3), np.uint8)
            self._segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=warm))
        self.path = path
        self.long_side = long_side
        self._size_wh = (long_side, long_side * 9 // 16)

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._size_wh

    def segment(self, frame_bgr: np.ndarray) -> np.ndarray:
        if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 \
                or frame_bgr.shape[2] != 3:
            raise BadInput("mediapipe segmenter got something other than an HxWx3 uint8 BGR frame",
                           "convert the frame with vbg_app.sources.to_bgr8 first")
        h, w = frame_bgr.shape[:2]
        scale = self.long_side / max(h, w)
        self._size_wh = (max(2, round(w * scale)), max(2, round(h * scale)))
        rgb = cv2.cvtColor(framecache.shrink(frame_bgr, self._size_wh), cv2.COLOR_BGR2RGB)
        result = self._segmenter.segment(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        # numpy_view() aliases MediaPipe's buffer, which the next call reuses: copy it
        prob = np.array(result.confidence_masks[0].numpy_view(), dtype=np.float32, copy=True)
        return prob.reshape(prob.shape[0], prob.shape[1])

    def close(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
