"""PNG plots of the curves a stage logged to ``metrics.jsonl`` (matplotlib, headless Agg backend)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

from vibethinker.utils.files import write_bytes_atomic
from vibethinker.utils.run_log import read_metrics


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, png_path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    write_bytes_atomic(png_path, buffer.getvalue())


def plot_training_curve(metrics_path: Path, png_path: Path, key: str = "loss") -> bool:
    """One metric against the optimiser step; False when nothing was logged under ``key``."""
    rows = [r for r in read_metrics(metrics_path) if key in r]
    if not rows:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([r["step"] for r in rows], [r[key] for r in rows])
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(key)
    ax.set_title(f"{metrics_path.parent.name}: {key}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, png_path)
    plt.close(fig)
    return True


def plot_metric_grid(metrics_path: Path, png_path: Path, keys: Sequence[str], title: str = "",
                     columns: int = 4) -> bool:
    """One small panel per metric in ``keys`` that was logged (NaN points skipped); False when none was."""
    rows = read_metrics(metrics_path)
    present = [k for k in keys if any(_finite(r.get(k)) for r in rows)]
    if not present:
        return False
    plt = _pyplot()
    n_rows = math.ceil(len(present) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.2 * columns, 2.3 * n_rows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        points = [(r["step"], r[key]) for r in rows if _finite(r.get(key))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 40 else None)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, png_path)
    plt.close(fig)
    return True


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
