"""Training loop: config handling, LR schedule, resumable sampling, smoke training, resume, export, DDP (gloo)."""
from __future__ import annotations

import csv
import itertools
import os
import socket
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")

from vbg_app.errors import BadInput  # noqa: E402
from vbg_app.train import cli  # noqa: E402
from vbg_app.train.loop import ResumableSampler, load_config, lr_factor, train  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[2] / "vbg_app" / "train" / "configs"
SMOKE = CONFIGS / "smoke.yaml"


def read_log(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# -- config ------------------------------------------------------------------------------------------------------
def test_shipped_configs_load_and_each_ablation_differs_only_by_the_sc_term():
    """X.yaml and X_nosc.yaml differ only in the SC loss term (and the name, and the init: a continued run's
    ablation continues the earlier ablation)."""
    cfgs = {p.stem: load_config(p) for p in CONFIGS.glob("*.yaml")}
    assert {"connectnet_v1", "connectnet_v1_nosc", "smoke"} <= set(cfgs)
    pairs = [(n[:-len("_nosc")], n) for n in cfgs if n.endswith("_nosc")]
    assert ("connectnet_v1", "connectnet_v1_nosc") in pairs and ("connectnet_v4", "connectnet_v4_nosc") in pairs
    assert ("connectnet_v4_256x144", "connectnet_v4_256x144_nosc") in pairs
    for with_sc, without in pairs:
        sc, nosc = cfgs[with_sc], cfgs[without]
        # the GT terms, then any other terms (v4: distillation) in both
        types = [t["type"] for t in sc["loss"]]
        assert types[:3] == ["cross_entropy", "lovasz_softmax", "semantic_connectivity"]
        assert [t["type"] for t in nosc["loss"]] == ["cross_entropy", "lovasz_softmax"] + types[3:]
        assert sc["loss"][:2] + sc["loss"][3:] == nosc["loss"]
        strip = lambda c: {k: v for k, v in c.items() if k not in ("loss", "name", "model")}  # noqa: E731
        assert strip(sc) == strip(nosc), with_sc
        init_sc, init_nosc = str(sc["model"]["init"]), str(nosc["model"]["init"])
        # a continued run's ablation continues the earlier run's ablation: runs/X/last.pt -> runs/X_nosc/last.pt
        # (or, for a run continued from a committed state file, X_last.pt -> X_nosc_last.pt)
        stage = Path(init_sc).parent.name
        stem = Path(init_sc).stem
        assert init_sc == init_nosc or (init_nosc == init_sc.replace(f"/{stage}/", f"/{stage}_nosc/")
                                        and init_sc != init_nosc) or (
            stem.endswith("_last") and init_nosc == init_sc.replace(stem, stem[:-len("_last")] + "_nosc_last")), with_sc
        assert {k: v for k, v in sc["model"].items() if k != "init"} == \
            {k: v for k, v in nosc["model"].items() if k != "init"}
    from vbg_app.train.losses import build_loss
    for c in cfgs.values():
        build_loss(c["loss"])  # every shipped loss section builds


def test_config_errors_and_overrides(tmp_path):
    cfg = load_config(SMOKE, ["iters=7", "optimizer.lr=0.5", "data.workers=0", "export.size=[64, 32]"])
    assert cfg["iters"] == 7 and cfg["optimizer"]["lr"] == 0.5 and cfg["export"]["size"] == [64, 32]
    assert cfg["optimizer"]["type"] == "adamw" and cfg["name"] == "smoke"
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterz: 5\n")
    with pytest.raises(BadInput, match="iterz"):
        load_config(bad)
    bad.write_text("optimizer: {typo: 1}\n")
    with pytest.raises(BadInput, match="typo"):
        load_config(bad)
    with pytest.raises(BadInput):
        load_config(SMOKE, ["iters"])
    with pytest.raises(BadInput):
        load_config(SMOKE, ["optimizer.type=adam"])
    with pytest.raises(BadInput):
        load_config(tmp_path / "missing.yaml")


STOP_AT_TORCH = """
import os, sys
class StopAtTorch:  # torch's first import ends the process, saying what OMP_WAIT_POLICY was then
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print("torch imported with", os.environ.get("OMP_WAIT_POLICY"), flush=True)
            os._exit(0)
sys.meta_path.insert(0, StopAtTorch())
import vbg_app.train.cli
print("after importing vbg_app.train.cli:", os.environ.get("OMP_WAIT_POLICY"), flush=True)
from vbg_app import cli
cli.main(sys.argv[1:])
print("torch never imported")
"""


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_passive_openmp_is_set_by_vbg_train_before_torch_loads_not_by_importing_it(tmp_path, preset):
    """Importing vbg_app.train.cli leaves the process's OpenMP alone; `vbg train` sets OMP_WAIT_POLICY=PASSIVE
    before torch (whose OpenMP reads it once) is imported, unless the user set a value."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    res = subprocess.run([sys.executable, "-c", STOP_AT_TORCH, "train", "--config", str(SMOKE), "--output",
                          str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.splitlines() == [f"after importing vbg_app.train.cli: {preset}",
                                       f"torch imported with {preset or 'PASSIVE'}"]


def test_poly_schedule_with_warmup():
    cfg = {"iters": 100, "optimizer": {"lr": 0.1}, "schedule": {"type": "poly", "power": 0.9, "warmup_iters": 10,
                                                                 "end_lr": 0.0}}
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.5 ** 0.9)
    assert lr_factor(100, cfg) == pytest.approx(0.0)
    cfg["schedule"]["end_lr"] = 0.01
    assert lr_factor(100, cfg) == pytest.approx(0.1)


def test_resumable_sampler_continues_the_same_stream_and_shards():
    full = list(itertools.islice(iter(ResumableSampler(10, seed=3)), 37))
    assert sorted(i for e, i in full[:10]) == list(range(10))  # an epoch is a permutation
    assert [e for e, _ in full] == [k // 10 for k in range(37)]
    for start in (0, 4, 10, 23):
        resumed = list(itertools.islice(iter(ResumableSampler(10, seed=3, start=start)), 37 - start))
        assert resumed == full[start:]
    r0 = list(itertools.islice(iter(ResumableSampler(10, world=2, rank=0, seed=3)), 5))
    r1 = list(itertools.islice(iter(ResumableSampler(10, world=2, rank=1, seed=3)), 5))
    assert sorted(i for _, i in r0 + r1) == list(range(10))  # the two ranks split epoch 0


def test_per_batch_aspects_one_size_per_batch_resumable_and_checked():
    from vbg_app.engines.fit import fit_size
    from vbg_app.train.loop import aspect_sizes

    cfg = load_config(SMOKE, ["data.aspects=[[16, 9, 2], [3, 4, 1], [1, 1, 0]]"])
    sizes = aspect_sizes(cfg)
    assert [s for s, _ in sizes] == [fit_size((16000, 9000), (96, 64), "aspect"),
                                     fit_size((3000, 4000), (96, 64), "aspect"), fit_size((1, 1), (96, 64), "aspect")]
    bs = 4
    keys = list(itertools.islice(iter(ResumableSampler(10, seed=3, sizes=sizes, batch_size=bs)), 4 * 40))
    batches = [keys[k:k + bs] for k in range(0, len(keys), bs)]
    assert all(len({key[2] for key in b}) == 1 for b in batches)  # one size per batch
    seen = [b[0][2] for b in batches]
    assert set(seen) == {sizes[0][0], sizes[1][0]}  # weight 0 never drawn
    assert seen.count(sizes[0][0]) > seen.count(sizes[1][0])  # weight 2 vs 1
    assert [(e, i) for e, i, _ in keys[:10]] == list(itertools.islice(iter(ResumableSampler(10, seed=3)), 10))
    resumed = list(itertools.islice(iter(ResumableSampler(10, seed=3, sizes=sizes, batch_size=bs, start=8 * bs)), 8))
    assert resumed == keys[8 * bs:8 * bs + 8]  # resume at a batch boundary: same samples and sizes
    for bad in ("[[16, 9]]", "[[0, 9, 1]]", "[[16, 9, 0]]"):
        with pytest.raises(BadInput, match="aspects"):
            load_config(SMOKE, [f"data.aspects={bad}"])
    with pytest.raises(BadInput, match="val_resize"):
        load_config(SMOKE, ["data.val_resize=crop"])


# -- training ------------------------------------------------------------------------------------------------------
@pytest.mark.slow  # a training burst
def test_smoke_training_loss_decreases_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    onnx_path = tmp_path / "smoke.onnx"
    rc = cli.main(["--config", str(SMOKE), "--output", str(out), "--quiet", "--export", str(onnx_path),
                   "--set", "iters=40", "--set", "val_every=20"])
    assert rc == 0
    rows = read_log(out / "log.csv")
    losses = [float(r["loss"]) for r in rows if r["loss"]]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.85 * losses[0], losses  # the loss goes down
    assert all(r["loss/semantic_connectivity"] for r in rows if r["loss"])  # the SC term is trained and logged
    val_rows = [r for r in rows if r["val_iou"]]
    assert [int(r["iter"]) for r in val_rows] == [20, 40]
    for name in ("last.pt", "best.pt", "curves.png", "log.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    ckpt = torch.load(out / "last.pt", map_location="cpu", weights_only=True)  # plain data: no code in a checkpoint
    assert ckpt["iteration"] == 40 and {"model", "optimizer", "scheduler", "rng", "config", "best"} <= set(ckpt)
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["best"]["val_iou"] == pytest.approx(max(float(r["val_iou"]) for r in val_rows), rel=1e-5)
    # the exported model runs and carries the training size
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 64, 96), np.float32)})[0]
    assert y.shape == (1, 2, 64, 96) and np.allclose(y.sum(1), 1.0, atol=1e-4)
    assert "best val IoU" in capsys.readouterr().err


@pytest.mark.slow  # a training burst
def test_training_at_per_batch_aspects_with_aspect_validation(tmp_path):
    """data.aspects + val_resize aspect (the vbg.fit = aspect recipe) train, validate and export a dynamic model."""
    import onnx

    out = tmp_path / "asp"
    cfg = load_config(SMOKE, ["iters=6", "val_every=6", "log_every=2", "loss=[cross_entropy]",
                              "data.aspects=[[16, 9, 1], [3, 4, 1]]", "data.val_resize=aspect",
                              "export.fit=aspect", f"output={out}", f"export.path={tmp_path / 'asp.onnx'}"])
    res = train(cfg, progress=False, log=lambda s: None)
    assert res["iterations"] == 6
    rows = [r for r in read_log(out / "log.csv") if r["val_iou"]]
    assert len(rows) == 1 and 0.0 <= float(rows[0]["val_iou"]) <= 1.0
    from vbg_app.train.loop import export_best
    path = export_best(cfg, out, tmp_path / "asp.onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]


@pytest.mark.slow  # a training burst
@pytest.mark.parametrize("slim", [False, True])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, slim):
    over = ["iters=12", "val_every=6", "log_every=3", "loss=[cross_entropy, lovasz_softmax]"]
    logs = []
    if slim:  # cut from a wide checkpoint (vbg_app/train/slim.py); the resume rebuilds the slim shapes
        from vbg_app.train.loop import save_checkpoint
        from vbg_app.train.model import ConnectNet

        torch.manual_seed(5)
        save_checkpoint(tmp_path / "wide.pt", model=ConnectNet().state_dict(), iteration=1, config={"name": "w"})
        over += [f"model.init={tmp_path / 'wide.pt'}", "model.widths={stem: 32, shortcut: 16, decoder: 24}",
                 "model.edge_head=1"]
    straight = train(load_config(SMOKE, over + [f"output={tmp_path / 'a'}"]), progress=False, log=logs.append)
    if slim:
        assert straight["model"].widths == {"stem": 32, "shortcut": 16, "decoder": 24}
        assert straight["model"].edge_kernel == 1 and straight["model"].edge.conv.weight.abs().sum() > 0  # trained
        assert any(line.startswith("slimmed {'stem': 36") for line in logs), logs
        assert any(line.startswith("added an edge head (kernel 1") for line in logs), logs
    first = train(load_config(SMOKE, over + [f"output={tmp_path / 'b'}"]), progress=False, log=lambda s: None,
                  stop_at=6)
    assert first["iterations"] == 6
    resumed = train(load_config(SMOKE, over + [f"output={tmp_path / 'b'}"]), resume="auto", progress=False,
                    log=lambda s: None)
    sa, sb = straight["model"].state_dict(), resumed["model"].state_dict()
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k
    # the resumed log continues the first one (no duplicated iterations)
    iters = [int(r["iter"]) for r in read_log(tmp_path / "b" / "log.csv")]
    assert iters == [3, 6, 9, 12]
    with pytest.raises(BadInput):
        train(load_config(SMOKE, over + [f"output={tmp_path / 'c'}"]), resume="auto", progress=False)


@pytest.mark.slow  # a training burst
def test_cpu_bf16_runs_the_forward_in_bfloat16_and_keeps_float32_weights(tmp_path):
    """cpu_bf16: the forward pass runs under bfloat16 autocast (its result differs from float32), weights stay
    float32 and the loss stays finite."""
    over = ["iters=4", "val_every=4", "log_every=2", "loss=[cross_entropy, lovasz_softmax]"]
    a = train(load_config(SMOKE, over + [f"output={tmp_path / 'f32'}"]), progress=False, log=lambda s: None)
    b = train(load_config(SMOKE, over + ["cpu_bf16=true", f"output={tmp_path / 'bf16'}"]), progress=False,
              log=lambda s: None)
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    assert all(v.dtype == torch.float32 for v in sb.values() if v.is_floating_point())
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if sa[k].is_floating_point())
    assert all(np.isfinite(float(r["loss"])) for r in read_log(tmp_path / "bf16" / "log.csv") if r["loss"])


@pytest.mark.slow  # a training burst
def test_loader_workers_do_not_change_the_training(tmp_path):
    """A worker process (started with forkserver) makes exactly the samples the main process would."""
    over = ["iters=4", "val_every=4", "log_every=2", "loss=[cross_entropy]", "data.synthesis.p_occluder=0.3"]
    a = train(load_config(SMOKE, over + ["data.workers=0", f"output={tmp_path / 'w0'}"]), progress=False,
              log=lambda s: None)
    b = train(load_config(SMOKE, over + ["data.workers=1", f"output={tmp_path / 'w1'}"]), progress=False,
              log=lambda s: None)
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.slow  # a training burst
def test_bench_prints_the_three_figures(capsys):
    rc = cli.main(["--config", str(SMOKE), "--bench", "--bench-iters", "2"])
    assert rc == 0
    err = capsys.readouterr().out
    assert "data pipeline:" in err and "SC loss" in err and "it/s" in err


# -- DDP on CPU (gloo, 2 processes) ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = load_config(SMOKE, ["iters=6", "val_every=3", "log_every=3", "batch_size=4", f"output={out}"])
    summary = train(cfg, device_name="cpu", progress=False, log=lambda s: None)
    torch.save(summary["model"].state_dict(), Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    s0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    s1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in s0:
        if k.endswith("running_mean") or k.endswith("running_var") or k.endswith("num_batches_tracked"):
            continue  # BN statistics are per process (no SyncBatchNorm on CPU)
        assert torch.equal(s0[k], s1[k]), k  # DDP kept the weights identical
    rows = read_log(tmp_path / "log.csv")  # only rank 0 writes
    assert [int(r["iter"]) for r in rows] == [3, 6]
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()


# -- export of a run ---------------------------------------------------------------------------------------------------
def _two_checkpoints(out: Path):
    from vbg_app.train.loop import save_checkpoint
    from vbg_app.train.model import ConnectNet

    models = {}
    for name, it, seed in (("best.pt", 5, 1), ("last.pt", 9, 2)):
        torch.manual_seed(seed)
        m = ConnectNet()
        save_checkpoint(out / name, model=m.state_dict(), iteration=it, config={"name": "t"},
                        metrics={"val_iou": it / 10})
        models[it] = m.eval()
    return models


@pytest.mark.parametrize("which, fit", [("best", "stretch"), ("last", "letterbox")])
def test_export_takes_the_configured_checkpoint_and_fit(tmp_path, which, fit):
    import onnx

    from vbg_app.engines.meta import parse_meta
    from vbg_app.train.loop import export_best

    models = _two_checkpoints(tmp_path / "run")
    cfg = load_config(SMOKE, [f"export.checkpoint={which}", f"export.fit={fit}", "input_size=[64, 32]"])
    path = export_best(cfg, tmp_path / "run", str(tmp_path / "m.onnx"), say=lambda s: None)
    meta = parse_meta({p.key: p.value for p in onnx.load(str(path)).metadata_props})
    it = 5 if which == "best" else 9
    assert meta.fit == fit and meta.version.endswith(f"-it{it}") and f"IoU {it / 10:.4f}" in meta.source
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 64)).astype(np.float32)
    want = torch.softmax(models[it](torch.from_numpy(x)), 1).detach().numpy()
    assert np.abs(sess.run(None, {sess.get_inputs()[0].name: x})[0] - want).max() < 1e-4
    with pytest.raises(BadInput, match="export.checkpoint"):
        load_config(SMOKE, ["export.checkpoint=newest"])


def test_export_cli_from_a_checkpoint(tmp_path, capsys):
    import onnx

    from vbg_app.engines.meta import parse_meta
    from vbg_app.train.export import main

    _two_checkpoints(tmp_path)
    out = tmp_path / "c.onnx"
    assert main(["--checkpoint", str(tmp_path / "last.pt"), "--out", str(out), "--size", "64x32",
                 "--version", "1", "--fit", "letterbox"]) == 0
    meta = parse_meta({p.key: p.value for p in onnx.load(str(out)).metadata_props})
    assert (meta.version, meta.fit, meta.input_size_wh) == ("1", "letterbox", (64, 32)) and "iteration 9" in meta.source and "config t," in meta.source
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["--checkpoint", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "j.onnx")]) == 2
    assert "not a ConnectNet checkpoint" in capsys.readouterr().err and not (tmp_path / "j.onnx").exists()
