"""Shared pieces of the training tests (torch is imported by the tests that use these)."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
RELEASED = SHARED / "models" / "reference" / "pphumanseg_v1_lite_398x224.onnx"
TOL = 1e-4


def lively_model(seed=0, **widths):
    """A ConnectNet with random conv weights and random BN statistics (so BN handling matters); ``widths``:
    ConnectNet's stem/shortcut/decoder channels."""
    import torch

    from vbg_app.train.model import ConnectNet

    torch.manual_seed(seed)
    m = ConnectNet(**widths)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(mod.weight)
        elif isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.2, 0.2)
    return m.eval()
