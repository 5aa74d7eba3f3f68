"""Distillation from a teacher segmentation model (ONNX, run with onnxruntime on the CPU).

:class:`DistillationLoss` matches the student's person probability to a teacher's soft mask (KL or BCE).
:class:`OnnxTeacher` runs a teacher on BGR uint8 images; it understands the two shared reference models:

* PaddleSeg's released ConnectNet (``pphumanseg_v1_lite_398x224.onnx``): input ``x`` [1,3,224,398] RGB,
  ``(x/255 - 0.5) / 0.5``, output [1,2,H,W] softmax, channel 1 = person;
* MediaPipe selfie (``mediapipe_selfie_256.onnx``): input [1,256,256,3] RGB ``/255``, output [1,256,256,1]
  person probability.

The layout is read from the input shape (channels first or last), the input size from the model (a dynamic
size falls back to ``size_wh``). The data pipeline calls the teacher on unlabeled frames after augmentation
(see :mod:`vbg_app.train.data.datasets`), one single-threaded session per loader worker.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vbg_app.errors import BadInput
from vbg_app.train.losses._functional import distillation


class DistillationLoss(nn.Module):
    """``forward(logits [N,2,H,W], soft [N,H,W]) -> scalar``; ``soft`` is NaN for samples without a teacher.

    ``mode``: ``kl`` (T²·KL(teacher || student) at temperature ``temperature``) or ``bce``.
    """

    target = "soft"

    def __init__(self, mode: str = "kl", temperature: float = 1.0) -> None:
        super().__init__()
        if mode not in ("kl", "bce"):
            raise BadInput(f"distillation mode {mode!r} is unknown", "use mode: kl or mode: bce")
        self.mode = mode
        self.temperature = float(temperature)

    def forward(self, logits: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        return distillation(logits, soft, mode=self.mode, temperature=self.temperature)


class OnnxTeacher:
    """A teacher model: ``predict(image_bgr uint8 HxWx3) -> person probability float32 HxW`` (same size)."""

    def __init__(self, path: str | os.PathLike, threads: int = 1, size_wh: tuple[int, int] = (398, 224)) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise BadInput(f"teacher model {self.path} does not exist",
                           "set distill.teacher to an ONNX file, e.g. "
                           "../shared/models/reference/pphumanseg_v1_lite_398x224.onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        if len(shape) != 4:
            raise BadInput(f"teacher {self.path.name} has a rank-{len(shape)} input",
                           "use a [1,3,H,W] or [1,H,W,3] model")
        self.channels_last = shape[3] == 3
        hw = shape[1:3] if self.channels_last else shape[2:4]
        if all(isinstance(v, int) and v > 0 for v in hw):
            self.size_wh = (int(hw[1]), int(hw[0]))
        else:
            self.size_wh = tuple(size_wh)

    def predict(self, image_bgr: np.ndarray) -> np.ndarray:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(cv2.resize(image_bgr, self.size_wh, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        x = rgb.astype(np.float32) / 255.0
        if self.channels_last:
            x = x[None]
        else:
            x = ((x - 0.5) / 0.5).transpose(2, 0, 1)[None]
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        out = np.asarray(out, np.float32)
        if out.ndim == 4 and out.shape[-1] == 1:  # NHWC single channel (MediaPipe)
            prob = out[0, :, :, 0]
        elif out.ndim == 4 and out.shape[1] == 2:  # softmax [1,2,H,W]
            prob = out[0, 1]
        elif out.ndim == 4 and out.shape[1] == 1:
            prob = out[0, 0]
        else:
            raise BadInput(f"teacher {self.path.name} output shape {out.shape} is not understood",
                           "use a [1,2,H,W] softmax or [1,H,W,1] probability model")
        return np.clip(cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
