"""The training loop behind ``vbg train --config vbg_app/train/configs/connectnet_v1.yaml``.

What one run does (all settings in the YAML config; :data:`DEFAULTS` lists every key):

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
"""
from __future__ import annotations

import copy
import csv
import datetime
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from vbg_app.errors import BadInput
from vbg_app.train.checkpoint import load_checkpoint, save_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_EPOCH = 1_000_000  # augmentation seed of the BN re-calibration batches (not a training epoch)
RELEASED_ONNX = "../shared/models/reference/pphumanseg_v1_lite_398x224.onnx"

DEFAULTS: dict = {
    "name": None,  # run name (default: the config file's stem)
    "seed": 0,
    "input_size": [256, 144],  # training (and validation) input, width x height
    "model": {
        "init": "released",  # released | random | PATH to a .pt checkpoint (its "model" weights)
        "released_onnx": RELEASED_ONNX,
        "recalibrate_bn_batches": 8,  # after importing the released weights (their BN is folded)
        "sync_bn": False,  # SyncBatchNorm across processes (multi-GPU with small per-GPU batches)
    },
    "data": {
        "train": [],  # sources: paths or {path, kind, repeat, ...} (see vbg_app.train.data.datasets)
        "val": [],  # labeled folders/list files, scored separately
        "val_resize": "stretch",  # stretch | pad (letterbox) | aspect (each image at its own fit_size)
        # per-batch input aspects [[W, H, weight], ...]: each batch draws one and is rendered at
        # fit_size((W, H), input_size, "aspect") (about input_size's pixel count); [] = always input_size
        "aspects": [],
        "synthesis": {},  # Synthesizer options (see vbg_app.train.data.synthesis)
        "workers": 1,  # loader worker processes per training process (0 = in the main process)
    },
    "loss": [{"type": "cross_entropy", "weight": 0.8}, {"type": "lovasz_softmax", "weight": 0.2}],
    "distill": {"teacher": None, "teacher_on_labeled": False},  # a distillation loss term needs a teacher
    "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 4e-5, "nesterov": False},
    "schedule": {"type": "poly", "power": 0.9, "end_lr": 0.0, "warmup_iters": 0},
    "iters": 10000,
    "batch_size": 16,
    "val_every": 500,
    # also write last.pt when this many seconds of wall time passed since the last one (0: only at
    # validations); a long CPU run loses at most that much on a crash or a machine restart
    "checkpoint_every_s": 0,
    "val_at_start": True,
    "log_every": 20,
    "output": "runs/{name}",
    "amp": True,  # CUDA only: float16 autocast with a gradient scaler
    # CPU only: bfloat16 autocast of the forward pass (weights, optimizer and losses stay float32). About 2x
    # faster steps on CPUs with AVX512-BF16 or AMX (measured for ConnectNet at 256x144, batch 16, 1 thread:
    # 1.0 s instead of 2.0 s); slower on CPUs without them
    "cpu_bf16": False,
    "threads": 0,  # torch intra-op threads on the CPU (0 = torch's default)
    # size default: input_size; checkpoint: best (by mean val IoU) | last; fit: the vbg.fit the model was
    # trained for (stretch | letterbox | aspect, see vbg_app/engines/fit.py; aspect exports dynamic H and W)
    "export": {"path": None, "size": None, "version": None, "checkpoint": "best", "fit": "stretch"},
}


# -- config ------------------------------------------------------------------------------------------------------
def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in base:
            raise BadInput(f"unknown config key {where}{k}", f"known keys: {', '.join(base)}")
        if isinstance(base[k], dict) and isinstance(v, dict) and k not in ("synthesis", "export"):
            out[k] = _merge(base[k], v, f"{where}{k}.")
        elif isinstance(base[k], dict) and isinstance(v, dict):
            merged = dict(base[k])
            merged.update(v)
            out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_key(cfg: dict, dotted: str, value) -> None:
    """``cfg["a"]["b"] = value`` for ``dotted = "a.b"`` (value parsed as YAML when a string)."""
    import yaml

    if isinstance(value, str):
        value = yaml.safe_load(value)
    *path, last = dotted.split(".")
    node = cfg
    for k in path:
        if not isinstance(node.get(k), dict):
            raise BadInput(f"--set {dotted}: {k} is not a section", "use KEY.SUBKEY=VALUE with existing sections")
        node = node[k]
    node[last] = value


def load_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> dict:
    """DEFAULTS <- the YAML file <- ``KEY=VALUE`` overrides; checks the result."""
    import yaml

    user: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"config {p} does not exist", "see vbg_app/train/configs/ for examples")
        try:
            user = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise BadInput(f"config {p} is not valid YAML ({exc})", "fix the file") from None
        if not isinstance(user, dict):
            raise BadInput(f"config {p} is not a mapping", "write KEY: VALUE lines")
    cfg = _merge(DEFAULTS, user)
    for item in overrides:
        if "=" not in item:
            raise BadInput(f"--set {item!r} has no '='", "write --set KEY=VALUE, e.g. --set iters=200")
        k, v = item.split("=", 1)
        top = k.split(".")[0]
        if top not in DEFAULTS:
            raise BadInput(f"unknown config key {top}", f"known keys: {', '.join(DEFAULTS)}")
        set_key(cfg, k, v)
    if cfg["name"] is None:
        cfg["name"] = Path(path).stem if path else "run"
    check_config(cfg)
    return cfg


def check_config(cfg: dict) -> None:
    w, h = cfg["input_size"]
    if w < 32 or h < 32 or w % 2 or h % 2:
        raise BadInput(f"input_size {w}x{h} is unusable", "use even sizes of at least 32, e.g. [256, 144]")
    for key in ("iters", "batch_size", "val_every", "log_every"):
        if int(cfg[key]) < 1:
            raise BadInput(f"{key} must be at least 1", f"set {key} to a positive integer")
    if not cfg["data"]["train"]:
        raise BadInput("no training data", "list sources under data.train")
    if cfg["optimizer"]["type"].lower() not in ("sgd", "adamw"):
        raise BadInput(f"optimizer {cfg['optimizer']['type']!r} is unknown", "use sgd or adamw")
    if cfg["export"].get("checkpoint", "best") not in ("best", "last"):
        raise BadInput(f"export.checkpoint {cfg['export']['checkpoint']!r} is unknown", "use best or last")
    from vbg_app.engines.fit import FITS

    if cfg["export"].get("fit", "stretch") not in FITS:
        raise BadInput(f"export.fit {cfg['export']['fit']!r} is unknown", f"use {', '.join(FITS)}")
    if cfg["data"]["val_resize"] not in ("stretch", "pad", "aspect"):
        raise BadInput(f"data.val_resize {cfg['data']['val_resize']!r} is unknown", "use stretch, pad or aspect")
    aspect_sizes(cfg)  # checks data.aspects
    if cfg["schedule"]["type"] not in ("poly", "constant"):
        raise BadInput(f"schedule {cfg['schedule']['type']!r} is unknown", "use poly or constant")


def resolve_path(p) -> str:
    """Relative paths are taken from the current directory, else from the repository root."""
    path = Path(os.path.expanduser(str(p)))
    if path.is_absolute() or path.exists():
        return str(path)
    alt = REPO_ROOT / path
    return str(alt) if alt.exists() else str(path)


def _resolve_sources(specs):
    out = []
    for s in specs:
        if isinstance(s, dict):
            s = dict(s)
            if "path" in s:
                s["path"] = resolve_path(s["path"])
            if "root" in s:
                s["root"] = resolve_path(s["root"])
            if s.get("soft") is not None:
                s["soft"] = resolve_path(s["soft"])
            out.append(s)
        else:
            out.append(resolve_path(s))
    return out


# -- distributed -------------------------------------------------------------------------------------------------
class DistInfo:
    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        self.main = self.rank == 0

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            from vbg_app.errors import DeviceUnavailable
            raise DeviceUnavailable("CUDA is not available to PyTorch", "use --device cpu or install a CUDA build")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        torch.cuda.set_device(torch.device(name))
    return torch.device(name)


class ResumableSampler(Sampler):
    """An endless stream of ``(epoch, index)`` keys: each epoch's order (and this process's shard) is
    ``DistributedSampler(shuffle=True, seed=seed)`` at that epoch; ``start`` skips that many keys of this
    process's stream (resume)."""

    def __init__(self, n: int, world: int = 1, rank: int = 0, seed: int = 0, start: int = 0,
                 sizes=(), batch_size: int = 1) -> None:
        self.n, self.world, self.rank, self.seed, self.start = n, world, rank, seed, int(start)
        # sizes: [((w, h), weight), ...]; each run of batch_size keys gets one size (the same batch), drawn
        # from (seed, batch number) so that resume and every DDP rank agree
        self.sizes = [tuple(int(v) for v in s) for s, _ in sizes]
        wsum = float(sum(wt for _, wt in sizes)) if sizes else 0.0
        self.size_p = np.array([wt / wsum for _, wt in sizes]) if sizes else None
        self.batch_size = max(1, int(batch_size))

        class _Len:
            def __len__(_self):
                return n

        self._sampler = DistributedSampler(_Len(), num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                           drop_last=False)
        self.per_epoch = len(self._sampler)

    def __iter__(self):
        epoch, skip = divmod(self.start, self.per_epoch)
        while True:
            self._sampler.set_epoch(epoch)
            for j, i in enumerate(self._sampler):
                if j >= skip:
                    if self.sizes:
                        b = (epoch * self.per_epoch + j) // self.batch_size
                        k = int(np.random.default_rng([self.seed, 7919, b]).choice(len(self.sizes), p=self.size_p))
                        yield (epoch, int(i), self.sizes[k])
                    else:
                        yield (epoch, int(i))
            skip = 0
            epoch += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for len(loader), which is not used
        return 2 ** 62


def _mp_context():
    """Loader workers are started with ``forkserver`` (``spawn`` where missing), never a bare ``fork``: a
    forked child inherits OpenCV's and OpenMP's thread pools half-locked and can hang in its first
    ``cv2`` call (seen here: a worker stuck on a futex after the BN re-calibration ran in the parent)."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


# -- building blocks -----------------------------------------------------------------------------------------------
def build_datasets(cfg: dict):
    from vbg_app.train.data import PortraitDataset, ValDataset

    size = tuple(cfg["input_size"])
    synth = dict(cfg["data"]["synthesis"] or {})
    if synth.get("backgrounds"):
        synth["backgrounds"] = [resolve_path(b) for b in synth["backgrounds"]]
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


def aspect_sizes(cfg: dict) -> list:
    """``[((w, h), weight), ...]`` of ``data.aspects`` at ``input_size``'s pixel budget (empty: fixed size)."""
    from vbg_app.engines.fit import fit_size

    out = []
    for a in cfg["data"].get("aspects") or []:
        if not (isinstance(a, (list, tuple)) and len(a) == 3 and all(isinstance(v, (int, float)) for v in a)
                and a[0] > 0 and a[1] > 0 and a[2] >= 0):
            raise BadInput(f"data.aspects entry {a!r} is not [W, H, weight]", "e.g. data.aspects: [[16, 9, 0.5], [2, 3, 0.5]]")
        out.append((fit_size((a[0] * 1000, a[1] * 1000), tuple(cfg["input_size"]), "aspect"), float(a[2])))
    if out and sum(w for _, w in out) <= 0:
        raise BadInput("data.aspects weights sum to 0", "give at least one aspect a positive weight")
    return out


def build_model(cfg: dict, train_ds=None, device=torch.device("cpu"), log=print):
    from vbg_app.train.model import ConnectNet

    init = str(cfg["model"]["init"])
    model = ConnectNet()
    if init == "released":
        from vbg_app.train.weights import import_onnx_weights, recalibrate_bn

        path = resolve_path(cfg["model"]["released_onnx"])
        if not Path(path).is_file():
            raise BadInput(f"released weights {path} not found",
                           "set model.released_onnx, or model.init: random")
        import_onnx_weights(model, path)
        n = int(cfg["model"]["recalibrate_bn_batches"])
        if n > 0 and train_ds is not None:
            bs = int(cfg["batch_size"])
            batches = [torch.stack([torch.from_numpy(_input_of(train_ds, b * bs + j)) for j in range(bs)])
                       for b in range(n)]
            recalibrate_bn(model, batches)
            log(f"imported released weights from {path}; BN re-calibrated on {n} batches")
    elif init != "random":
        ckpt = load_checkpoint(resolve_path(init), "set model.init to a .pt file written by vbg train, "
                               "released or random")
        try:
            model.load_state_dict(ckpt.get("model", ckpt) if isinstance(ckpt, dict) else ckpt)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise BadInput(f"model.init {init} is not a ConnectNet checkpoint ({str(exc).splitlines()[0][:120]})",
                           "set model.init to a .pt file written by vbg train, released or random") from None
        log(f"initialised from {init}")
    return model.to(device)


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


# -- checkpoints / logs ------------------------------------------------------------------------------------------------
def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def rng_state() -> dict:
    """The RNG states as tensors and plain data (the numpy key array as a list): loadable with weights_only."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, keys.tolist(), int(pos), int(has_gauss), float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CsvLog:
    """``log.csv``: one row per log interval; validation columns filled on validation rows."""

    def __init__(self, path: Path, columns: list[str], append: bool) -> None:
        self.path = path
        self.columns = columns
        if not (append and path.is_file()):
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(columns)

    def write(self, row: dict) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c, "")) for c in self.columns])

    def truncate_after(self, iteration: int) -> None:
        """Drop rows past ``iteration`` (resuming from an older checkpoint)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= iteration]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows(keep)


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def plot_curves(csv_path: Path, png_path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    cols = list(rows[0].keys())

    def series(col):
        xs, ys = [], []
        for r in rows:
            if r.get(col, "") not in ("", None):
                xs.append(int(float(r["iter"])))
                ys.append(float(r[col]))
        return xs, ys

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for c in cols:
        if c == "loss" or c.startswith("loss/"):
            xs, ys = series(c)
            if xs:
                ax1.plot(xs, ys, label=c, lw=1.6 if c == "loss" else 1.0)
    xs, ys = series("train_iou")
    if xs:
        ax1.plot(xs, ys, label="train IoU (batch)", lw=0.8, alpha=0.6)
    ax1.set_xlabel("iteration")
    ax1.set_title("training")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    for c in cols:
        if c.endswith("/iou") or c.endswith("/sc") or c.endswith("/miou"):
            xs, ys = series(c)
            if xs:
                ax2.plot(xs, ys, marker="o", ms=3, label=c, ls="-" if c.endswith("/iou") else "--")
    ax2.set_xlabel("iteration")
    ax2.set_title("validation (at the training input size)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = png_path.with_name(png_path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(png_path)


# -- the loop ---------------------------------------------------------------------------------------------------------
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
    model = ConnectNet()
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
