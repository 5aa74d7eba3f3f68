"""ConnectNet (PP-HumanSegV1-Lite) in PyTorch: architecture facts that the released weights rely on."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vbg_app.train.model import (ConnectNet, ConvBN, ShuffleUnit, SoftmaxOutput, channel_shuffle,  # noqa: E402
                                 conv_bn_layers, count_parameters)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    m = ConnectNet()
    for mod in m.modules():  # PaddleSeg's N(0, 0.001) init gives near-constant outputs; use a livelier one
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight)
    return m.eval()


def test_trainable_parameter_count_matches_paddleseg():
    m = ConnectNet()
    assert count_parameters(m) == 131_766
    bn_channels = sum(layer.bn.num_features for layer in conv_bn_layers(m))
    # the released ONNX holds 128,916 folded weights: conv weights + one bias per BN channel
    assert count_parameters(m) - bn_channels == 128_916


def test_layer_inventory_and_execution_order():
    m = ConnectNet()
    layers = conv_bn_layers(m)
    assert len(layers) == 48
    assert layers[0] is m.conv_bn0 and layers[1] is m.conv_bn1
    assert layers[-1] is m.depthwise_separable2.pointwise
    assert [tuple(layer.conv.weight.shape) for layer in layers[:2]] == [(36, 3, 3, 3), (18, 36, 1, 1)]
    # stride-2 unit: shortcut separable first, then the branch (1x1, then separable), like Concat([shortcut, branch])
    u = m.block1[0]
    assert layers[2:7] == [u.shortcut.depthwise, u.shortcut.pointwise, u.conv, u.branch.depthwise, u.branch.pointwise]
    # ReLU everywhere but on depthwise convs; the last layer keeps its BN + ReLU (released-weights quirk)
    assert all(layer.relu == (layer.conv.groups == 1) for layer in layers)
    assert m.depthwise_separable2.pointwise.relu
    assert all(layer.bn.eps == 1e-5 for layer in layers)


@pytest.mark.parametrize("hw", [(224, 398), (144, 256), (61, 97)])
def test_output_shapes_and_softmax(net, hw):
    x = torch.randn(2, 3, *hw)
    logits = net(x)
    assert logits.shape == (2, 2, *hw)
    assert (logits >= 0).all()  # final ReLU
    probs = net.predict(x)
    assert torch.allclose(probs.sum(1), torch.ones(2, *hw), atol=1e-6)
    assert torch.allclose(SoftmaxOutput(net)(x), probs)
    assert net.forward_lowres(x).shape[2:] == ((hw[0] + 1) // 2, (hw[1] + 1) // 2)


def test_channel_shuffle_interleaves_halves():
    x = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]


def test_stride1_unit_passes_first_half_through_to_even_channels():
    torch.manual_seed(1)
    unit = ShuffleUnit(72, 72, 1).eval()
    x = torch.randn(1, 72, 8, 10)
    y = unit(x)
    assert y.shape == x.shape
    assert torch.equal(y[:, 0::2], x[:, :36])  # shortcut half, untouched
    assert not torch.allclose(y[:, 1::2], x[:, 36:])


def test_stride2_unit_halves_resolution():
    unit = ShuffleUnit(36, 72, 2).eval()
    assert unit(torch.randn(1, 36, 56, 100)).shape == (1, 72, 28, 50)
    with pytest.raises(ValueError):
        ShuffleUnit(72, 144, 1)


def test_every_parameter_gets_a_gradient():
    """No dead modules (PaddleSeg builds an unused shortcut in stride-1 units): all weights train, DDP-safe."""
    torch.manual_seed(2)
    m = ConnectNet().train()
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight)
    loss = torch.nn.functional.cross_entropy(m(torch.randn(2, 3, 64, 96)), torch.randint(0, 2, (2, 64, 96)))
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_paddleseg_init():
    m = ConnectNet()
    w = torch.cat([layer.conv.weight.flatten() for layer in conv_bn_layers(m)])
    assert 0.0007 < w.std().item() < 0.0013
    assert all(torch.equal(layer.bn.weight, torch.ones_like(layer.bn.weight)) for layer in conv_bn_layers(m))
    assert isinstance(m.conv_bn0, ConvBN)


def test_edge_head_starts_as_the_identity_and_round_trips():
    torch.manual_seed(1)
    m = ConnectNet().eval()
    for mod in m.modules():  # livelier than PaddleSeg's init, whose decoder features are all but 0
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight)
    x = torch.randn(2, 3, 72, 128)
    with torch.no_grad():
        before = m.predict(x)
        m.add_edge_head(3)
        assert m.edge_kernel == 3
        assert torch.allclose(m.predict(x), before, atol=1e-6)  # zero-initialised
        torch.nn.init.normal_(m.edge.conv.weight, std=0.1)  # a trained head moves the outline
        assert not torch.allclose(m.predict(x), before, atol=1e-3)
    again = ConnectNet.for_state_dict(m.state_dict())
    again.load_state_dict(m.state_dict())
    assert again.edge_kernel == 3 and ConnectNet.for_state_dict(ConnectNet().state_dict()).edge_kernel == 0
    with pytest.raises(ValueError, match="num_classes"):
        ConnectNet(num_classes=3).add_edge_head(1)
