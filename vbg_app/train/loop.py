"""The training loop behind ``vbg train --config vbg_app/train/configs/connectnet_v1.yaml``.

What one run does (all settings in the YAML config; :data:`vbg_app.train.config.DEFAULTS` lists every key):

* builds ConnectNet (:mod:`vbg_app.train.model`), initialised from PaddleSeg's released weights
  (:mod:`vbg_app.train.weights`, BN re-calibrated on a few training batches), at random, or from a
  checkpoint;
* trains for ``iters`` iterations of ``batch_size`` samples (per process) from
  :class:`~vbg_app.train.data.PortraitDataset`, with the losses of :func:`vbg_app.train.losses.build_loss`,
  SGD or AdamW and a poly learning-rate schedule (optional linear warm-up);
* every ``val_every`` iterations computes person IoU, mIoU and SC (:mod:`vbg_app.tools.metrics`) on each val
  folder at the training input size, appends to ``OUTPUT/log.csv``, redraws ``OUTPUT/curves.png``, writes
  ``OUTPUT/last.pt`` (model, optimizer, scheduler, AMP scaler, iteration, RNG states, config) and
  ``OUTPUT/best.pt`` when the mean val person IoU improves; ``checkpoint_every_s`` adds a ``last.pt`` by wall
  time between validations, and SIGTERM / SIGINT make the run write ``last.pt`` and stop after the current
  iteration (continue with ``--resume``);
* at the end exports ``best.pt`` to ONNX with :func:`vbg_app.train.export.export_onnx` (``--export PATH``
  or ``export.path``).

Reproducible: sample ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)`` (any number of loader
workers) and the epoch order comes from ``DistributedSampler(seed=seed)``; ``--resume`` continues from
``last.pt`` at the same sample. Multi-GPU: ``torchrun --nproc_per_node=N -m vbg_app.train --config ...``
(DistributedDataParallel, one process per GPU, ``batch_size`` per process, NCCL; gloo on CPU). CUDA and
mixed precision (``amp: true``) are used when a GPU is present.

The parts: :mod:`~vbg_app.train.config` (defaults, YAML, overrides, checks), :mod:`~vbg_app.train.ddp` (process
group and device), :mod:`~vbg_app.train.sampler` (resumable sharded sampling, loader workers),
:mod:`~vbg_app.train.checkpoint` (``last.pt``/``best.pt``, RNG state), :mod:`~vbg_app.train.logs` (``log.csv``,
``curves.png``); this module builds the model, data and optimizer, runs the loop, validates and exports.
"""
from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from vbg_app.errors import BadInput
# the names below were all defined here before the split (#18): tests, vbg_app.train.cli and the loader workers
# of a run that started before it (which unpickle _worker_init by this module's name) import them from here
from vbg_app.train.checkpoint import (load_checkpoint, rng_state, save_checkpoint,  # noqa: F401
                                      set_rng_state)
from vbg_app.train.config import (DEFAULTS, RELEASED_ONNX, REPO_ROOT, _resolve_sources, aspect_sizes,  # noqa: F401
                                  check_config, load_config, model_widths, resolve_path, set_key)
from vbg_app.train.ddp import DistInfo, pick_device
from vbg_app.train.logs import CsvLog, plot_curves
from vbg_app.train.sampler import ResumableSampler, _mp_context, _worker_init

CALIBRATION_EPOCH = 1_000_000  # augmentation seed of the BN re-calibration batches (not a training epoch)


# -- building blocks -----------------------------------------------------------------------------------------------
def build_datasets(cfg: dict):
    from vbg_app.train.data import PortraitDataset, ValDataset

    size = tuple(cfg["input_size"])
    synth = dict(cfg["data"]["synthesis"] or {})
    for key in ("backgrounds", "bystanders"):
        if synth.get(key):
            synth[key] = [resolve_path(b) for b in synth[key]]
    teacher = cfg["distill"].get("teacher")
    train = PortraitDataset(_resolve_sources(cfg["data"]["train"]), size, synth, seed=int(cfg["seed"]),
                            teacher=resolve_path(teacher) if teacher else None,
                            teacher_on_labeled=bool(cfg["distill"].get("teacher_on_labeled")))
    vals = [ValDataset(s, size, cfg["data"]["val_resize"]) for s in _resolve_sources(cfg["data"]["val"])]
    names = [v.name for v in vals]
    for i, n in enumerate(names):  # unique short names for the log columns
        if names.count(n) > 1:
            vals[i].name = f"{n}{i}"
    return train, vals


def build_model(cfg: dict, train_ds=None, device=torch.device("cpu"), log=print):
    from vbg_app.train.model import ConnectNet

    init = str(cfg["model"]["init"])
    widths = model_widths(cfg)
    n_cal = int(cfg["model"]["recalibrate_bn_batches"])
    if init == "released":
        from vbg_app.train.weights import import_onnx_weights, recalibrate_bn

        path = resolve_path(cfg["model"]["released_onnx"])
        if not Path(path).is_file():
            raise BadInput(f"released weights {path} not found",
                           "set model.released_onnx, or model.init: random")
        model = ConnectNet()  # the release's widths; model.widths cuts it below
        import_onnx_weights(model, path)
        if n_cal > 0 and train_ds is not None:
            recalibrate_bn(model, _calibration_batches(cfg, train_ds, n_cal))
            log(f"imported released weights from {path}; BN re-calibrated on {n_cal} batches")
    elif init == "random":
        model = ConnectNet(**(widths or {}), edge_head=int(cfg["model"].get("edge_head") or 0))
    else:
        ckpt = load_checkpoint(resolve_path(init), "set model.init to a .pt file written by vbg train, "
                               "released or random")
        state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt
        try:
            model = ConnectNet.for_state_dict(state)
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise BadInput(f"model.init {init} is not a ConnectNet checkpoint ({str(exc).splitlines()[0][:120]})",
                           "set model.init to a .pt file written by vbg train, released or random") from None
        log(f"initialised from {init}")
    if widths and model.widths != widths:
        from vbg_app.train.slim import slim_model
        from vbg_app.train.weights import recalibrate_bn

        if train_ds is None:
            raise BadInput("model.widths needs training data to choose the channels to keep",
                           "give data.train sources, or leave model.widths unset")
        batches = _calibration_batches(cfg, train_ds, max(n_cal, 1))
        was = model.widths
        try:
            model = slim_model(model, batches, **widths)
        except ValueError as exc:  # wider than the init
            raise BadInput(f"model.widths {widths} cannot be cut from model.init's {was} ({exc})",
                           "slim models keep at most the init's channels") from None
        recalibrate_bn(model, batches)
        log(f"slimmed {was} -> {widths} (channels kept by their signal on {len(batches)} batches); BN re-calibrated")
    edge = int(cfg["model"].get("edge_head") or 0)
    if edge != model.edge_kernel:
        if model.edge_kernel:
            raise BadInput(f"model.init has an edge head of kernel {model.edge_kernel}, the config asks for {edge}",
                           f"set model.edge_head: {model.edge_kernel}")
        model.add_edge_head(edge)
        log(f"added an edge head (kernel {edge}, zero-initialised: the function is unchanged)")
    return model.to(device)


def _calibration_batches(cfg: dict, train_ds, n: int) -> list[torch.Tensor]:
    bs = int(cfg["batch_size"])
    return [torch.stack([torch.from_numpy(_input_of(train_ds, b * bs + j)) for j in range(bs)]) for b in range(n)]


def _input_of(ds, i: int) -> np.ndarray:
    from vbg_app.train.data.augment import to_input

    img, _, _ = ds.sample(i % len(ds), epoch=CALIBRATION_EPOCH)
    return to_input(img)


def build_optimizer(cfg: dict, model: torch.nn.Module):
    o = dict(cfg["optimizer"])
    kind = o.pop("type").lower()
    lr = float(o.pop("lr"))
    wd = float(o.pop("weight_decay", 0.0))
    # no weight decay on BN parameters
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(o.get("momentum", 0.9)),
                               nesterov=bool(o.get("nesterov", False)))
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(o.get("betas", (0.9, 0.999))))


def lr_factor(it: int, cfg: dict) -> float:
    """Learning-rate multiplier at iteration ``it``: linear warm-up, then poly decay to ``end_lr``."""
    s = cfg["schedule"]
    total = int(cfg["iters"])
    warm = int(s.get("warmup_iters", 0))
    if it < warm:
        return (it + 1) / warm
    if s["type"] == "constant":
        return 1.0
    base = float(cfg["optimizer"]["lr"])
    end = float(s.get("end_lr", 0.0)) / base if base else 0.0
    frac = min(1.0, (it - warm) / max(1, total - warm))
    return (1.0 - end) * (1.0 - frac) ** float(s.get("power", 0.9)) + end


def batch_iou(logits: torch.Tensor, labels: torch.Tensor) -> float:
    from vbg_app.train.losses._functional import hard_prediction

    pred = hard_prediction(logits) == 1
    valid = labels != 255
    gt = labels == 1
    inter = (pred & gt & valid).sum().item()
    union = ((pred | gt) & valid).sum().item()
    return inter / union if union else float("nan")


@torch.no_grad()
def validate(model: torch.nn.Module, vals, device, batch_size: int = 8, workers: int = 0) -> dict:
    """``{"NAME/iou", "NAME/miou", "NAME/sc"}`` per val set (dataset IoU/mIoU, mean per-image SC) and
    ``val_iou`` (mean over sets of the person IoU)."""
    from vbg_app.tools.metrics import SegAccumulator
    from vbg_app.train.data.datasets import label_to_metric
    from vbg_app.train.losses._functional import hard_prediction

    was = model.training
    model.eval()
    out: dict = {}
    try:
        for v in vals:
            acc = SegAccumulator()
            loader = DataLoader(v, batch_size=batch_size, shuffle=False, num_workers=workers,
                                worker_init_fn=_worker_init if workers else None,
                                multiprocessing_context=_mp_context() if workers else None)
            for batch in loader:
                logits = model(batch["image"].to(device, non_blocking=True))
                pred = (hard_prediction(logits) == 1).cpu().numpy()
                labels = batch["label"].numpy().astype(np.uint8)
                for p, lab in zip(pred, labels):
                    acc.update(p, label_to_metric(lab))
            r = acc.result()
            out[f"{v.name}/iou"] = float(r["person_iou"])
            out[f"{v.name}/miou"] = float(r["miou"])
            out[f"{v.name}/sc"] = float(r["sc"])
        ious = [out[f"{v.name}/iou"] for v in vals]
        out["val_iou"] = float(np.mean(ious)) if ious else float("nan")
    finally:
        model.train(was)
    return out




# -- the loop ---------------------------------------------------------------------------------------------------------
def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def train(cfg: dict, resume: str | None = None, export_path: str | None = None, device_name: str = "auto",
          progress: bool = True, log=None, stop_at: int | None = None) -> dict:
    """Run the training described by ``cfg`` (see :func:`load_config`); returns a summary dict.

    ``stop_at``: stop (validate, save ``last.pt``) once that iteration is reached, without finishing the
    schedule; ``--resume`` continues exactly (training in chunks on a shared machine)."""
    from vbg_app.train.losses import build_loss

    dinfo = DistInfo()
    device = pick_device(device_name, dinfo.local_rank)
    dinfo.init(device)
    say = (log or (lambda s: print(s, file=sys.stderr, flush=True))) if dinfo.main else (lambda s: None)
    try:
        return _train(cfg, resume, export_path, device, dinfo, progress and dinfo.main, say, build_loss, stop_at)
    finally:
        dinfo.close()


def _train(cfg, resume, export_path, device, dinfo, progress, say, build_loss, stop_at=None) -> dict:
    seed = int(cfg["seed"])
    random.seed(seed + dinfo.rank)
    np.random.seed((seed + dinfo.rank) % 2 ** 32)
    torch.manual_seed(seed + dinfo.rank)
    if int(cfg["threads"]) > 0:
        torch.set_num_threads(int(cfg["threads"]))
    out_dir = Path(resolve_path(str(cfg["output"]).replace("{name}", str(cfg["name"]))))
    if dinfo.main:
        out_dir.mkdir(parents=True, exist_ok=True)

    train_ds, vals = build_datasets(cfg)
    loss_fn = build_loss(cfg["loss"]).to(device)
    if loss_fn.needs_soft and not cfg["distill"].get("teacher") and not train_ds.has_soft_targets:
        raise BadInput("the loss has a distillation term but distill.teacher is not set and no training "
                       "source has cached soft labels",
                       f"set distill.teacher (e.g. {RELEASED_ONNX}) or a source's soft: folder (vbg label)")

    ckpt = None
    if resume:
        rpath = out_dir / "last.pt" if resume == "auto" else Path(resolve_path(resume))
        if not rpath.is_file():
            raise BadInput(f"checkpoint {rpath} not found", "train without --resume first, or pass the .pt path")
        ckpt = load_checkpoint(rpath, "resume from the last.pt that vbg train wrote in the output folder")
        missing = [k for k in ("model", "optimizer", "scheduler", "iteration") if not isinstance(ckpt, dict)
                   or k not in ckpt]
        if missing:
            raise BadInput(f"{rpath} is not a checkpoint vbg train can resume from (no {', '.join(missing)})",
                           "resume from the last.pt that vbg train wrote in the output folder, or start from "
                           "its weights alone with --set model.init=PATH")
    model = build_model(cfg if ckpt is None else {**cfg, "model": {**cfg["model"], "init": "random"}},
                        train_ds, torch.device("cpu"), say)
    model = model.to(device)
    if cfg["model"].get("sync_bn") and dinfo.enabled:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = build_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, cfg))
    use_amp = bool(cfg["amp"]) and device.type == "cuda"
    use_bf16 = bool(cfg["cpu_bf16"]) and device.type == "cpu"
    autocast = dict(device_type=device.type, dtype=torch.float16 if use_amp else torch.bfloat16,
                    enabled=use_amp or use_bf16)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_it, best = 0, {"val_iou": -1.0, "iteration": -1}
    if ckpt is not None:
        _unwrap(model).load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_it = int(ckpt["iteration"])
        best = ckpt.get("best", best)
        if dinfo.main and ckpt.get("rng"):
            set_rng_state(ckpt["rng"])
        else:
            torch.manual_seed(seed + dinfo.rank + 1000003 * start_it)
        say(f"resumed from iteration {start_it} (best val IoU {best['val_iou']:.4f} at {best['iteration']})")
    if dinfo.enabled:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    bs = int(cfg["batch_size"])
    workers = int(cfg["data"]["workers"])
    sampler = ResumableSampler(len(train_ds), dinfo.world, dinfo.rank, seed, start=start_it * bs,
                               sizes=aspect_sizes(cfg), batch_size=bs)
    loader = DataLoader(train_ds, batch_size=bs, sampler=sampler, num_workers=workers,
                        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=workers > 0,
                        worker_init_fn=_worker_init if workers else None, prefetch_factor=4 if workers else None,
                        multiprocessing_context=_mp_context() if workers else None)

    iters = int(cfg["iters"])
    end = iters if stop_at is None else max(start_it, min(iters, int(stop_at)))
    val_names = [v.name for v in vals]
    columns = (["iter", "epoch", "lr", "loss"] + [f"loss/{n}" for n in loss_fn.names]
               + ["sc_connectivity", "train_iou", "img_per_s"]
               + [f"{n}/{m}" for n in val_names for m in ("iou", "miou", "sc")] + ["val_iou", "elapsed_s"])
    csv_log = CsvLog(out_dir / "log.csv", columns, append=ckpt is not None) if dinfo.main else None
    if csv_log is not None and ckpt is not None:
        csv_log.truncate_after(start_it)

    def run_validation(it: int) -> dict:
        res = {}
        if dinfo.main and vals:
            res = validate(_unwrap(model), vals, device,
                           batch_size=1 if cfg["data"]["val_resize"] == "aspect" else 8)
        dinfo.barrier()
        return res

    t_start = time.perf_counter()
    if vals and cfg["val_at_start"] and start_it == 0:
        res = run_validation(0)
        if dinfo.main:
            csv_log.write({"iter": 0, "epoch": 0, "elapsed_s": 0.0, **res})
            say("val @0: " + "  ".join(f"{k} {v:.4f}" for k, v in res.items()))

    def save_last(done: int, metrics: dict | None = None) -> dict:
        state = dict(model=_unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                     scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), iteration=done,
                     samples_seen=done * bs * dinfo.world, rng=rng_state(), config=cfg, best=best)
        if metrics is not None:
            state["metrics"] = metrics
        save_checkpoint(out_dir / "last.pt", **state)
        return state

    stop_signal: list = []
    old_handlers = {}
    if dinfo.main and not dinfo.enabled:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            def _on_signal(signum, _frame):
                stop_signal.append(signum)
            for sig in (signal.SIGTERM, signal.SIGINT):
                old_handlers[sig] = signal.signal(sig, _on_signal)
    ckpt_every = float(cfg.get("checkpoint_every_s") or 0)
    t_ckpt = time.perf_counter()

    model.train()
    data_iter = iter(loader)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=iters, initial=start_it, desc=str(cfg["name"]), dynamic_ncols=True, file=sys.stderr)
    sums: dict = {}
    n_sum, t_last, it = 0, time.perf_counter(), start_it
    history = []
    sc_term = loss_fn.term("semantic_connectivity")
    for it in range(start_it, end):
        loss_fn.set_iteration(it)
        batch = next(data_iter)
        x = batch["image"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        soft = batch["soft"].to(device, non_blocking=True) if loss_fn.needs_soft else None
        with torch.autocast(**autocast):
            logits = model(x)
        loss, parts = loss_fn(logits.float(), y, soft)
        if not torch.isfinite(loss):
            raise RuntimeError(f"loss is {loss.item()} at iteration {it}: lower optimizer.lr")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        iou = batch_iou(logits.detach(), y)
        for k, v in {"loss": float(loss.detach()), **{f"loss/{k}": v for k, v in parts.items()},
                     "train_iou": iou}.items():
            if not (isinstance(v, float) and math.isnan(v)):
                s = sums.setdefault(k, [0.0, 0])
                s[0] += v
                s[1] += 1
        if sc_term is not None and "semantic_connectivity" in parts and not math.isnan(sc_term.last_connectivity):
            s = sums.setdefault("sc_connectivity", [0.0, 0])
            s[0] += sc_term.last_connectivity
            s[1] += 1
        n_sum += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", iou=f"{iou:.3f}",
                            lr=f"{scheduler.get_last_lr()[0]:.2e}")
        done = it + 1
        is_val = bool(vals) and (done % int(cfg["val_every"]) == 0 or done == end)
        if done % int(cfg["log_every"]) == 0 or is_val or done == end:
            now = time.perf_counter()
            row = {"iter": done, "epoch": done * bs // max(1, sampler.per_epoch), "lr": scheduler.get_last_lr()[0],
                   "img_per_s": n_sum * bs * dinfo.world / max(now - t_last, 1e-9),
                   "elapsed_s": now - t_start}
            row.update({k: s[0] / s[1] for k, s in sums.items() if s[1]})
            sums, n_sum, t_last = {}, 0, now
            if is_val:
                res = run_validation(done)
                row.update(res)
                if dinfo.main:
                    improved = res.get("val_iou", -1) > best["val_iou"]
                    if improved:
                        best = {"val_iou": res["val_iou"], "iteration": done}
                    state = save_last(done, res)
                    t_ckpt = time.perf_counter()
                    if improved:
                        save_checkpoint(out_dir / "best.pt", **state)
                    msg = "  ".join(f"{k} {v:.4f}" for k, v in res.items())
                    (bar.write if bar is not None else say)(f"val @{done}: {msg}" + ("  (best)" if improved else ""))
                dinfo.barrier()
            elif dinfo.main and not vals and (done % int(cfg["val_every"]) == 0 or done == end):
                save_last(done)
                t_ckpt = time.perf_counter()
            if dinfo.main:
                csv_log.write(row)
                history.append(row)
                if bar is None:
                    say(f"it {done}/{iters}  loss {row.get('loss', float('nan')):.4f}  "
                        + "  ".join(f"{k[5:]} {row[k]:.4f}" for k in row if k.startswith("loss/"))
                        + f"  train_iou {row.get('train_iou', float('nan')):.3f}  lr {row['lr']:.2e}  "
                        f"{row['img_per_s']:.2f} samples/s  elapsed {row['elapsed_s'] / 3600:.2f} h")
                if is_val:
                    plot_curves(out_dir / "log.csv", out_dir / "curves.png", str(cfg["name"]))
        if dinfo.main and (stop_signal or (ckpt_every > 0 and time.perf_counter() - t_ckpt >= ckpt_every)) \
                and not (is_val or (not vals and (done % int(cfg["val_every"]) == 0 or done == end))):
            save_last(done)
            t_ckpt = time.perf_counter()
            say(f"checkpoint @{done}: {out_dir / 'last.pt'}")
        if stop_signal:
            say(f"signal {stop_signal[0]}: stopped at iteration {done} with last.pt written; continue with --resume")
            end = done
            break
    if bar is not None:
        bar.close()
    if old_handlers:
        import signal
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    elapsed = time.perf_counter() - t_start
    summary = {"output": str(out_dir), "iterations": end, "best": best, "elapsed_s": elapsed,
               "history": history, "model": _unwrap(model), "signal": stop_signal[0] if stop_signal else None}
    if dinfo.main:
        plot_curves(out_dir / "log.csv", out_dir / "curves.png", str(cfg["name"]))
        export_to = export_path or cfg["export"].get("path")
        if export_to and end == iters:
            summary["exported"] = str(export_best(cfg, out_dir, export_to, say))
    dinfo.barrier()
    return summary


def export_best(cfg: dict, out_dir: Path, path: str, say=print) -> Path:
    """Export ``best.pt`` (``last.pt`` when there was no validation or ``export.checkpoint`` is ``last``) with
    :mod:`vbg_app.train.export`."""
    from vbg_app.train.export import default_meta, export_onnx
    from vbg_app.train.model import ConnectNet

    want_best = cfg["export"].get("checkpoint", "best") == "best"
    src = out_dir / "best.pt" if want_best and (out_dir / "best.pt").is_file() else out_dir / "last.pt"
    ckpt = load_checkpoint(src)
    model = ConnectNet.for_state_dict(ckpt["model"])
    model.load_state_dict(ckpt["model"])
    model.eval()
    size = tuple(cfg["export"].get("size") or cfg["input_size"])
    scores = ckpt.get("metrics") or ckpt.get("best", {})  # this checkpoint's own val scores
    version = cfg["export"].get("version") or f"{cfg['name']}-it{ckpt['iteration']}"
    source = (f"ConnectNet (PP-HumanSegV1-Lite architecture) trained by vbg train, config {cfg['name']}, "
              f"iteration {ckpt['iteration']}, init {cfg['model']['init']}, losses "
              f"{', '.join(str(t.get('type', t)) if isinstance(t, dict) else str(t) for t in cfg['loss'])}; "
              f"val person IoU {scores.get('val_iou', float('nan')):.4f} at {tuple(cfg['input_size'])}")
    out = export_onnx(model, path, input_size_wh=size,
                      meta=default_meta(size, version=version, source=source,
                                        fit=cfg["export"].get("fit", "stretch")))
    say(f"exported {src.name} (iteration {ckpt['iteration']}) to {out} at {size[0]}x{size[1]}")
    return out
