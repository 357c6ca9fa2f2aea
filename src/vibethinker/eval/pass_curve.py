"""The pass@k curve of a benchmark (SPEC 3: pass@k with the unbiased estimator) and its plot.

For per-problem sample counts ``(n_i, c_i)`` (samples drawn, samples correct)::

    curve[k] = (1 / P) * sum_i pass@k(n_i, c_i),    pass@k(n, c) = 1 - C(n - c, k) / C(n, k)

for ``k = 1, 2, 4, ...`` (powers of two) up to ``n = min_i n_i``, plus ``n`` itself when it is not a power of two:
pass@k is only defined for ``k <= n`` of every problem. ``curve[1]`` equals avg@n, the reported pass@1.
Worked example, one problem with n=4, c=2: pass@1 = 1/2, pass@2 = 1 - C(2,2)/C(4,2) = 5/6, pass@4 = 1.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from vibethinker.eval.metrics import pass_at_k
from vibethinker.utils.files import write_bytes_atomic


def curve_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to ``n``, and ``n`` itself."""
    if n < 1:
        raise ValueError(f"a pass@k curve needs n >= 1 samples per problem, got {n}")
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks if ks[-1] == n else [*ks, n]


def pass_at_k_curve(per_problem_counts: Sequence[tuple[int, int]],
                    ks: Sequence[int] | None = None) -> dict[int, float]:
    """``{k: mean over problems of the unbiased pass@k}`` for ``ks`` (default :func:`curve_ks` of the smallest n)."""
    if not per_problem_counts:
        raise ValueError("a pass@k curve needs at least one problem")
    smallest_n = min(n for n, _ in per_problem_counts)
    ks = curve_ks(smallest_n) if ks is None else sorted(set(ks))
    too_large = [k for k in ks if k > smallest_n]
    if too_large:
        raise ValueError(f"pass@k needs k <= n for every problem; the smallest n is {smallest_n}, got k={too_large}")
    return {k: sum(pass_at_k(n, c, k) for n, c in per_problem_counts) / len(per_problem_counts) for k in ks}


def plot_pass_curve(curves: dict[str, dict[int, float]], png_path: str | os.PathLike) -> Path:
    """One line per benchmark, pass@k (%) over k on a log2 axis; written atomically as a PNG."""
    if not curves:
        raise ValueError("plot_pass_curve needs at least one curve")
    import matplotlib

    matplotlib.use("Agg")  # headless: evaluation hosts have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, curve in curves.items():
        ks = sorted(int(k) for k in curve)  # a curve read back from JSON has string keys
        values = [100 * _value(curve, k) for k in ks]
        ax.plot(ks, values, marker="o", markersize=3, label=name)
    ax.set_xscale("log", base=2)
    all_ks = sorted({int(k) for curve in curves.values() for k in curve})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(-2, 102)
    ax.set_title("pass@k (unbiased estimator)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    return write_bytes_atomic(png_path, buffer.getvalue())


def _value(curve: dict, k: int) -> float:
    return curve[k] if k in curve else curve[str(k)]


__all__ = ["curve_ks", "pass_at_k_curve", "plot_pass_curve"]
