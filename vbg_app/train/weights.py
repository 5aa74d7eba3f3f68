"""Import PaddleSeg's released PP-HumanSegV1-Lite weights from its ONNX export into :class:`ConnectNet`.

The match is made by graph structure, not by tensor names (the release's names are Paddle's
``conv2d_68.tmp_0``-style counters and numeric initializer ids):

1. walk the ONNX graph depth-first from its output back to the input, visiting each node's inputs in
   operand order, and list the Conv nodes in post-order. Because ``Concat`` operands are visited in
   order (``[shortcut, branch]``, like the PyTorch code), this order is exactly the order in which
   PyTorch executes the ConvBN layers (:func:`~vbg_app.train.model.conv_bn_layers`);
2. pair them one to one, checking every kernel shape, group count, stride and padding, and that a
   ReLU follows the conv (or its BatchNormalization) exactly where the PyTorch layer has one.

BatchNormalization is handled as found:

* ``Conv -> BatchNormalization``: conv weight and BN scale/bias/mean/var are copied (a conv bias,
  if any, is moved into the running mean);
* BN folded into the conv (``Conv`` with a bias and no BN node; this is what the shared release
  file has): the conv gets the folded weight, and its BN becomes an identity with a bias: weight 1,
  bias = folded conv bias, running_mean 0, running_var ``1 - eps`` so that ``sqrt(var + eps)`` is 1.
  Eval-mode outputs then equal the release's to float rounding. For fine-tuning, note that such a BN
  in train mode normalises with batch statistics, which the folded weights were not made for: call
  :func:`recalibrate_bn` on a few batches of real images first (it re-expresses each layer with
  data-derived BN statistics, leaving eval-mode outputs unchanged), or keep BN layers in eval mode.

Example::

    from vbg_app.train.weights import load_released_onnx
    net = load_released_onnx("../shared/models/reference/pphumanseg_v1_lite_398x224.onnx")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vbg_app.errors import BadInput
from vbg_app.train.model import ConnectNet, ConvBN, conv_bn_layers


@dataclass
class _OnnxConv:
    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    group: int
    strides: tuple
    pads: tuple
    bn: dict | None  # scale, bias, mean, var, eps
    relu: bool


def _attr(node, name, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _onnx_convs(model) -> list[_OnnxConv]:
    """Conv layers of an ONNX graph in PyTorch execution order (post-order DFS from the output)."""
    from onnx import numpy_helper

    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:  # nodes are topologically sorted: one pass resolves Constant -> Identity chains
        if n.op_type == "Constant" and n.output and _attr(n, "value", None) is not None:
            consts[n.output[0]] = numpy_helper.to_array(_attr(n, "value", None))
        elif n.op_type == "Identity" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]]
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def only_consumer(tensor: str, op_type: str):
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op_type else None

    order, seen = [], set()
    for out in g.output:
        stack = [(producer[out.name], False)] if out.name in producer else []
        while stack:  # iterative post-order DFS, inputs visited in operand order
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for inp in reversed(node.input):
                p = producer.get(inp)
                if p is not None and id(p) not in seen:
                    stack.append((p, False))

    convs = []
    for node in order:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in consts:
            raise BadInput(f"conv {node.name or node.output[0]} has a non-constant weight", "use a plain inference export")
        w = consts[node.input[1]].astype(np.float32)
        b = consts[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else None
        tail = node.output[0]
        bn = None
        bn_node = only_consumer(tail, "BatchNormalization")
        if bn_node is not None:
            scale, beta, mean, var = (consts[t].astype(np.float32) for t in bn_node.input[1:5])
            bn = dict(scale=scale, bias=beta, mean=mean, var=var, eps=float(_attr(bn_node, "epsilon", 1e-5)))
            tail = bn_node.output[0]
        relu = only_consumer(tail, "Relu") is not None
        pads = tuple(_attr(node, "pads", [0] * 4))
        if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise BadInput(f"conv {node.output[0]} uses auto_pad", "export with explicit pads")
        convs.append(_OnnxConv(node.output[0], w, b, int(_attr(node, "group", 1)),
                               tuple(_attr(node, "strides", [1, 1])), pads, bn, relu))
    return convs


def _check_pair(i: int, src: _OnnxConv, dst: ConvBN, where: str) -> None:
    c = dst.conv
    want = dict(weight=tuple(c.weight.shape), group=c.groups, strides=tuple(c.stride),
                pads=tuple(c.padding) * 2, relu=dst.relu)
    got = dict(weight=src.weight.shape, group=src.group, strides=src.strides, pads=src.pads, relu=src.relu)
    if want != got:
        raise BadInput(f"{where}: conv #{i} ({src.name}) is {got}, ConnectNet expects {want}",
                       "use PaddleSeg's PP-HumanSegV1-Lite (ConnectNet) ONNX release")


@torch.no_grad()
def import_onnx_weights(model: ConnectNet, onnx_path: str | Path) -> dict:
    """Copy the weights of a ConnectNet-shaped ONNX file into ``model``; returns a short report."""
    import onnx

    path = Path(onnx_path)
    if not path.is_file():
        raise BadInput(f"{path} does not exist", "pass the released ONNX file, e.g. "
                       "../shared/models/reference/pphumanseg_v1_lite_398x224.onnx")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        raise BadInput(f"{path} is not a readable ONNX file ({e})", "pass the released ONNX file") from None
    src = _onnx_convs(proto)
    dst = conv_bn_layers(model)
    if len(src) != len(dst):
        raise BadInput(f"{path} has {len(src)} conv layers, ConnectNet has {len(dst)}",
                       "use PaddleSeg's PP-HumanSegV1-Lite (ConnectNet) ONNX release")
    for i, (s, d) in enumerate(zip(src, dst)):
        _check_pair(i, s, d, str(path))
    folded = 0
    for s, d in zip(src, dst):
        d.conv.weight.copy_(torch.from_numpy(s.weight))
        bn = d.bn
        bias = torch.from_numpy(s.bias) if s.bias is not None else torch.zeros(bn.num_features)
        if s.bn is not None:
            bn.weight.copy_(torch.from_numpy(s.bn["scale"]))
            bn.bias.copy_(torch.from_numpy(s.bn["bias"]))
            bn.running_mean.copy_(torch.from_numpy(s.bn["mean"]) - bias)
            bn.running_var.copy_(torch.from_numpy(s.bn["var"]))
            bn.eps = s.bn["eps"]
        else:  # BN folded into the conv: identity BN carrying the folded bias
            folded += 1
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        bn.num_batches_tracked.zero_()
    return {"convs": len(src), "bn_folded": folded, "bn_separate": len(src) - folded}


def load_released_onnx(onnx_path: str | Path) -> ConnectNet:
    """A :class:`ConnectNet` in eval mode carrying the weights of the released ONNX file."""
    model = ConnectNet()
    import_onnx_weights(model, onnx_path)
    return model.eval()


@torch.no_grad()
def recalibrate_bn(model: ConnectNet, batches, eps: float | None = None) -> None:
    """Give every BN layer data-derived statistics without changing eval-mode outputs.

    For each ConvBN layer, measures the per-channel mean and variance of its conv output over
    ``batches`` (an iterable of normalised [N,3,H,W] tensors), then rewrites the BN so that
    ``running_mean/var`` are those statistics and ``weight/bias`` compensate exactly:
    ``weight' = weight * sqrt(var' + eps) / sqrt(var + eps)``,
    ``bias' = bias + weight * (mean' - mean) / sqrt(var + eps)``. In train mode BN then normalises with
    batch statistics close to its running ones, so fine-tuning starts from the imported behaviour.
    """
    layers = conv_bn_layers(model)
    sums = {id(m): [0.0, 0.0, 0] for m in layers}

    def hook(mod, _inp, out):
        s = sums[id(mod)]
        y = out.double()
        s[0] = s[0] + y.sum(dim=(0, 2, 3))
        s[1] = s[1] + (y * y).sum(dim=(0, 2, 3))
        s[2] += y.numel() // y.shape[1]

    handles = [m.conv.register_forward_hook(lambda mod, i, o, m=m: hook(m, i, o)) for m in layers]
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
    for m in layers:
        total, total_sq, n = sums[id(m)]
        if n == 0:
            continue
        bn = m.bn
        e = bn.eps if eps is None else eps
        new_mean = (total / n).float()
        new_var = (total_sq / n - (total / n) ** 2).clamp_min(0).float()
        old_std = torch.sqrt(bn.running_var + bn.eps)
        new_std = torch.sqrt(new_var + e)
        bn.bias.add_(bn.weight * (new_mean - bn.running_mean) / old_std)
        bn.weight.mul_(new_std / old_std)
        bn.running_mean.copy_(new_mean)
        bn.running_var.copy_(new_var)
        bn.eps = e
    model.train(was_training)
