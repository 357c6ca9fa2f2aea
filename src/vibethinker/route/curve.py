"""The cost-quality trade of a router, from per-problem confidence and the two models' per-problem quality.

A router escalates the problems it is least confident about. Escalating a share ``s`` of them (lowest confidence
first) gives the accuracy

    acc(s) = (1/N) * (sum_{i not escalated} q_local_i + sum_{i escalated} q_up_i)

with ``acc(0)`` the local model alone and ``acc(1)`` the large model alone. Problems of equal confidence are
escalated in a random order, so the curve is the expectation over that order: linear between the boundaries of
each tie group (one constant signal gives random routing's straight line). The performance gap recovered is
``PGR(s) = (acc(s) - acc(0)) / (acc(1) - acc(0))`` and RouteLLM's APGR (Ong et al. 2024) its area over ``s`` in
[0, 1]: 0.5 for random routing, up to about 1 for an oracle (above 1 where the large model is wrong on problems the
small one solves). Undefined (None) when the large model is no better than the small one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def routing_curve(confidence: Sequence[float], q_local: Sequence[float], q_up: Sequence[float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(shares, accuracies) at the boundaries of the tie groups, lowest confidence escalated first; the expected
    curve is linear between consecutive points."""
    conf, local, up = (np.asarray(x, dtype=float) for x in (confidence, q_local, q_up))
    if not len(conf) == len(local) == len(up) or len(conf) == 0:
        raise ValueError("routing_curve needs equal, non-empty confidence / q_local / q_up")
    order = np.argsort(conf, kind="stable")
    gains, sorted_conf = (up - local)[order], conf[order]
    boundaries = [0] + [i for i in range(1, len(conf)) if sorted_conf[i] != sorted_conf[i - 1]] + [len(conf)]
    cumulative = np.concatenate([[0.0], np.cumsum(gains)])
    shares = np.array(boundaries, dtype=float) / len(conf)
    return shares, (local.sum() + cumulative[boundaries]) / len(conf)


def pgr_curve(shares: np.ndarray, accuracies: np.ndarray) -> np.ndarray | None:
    gap = accuracies[-1] - accuracies[0]
    if gap <= 0:
        return None
    return (accuracies - accuracies[0]) / gap


def apgr(confidence, q_local, q_up) -> float | None:
    """Area under PGR(s); None when the large model does not beat the small one."""
    shares, accuracies = routing_curve(confidence, q_local, q_up)
    pgr = pgr_curve(shares, accuracies)
    return None if pgr is None else float(np.trapezoid(pgr, shares))


def share_to_recover(confidence, q_local, q_up, fraction: float) -> float | None:
    """The smallest escalation share whose expected PGR reaches ``fraction`` of the gap (None: no gap)."""
    shares, accuracies = routing_curve(confidence, q_local, q_up)
    pgr = pgr_curve(shares, accuracies)
    if pgr is None:
        return None
    for i in range(1, len(shares)):
        if pgr[i] >= fraction:
            if pgr[i] == pgr[i - 1]:
                return float(shares[i - 1] if pgr[i - 1] >= fraction else shares[i])
            t = max(0.0, (fraction - pgr[i - 1]) / (pgr[i] - pgr[i - 1]))
            return float(shares[i - 1] + t * (shares[i] - shares[i - 1]))
    return 1.0


def oracle_confidence(q_local, q_up) -> np.ndarray:
    """Confidence that escalates the problems the large model gains most on first."""
    return -(np.asarray(q_up, dtype=float) - np.asarray(q_local, dtype=float))


def risk_coverage(confidence, q_local) -> tuple[np.ndarray, np.ndarray, float]:
    """(coverage, risk, AURC) answering locally the most confident first; ties share their mean correctness."""
    conf, local = np.asarray(confidence, dtype=float), np.asarray(q_local, dtype=float)
    order = np.argsort(-conf, kind="stable")
    sorted_conf, sorted_local = conf[order], local[order].copy()
    for value in np.unique(sorted_conf):  # a tie group is answered in random order: its mean, item by item
        members = sorted_conf == value
        sorted_local[members] = sorted_local[members].mean()
    covered = np.arange(1, len(conf) + 1)
    risk = 1.0 - np.cumsum(sorted_local) / covered
    return covered / len(conf), risk, float(risk.mean())


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """ECE of a confidence in [0, 1] (values outside are clipped) against 0/1 (or fractional) correctness."""
    conf = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    right = np.asarray(correct, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(conf[index == b].mean() - right[index == b].mean()) * (index == b).sum()
                     for b in range(bins) if (index == b).any()) / len(conf))
