"""The metrics of the evaluation protocol (SPEC 3): avg@n (pass@1), unbiased pass@k, cons@n, length and cut-off.

Per-problem functions take one problem's samples; the runner averages them over problems (every problem counts
equally, whatever its number of samples).
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: ``1 - C(n-c, k) / C(n, k)``.

    Computed as ``1 - prod_{i=n-c+1..n} (1 - k/i)`` (Chen et al., 2021): no huge binomials, no overflow, and exact
    to float precision. It is 1 whenever fewer than ``k`` samples are wrong (any k draws contain a correct one).
    """
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        raise ValueError(f"k={k} > n={n}: pass@k needs at least k samples")
    if c > n:
        raise ValueError(f"c={c} correct out of n={n} samples is impossible")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def avg_at_n(correct_flags: Sequence[bool]) -> float:
    """pass@1 estimated as the mean correctness over all samples (avg@n)."""
    if len(correct_flags) == 0:
        raise ValueError("avg@n of zero samples is undefined")
    return sum(bool(flag) for flag in correct_flags) / len(correct_flags)


def majority_answer(answer_keys: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent non-missing key; ties go to the key that appeared first. None when no sample answered."""
    counts = Counter(key for key in answer_keys if key is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(key for key in answer_keys if key is not None and counts[key] == top)


def cons_at_n(answer_keys: Sequence[Hashable | None], correct_flags: Sequence[bool]) -> float:
    """Majority-vote accuracy of one problem: 1.0 if the majority answer is correct, else 0.0.

    ``answer_keys[i]`` is the vote key (``verify.vote_key``) of sample i's extracted answer, None when it gave none;
    missing answers do not vote, and a problem where no sample answered scores 0. Samples sharing a key should share
    a verdict; if they disagree (e.g. a flaky code timeout), the answer counts as correct when most of its samples were.
    """
    if len(answer_keys) != len(correct_flags):
        raise ValueError(f"{len(answer_keys)} answer keys but {len(correct_flags)} correctness flags")
    winner = majority_answer(answer_keys)
    if winner is None:
        return 0.0
    flags = [bool(ok) for key, ok in zip(answer_keys, correct_flags) if key == winner]
    return 1.0 if 2 * sum(flags) > len(flags) else 0.0


def mean_tokens(token_counts: Sequence[int]) -> float:
    """Mean response length in tokens (0 for no samples, so empty groups still print)."""
    return float(np.mean(token_counts)) if len(token_counts) else 0.0


def cutoff_ratio(finish_reasons: Sequence[str]) -> float:
    """Share of responses cut off at the length limit (finish_reason == "length")."""
    if len(finish_reasons) == 0:
        return 0.0
    return sum(reason == "length" for reason in finish_reasons) / len(finish_reasons)


def bootstrap_ci(per_problem_values: Sequence[float], n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean, resampling problems (not samples).

    Problems are the unit because samples of one problem are correlated; with few problems the interval is wide,
    which is the point: it tells whether two checkpoints' pass@1 really differ.
    """
    values = np.asarray(per_problem_values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


__all__ = ["avg_at_n", "bootstrap_ci", "cons_at_n", "cutoff_ratio", "majority_answer", "mean_tokens", "pass_at_k"]
