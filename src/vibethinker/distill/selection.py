"""Choose which scored traces the student is trained on (SPEC 2.6 step 3). Pure functions, no model.

Filters, in order; each trace gets the reason of the first filter that removes it:

1. ``too_short``:    num_tokens < min_tokens.
2. Group the rest by (domain, length bucket); bucket i holds edges[i] <= num_tokens < edges[i+1] (last: open).
   Sort each group by S_LP ascending (ties by problem id, teacher, text, so the order is total and reproducible).
3. ``outlier``:      the top k = floor(drop_top_fraction * n) of the group's n traces by that order.
4. Band on the m remaining scores s_(1) <= ... <= s_(m), with the nearest-rank quantile
       Q(p) = s_(r),  r = max(1, ceil(p * m))       (the smallest score with at least p*m scores <= it)
   ``below_band``:   S_LP < Q(keep_low_quantile);   ``above_band``: S_LP > Q(keep_high_quantile).
   Ties with a band edge are kept. (p * m is rounded to 9 decimals first so 0.7 * 10 counts as 7, not 7.0000001.)
5. ``problem_cap``:  per problem, over all its surviving traces, keep the max_traces_per_problem of highest S_LP.
6. ``domain_mix``:   with weights w_d (normalised over the domains that still have traces; listed domains without
   traces are reported as missing), the largest set with shares w_d is T = min_d c_d / w_d traces, so domain d
   keeps n_d = min(c_d, floor(w_d * T)) of its c_d traces, drawn uniformly with random.Random(f"{seed}-{d}").
   Domains with weight 0 or not listed lose all their traces.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from vibethinker.distill.config import DistillConfig
from vibethinker.distill.harvest import Trace

REASONS = ("too_short", "outlier", "below_band", "above_band", "problem_cap", "domain_mix")
KEPT = "kept"
REPORT_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98, 1.0)


@dataclass(frozen=True)
class ScoredTrace:
    trace: Trace
    score: float  # S_LP under the student


def length_bucket(num_tokens: int, edges: Sequence[int]) -> int:
    """Index i of the bucket edges[i] <= num_tokens < edges[i+1] (the last bucket is open-ended)."""
    if num_tokens < edges[0]:
        raise ValueError(f"num_tokens {num_tokens} is below the first bucket edge {edges[0]}")
    return bisect_right(edges, num_tokens) - 1


def bucket_label(index: int, edges: Sequence[int]) -> str:
    upper = edges[index + 1] if index + 1 < len(edges) else "inf"
    return f"[{edges[index]},{upper})"


def nearest_rank(sorted_values: Sequence[float], p: float) -> float:
    """Q(p) = s_(max(1, ceil(p * m))) of ascending ``sorted_values`` (see the module docstring)."""
    if not sorted_values:
        raise ValueError("no values to take a quantile of")
    rank = max(1, math.ceil(round(p * len(sorted_values), 9)))
    return sorted_values[rank - 1]


def _order_key(item: ScoredTrace) -> tuple:
    return item.score, item.trace.problem_id, item.trace.teacher, item.trace.text


def _group_key(item: ScoredTrace, edges: Sequence[int]) -> tuple[str, int]:
    return item.trace.domain, length_bucket(item.trace.num_tokens, edges)


def _kept_by(reasons: Sequence[str], scored: Sequence[ScoredTrace], key) -> dict[str, list[int]]:
    """Indices of the traces still kept, grouped by ``key(trace)``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, reason in enumerate(reasons):
        if reason == KEPT:
            groups[key(scored[i].trace)].append(i)
    return groups


def _domain_targets(counts: dict[str, int], weights: dict[str, float]) -> dict[str, int]:
    present = {d: w for d, w in weights.items() if w > 0 and counts.get(d, 0) > 0}
    if not present:
        return {d: 0 for d in counts}
    total_weight = sum(present.values())
    shares = {d: w / total_weight for d, w in present.items()}
    largest = min(counts[d] / shares[d] for d in shares)
    return {d: min(c, math.floor(round(shares[d] * largest, 9))) if d in shares else 0 for d, c in counts.items()}


def selection_reasons(scored: Sequence[ScoredTrace], config: DistillConfig) -> list[str]:
    """The fate of each trace, in input order: ``"kept"`` or the name of the filter that removed it."""
    edges = config.length_bucket_edges
    reasons = [KEPT] * len(scored)
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, item in enumerate(scored):
        if item.trace.num_tokens < config.min_tokens:
            reasons[i] = "too_short"
        else:
            groups[_group_key(item, edges)].append(i)
    for members in groups.values():
        members.sort(key=lambda i: _order_key(scored[i]))
        n_out = math.floor(round(config.drop_top_fraction * len(members), 9))
        rest = members[:len(members) - n_out]
        for i in members[len(rest):]:
            reasons[i] = "outlier"
        if not rest:
            continue
        values = [scored[i].score for i in rest]
        low, high = nearest_rank(values, config.keep_low_quantile), nearest_rank(values, config.keep_high_quantile)
        for i in rest:
            if scored[i].score < low:
                reasons[i] = "below_band"
            elif scored[i].score > high:
                reasons[i] = "above_band"

    if config.max_traces_per_problem is not None:
        for members in _kept_by(reasons, scored, lambda trace: trace.problem_id).values():
            members.sort(key=lambda i: _order_key(scored[i]), reverse=True)
            for i in members[config.max_traces_per_problem:]:
                reasons[i] = "problem_cap"

    if config.domain_weights is not None:
        by_domain = _kept_by(reasons, scored, lambda trace: trace.domain)
        targets = _domain_targets({d: len(m) for d, m in by_domain.items()}, config.domain_weights)
        for domain, members in by_domain.items():
            members.sort(key=lambda i: _order_key(scored[i]))
            chosen = set(random.Random(f"{config.seed}-{domain}").sample(members, targets[domain]))
            for i in members:
                if i not in chosen:
                    reasons[i] = "domain_mix"
    return reasons


def _counts(reasons: Sequence[str]) -> dict:
    tally = Counter(reasons)
    return {"total": len(reasons), "kept": tally[KEPT], "removed": {r: tally[r] for r in REASONS}}


def selection_report(scored: Sequence[ScoredTrace], reasons: Sequence[str], config: DistillConfig) -> dict:
    """What each filter removed, overall, per domain and per (domain, bucket), with the groups' S_LP quantiles
    (nearest-rank, over the traces that were ranked: all but ``too_short``) and band edges."""
    edges = config.length_bucket_edges
    by_domain: dict[str, list[int]] = defaultdict(list)
    by_group: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, item in enumerate(scored):
        by_domain[item.trace.domain].append(i)
        by_group[_group_key(item, edges)].append(i)
    groups = {}
    for (domain, bucket), members in sorted(by_group.items()):
        ranked = sorted(scored[i].score for i in members if reasons[i] != "too_short")
        band_scores = sorted(scored[i].score for i in members if reasons[i] not in ("too_short", "outlier"))
        groups[f"{domain}/{bucket_label(bucket, edges)}"] = {
            "domain": domain, "bucket": bucket_label(bucket, edges), **_counts([reasons[i] for i in members]),
            "score_quantiles": {str(p): nearest_rank(ranked, p) for p in REPORT_QUANTILES} if ranked else None,
            "band": [nearest_rank(band_scores, config.keep_low_quantile),
                     nearest_rank(band_scores, config.keep_high_quantile)] if band_scores else None,
        }
    kept_per_domain = Counter(scored[i].trace.domain for i, r in enumerate(reasons) if r == KEPT)
    before_mix = Counter(scored[i].trace.domain for i, r in enumerate(reasons) if r in (KEPT, "domain_mix"))
    return {
        "quantile_rule": "nearest-rank: Q(p) = s_(max(1, ceil(p*m))) of the ascending scores",
        **_counts(reasons),
        "per_domain": {d: _counts([reasons[i] for i in members]) for d, members in sorted(by_domain.items())},
        "per_group": groups,
        "domain_mix": None if config.domain_weights is None else {
            "weights": dict(config.domain_weights), "before": dict(before_mix), "after": dict(kept_per_domain),
            "missing": sorted(d for d, w in config.domain_weights.items() if w > 0 and not before_mix.get(d)),
        },
        "kept_problems": len({scored[i].trace.problem_id for i, r in enumerate(reasons) if r == KEPT}),
    }


def select_traces(scored: Sequence[ScoredTrace], config: DistillConfig) -> tuple[list[ScoredTrace], dict]:
    """(the kept traces in input order, the report of :func:`selection_report`)."""
    reasons = selection_reasons(scored, config)
    kept = [item for item, reason in zip(scored, reasons) if reason == KEPT]
    return kept, selection_report(scored, reasons, config)
