"""What a run leaves beside its checkpoints: ``log.csv`` (one row per log interval, validation columns on
validation rows) and ``curves.png`` (losses and val scores, matplotlib Agg)."""
from __future__ import annotations

import csv
import math
from pathlib import Path


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
