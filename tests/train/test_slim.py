"""Slim ConnectNet (vbg_app/train/slim.py): which channels are kept, and that the kept weights are the wide ones."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vbg_app.errors import BadInput  # noqa: E402
from vbg_app.train.config import load_config, model_widths  # noqa: E402
from vbg_app.train.model import ConnectNet  # noqa: E402
from vbg_app.train.slim import channel_scores, slim_model  # noqa: E402
from tests.train.common import REPO, lively_model  # noqa: E402

SLIM = {"stem": 32, "shortcut": 16, "decoder": 32}


def batches(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(2, 3, 72, 128, generator=g) * 2 - 1 for _ in range(n)]


def test_same_widths_compute_the_same_function():
    model = lively_model(0)
    same = slim_model(model, batches(), **model.widths)
    x = batches(1, seed=1)[0]
    with torch.no_grad():
        assert torch.equal(same(x), model(x))


@torch.no_grad()
def dead_channels_model():
    """A wide model in which 4 stem, 2 shortcut and 32 decoder channels contribute nothing: their ReLU outputs
    are 0 (BN scale 0, negative shift) and the depthwise convs that read them output 0 there too (a depthwise
    BN would otherwise turn a 0 into its shift), so cutting exactly them leaves the function unchanged."""
    model = lively_model(1)
    dead = {"stem": [1, 7, 20, 35], "shortcut": [0, 9], "decoder": list(range(1, 64, 2))}
    for layer, idx in ((model.conv_bn0, dead["stem"]), (model.conv_bn1, dead["shortcut"]),
                       (model.depthwise_separable1.pointwise, dead["decoder"])):
        layer.bn.weight[idx] = 0.0
        layer.bn.bias[idx] = -1.0
    for layer, idx in ((model.block1[0].shortcut.depthwise, dead["stem"]),
                       (model.depthwise_separable1.depthwise, dead["shortcut"]),
                       (model.depthwise_separable2.depthwise, dead["decoder"])):
        layer.bn.weight[idx] = 0.0
        layer.bn.bias[idx] = 0.0
    return model, dead


def test_slim_keeps_the_channels_that_carry_signal_and_their_weights():
    model, dead = dead_channels_model()
    scores = channel_scores(model, batches())
    for name, idx in dead.items():
        assert (scores[name][idx] == 0).all() and (scores[name].nonzero().numel() == len(scores[name]) - len(idx))
    slim = slim_model(model, batches(), **SLIM)
    assert slim.widths == SLIM and model.widths == {"stem": 36, "shortcut": 18, "decoder": 64}
    x = batches(1, seed=2)[0]
    with torch.no_grad():
        assert (slim(x) - model(x)).abs().max().item() < 1e-5
    kept = [i for i in range(36) if i not in dead["stem"]]
    assert torch.equal(slim.conv_bn0.conv.weight, model.conv_bn0.conv.weight[kept])
    assert torch.equal(slim.block2[3].conv.conv.weight, model.block2[3].conv.conv.weight)


def test_slim_model_state_loads_by_its_shapes():
    slim = slim_model(lively_model(2), batches(1), **SLIM)
    again = ConnectNet.for_state_dict(slim.state_dict())
    again.load_state_dict(slim.state_dict())
    assert again.widths == SLIM


@pytest.mark.parametrize("widths,ok", [(None, True), ({"decoder": 32}, True), (SLIM, True),
                                       ({"decoder": 65}, False), ({"stem": 0}, False), ({"neck": 3}, False),
                                       ({"decoder": "half"}, False), ([32, 16, 32], False)])
def test_config_checks_model_widths(widths, ok):
    overrides = [f"model.widths={widths}".replace("None", "null")]
    if ok:
        cfg = load_config(REPO / "vbg_app/train/configs/smoke.yaml", overrides)
        assert model_widths(cfg) == (None if widths is None else {**ConnectNet().widths, **widths})
    else:
        with pytest.raises(BadInput, match="model.widths"):
            load_config(REPO / "vbg_app/train/configs/smoke.yaml", overrides)


@pytest.mark.parametrize("value", [-1, 2, 5, "wide", True])
def test_config_checks_the_edge_head(value):
    with pytest.raises(BadInput, match="model.edge_head"):
        load_config(REPO / "vbg_app/train/configs/smoke.yaml", [f"model.edge_head={value}"])


def test_slim_keeps_an_edge_head():
    model = lively_model(5, edge_head=3)
    slim = slim_model(model, batches(1), **model.widths)  # same widths: the same function, edge head included
    x = batches(1, seed=3)[0]
    with torch.no_grad():
        assert slim.edge_kernel == 3 and torch.equal(slim(x), model(x))


def test_slim_refuses_impossible_widths():
    with pytest.raises(ValueError, match="decoder width 80"):
        slim_model(lively_model(3), batches(1), stem=32, shortcut=16, decoder=80)


def test_a_config_cannot_widen_a_slim_init(tmp_path):
    from vbg_app.train.loop import build_datasets, build_model, save_checkpoint

    save_checkpoint(tmp_path / "slim.pt", model=ConnectNet(**SLIM).state_dict(), iteration=1, config={"name": "s"})
    cfg = load_config(REPO / "vbg_app/train/configs/smoke.yaml",
                      [f"model.init={tmp_path / 'slim.pt'}", "model.widths={decoder: 48}"])
    with pytest.raises(BadInput, match="cannot be cut"):
        build_model(cfg, build_datasets(cfg)[0], log=lambda s: None)
