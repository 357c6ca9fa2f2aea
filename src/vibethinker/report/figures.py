"""The figures of the HTML run report, as PNG bytes (the page embeds them as ``data:`` URIs, so it stays one file).

Inputs are what the stages wrote: an eval stage's ``samples.jsonl`` rows (``problem_id``, ``domain``, ``correct``,
``tokens``, ...), its ``summary.json`` breakdowns, and a training stage's ``metrics.jsonl``.

pass@k curve of an eval stage: for each problem with ``n`` samples of which ``c`` are correct, the unbiased
``pass@k = 1 - C(n-c, k) / C(n, k)`` (:func:`vibethinker.eval.metrics.pass_at_k`), averaged over problems (every
problem counts equally), at ``k = 1, 2, 4, ...`` up to the smallest ``n`` of any problem, and that ``n`` itself.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from vibethinker.data.records import RecordError
from vibethinker.eval.pass_curve import pass_at_k_curve
from vibethinker.report.plots import plot_metric_grid
from vibethinker.utils.files import JsonlError, read_jsonl

SAMPLE_FIELDS = {"problem_id": str, "domain": str, "correct": bool, "tokens": int}
# Panels of a training-curve grid, in this order, when logged: the SFT loss first, then RL reward, entropy, length.
TRAINING_KEYS = ("loss", "reward_mean", "accuracy", "entropy", "response_length_mean", "response_length_max",
                 "truncated_share", "solved_none_share", "solved_all_share", "mgpo_weight_mean", "advantage_std",
                 "kl", "clip_fraction", "logprob_gap", "grad_norm", "lr", "tokens_per_s", "generation_tokens_per_s")
COLOURS = {"correct": "#3b8f5a", "wrong": "#c8553d"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are built on training hosts without a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    plt.close(fig)
    return buffer.getvalue()


def load_samples(path: str | os.PathLike) -> list[dict]:
    """The rows of an eval stage's ``samples.jsonl``; a row without a field the report needs raises
    :class:`RecordError` naming the file, the line and the field."""
    rows = []
    try:
        for number, row in read_jsonl(path):
            _check_sample(path, number, row)
            rows.append(row)
    except JsonlError as exc:
        raise RecordError(path, exc.line, "<json>", f"not valid JSON: {exc.reason}") from None
    return rows


def _check_sample(path: str | os.PathLike, number: int, row) -> None:
    if not isinstance(row, dict):
        raise RecordError(path, number, "<row>", f"expected a JSON object, got {type(row).__name__}")
    for name, kind in SAMPLE_FIELDS.items():
        value = row.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise RecordError(path, number, name, f"expected {kind.__name__}, got {value!r}")


def samples_pass_curve(rows: Sequence[dict]) -> dict[int, float]:
    """The pass@k curve (:func:`vibethinker.eval.pass_curve.pass_at_k_curve`) of an eval's sample rows."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        counts[row["problem_id"]][0] += 1
        counts[row["problem_id"]][1] += bool(row["correct"])
    return pass_at_k_curve([tuple(c) for c in counts.values()]) if counts else {}


def pass_at_k_figure(curves: dict[str, dict[int, float]]) -> bytes | None:
    """One line per eval stage, pass@k against k on a log2 axis."""
    curves = {name: curve for name, curve in curves.items() if curve}
    if not curves:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, curve in curves.items():
        ax.plot(list(curve), list(curve.values()), marker="o", markersize=4, label=name)
    ax.set_xscale("log", base=2)
    ks = sorted({k for curve in curves.values() for k in curve})
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k (samples drawn)")
    ax.set_ylabel("pass@k (unbiased)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def length_histogram_figure(samples: dict[str, list[dict]], columns: int = 2) -> bytes | None:
    """One panel per eval stage: response lengths in tokens, correct and wrong stacked, on shared bins."""
    samples = {name: rows for name, rows in samples.items() if rows}
    if not samples:
        return None
    import numpy as np

    plt = _pyplot()
    lengths = [row["tokens"] for rows in samples.values() for row in rows]
    bins = np.histogram_bin_edges(lengths, bins=min(30, max(1, len(set(lengths)))))
    n_rows = -(-len(samples) // columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(4.6 * columns, 2.8 * n_rows), squeeze=False, sharex=True)
    for ax, (name, rows) in zip(axes.flat, samples.items()):
        right = [row["tokens"] for row in rows if row["correct"]]
        wrong = [row["tokens"] for row in rows if not row["correct"]]
        ax.hist([right, wrong], bins=bins, stacked=True, color=[COLOURS["correct"], COLOURS["wrong"]],
                label=[f"correct ({len(right)})", f"wrong ({len(wrong)})"])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("response tokens", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(samples):]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def domain_accuracy_figure(evals: dict[str, dict]) -> bytes | None:
    """Grouped bars: pass@1 per domain (x) for every eval stage (one bar colour per stage)."""
    domains = sorted({d for summary in evals.values() for d in summary.get("by_domain", {})})
    if not domains:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(domains) + 2), 3.4))
    width = 0.8 / len(evals)
    for index, (name, summary) in enumerate(evals.items()):
        values = [summary.get("by_domain", {}).get(d, {}).get("pass@1", 0.0) or 0.0 for d in domains]
        offsets = [x + (index - (len(evals) - 1) / 2) * width for x in range(len(domains))]
        bars = ax.bar(offsets, values, width=width * 0.95, label=name)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=6, padding=1)
    ax.set_xticks(range(len(domains)), domains)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pass@1")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


def training_curves_figure(metrics_path: str | os.PathLike, title: str) -> bytes | None:
    """The :data:`TRAINING_KEYS` a stage logged, one panel each (every numeric key when none of them was)."""
    from vibethinker.utils.run_log import read_metrics

    rows = read_metrics(metrics_path)
    logged = {k for row in rows for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    keys = [k for k in TRAINING_KEYS if k in logged] or sorted(logged - {"step"})
    with tempfile.TemporaryDirectory() as folder:  # plot_metric_grid writes a file; the page wants the bytes
        png = Path(folder) / "curves.png"
        if not plot_metric_grid(Path(metrics_path), png, keys, title=title, columns=4):
            return None
        return png.read_bytes()
