"""``vbg train``: train ConnectNet from a YAML config (see :mod:`vbg_app.train.loop`).

Examples::

    vbg train --config vbg_app/train/configs/connectnet_v1.yaml --export runs/connectnet_v1.onnx
    vbg train --config vbg_app/train/configs/connectnet_v1.yaml --resume            # continue from last.pt
    vbg train --config vbg_app/train/configs/smoke.yaml --set iters=20 --output /tmp/smoke
    vbg train --config vbg_app/train/configs/connectnet_v1.yaml --bench             # speed figures only
    torchrun --nproc_per_node=4 -m vbg_app.train --config vbg_app/train/configs/connectnet_v1.yaml

``python -m vbg_app.train`` takes the same arguments. Exit codes: 0 done (or stopped by ``--stop-at``), 2 bad
config/input, 3 device, 143 / 130 stopped by SIGTERM / SIGINT after writing ``last.pt`` (continue with ``--resume``).
"""
from __future__ import annotations

import argparse
import os
import sys


def passive_openmp() -> None:
    """OpenMP threads that spin while they wait make PyTorch many times slower on a CPU shared with other
    processes (measured: 30x on the 2-core box with a loaded neighbour); passive waiting costs nothing
    measurable otherwise. Set for the training process (and its loader workers) only, by ``vbg train`` before
    it imports torch (OpenMP reads it once, when torch loads); a value already set is kept."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML training config (see vbg_app/train/configs/)")
    parser.add_argument("--resume", nargs="?", const="auto", metavar="CKPT",
                        help="continue from a checkpoint (default: OUTPUT/last.pt)")
    parser.add_argument("--stop-at", type=int, metavar="ITER",
                        help="stop at this iteration (checkpoint saved) without finishing the schedule; "
                             "continue later with --resume")
    parser.add_argument("--export", metavar="PATH", help="export the best checkpoint to this ONNX file at the end")
    parser.add_argument("--output", metavar="DIR", help="output folder (overrides the config's output)")
    parser.add_argument("--iters", type=int, help="training iterations (overrides the config)")
    parser.add_argument("--batch-size", type=int, help="batch size per process (overrides the config)")
    parser.add_argument("--workers", type=int, help="data loader workers per process (overrides the config)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. --set optimizer.lr=0.005 (repeatable)")
    parser.add_argument("--bench", action="store_true",
                        help="measure data pipeline samples/s (1 core), SC loss cost and training it/s; no training")
    parser.add_argument("--bench-iters", type=int, default=20, help="training iterations timed by --bench")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _config(args):
    from vbg_app.train.config import load_config

    overrides = list(args.set)
    for key, value in (("output", args.output), ("iters", args.iters), ("batch_size", args.batch_size),
                       ("data.workers", args.workers)):
        if value is not None:
            overrides.append(f"{key}={value}")
    return load_config(args.config, overrides)


def require_train_extra() -> None:
    """vbg train needs PyTorch and PyYAML (the train extra): one line saying so instead of a traceback."""
    import importlib

    for module in ("torch", "yaml"):
        try:
            importlib.import_module(module)
        except ImportError:
            from vbg_app.errors import BadInput

            raise BadInput(f"vbg train needs PyTorch and PyYAML (the train extra): {module} is missing",
                           "install the train extra: pip install 'vbg[train]'") from None


def run(args: argparse.Namespace) -> int:
    passive_openmp()  # before torch loads
    require_train_extra()
    cfg = _config(args)
    if args.bench:
        return bench(cfg, args.bench_iters, args.device)
    from vbg_app.train.loop import train

    summary = train(cfg, resume=args.resume, export_path=args.export, device_name=args.device,
                    progress=not args.quiet, stop_at=args.stop_at)
    best = summary["best"]
    state = "done" if summary["iterations"] == cfg["iters"] else "stopped"
    print(f"{state}: {summary['iterations']} iterations in {summary['elapsed_s'] / 60:.1f} min; "
          f"best val IoU {best['val_iou']:.4f} at iteration {best['iteration']}; outputs in {summary['output']}"
          + (f"; exported {summary['exported']}" if summary.get("exported") else ""), file=sys.stderr)
    if summary.get("signal"):  # stopped by SIGTERM/SIGINT (last.pt written): not done, so a chain stops here
        return 128 + int(summary["signal"])
    return 0


def bench(cfg: dict, iters: int = 20, device_name: str = "auto") -> int:
    """Print the three speed figures of a config: data pipeline samples/s on one core, the SC loss's cost
    per batch, and training iterations/s (model + losses + optimizer, data prepared beforehand)."""
    import time

    import cv2
    import torch

    from vbg_app.train.config import model_widths
    from vbg_app.train.data.datasets import benchmark
    from vbg_app.train.ddp import pick_device
    from vbg_app.train.loop import build_datasets, build_optimizer
    from vbg_app.train.losses import build_loss
    from vbg_app.train.losses.semantic_connectivity import bench as sc_bench
    from vbg_app.train.model import ConnectNet

    w, h = cfg["input_size"]
    bs = int(cfg["batch_size"])
    train_ds, _ = build_datasets(cfg)
    threads = torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    t0 = time.process_time()
    rate = benchmark(train_ds, 200)
    cpu = time.process_time() - t0
    print(f"data pipeline: {rate:.1f} samples/s on 1 core at {w}x{h} (CPU time {cpu / 201 * 1000:.1f} ms/sample; "
          f"training needs ~{bs} samples per step)")
    for r in sc_bench(bs, w, h):
        print(f"SC loss, {r['case']}: {r['wall_ms']:.1f} ms wall, {r['cpu_ms']:.1f} ms CPU per batch of {bs} at "
              f"{w}x{h} (forward+backward; median {r['components']} predicted person components, cap "
              f"{r['cap']})")
    torch.set_num_threads(threads if int(cfg["threads"]) <= 0 else int(cfg["threads"]))
    cv2.setNumThreads(0)
    device = pick_device(device_name)
    model = ConnectNet(**(model_widths(cfg) or {}), edge_head=int(cfg["model"]["edge_head"])).to(device).train()
    loss_fn = build_loss(cfg["loss"]).to(device)
    opt = build_optimizer(cfg, model)
    batches = []
    for b in range(2):
        items = [train_ds[(0, b * bs + j)] for j in range(bs)]
        batches.append({k: torch.stack([it[k] for it in items]).to(device) for k in ("image", "label", "soft")})
    for name, fn in (("full", loss_fn), ("cross-entropy only", build_loss("cross_entropy").to(device))):
        for i in range(iters + 2):
            if i == 2:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            batch = batches[i % 2]
            logits = model(batch["image"])
            loss, _ = fn(logits, batch["label"], batch["soft"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / iters
        print(f"training step ({name} loss): {1 / dt:.2f} it/s = {bs / dt:.1f} img/s at {w}x{h}, batch {bs}, "
              f"{device} ({torch.get_num_threads()} threads)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from vbg_app.errors import run_command

    return run_command("python -m vbg_app.train", __doc__.split("\n")[0], add_arguments, run, argv)
