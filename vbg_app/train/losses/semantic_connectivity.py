"""Semantic Connectivity (SC) loss of PP-HumanSeg (Chu et al., WACV-W 2022, arXiv:2112.07146), differentiable.

The paper's connectivity of one class, with label components g_1..g_N and predicted components p_1..p_M
(8-connected, of the argmax), is ``C = Σ_i mean_{k paired with i} IoU(g_i, p_k) / (N + #lone p_k)``, and the
loss is ``1 - C`` (``|P ∪ G| / |I|`` while C is 0 at the start of training). This implementation differs
from PaddleSeg's ``SemanticConnectivityLoss`` in three ways:

* gradients: components come from the detached argmax, but every IoU is a soft IoU on the softmax
  probability (see :func:`~vbg_app.train.losses._functional.semantic_connectivity` for the exact formula),
  so the loss pushes probability into label components and out of stray predicted components. PaddleSeg
  rebuilds the argmax as a new tensor, so its loss passes no gradient to the logits;
* no class-index factor: PaddleSeg multiplies each predicted component by the class index, which zeroes
  every background IoU; here both classes count, like :func:`vbg_app.tools.metrics.sc_metric`;
* the cap keeps the ``max_pred_components`` *largest* predicted components (PaddleSeg keeps the first ones
  in scan order, and only when there are more than twice as many as label components); the rest are
  neither paired nor lone. Without the cap, ``1 - loss`` on a one-hot prediction equals ``sc_metric``.

Cost per batch: ``vbg train --config ... --bench`` (see :func:`bench`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vbg_app.train.losses._functional import IGNORE_INDEX, hard_prediction, semantic_connectivity


class SemanticConnectivityLoss(nn.Module):
    """``forward(logits [N,C,H,W], labels [N,H,W]) -> scalar``: mean of the per-image SC loss over the images
    with a scored class. ``last_connectivity`` holds the batch's mean hard connectivity (the metric's SC
    on the argmax when nothing was capped), for logging."""

    target = "labels"

    def __init__(self, ignore_index: int = IGNORE_INDEX, max_pred_components: int | None = 10,
                 max_label_components: int | None = None, classes: list[int] | None = None) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.max_pred_components = max_pred_components
        self.max_label_components = max_label_components
        self.classes = classes
        self.last_connectivity = float("nan")

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.from_probs(torch.softmax(logits.float(), dim=1), labels, pred=hard_prediction(logits))

    def from_probs(self, probs: torch.Tensor, labels: torch.Tensor, pred: torch.Tensor | None = None) -> torch.Tensor:
        """The same loss on probabilities (e.g. one-hot masks in tests)."""
        loss, info = semantic_connectivity(probs, labels, pred=pred, ignore_index=self.ignore_index,
                                           max_pred_components=self.max_pred_components,
                                           max_label_components=self.max_label_components, classes=self.classes)
        scored = torch.from_numpy(info["scored"]).to(loss.device)
        self.last_connectivity = float(info["connectivity"][info["scored"]].mean()) if scored.any() else float("nan")
        if not scored.any():
            return loss.sum() * 0.0
        return loss[scored].mean()


def bench(batch: int = 16, width: int = 256, height: int = 144, runs: int = 10) -> list[dict]:
    """Time forward + backward on generated logits: "early" = noisy logits (hundreds of components, like
    the first iterations), "late" = smooth logits close to the labels. Returns one dict per case."""
    import time

    import cv2

    rng = np.random.default_rng(0)
    labels = torch.zeros(batch, height, width, dtype=torch.long)
    for b in range(batch):
        m = np.zeros((height, width), np.uint8)
        cx = width // 2 + int(rng.integers(-width // 8, width // 8))
        cv2.ellipse(m, (cx, height), (width // 5, int(height * 0.55)), 0, 180, 360, 1, -1)
        cv2.circle(m, (cx, height // 3), height // 6, 1, -1)
        labels[b] = torch.from_numpy(m.astype(np.int64))
    loss_fn = SemanticConnectivityLoss()
    out = []
    for case, sigma, amp in (("early (noisy logits)", 1.0, 4.0), ("late (smooth logits)", 6.0, 1.0)):
        noise = rng.standard_normal((batch, height, width)).astype(np.float32)
        smooth = np.stack([cv2.GaussianBlur(n, (0, 0), sigma) for n in noise]) * amp * sigma
        base = torch.from_numpy(smooth)[:, None] + (labels[:, None].float() - 0.5) * 6.0
        logits = torch.cat([-base, base], 1).requires_grad_(True)
        loss_fn(logits, labels).backward()  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(runs):
            logits.grad = None
            loss_fn(logits, labels).backward()
        wall, cpu = (time.perf_counter() - t0) / runs, (time.process_time() - c0) / runs
        pred = (logits[:, 1] > logits[:, 0]).detach().numpy().astype(np.uint8)
        comps = [cv2.connectedComponents(p, connectivity=8)[0] - 1 for p in pred]
        out.append({"case": case, "wall_ms": wall * 1000, "cpu_ms": cpu * 1000,
                    "components": int(np.median(comps)), "cap": loss_fn.max_pred_components})
    return out
