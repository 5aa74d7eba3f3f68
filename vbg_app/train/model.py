"""ConnectNet: PaddleSeg's PP-HumanSegV1-Lite portrait network, rebuilt in PyTorch.

Layer for layer the same network as ``PPHumanSegLite`` in PaddleSeg
(``paddleseg/models/pphumanseg_lite.py``, Apache-2.0), so that the released weights import exactly
(see :mod:`vbg_app.train.weights`)::

    x [N,3,H,W], RGB, (pixel/255 - 0.5) / 0.5
    conv_bn0   ConvBNReLU 3->36, 3x3 s2                      1/2   -> x
    conv_bn1   ConvBNReLU 36->18, 1x1 (on x)                 1/2   -> shortcut
    max-pool 3x3 s2 p1                                       1/4
    block1     ShuffleUnit 36->72 s2, 3 x ShuffleUnit 72     1/8
    block2     ShuffleUnit 72->144 s2, 7 x ShuffleUnit 144   1/16
    depthwise_separable0  144->64                            1/16
    bilinear up to the shortcut size (align_corners=False), concat [shortcut, x] -> 82 channels
    depthwise_separable1  82->64                             1/2
    depthwise_separable2  64->2, ends in BN + ReLU (a quirk of the release: logits are >= 0)
    bilinear up to the input size                            -> logits [N,2,H,W], channel 1 = person

The three 1/2-resolution widths (stem 36, shortcut 18, decoder 64) are arguments: most of the inference
time goes there, and :mod:`vbg_app.train.slim` cuts them (a slim model, e.g. 32/16/32).

Details checked against the reference: BN eps 1e-5 (Paddle's default), convs without bias, the
depthwise conv of a separable block has no ReLU, the pointwise conv has one. A shuffle unit with
stride 1 splits its input into halves ``[shortcut, branch]``, runs ``branch`` through
1x1 ConvBNReLU + separable block, concatenates ``[shortcut, branch]`` and shuffles channels with 2
groups (``reshape [N,2,C/2,H,W] -> transpose(1,2) -> reshape``). A stride-2 unit runs the whole input
through both paths (shortcut = separable block with a stride-2 depthwise conv; branch = 1x1
ConvBNReLU + stride-2 separable block). PaddleSeg also builds a shortcut separable block in stride-1
units that it never calls; it is left out here (it has no weights in the release and would only
confuse optimisers and DDP), which is why the trainable parameter count is 131,766.

Examples::

    # build, count parameters, run
    python -c "from vbg_app.train.model import ConnectNet, count_parameters; \\
               print(count_parameters(ConnectNet()))"          # 131766

    # load PaddleSeg's released weights and re-export to the shipped ONNX
    python -m vbg_app.train.export --from-released ../shared/models/reference/pphumanseg_v1_lite_398x224.onnx \\
        --out models/connectnet.onnx

    # in training code
    from vbg_app.train.model import ConnectNet
    net = ConnectNet()                       # random init like PaddleSeg's (conv N(0, 0.001), BN 1/0)
    logits = net(x)                          # [N,2,H,W] for the loss (cross-entropy, SC loss ...)
    probs = net.predict(x)                   # softmax over channels, [:, 1] = person
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vbg_app.train.config import PAPER_WIDTHS

BN_EPS = 1e-5  # PaddlePaddle's BatchNorm default epsilon
BN_MOMENTUM = 0.1  # PyTorch convention; equals Paddle's momentum=0.9


class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d, optionally followed by ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class SeparableConvBNReLU(nn.Module):
    """Depthwise 3x3 ConvBN (no ReLU) + pointwise 1x1 ConvBNReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvBN(in_ch, in_ch, 3, stride=stride, groups=in_ch, relu=False)
        self.pointwise = ConvBN(in_ch, out_ch, 1, relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """ShuffleNet channel shuffle: channel ``g*k + i`` of the input moves to ``i*groups + g``."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """PaddleSeg's ``InvertedResidual`` (a ShuffleNetV2 unit); output has ``out_ch`` channels."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if out_ch % 2 or (stride == 1 and in_ch != out_ch):
            raise ValueError(f"bad channels {in_ch}->{out_ch} for stride {stride}")
        half = out_ch // 2
        self.stride = stride
        branch_in = in_ch if stride == 2 else in_ch // 2
        # Only stride-2 units use a shortcut path (PaddleSeg builds, but never calls, one for stride 1).
        self.shortcut = SeparableConvBNReLU(in_ch, half, stride=2) if stride == 2 else None
        self.conv = ConvBN(branch_in, half, 1, relu=True)
        self.branch = SeparableConvBNReLU(half, half, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            shortcut, branch = x.chunk(2, dim=1)
        else:
            shortcut, branch = self.shortcut(x), x
        out = torch.cat([shortcut, self.branch(self.conv(branch))], dim=1)
        return channel_shuffle(out, 2)


class EdgeHead(nn.Module):
    """A learned sub-pixel edge (not in the paper). The decoder's output grid is 1/2 of the input, so bilinear
    upsampling can only draw the outline to about 2 input pixels. From the decoder's 1/2-resolution features, one
    ``kernel`` x ``kernel`` conv predicts 4 values per position, one per input pixel of its 2x2 block (pixel
    shuffle, ESPCN-style), added to the upsampled class difference. It starts at zero, so adding it to a trained
    model leaves the model's function unchanged until it trains. Cost at 256x144 (speed_check, 1 thread): about
    0.3 ms for ``kernel`` 1, 1.1 ms for 3 (models/README.md, "Session 8")."""

    def __init__(self, in_ch: int, kernel: int = 1) -> None:
        super().__init__()
        if kernel not in (1, 3):
            raise ValueError(f"edge head kernel must be 1 or 3, got {kernel}")
        self.conv = nn.Conv2d(in_ch, 4, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    @property
    def kernel(self) -> int:
        return self.conv.kernel_size[0]

    def forward(self, features: torch.Tensor, size) -> torch.Tensor:
        """Decoder features [N,C,h,w] -> a correction [N,1,H,W] of the class difference at the input size (H, W)
        (2h x 2w cropped: a 1/2-resolution grid rounds odd sizes up)."""
        r = F.pixel_shuffle(self.conv(features), 2)
        return r[:, :, :size[0], :size[1]]


class ConnectNet(nn.Module):
    """PP-HumanSegV1-Lite. ``forward`` returns logits [N,2,H,W]; ``predict`` returns their softmax."""

    def __init__(self, num_classes: int = 2, align_corners: bool = False, stem: int = PAPER_WIDTHS["stem"],
                 shortcut: int = PAPER_WIDTHS["shortcut"], decoder: int = PAPER_WIDTHS["decoder"],
                 edge_head: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.align_corners = align_corners
        self.conv_bn0 = ConvBN(3, stem, 3, stride=2)
        self.conv_bn1 = ConvBN(stem, shortcut, 1)
        self.block1 = nn.Sequential(ShuffleUnit(stem, 72, 2), *[ShuffleUnit(72, 72, 1) for _ in range(3)])
        self.block2 = nn.Sequential(ShuffleUnit(72, 144, 2), *[ShuffleUnit(144, 144, 1) for _ in range(7)])
        self.depthwise_separable0 = SeparableConvBNReLU(144, 64)
        self.depthwise_separable1 = SeparableConvBNReLU(shortcut + 64, decoder)
        self.depthwise_separable2 = SeparableConvBNReLU(decoder, num_classes)
        self.reset_parameters()
        self.edge = None
        if edge_head:
            self.add_edge_head(edge_head)

    def add_edge_head(self, kernel: int = 1) -> None:
        """Attach an :class:`EdgeHead` (zero-initialised: the function does not change); two classes only."""
        if self.num_classes != 2:
            raise ValueError("the edge head refines a person/background difference: num_classes must be 2")
        self.edge = EdgeHead(self.depthwise_separable1.pointwise.conv.out_channels, kernel)

    @property
    def edge_kernel(self) -> int:
        """Kernel size of the edge head's conv, 0 without one."""
        return 0 if self.edge is None else self.edge.kernel

    @property
    def widths(self) -> dict:
        """The channel counts at 1/2 resolution: ``{"stem": 36, "shortcut": 18, "decoder": 64}`` for the paper's
        network; a slim model (:mod:`vbg_app.train.slim`) has fewer."""
        return {"stem": self.conv_bn0.conv.out_channels, "shortcut": self.conv_bn1.conv.out_channels,
                "decoder": self.depthwise_separable1.pointwise.conv.out_channels}

    @classmethod
    def for_state_dict(cls, state: dict) -> "ConnectNet":
        """An untrained ConnectNet with the widths (and classes) of ``state`` (a ``state_dict``), to load it into."""
        try:
            return cls(num_classes=int(state["depthwise_separable2.pointwise.conv.weight"].shape[0]),
                       stem=int(state["conv_bn0.conv.weight"].shape[0]),
                       shortcut=int(state["conv_bn1.conv.weight"].shape[0]),
                       decoder=int(state["depthwise_separable1.pointwise.conv.weight"].shape[0]),
                       edge_head=int(state["edge.conv.weight"].shape[-1]) if "edge.conv.weight" in state else 0)
        except (KeyError, AttributeError, IndexError, TypeError):
            return cls()  # not a ConnectNet state: load_state_dict will say what is missing

    def reset_parameters(self) -> None:
        """PaddleSeg's init: every conv weight ~ N(0, 0.001), BN weight 1 and bias 0 (called before any edge head is
        attached, which keeps its own zero init)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _up(self, x: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, low = self._decode(x)
        logits = self._up(low, x.shape[2:])
        if self.edge is None:
            return logits
        first = logits[:, 0:1]
        return torch.cat([first, logits[:, 1:2] + self.edge(features, x.shape[2:])], dim=1)

    def forward_lowres(self, x: torch.Tensor) -> torch.Tensor:
        """Logits at 1/2 input resolution, before the final bilinear upsampling (and before any edge head)."""
        return self._decode(x)[1]

    def _decode(self, x: torch.Tensor):
        """(decoder features, logits), both at 1/2 input resolution."""
        x = self.conv_bn0(x)  # 1/2
        shortcut = self.conv_bn1(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)  # 1/4
        x = self.block1(x)  # 1/8
        x = self.block2(x)  # 1/16
        x = self.depthwise_separable0(x)
        x = self._up(x, shortcut.shape[2:])
        x = self.depthwise_separable1(torch.cat([shortcut, x], dim=1))
        return x, self.depthwise_separable2(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax over classes, [N,2,H,W]; channel 1 is the person probability (no grad)."""
        return torch.softmax(self.forward(x), dim=1)


class SoftmaxOutput(nn.Module):
    """Wraps a logits model so that its forward returns the softmax over dim 1 (what the ONNX file outputs)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_bn_layers(model: nn.Module) -> list[ConvBN]:
    """The model's ConvBN layers in execution order (found by running a small input)."""
    order: list[ConvBN] = []
    hooks = [m.register_forward_pre_hook(lambda mod, _inp: order.append(mod))
             for m in model.modules() if isinstance(m, ConvBN)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return order
