"""Slim ConnectNet: fewer channels at 1/2 resolution, cut from a trained model, to be fine-tuned.

Why: at 256x144 the paper's network spends most of its CPU time at 1/2 resolution (the stem, the 18-channel
shortcut and the 64-channel decoder), and onnxruntime's blocked kernels pad 36 and 18 channels up to 48 and
32 on AVX-512 CPUs. Measured with ``python -m vbg_app.train.speed_check`` (1 thread, interleaved,
``mediapipe_selfie_256.onnx`` beside it at 3.16 ms): widths 36/18/64 (the paper) 3.84 ms, 32/16/64 3.34 ms,
32/16/32 2.73 ms (models/README.md has the run).

:func:`slim_model` keeps, in each of the three layers, the channels that carry the most signal into the
next layer on real inputs (mean ReLU output times the norm of the weights that read the channel) and copies
their weights, so the slim model starts close to the wide one; fine-tuning (``vbg train`` with
``model.widths``) recovers the rest::

    from vbg_app.train.slim import slim_model
    slim = slim_model(model, batches, stem=32, shortcut=16, decoder=32)   # batches: normalised [N,3,H,W]
"""
from __future__ import annotations

import torch

from vbg_app.train.model import ConnectNet, ConvBN


@torch.no_grad()
def _mean_activation(model: ConnectNet, layers: list[ConvBN], batches) -> list[torch.Tensor]:
    """Mean absolute output per channel of each layer in ``layers`` (after its ReLU) over ``batches``."""
    sums = [None] * len(layers)

    def hook_for(i):
        def hook(_mod, _inp, out):
            s = out.abs().double().mean(dim=(0, 2, 3))
            sums[i] = s if sums[i] is None else sums[i] + s
        return hook

    hooks = [layer.register_forward_hook(hook_for(i)) for i, layer in enumerate(layers)]
    was_training = model.training
    count = 0
    try:
        model.eval()
        for x in batches:
            model(x)
            count += 1
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not count:
        raise ValueError("slim_model needs at least one calibration batch")
    return [s.float() / count for s in sums]


def _column_norm(conv: torch.nn.Conv2d, channels: slice | None = None) -> torch.Tensor:
    """Per input channel, the L2 norm of the weights that read it (a plain conv's columns, a depthwise conv's
    kernel)."""
    w = conv.weight
    if conv.groups > 1:
        norm = w.flatten(1).norm(dim=1)
    else:
        norm = w.transpose(0, 1).flatten(1).norm(dim=1)
    return norm if channels is None else norm[channels]


def channel_scores(model: ConnectNet, batches) -> dict[str, torch.Tensor]:
    """How much each 1/2-resolution channel feeds forward: ``{"stem": [36], "shortcut": [18], "decoder": [64]}``."""
    act = _mean_activation(model, [model.conv_bn0, model.conv_bn1, model.depthwise_separable1.pointwise], batches)
    short = model.conv_bn1.conv.out_channels
    unit = model.block1[0]
    stem_reads = (_column_norm(model.conv_bn1.conv) ** 2 + _column_norm(unit.conv.conv) ** 2
                  + (_column_norm(unit.shortcut.depthwise.conv) * _column_norm(unit.shortcut.pointwise.conv)) ** 2)
    dec1 = model.depthwise_separable1
    short_reads = (_column_norm(dec1.depthwise.conv, slice(0, short))
                   * _column_norm(dec1.pointwise.conv, slice(0, short)))
    dec2 = model.depthwise_separable2
    dec_reads = _column_norm(dec2.depthwise.conv) * _column_norm(dec2.pointwise.conv)
    return {"stem": act[0] * stem_reads.sqrt(), "shortcut": act[1] * short_reads, "decoder": act[2] * dec_reads}


def _top(scores: torch.Tensor, k: int, name: str) -> torch.Tensor:
    if not 0 < k <= scores.numel():
        raise ValueError(f"{name} width {k} must be between 1 and {scores.numel()}")
    return scores.topk(k).indices.sort().values


@torch.no_grad()
def _copy_convbn(dst: ConvBN, src: ConvBN, out_idx=None, in_idx=None) -> None:
    w = src.conv.weight
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None and src.conv.groups == 1:
        w = w[:, in_idx]
    dst.conv.weight.copy_(w)
    for name in ("weight", "bias", "running_mean", "running_var"):
        t = getattr(src.bn, name)
        getattr(dst.bn, name).copy_(t if out_idx is None else t[out_idx])
    dst.bn.num_batches_tracked.copy_(src.bn.num_batches_tracked)


@torch.no_grad()
def slim_model(model: ConnectNet, batches, stem: int = 32, shortcut: int = 16, decoder: int = 32) -> ConnectNet:
    """A new ConnectNet with ``stem``/``shortcut``/``decoder`` channels at 1/2 resolution, holding ``model``'s
    weights for the channels :func:`channel_scores` ranks highest (``model`` is not changed). Every other layer
    (and the edge head, if any) is copied as it is. Widths equal to ``model``'s keep every channel (the result computes the same function)."""
    scores = channel_scores(model, batches)
    wide = model.widths
    keep = {"stem": _top(scores["stem"], stem, "stem"), "shortcut": _top(scores["shortcut"], shortcut, "shortcut"),
            "decoder": _top(scores["decoder"], decoder, "decoder")}
    slim = ConnectNet(num_classes=model.num_classes, align_corners=model.align_corners, stem=stem,
                      shortcut=shortcut, decoder=decoder, edge_head=model.edge_kernel)
    slim.load_state_dict({k: v for k, v in model.state_dict().items() if v.shape == slim.state_dict()[k].shape},
                         strict=False)  # every layer outside the three widths
    s, sc, d = keep["stem"], keep["shortcut"], keep["decoder"]
    _copy_convbn(slim.conv_bn0, model.conv_bn0, out_idx=s)
    _copy_convbn(slim.conv_bn1, model.conv_bn1, out_idx=sc, in_idx=s)
    u_slim, u = slim.block1[0], model.block1[0]
    _copy_convbn(u_slim.shortcut.depthwise, u.shortcut.depthwise, out_idx=s)
    _copy_convbn(u_slim.shortcut.pointwise, u.shortcut.pointwise, in_idx=s)
    _copy_convbn(u_slim.conv, u.conv, in_idx=s)
    cat = torch.cat([sc, wide["shortcut"] + torch.arange(model.depthwise_separable1.depthwise.conv.in_channels
                                                         - wide["shortcut"])])
    _copy_convbn(slim.depthwise_separable1.depthwise, model.depthwise_separable1.depthwise, out_idx=cat)
    _copy_convbn(slim.depthwise_separable1.pointwise, model.depthwise_separable1.pointwise, out_idx=d, in_idx=cat)
    _copy_convbn(slim.depthwise_separable2.depthwise, model.depthwise_separable2.depthwise, out_idx=d)
    _copy_convbn(slim.depthwise_separable2.pointwise, model.depthwise_separable2.pointwise, in_idx=d)
    if model.edge is not None:  # it reads the decoder's channels too
        slim.edge.conv.weight.copy_(model.edge.conv.weight[:, d])
        slim.edge.conv.bias.copy_(model.edge.conv.bias)
    return slim.train(model.training)
