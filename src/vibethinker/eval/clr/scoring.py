"""CLR scoring (SPEC 4 steps 4-6): response reliability, reliability-weighted answer choice, repeated draws.

* ``response_reliability``: ``r_k = ((1/M) * sum_m v_{k,m}) ** M``. With fewer than M claims the mean runs over the
  claims found, the exponent stays M; a response with no claims scores 0 (SPEC 4, our defaults). 4 of 5 valid gives
  ``0.8 ** 5 = 0.32768``, 3 of 5 gives ``0.6 ** 5 = 0.07776``. Computed in exact rationals, then one rounding.
* ``clr_select``: responses without a final answer are dropped; equal answer keys form a cluster; the cluster with the
  largest sum of r_k wins; ties go to the larger cluster, then to the cluster that appeared first.
* ``majority_select``: the same with every r_k = 1 (the sum is the cluster size): cons@n with the same tie rule.
* ``merge_equivalent_keys``: clustering by the math verifier's equivalence. Equal vote keys already share a cluster;
  each new distinct key is compared with the representatives (first appearance) of the clusters so far and joins the
  first equivalent one. The equivalence test is passed in (run.py uses the math-verify worker pool), keeping this
  module free of processes.
* ``clr_pass_at_1``: SPEC 4 step 6. Each of R repetitions draws K of the n available samples without replacement
  (``random.Random(f"{seed}:{rep}")``, indices kept in sample order so "first appearance" means the lower sample
  index), applies CLR and majority vote to the draw and scores the choice; plain pass@1 is the mean correctness of the
  drawn samples. With exactly K samples available every draw is the whole set, so the R repetitions agree (and equal
  a single run): the repetitions are only independent when more than K samples exist (e.g. an eval with n = 64 for
  K = 32). A chosen cluster counts as correct when most of its drawn members were graded correct (the cons@n rule of
  ``eval.metrics.cons_at_n``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Hashable, Sequence


def response_reliability(verdicts: Sequence[bool], m: int) -> float:
    """``((1/n) * sum v) ** m`` over the ``n <= m`` verdicts found; 0.0 when there are none."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"M (claims per response) must be an int >= 1, got {m!r}")
    if len(verdicts) > m:
        raise ValueError(f"{len(verdicts)} claim verdicts for M={m}: keep at most M claims per response")
    if not verdicts:
        return 0.0
    return float(Fraction(sum(bool(v) for v in verdicts), len(verdicts)) ** m)


def clr_select(responses: Sequence[tuple[Hashable | None, float]]) -> Hashable | None:
    """The answer key of the cluster with the largest summed reliability (ties: larger cluster, then earlier).

    ``responses`` are ``(answer_key, reliability)`` pairs in sample order; a ``None`` key (no final answer) is
    dropped. Returns ``None`` when no response has an answer.
    """
    totals: dict[Hashable, Fraction] = {}
    sizes: dict[Hashable, int] = {}
    for key, reliability in responses:
        if key is None:
            continue
        if not 0.0 <= reliability <= 1.0:
            raise ValueError(f"reliability must be in [0, 1], got {reliability!r}")
        # exact sums: two clusters with equal reliabilities tie whatever the order of addition
        totals[key] = totals.get(key, Fraction(0)) + Fraction(reliability)
        sizes[key] = sizes.get(key, 0) + 1
    if not totals:
        return None
    order = {key: index for index, key in enumerate(totals)}  # dicts keep first-appearance order
    return max(totals, key=lambda key: (totals[key], sizes[key], -order[key]))


def majority_select(keys: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent answer key (ties: earlier); ``None`` when no response has an answer."""
    return clr_select([(key, 1.0) for key in keys])


def merge_equivalent_keys(keys: Sequence[str | None],
                          equivalent_many: Callable[[list[tuple[str, str]]], list[bool]]) -> list[str | None]:
    """Map each key to its cluster's representative key, merging keys the equivalence test calls equal.

    ``equivalent_many(pairs)`` answers a batch of ``(key, representative)`` pairs. Distinct keys are visited in
    first-appearance order; each new key is tested against all representatives so far in one batch and joins the
    earliest equivalent one, or becomes a representative itself.
    """
    representative: dict[str, str] = {}
    reps: list[str] = []
    for key in keys:
        if key is None or key in representative:
            continue
        matches = equivalent_many([(key, rep) for rep in reps]) if reps else []
        if len(matches) != len(reps):
            raise RuntimeError(f"equivalence test answered {len(matches)} of {len(reps)} pairs")
        joined = next((rep for rep, same in zip(reps, matches) if same), None)
        if joined is None:
            reps.append(key)
            joined = key
        representative[key] = joined
    return [None if key is None else representative[key] for key in keys]


def cluster_correct(key: Hashable | None, keys: Sequence[Hashable | None], correct: Sequence[bool]) -> bool:
    """Whether the cluster ``key`` is right: most of its members were graded correct (no key: wrong)."""
    if key is None:
        return False
    flags = [bool(ok) for other, ok in zip(keys, correct) if other == key]
    return 2 * sum(flags) > len(flags)


@dataclass
class Draw:
    """One repetition: the drawn sample indices and what CLR, majority vote and plain sampling scored on them."""

    indices: list[int]
    clr_key: Hashable | None
    majority_key: Hashable | None
    clr_correct: bool
    majority_correct: bool
    pass_at_1: float


@dataclass
class RepeatedSelection:
    """Means over the R repetitions of SPEC 4 step 6."""

    clr: float
    majority: float
    pass_at_1: float
    draws: list[Draw] = field(default_factory=list)


def draw_indices(n: int, k: int, seed: int | str, repetition: int) -> list[int]:
    """K of ``range(n)`` without replacement, seeded per repetition, in sample order."""
    if not 1 <= k <= n:
        raise ValueError(f"cannot draw K={k} of {n} samples (need 1 <= K <= n)")
    return sorted(random.Random(f"{seed}:{repetition}").sample(range(n), k))


def clr_pass_at_1(keys: Sequence[Hashable | None], reliabilities: Sequence[float], correct: Sequence[bool], k: int,
                  repetitions: int, seed: int | str) -> RepeatedSelection:
    """CLR pass@1, majority-vote pass@1 and plain pass@1 of one problem, each a mean over ``repetitions`` draws."""
    if not len(keys) == len(reliabilities) == len(correct):
        raise ValueError(f"{len(keys)} answer keys, {len(reliabilities)} reliabilities, {len(correct)} flags: "
                         f"one of each per sample")
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    draws = []
    for rep in range(repetitions):
        indices = draw_indices(len(keys), k, seed, rep)
        drawn_keys = [keys[i] for i in indices]
        drawn_correct = [bool(correct[i]) for i in indices]
        chosen = clr_select([(keys[i], reliabilities[i]) for i in indices])
        majority = majority_select(drawn_keys)
        draws.append(Draw(indices, chosen, majority, cluster_correct(chosen, drawn_keys, drawn_correct),
                          cluster_correct(majority, drawn_keys, drawn_correct), sum(drawn_correct) / k))
    return RepeatedSelection(
        clr=sum(d.clr_correct for d in draws) / repetitions,
        majority=sum(d.majority_correct for d in draws) / repetitions,
        pass_at_1=sum(d.pass_at_1 for d in draws) / repetitions,
        draws=draws,
    )


__all__ = ["Draw", "RepeatedSelection", "clr_pass_at_1", "clr_select", "cluster_correct", "draw_indices",
           "majority_select", "merge_equivalent_keys", "response_reliability"]
