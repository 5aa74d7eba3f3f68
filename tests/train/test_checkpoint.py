"""Checkpoints are data, never code (issue #17, attack 7): every .pt file vbg reads from a user's path is loaded
with ``weights_only=True``; a file whose pickle would run code is refused (exit 2) before it runs, and real
checkpoints of ``vbg train`` (optimizer, scheduler, RNG states, config, scores) still resume and export."""
from __future__ import annotations

import builtins
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")

from vbg_app import cli  # noqa: E402
from vbg_app.errors import BadInput  # noqa: E402

SMOKE = Path(__file__).resolve().parents[2] / "vbg_app" / "train" / "configs" / "smoke.yaml"
TINY = ["--set", "iters=2", "--set", "val_every=1", "--set", "log_every=1", "--set", "loss=[cross_entropy]",
        "--quiet"]


class RunsCode:
    """Unpickling this runs ``open(marker, 'w')`` (what a hostile .pt file would do with os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


def booby_trapped(path: Path, marker: Path, kind: str = "torch") -> Path:
    """A checkpoint that looks like vbg train's (ConnectNet weights, an iteration) with a payload in its config."""
    from vbg_app.train.model import ConnectNet

    state = {"model": ConnectNet().state_dict(), "iteration": 1, "config": {"name": "x", "hook": RunsCode(marker)}}
    if kind == "torch":
        torch.save(state, path)
    else:  # a bare pickle, as torch.load also reads the legacy format
        with path.open("wb") as f:
            pickle.dump(state, f, protocol=2)
    return path


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("kind", ["torch", "pickle"])
def test_export_refuses_a_checkpoint_that_would_run_code(tmp_path, capsys, kind):
    marker = tmp_path / "MARKER"
    evil = booby_trapped(tmp_path / "last.pt", marker, kind)
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(evil), "--out", str(out), "--size", "64x32"]) == 2
    assert not marker.exists(), "the checkpoint's payload ran"
    assert not out.exists()
    line = one_error_line(capsys.readouterr().err)
    assert str(evil) in line and ("refused" in line or "not a ConnectNet checkpoint" in line), line


def test_resume_and_model_init_refuse_a_checkpoint_that_would_run_code(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    run = tmp_path / "run"
    run.mkdir()
    evil = booby_trapped(run / "last.pt", marker)
    for extra in (["--resume"], ["--resume", str(evil)], ["--set", f"model.init={evil}"]):
        rc = cli.main(["train", "--config", str(SMOKE), "--output", str(run / "out" if "--set" in extra else run),
                       *TINY, *extra])
        assert rc == 2, extra
        assert not marker.exists(), f"the checkpoint's payload ran ({extra})"
        line = one_error_line(capsys.readouterr().err)
        assert "refused" in line and "could run code" in line and "exec" in line, line
    assert not (run / "out" / "last.pt").exists()


@pytest.mark.slow  # a training burst
def test_a_real_checkpoint_is_plain_data_and_resumes_and_exports(tmp_path, capsys):
    """A short burst of vbg train: its last.pt loads with weights_only=True and no allow-list, the run resumes
    from it to the end, and vbg export turns it into a model."""
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(SMOKE), "--output", str(run), "--stop-at", "1", *TINY]) == 0
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["iteration"] == 1 and {"model", "optimizer", "scheduler", "rng", "config", "best"} <= set(ckpt)
    assert cli.main(["train", "--config", str(SMOKE), "--output", str(run), "--resume", *TINY]) == 0
    assert "resumed from iteration 1" in capsys.readouterr().err
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=True)["iteration"] == 2
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    assert all(type(v) is float for v in best["metrics"].values()), best["metrics"]
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--checkpoint", str(run / "last.pt"), "--out", str(out), "--size", "64x32"]) == 0
    assert out.is_file() and "iteration 2" in out.read_bytes().decode("latin-1")


def test_a_checkpoint_of_an_earlier_vbg_with_numpy_state_still_loads(tmp_path):
    """Before checkpoints were plain data, last.pt held the numpy RNG state as an array and numpy float scores."""
    import random

    from vbg_app.train.checkpoint import load_checkpoint
    from vbg_app.train.loop import set_rng_state
    from vbg_app.train.model import ConnectNet

    np.random.seed(5)
    old_rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    want = np.random.rand(3)
    torch.save({"model": ConnectNet().state_dict(), "iteration": 3, "rng": old_rng, "config": {"name": "old"},
                "best": {"val_iou": 0.5, "iteration": 3}, "metrics": {"a/iou": np.float64(0.5), "b": np.float32(1)}},
               tmp_path / "old.pt")
    ckpt = load_checkpoint(tmp_path / "old.pt")
    assert ckpt["metrics"]["a/iou"] == 0.5 and ckpt["iteration"] == 3
    np.random.seed(0)
    set_rng_state(ckpt["rng"])
    assert np.array_equal(np.random.rand(3), want)


def test_to_plain_and_unreadable_files(tmp_path):
    from vbg_app.train.checkpoint import load_checkpoint, save_checkpoint, to_plain

    value = {"p": Path("a/b"), "n": np.float64(0.25), "i": np.int64(3), "arr": np.arange(3, dtype=np.uint32),
             "t": (1, "x", None), "nested": [{"k": np.bool_(True)}], "obj": object}
    plain = to_plain(value)
    assert plain["p"] == str(Path("a/b")) and type(plain["n"]) is float and type(plain["i"]) is int
    assert plain["arr"] == [0, 1, 2] and plain["t"] == (1, "x", None) and plain["nested"] == [{"k": True}]
    assert isinstance(plain["obj"], str)
    save_checkpoint(tmp_path / "c.pt", model={"w": torch.ones(2)}, config=value)
    assert torch.load(tmp_path / "c.pt", weights_only=True)["config"]["n"] == 0.25
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput, match="not a ConnectNet checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(BadInput, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
