"""Pixel-wise cross-entropy with an ignore index (PaddleSeg's ``CrossEntropyLoss``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vbg_app.train.losses._functional import IGNORE_INDEX


class CrossEntropyLoss(nn.Module):
    """Mean cross-entropy over the non-ignored pixels of the batch.

    ``class_weights``: optional per-class weights (e.g. ``[1.0, 1.5]``); ``label_smoothing`` as in PyTorch.
    ``forward(logits [N,C,H,W], labels [N,H,W] int64) -> scalar``; 0 (with a graph) when every pixel is ignored.
    """

    target = "labels"

    def __init__(self, ignore_index: int = IGNORE_INDEX, class_weights: list[float] | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("class_weights", None if class_weights is None
                             else torch.tensor(class_weights, dtype=torch.float32), persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not (labels != self.ignore_index).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), labels, weight=self.class_weights, ignore_index=self.ignore_index,
                               label_smoothing=self.label_smoothing)
