"""Training losses: one file per loss, a name → class registry and a factory.

=========================  ==========================================  ==========
name                       class                                       target
=========================  ==========================================  ==========
``cross_entropy``          :class:`CrossEntropyLoss`                   labels
``lovasz_softmax``         :class:`LovaszSoftmaxLoss`                  labels
``semantic_connectivity``  :class:`SemanticConnectivityLoss` (``sc``)  labels
``distillation``           :class:`DistillationLoss`                   soft
=========================  ==========================================  ==========

``labels`` are int64 [N,H,W] class indices with 255 = ignore; ``soft`` is a teacher's person probability
[N,H,W] (NaN where a sample has no teacher target). Example (the YAML ``loss:`` section has the same shape)::

    from vbg_app.train.losses import build_loss
    loss_fn = build_loss([{"type": "cross_entropy", "weight": 0.8},
                          {"type": "lovasz_softmax", "weight": 0.2},
                          {"type": "semantic_connectivity", "weight": 0.5, "max_pred_components": 10,
                           "start_iter": 0}])
    total, parts = loss_fn(logits, labels)          # parts: {"cross_entropy": 0.41, ...} (floats)

Each term takes ``type``, ``weight`` (default 1) and ``start_iter`` (the term is skipped before that training
iteration, see :meth:`MixedLoss.set_iteration`); every other key goes to the loss's constructor.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from vbg_app.errors import BadInput
from vbg_app.train.losses.cross_entropy import CrossEntropyLoss
from vbg_app.train.losses.distillation import DistillationLoss
from vbg_app.train.losses.lovasz import LovaszSoftmaxLoss
from vbg_app.train.losses.semantic_connectivity import SemanticConnectivityLoss

LOSSES: dict[str, type[nn.Module]] = {
    "cross_entropy": CrossEntropyLoss,
    "lovasz_softmax": LovaszSoftmaxLoss,
    "semantic_connectivity": SemanticConnectivityLoss,
    "distillation": DistillationLoss,
}
ALIASES = {"ce": "cross_entropy", "lovasz": "lovasz_softmax", "sc": "semantic_connectivity", "kd": "distillation",
           "CrossEntropyLoss": "cross_entropy", "LovaszSoftmaxLoss": "lovasz_softmax",
           "SemanticConnectivityLoss": "semantic_connectivity", "DistillationLoss": "distillation"}

__all__ = ["LOSSES", "MixedLoss", "build_loss", "get_loss_class", "CrossEntropyLoss", "LovaszSoftmaxLoss",
           "SemanticConnectivityLoss", "DistillationLoss"]


def get_loss_class(name: str) -> type[nn.Module]:
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        raise BadInput(f"unknown loss {name!r}", f"use one of: {', '.join(sorted(LOSSES))}")
    return LOSSES[key]


class MixedLoss(nn.Module):
    """Weighted sum of loss terms; ``forward(logits, labels, soft=None) -> (total, {name: float})``.

    Terms whose target is ``soft`` (distillation) are skipped when ``soft`` is None or all NaN. The parts
    dict holds each term's unweighted value (for logging); terms not run this iteration are absent.
    """

    def __init__(self, terms: list[tuple[str, nn.Module, float, int]]) -> None:
        super().__init__()
        names = [t[0] for t in terms]
        if len(set(names)) != len(names):
            raise BadInput(f"loss terms are repeated: {names}", "list each loss type once")
        self.names = names
        self.losses = nn.ModuleList([t[1] for t in terms])
        self.weights = [float(t[2]) for t in terms]
        self.start_iters = [int(t[3]) for t in terms]
        self.iteration = 0

    def set_iteration(self, iteration: int) -> None:
        self.iteration = int(iteration)

    def term(self, name: str) -> nn.Module | None:
        return self.losses[self.names.index(name)] if name in self.names else None

    @property
    def needs_soft(self) -> bool:
        return any(getattr(m, "target", "labels") == "soft" for m in self.losses)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None = None):
        total = logits.sum() * 0.0
        parts: dict[str, float] = {}
        for name, fn, weight, start in zip(self.names, self.losses, self.weights, self.start_iters):
            if weight == 0 or self.iteration < start:
                continue
            if getattr(fn, "target", "labels") == "soft":
                if soft is None or bool(torch.isnan(soft).all()):
                    continue
                value = fn(logits, soft)
            else:
                value = fn(logits, labels)
            parts[name] = float(value.detach())
            total = total + weight * value
        return total, parts


def _as_terms(config: Any) -> list[dict]:
    if isinstance(config, str):
        return [{"type": config}]
    if isinstance(config, dict) and "terms" in config:
        config = config["terms"]
    if isinstance(config, dict):
        return [config]
    if isinstance(config, (list, tuple)):
        return [{"type": c} if isinstance(c, str) else dict(c) for c in config]
    raise BadInput(f"loss config {config!r} is not understood",
                   "give a list of {type: NAME, weight: W, ...} entries")


def build_loss(config: Any) -> MixedLoss:
    """A :class:`MixedLoss` from a loss name, one ``{type: ...}`` dict, a list of them, or ``{terms: [...]}``."""
    terms = []
    for entry in _as_terms(config):
        entry = dict(entry)
        if "type" not in entry:
            raise BadInput(f"loss entry {entry} has no 'type'", f"use one of: {', '.join(sorted(LOSSES))}")
        name = entry.pop("type")
        name = ALIASES.get(name, name)
        cls = get_loss_class(name)
        weight = entry.pop("weight", 1.0)
        start = entry.pop("start_iter", 0)
        try:
            module = cls(**entry)
        except TypeError as exc:
            raise BadInput(f"loss {name}: {exc}", f"check the options of {cls.__name__}") from None
        terms.append((name, module, weight, start))
    if not terms:
        raise BadInput("the loss config has no terms", "add at least {type: cross_entropy}")
    return MixedLoss(terms)
