"""Export ConnectNet to the single-file ONNX model the app runs (``models/connectnet.onnx``).

What :func:`export_onnx` writes:

* one self-contained ``.onnx`` file (weights inside, no ``.onnx.data`` side file), opset 17, batch 1;
* input ``x`` [1,3,H,W] float32 RGB, ``(pixel/255 - 0.5) / 0.5``; output ``softmax`` [1,2,H,W],
  channel 1 = person;
* BatchNorm folded into the convolutions (no BatchNormalization nodes), graph simplified with
  onnxslim so that every resize size and reshape shape is a constant (no Shape nodes);
* the ``vbg.*`` metadata of :class:`~vbg_app.engines.meta.ModelMeta` (see ``models/README.md``).

Command line (``vbg export`` calls :func:`main` with the same flags)::

    python -m vbg_app.train.export \\
        --from-released ../shared/models/reference/pphumanseg_v1_lite_398x224.onnx \\
        --out models/connectnet.onnx [--size 398x224] [--version 0] [--fit stretch]

    python -m vbg_app.train.export --checkpoint runs/connectnet_v1/last.pt \
        --out models/connectnet.onnx --size 398x224 --version 1 --fit letterbox
"""
from __future__ import annotations

import argparse
import copy
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vbg_app.engines.fit import FITS
from vbg_app.engines.meta import ModelMeta
from vbg_app.errors import BadInput, run_command
from vbg_app.train.model import ConnectNet, ConvBN, SoftmaxOutput

OPSET = 17
INPUT_NAME = "x"
OUTPUT_NAME = "softmax"
RELEASED_SOURCE = (
    "PP-HumanSegV1-Lite released weights (PaddleSeg, Apache-2.0), imported from the ONNX release "
    "(portrait_pp_humansegv1_lite_398x224, softmax) and re-exported by vbg; trained by PaddleSeg for "
    "portrait segmentation; PaddleSeg's published config for this model trains on PP-HumanSeg14K "
    "(portrait14k) and PaddleSeg reports 93.60 mIoU on PP-HumanSeg14K at 398x224; the exact data mix of "
    "the released checkpoint is not documented"
)


def default_meta(input_size_wh=(398, 224), version: str = "0", source: str = RELEASED_SOURCE,
                 fit: str = "stretch") -> ModelMeta:
    return ModelMeta(input_size_wh=tuple(input_size_wh), layout="NCHW", color="RGB", mean=(0.5, 0.5, 0.5),
                     std=(0.5, 0.5, 0.5), output="softmax2", fit=fit, name="ConnectNet", version=version,
                     source=source)


@torch.no_grad()
def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` whose ConvBN layers are single convs with bias (BN folded)."""
    fused = copy.deepcopy(model).eval()
    for m in fused.modules():
        if isinstance(m, ConvBN) and isinstance(m.bn, nn.BatchNorm2d):
            m.conv = torch.nn.utils.fusion.fuse_conv_bn_eval(m.conv, m.bn)
            m.bn = nn.Identity()
    return fused


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


@torch.no_grad()
def _widen_conv(conv: nn.Conv2d, in_total: int | None = None, in_index=None, out_total: int | None = None,
                out_index=None) -> nn.Conv2d:
    """A copy of ``conv`` with zero-filled extra input/output channels (real ones at the given indices)."""
    w, b = conv.weight, conv.bias
    cout, cin_g = w.shape[:2]
    depthwise = conv.groups == conv.in_channels == cout and conv.groups > 1
    if depthwise:  # one channel set: input index == output index
        out_total, out_index = in_total, in_index
    elif conv.groups != 1:
        raise ValueError("only plain or depthwise convs can be widened")
    in_total = in_total or conv.in_channels
    out_total = out_total or cout
    in_index = torch.arange(conv.in_channels) if in_index is None else torch.as_tensor(in_index)
    out_index = torch.arange(cout) if out_index is None else torch.as_tensor(out_index)
    new = nn.Conv2d(in_total, out_total, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    groups=in_total if depthwise else 1, bias=True)
    weight = torch.zeros_like(new.weight)
    bias = torch.zeros(out_total)
    if depthwise:
        weight[out_index] = w
    else:
        weight[out_index[:, None], in_index[None, :]] = w
    bias[out_index] = b if b is not None else 0.0
    new.weight.copy_(weight)
    new.bias.copy_(bias)
    return new


@torch.no_grad()
def pad_channels_for_nchwc(fused: ConnectNet, multiple: int = 16, pad_concat: bool = True) -> ConnectNet:
    """Zero-pad the channel counts that onnxruntime's blocked (NCHWc) CPU kernels cannot take.

    onnxruntime runs convs, max-pool, concat and 2x-style upsampling in a blocked layout (8 or 16
    channels per block, by CPU) when the channel counts allow it, and otherwise falls back to plain
    kernels with layout reorders around them (a depthwise conv in particular needs whole blocks).
    ConnectNet has three such counts at 1/2 resolution, where most of its time goes: the stem's 36
    channels (into max-pool), the 18-channel shortcut and the 82-channel decoder concat. This pads
    them to multiples of ``multiple`` with channels whose weights and biases are zero, so they stay
    exactly 0 through ReLU, max-pool and concat and the next convs give them zero weight: the function
    computed is unchanged. Works in place on a BN-folded model (:func:`fuse_for_inference`).
    """
    stem, short = fused.conv_bn0.conv.out_channels, fused.conv_bn1.conv.out_channels
    stem_p, short_p = _round_up(stem, multiple), _round_up(short, multiple)
    stem_idx = torch.arange(stem)
    fused.conv_bn0.conv = _widen_conv(fused.conv_bn0.conv, out_total=stem_p)
    fused.conv_bn1.conv = _widen_conv(fused.conv_bn1.conv, in_total=stem_p, in_index=stem_idx, out_total=short_p)
    unit = fused.block1[0]
    unit.shortcut.depthwise.conv = _widen_conv(unit.shortcut.depthwise.conv, in_total=stem_p, in_index=stem_idx)
    unit.shortcut.pointwise.conv = _widen_conv(unit.shortcut.pointwise.conv, in_total=stem_p, in_index=stem_idx)
    unit.conv.conv = _widen_conv(unit.conv.conv, in_total=stem_p, in_index=stem_idx)
    if pad_concat:
        dec = fused.depthwise_separable1
        up = dec.depthwise.conv.in_channels - short
        cat_idx = torch.cat([torch.arange(short), short_p + torch.arange(up)])
        dec.depthwise.conv = _widen_conv(dec.depthwise.conv, in_total=short_p + up, in_index=cat_idx)
        dec.pointwise.conv = _widen_conv(dec.pointwise.conv, in_total=short_p + up, in_index=cat_idx)
    return fused


def _linear_resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_in, n_out] weights of 1-D linear resizing with half-pixel centres (align_corners=False),
    as PyTorch and onnxruntime compute it: ``src = (dst + 0.5) * n_in / n_out - 0.5`` clamped at 0.
    Built with numpy so that tracing records one constant, not one op per entry."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((n_in, n_out))
    cols = np.arange(n_out)
    np.add.at(m, (i0, cols), 1.0 - frac)
    np.add.at(m, (i1, cols), frac)
    return torch.from_numpy(m.astype(np.float32))


def resize_bilinear_matmul(x: torch.Tensor, size) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)`` as two MatMuls with constant
    resize matrices: width first (on the small input), then height.

    Bilinear resizing is separable, so this is the same function to float rounding. Why: onnxruntime
    runs a Resize whose scale is not a whole number (the decoder's 1/16 -> 1/2 upsampling is 8x in
    height but 199/25 in width at 398x224) with a plain per-pixel kernel that took ~2.0 ms for the
    64-channel map on one core; the two MatMuls take ~0.6 ms.
    """
    h, w = int(x.shape[2]), int(x.shape[3])
    out_h, out_w = int(size[0]), int(size[1])
    if out_w != w:
        x = torch.matmul(x, _linear_resize_matrix(w, out_w))
    if out_h != h:
        x = torch.matmul(_linear_resize_matrix(h, out_h).t(), x)
    return x


@torch.no_grad()
def _conv_slice(conv: nn.Conv2d, cin: slice, bias: bool) -> nn.Conv2d:
    """The part of a plain or depthwise conv that reads input channels ``cin``."""
    depthwise = conv.groups > 1
    w = conv.weight[cin] if depthwise else conv.weight[:, cin]
    if depthwise:
        new = nn.Conv2d(w.shape[0], w.shape[0], conv.kernel_size, stride=conv.stride, padding=conv.padding,
                        groups=w.shape[0], bias=bias)
    else:
        new = nn.Conv2d(w.shape[1], w.shape[0], conv.kernel_size, stride=conv.stride, padding=conv.padding,
                        bias=bias)
    new.weight.data.copy_(w)
    if bias:
        new.bias.data.copy_(conv.bias[cin] if depthwise else conv.bias)
    return new


class DeployConnectNet(nn.Module):
    """ConnectNet rewritten for fast onnxruntime CPU inference; outputs the softmax [N,2,H,W].

    Computes the same function as ``softmax(ConnectNet(x), dim=1)`` (to float rounding; the tests
    check both the module and its ONNX file). Each rewrite can be switched off to measure it:

    * ``pad``: :func:`pad_channels_for_nchwc` (zero channels so onnxruntime's blocked kernels apply);
    * ``split_decoder``: ``pw(dw(concat[a, b])) == pw_a(dw_a(a)) + pw_b(dw_b(b))`` (depthwise convs
      act per channel, a 1x1 conv over a concat is a sum): no 82-channel concat at 1/2 resolution and
      no layout reorder of it; the sum fuses into the second conv;
    * ``matmul_resize``: :func:`resize_bilinear_matmul` for the 1/16 -> 1/2 upsampling;
    * ``sigmoid_head``: ``softmax([a, b]) == sigmoid([a - b, b - a])`` and bilinear resizing is
      linear, so the class difference is taken at 1/2 resolution, upsampled as one channel, and the
      two outputs are ``sigmoid(-d), sigmoid(d)``: no channel-axis softmax at full resolution
      (onnxruntime runs that as transpose + softmax + transpose).
    """

    def __init__(self, model: ConnectNet, pad: bool = True, split_decoder: bool = True,
                 matmul_resize: bool = True, sigmoid_head: bool = True, multiple: int = 16) -> None:
        super().__init__()
        net = fuse_for_inference(model)
        short = net.conv_bn1.conv.out_channels
        if pad:
            pad_channels_for_nchwc(net, multiple, pad_concat=not split_decoder)
        self.net = net
        self.split_decoder, self.matmul_resize = split_decoder, matmul_resize
        self.sigmoid_head = sigmoid_head and net.num_classes == 2
        if split_decoder:
            dw, pw = net.depthwise_separable1.depthwise.conv, net.depthwise_separable1.pointwise.conv
            short_in = net.conv_bn1.conv.out_channels  # 18, or padded
            self.dw_short = _widen_conv(_conv_slice(dw, slice(0, short), True), in_total=short_in,
                                        in_index=torch.arange(short))
            self.pw_short = _widen_conv(_conv_slice(pw, slice(0, short), True), in_total=short_in,
                                        in_index=torch.arange(short))
            self.dw_up = _conv_slice(dw, slice(short, None), True)
            self.pw_up = _conv_slice(pw, slice(short, None), False)
        self.eval()

    def _up(self, x, size):
        if self.matmul_resize:
            return resize_bilinear_matmul(x, size)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        size = x.shape[2:]
        x = net.conv_bn0(x)
        shortcut = net.conv_bn1(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
        x = net.depthwise_separable0(net.block2(net.block1(x)))
        x = self._up(x, shortcut.shape[2:])
        if self.split_decoder:
            x = F.relu(self.pw_up(self.dw_up(x)) + self.pw_short(self.dw_short(shortcut)))
        else:
            x = net.depthwise_separable1(torch.cat([shortcut, x], dim=1))
        low = net.depthwise_separable2(x)
        if not self.sigmoid_head:
            logits = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
            if net.edge is not None:
                logits = torch.cat([logits[:, 0:1], logits[:, 1:2] + net.edge(x, size)], dim=1)
            return torch.softmax(logits, dim=1)
        d = low[:, 1:2] - low[:, 0:1]
        d = F.interpolate(d, size=size, mode="bilinear", align_corners=False)
        if net.edge is not None:  # x: the decoder's features
            d = d + net.edge(x, size)
        return torch.sigmoid(torch.cat([-d, d], dim=1))


def inference_module(model: nn.Module, optimize: bool | dict = True) -> nn.Module:
    """The eval-mode, BN-folded, softmax-output module that :func:`export_onnx` traces.

    ``optimize``: True (all rewrites of :class:`DeployConnectNet`), False (plain ConnectNet + softmax),
    or a dict of :class:`DeployConnectNet` switches.
    """
    if optimize and isinstance(model, ConnectNet):
        return DeployConnectNet(model, **(optimize if isinstance(optimize, dict) else {}))
    return SoftmaxOutput(fuse_for_inference(model)).eval()


def _slim(proto):
    import onnxslim

    return onnxslim.slim(proto)


def export_onnx(model: nn.Module, path: str | Path, input_size_wh=(398, 224), meta: ModelMeta | None = None,
                simplify: bool = True, optimize: bool | dict = True) -> Path:
    """Write ``model`` (a logits ConnectNet) as a softmax-output ONNX file with ``vbg.*`` metadata.

    ``optimize`` applies the exact, speed-only rewrites of :class:`DeployConnectNet` (see
    :func:`inference_module`); ``simplify`` runs onnxslim. A model whose ``meta.fit`` is ``aspect`` gets a
    dynamic height and width (the engine picks the size per frame, vbg_app/engines/fit.py); its
    1/16 -> 1/2 upsampling is then a Resize, not the fixed-size MatMuls of ``matmul_resize``.
    """
    import onnx

    w, h = (int(v) for v in input_size_wh)
    if w < 16 or h < 16:
        raise BadInput(f"input size {w}x{h} is too small", "use at least 16x16, e.g. 398x224")
    meta = meta or default_meta((w, h))
    if tuple(meta.input_size_wh) != (w, h):
        raise BadInput(f"meta input_size_wh {meta.input_size_wh} differs from the export size {(w, h)}",
                       "pass the same size to both")
    dynamic = meta.fit == "aspect"
    if dynamic and optimize:
        optimize = {**(optimize if isinstance(optimize, dict) else {}), "matmul_resize": False}
    net = inference_module(model, optimize)
    axes = {INPUT_NAME: {2: "height", 3: "width"}, OUTPUT_NAME: {2: "height", 3: "width"}} if dynamic else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(net, (torch.zeros(1, 3, h, w),), buf, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
                          dynamic_axes=axes)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = _slim(proto)
    del proto.metadata_props[:]
    for key, value in meta.to_props().items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "vbg"
    proto.doc_string = f"{meta.name} {w}x{h}: softmax [1,2,H,W], channel 1 = person. {meta.source}"
    onnx.checker.check_model(proto, full_check=True)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(proto.SerializeToString())  # weights inline: never an external .data file
    tmp.replace(out)
    return out


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 398x224") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-released", metavar="PATH", type=Path,
                     help="PaddleSeg's released PP-HumanSegV1-Lite ONNX file to take the weights from")
    src.add_argument("--checkpoint", metavar="PATH", type=Path,
                     help="a checkpoint written by vbg train (best.pt / last.pt) to take the weights from")
    parser.add_argument("--out", metavar="PATH", type=Path, default=Path("models/connectnet.onnx"),
                        help="output ONNX file (default: models/connectnet.onnx)")
    parser.add_argument("--size", metavar="WxH", type=_parse_size, default=(398, 224),
                        help="input width x height of the exported model (default: 398x224)")
    parser.add_argument("--version", default="0", help="vbg.version metadata (default: 0 = released weights)")
    parser.add_argument("--fit", choices=FITS, default="stretch",
                        help="vbg.fit metadata: how the app fits frames of another aspect into the input "
                             "(default: stretch, as PaddleSeg deploys the released model)")
    parser.add_argument("--no-optimize", action="store_true",
                        help="export the plain graph, without the exact speed rewrites of DeployConnectNet")


def run(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:
        from vbg_app.train.checkpoint import load_checkpoint
        from vbg_app.train.model import ConnectNet

        if not args.checkpoint.is_file():
            raise BadInput(f"checkpoint {args.checkpoint} does not exist", "pass a .pt file written by vbg train")
        ckpt = load_checkpoint(args.checkpoint)  # tensors and plain data only: never runs code from the file
        try:
            state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt
            model = ConnectNet.for_state_dict(state)
            model.load_state_dict(state)
        except Exception as exc:  # another architecture's weights
            raise BadInput(f"{args.checkpoint} is not a ConnectNet checkpoint ({str(exc)[:120]})",
                           "pass best.pt or last.pt from a vbg train output folder") from None
        model.eval()
        cfg = ckpt.get("config", {}) if isinstance(ckpt, dict) else {}
        source = (f"ConnectNet (PP-HumanSegV1-Lite architecture) trained by vbg train, config {cfg.get('name', '?')}, "
                  f"iteration {ckpt.get('iteration', '?') if isinstance(ckpt, dict) else '?'}, "
                  f"exported from {args.checkpoint.name}")
    else:
        from vbg_app.train.weights import load_released_onnx

        model = load_released_onnx(args.from_released)
        source = RELEASED_SOURCE
    out = export_onnx(model, args.out, input_size_wh=args.size,
                      meta=default_meta(args.size, version=args.version, source=source, fit=args.fit),
                      optimize=not args.no_optimize)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {args.size[0]}x{args.size[1]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("python -m vbg_app.train.export", __doc__.split("\n")[0], add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
