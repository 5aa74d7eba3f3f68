"""``vbg train``'s config: :data:`DEFAULTS` (every key, with what it means) <- the YAML file <- ``--set KEY=VALUE``
overrides (:func:`load_config`), checked before anything is built; paths taken from the current directory, else
from the repository root (:func:`resolve_path`). Needs PyYAML, not torch."""
from __future__ import annotations

import copy
import os
from pathlib import Path

from vbg_app.errors import BadInput

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASED_ONNX = "../shared/models/reference/pphumanseg_v1_lite_398x224.onnx"
PAPER_WIDTHS = {"stem": 36, "shortcut": 18, "decoder": 64}  # ConnectNet's channels at 1/2 resolution

DEFAULTS: dict = {
    "name": None,  # run name (default: the config file's stem)
    "seed": 0,
    "input_size": [256, 144],  # training (and validation) input, width x height
    "model": {
        "init": "released",  # released | random | PATH to a .pt checkpoint (its "model" weights)
        "released_onnx": RELEASED_ONNX,
        "recalibrate_bn_batches": 8,  # after importing the released weights (their BN is folded)
        "sync_bn": False,  # SyncBatchNorm across processes (multi-GPU with small per-GPU batches)
        # channels at 1/2 resolution, {stem, shortcut, decoder} (null: the paper's 36/18/64). Narrower widths cut
        # the init's weights down to the channels that carry most (vbg_app/train/slim.py), then train as usual
        "widths": None,
        # a learned sub-pixel edge (model.py's EdgeHead): its conv's kernel size, 1 or 3 (0: none, the paper's
        # network). Added zero-initialised to whatever model.init gives, so training starts from its function
        "edge_head": 0,
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
    model_widths(cfg)  # checks model.widths
    eh = cfg["model"].get("edge_head", 0)
    if not isinstance(eh, int) or isinstance(eh, bool) or eh not in (0, 1, 3):
        raise BadInput(f"model.edge_head {eh!r} is not a kernel size", "use 1 or 3, or 0 for none")
    if cfg["schedule"]["type"] not in ("poly", "constant"):
        raise BadInput(f"schedule {cfg['schedule']['type']!r} is unknown", "use poly or constant")


def model_widths(cfg: dict) -> dict | None:
    """``model.widths`` as ``{stem, shortcut, decoder}`` ints (the paper's for missing keys), or None."""
    w = cfg["model"].get("widths")
    if not w:
        return None
    if not isinstance(w, dict) or set(w) - set(PAPER_WIDTHS):
        raise BadInput(f"model.widths {w!r} is not a mapping of {', '.join(PAPER_WIDTHS)}",
                       "write e.g. widths: {stem: 32, shortcut: 16, decoder: 32}")
    out = {k: w.get(k, v) for k, v in PAPER_WIDTHS.items()}
    for k, v in out.items():
        if not isinstance(v, int) or not 0 < v <= PAPER_WIDTHS[k]:
            raise BadInput(f"model.widths.{k} {v!r} is not a channel count from 1 to {PAPER_WIDTHS[k]}",
                           "slim models keep at most the paper's channels")
    return out


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
