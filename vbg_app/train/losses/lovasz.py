"""Lovász-softmax loss (Berman, Rannen Triki, Blaschko: "The Lovász-Softmax loss", CVPR 2018).

A convex surrogate of ``1 - IoU`` that PaddleSeg's portrait recipe mixes with cross-entropy (0.8 CE + 0.2
Lovász). On a one-hot prediction it equals the mean over the scored classes of ``1 - IoU_c``.
"""
from __future__ import annotations

import torch
from torch import nn

from vbg_app.train.losses._functional import IGNORE_INDEX, lovasz_softmax


class LovaszSoftmaxLoss(nn.Module):
    """``forward(logits [N,C,H,W], labels [N,H,W]) -> scalar``.

    ``classes``: ``"present"`` (classes present in the labels, PaddleSeg's default), ``"all"`` or a list of
    class indices; ``per_image``: average per image instead of over the flattened batch (PaddleSeg: False).
    """

    target = "labels"

    def __init__(self, ignore_index: int = IGNORE_INDEX, classes: str | list[int] = "present",
                 per_image: bool = False) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.classes = classes
        self.per_image = bool(per_image)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.float(), dim=1)
        return lovasz_softmax(probs, labels, classes=self.classes, per_image=self.per_image,
                              ignore_index=self.ignore_index)
