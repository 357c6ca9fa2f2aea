"""MGPO: MaxEnt-Guided Policy Optimization advantages (SPEC 2.3, VibeThinker-1.5B report).

For a problem q with G sampled responses and binary correctness c_i:

    p(q) = (1/G) * #{i : c_i = 1}                                  empirical accuracy
    D(q) = p ln(p / 0.5) + (1 - p) ln((1 - p) / 0.5)               Bernoulli KL from 0.5, with 0 ln 0 = 0
    w(q) = exp(-lambda * D(q))                                     lambda = 0 is plain GRPO (w = 1)
    A_i  = (r_i - mean(r)) / (std(r) + eps)                        group-relative advantage of the rewards r
    A'_i = w(q) * A_i                                              the weight scales the NORMALISED advantage

``p`` always uses binary correctness, even when the rewards are shaped (Long2Short); putting ``w`` into the rewards
instead would cancel in the normalisation. ``std`` is the population standard deviation (divide by G), as in
GRPO's reference implementations *(our default; configurable)*.

>>> round(mgpo_weight(1 / 8, 2.0), 3)
0.531
"""

from __future__ import annotations

import math
from typing import Sequence


def bernoulli_kl_from_half(p: float) -> float:
    """D(q) of SPEC 2.3: KL(Bernoulli(p) || Bernoulli(0.5)), 0 at p = 0.5 and ln 2 at p in {0, 1}."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {p}")

    def term(x: float) -> float:
        return 0.0 if x == 0.0 else x * math.log(x / 0.5)

    return term(p) + term(1.0 - p)


def mgpo_weight(accuracy: float, mgpo_lambda: float) -> float:
    """w(q) = exp(-lambda * D(q)); favours problems solved about half the time."""
    if mgpo_lambda < 0:
        raise ValueError(f"mgpo_lambda must be >= 0, got {mgpo_lambda}")
    return math.exp(-mgpo_lambda * bernoulli_kl_from_half(accuracy))


def group_advantages(rewards: Sequence[float], eps: float = 1e-6, unbiased_std: bool = False) -> list[float]:
    """A_i = (r_i - mean) / (std + eps) within one group; all zeros when every reward is equal."""
    if not rewards:
        raise ValueError("a group needs at least one response")
    n = len(rewards)
    mean = sum(rewards) / n
    dof = n - 1 if unbiased_std and n > 1 else n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / dof)
    return [(r - mean) / (std + eps) for r in rewards]


def mgpo_advantages(rewards: Sequence[float], correct: Sequence[bool], mgpo_lambda: float, eps: float = 1e-6,
                    unbiased_std: bool = False) -> tuple[list[float], float]:
    """(A'_i for the group, w(q)). ``correct`` is the binary correctness that defines p(q)."""
    if len(rewards) != len(correct):
        raise ValueError(f"{len(rewards)} rewards but {len(correct)} correctness flags")
    weight = mgpo_weight(sum(bool(c) for c in correct) / len(correct), mgpo_lambda)
    return [weight * a for a in group_advantages(rewards, eps, unbiased_std)], weight
