"""``vibethinker route-eval``: how well would a router have done, from two eval folders.

Inputs are the ``samples.jsonl`` of an evaluation of the local model (n samples per problem) and of the large
model, on the same problems. Per problem, the router's local answer is what the server's best-of-k would return
from the first ``k`` local samples (serve/best_of_n.py: clustered final answers, majority or CLR), and its
confidence is

* ``majority``: the chosen cluster's share of the k samples (Yue et al. 2024's answer consistency);
* ``clr``: the CLR margin, the winner's summed claim reliability minus the runner-up's over the total (SPEC 4);
* baselines in the same run: ``random`` (one constant: the expected curve of a random order), ``length`` (shorter
  chosen response = more confident) and ``oracle`` (escalate where the large model gains most).

As in the server, a problem with no final answer among the samples, or whose chosen response was cut at the length
limit, is escalated first (confidence -1). ``q_local`` is the chosen response's correctness, ``q_up`` the large
model's mean correctness over its samples (its expected single-call accuracy). Intervals resample problems
(percentile bootstrap), with the CLR-minus-majority APGR difference paired on the same resamples.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vibethinker.route.curve import (apgr, expected_calibration_error, oracle_confidence, risk_coverage,
                                     routing_curve, share_to_recover)

SIGNALS = ("majority", "clr", "length", "random", "oracle")
ESCALATE_FIRST = -1.0


class RouteEvalError(ValueError):
    pass


@dataclass
class ProblemRoute:
    problem_id: str
    domain: str
    q_up: float
    q_local: dict[str, float]  # by selection rule: majority, clr
    confidence: dict[str, float]  # by signal
    local_tokens: int  # tokens the k local samples spent


def read_samples(folder: str | os.PathLike) -> dict[str, list[dict]]:
    """``samples.jsonl`` of an eval folder grouped by problem, in sample order; errors name file, line and field."""
    path = Path(folder) / "samples.jsonl"
    if not path.exists():
        raise RouteEvalError(f"{path}: no such file (an eval stage's folder holds samples.jsonl)")
    grouped: dict[str, list[dict]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RouteEvalError(f"{path}:{number}: not JSON ({exc.msg})") from None
            for field, kind in (("problem_id", str), ("correct", bool)):
                if not isinstance(row.get(field), kind):
                    raise RouteEvalError(f"{path}:{number}: field {field!r} must be a {kind.__name__}")
            grouped[row["problem_id"]].append(row)
    if not grouped:
        raise RouteEvalError(f"{path}: no samples")
    for rows in grouped.values():
        rows.sort(key=lambda r: r.get("sample_index", 0))
    return dict(grouped)


def problem_routes(local: dict[str, list[dict]], upstream: dict[str, list[dict]], k: int | None = None,
                   questions: dict[str, str] | None = None) -> list[ProblemRoute]:
    from vibethinker.serve.best_of_n import select_response

    missing = sorted(set(local) - set(upstream))
    if missing:
        raise RouteEvalError(f"{len(missing)} local problems have no upstream samples, e.g. {missing[:3]}")
    routes = []
    for problem_id, rows in local.items():
        rows = rows[:k] if k else rows
        domain = rows[0].get("domain", "math")
        texts = [r.get("response", "") for r in rows]
        answers = [r.get("answer") for r in rows]
        rule_domain = "code" if domain == "code" else "math"
        question = (questions or {}).get(problem_id)
        q_local, confidence = {}, {}
        for rule in ("majority", "clr"):
            chosen = select_response(texts, question, rule, rule_domain, answers=answers)
            usable = chosen.index is not None and rows[chosen.index].get("finish_reason") != "length"
            q_local[rule] = float(rows[chosen.index]["correct"]) if chosen.index is not None else 0.0
            signal = chosen.agreement if rule == "majority" else chosen.margin
            confidence[rule] = float(signal) if usable else ESCALATE_FIRST
            if rule == "majority":
                confidence["length"] = (-float(rows[chosen.index].get("tokens", 0)) if usable else
                                        -float("inf"))
        q_up = float(np.mean([r["correct"] for r in upstream[problem_id]]))
        routes.append(ProblemRoute(problem_id, domain, q_up, q_local, confidence,
                                   sum(int(r.get("tokens", 0)) for r in rows)))
    return routes


def _signal_arrays(routes: list[ProblemRoute], signal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, q_local, q_up) of one signal; baselines route majority's answers."""
    rule = "clr" if signal == "clr" else "majority"
    q_local = np.array([r.q_local[rule] for r in routes])
    q_up = np.array([r.q_up for r in routes])
    if signal == "random":
        conf = np.zeros(len(routes))
    elif signal == "oracle":
        conf = oracle_confidence(q_local, q_up)
    else:
        conf = np.array([r.confidence[signal] for r in routes])
    return conf, q_local, q_up


def signal_figures(routes: list[ProblemRoute], signal: str) -> dict:
    conf, q_local, q_up = _signal_arrays(routes, signal)
    shares, accuracies = routing_curve(conf, q_local, q_up)
    coverage, risk, aurc = risk_coverage(conf, q_local)
    figures = {"apgr": apgr(conf, q_local, q_up), "share_for_50%_gap": share_to_recover(conf, q_local, q_up, 0.5),
               "share_for_80%_gap": share_to_recover(conf, q_local, q_up, 0.8), "aurc": aurc,
               "local_accuracy": float(q_local.mean()), "upstream_accuracy": float(q_up.mean()),
               "curve": {"share": shares.round(6).tolist(), "accuracy": accuracies.round(6).tolist()},
               "risk_coverage": {"coverage": coverage.round(6).tolist(), "risk": risk.round(6).tolist()}}
    if signal in ("majority", "clr"):
        figures["ece"] = expected_calibration_error(np.maximum(conf, 0.0), q_local)
    return figures


def bootstrap(routes: list[ProblemRoute], n_boot: int, seed: int) -> dict:
    """Percentile 95% intervals of each signal's APGR, and of CLR minus majority on the same resamples."""
    rng = np.random.default_rng(seed)
    arrays = {s: _signal_arrays(routes, s) for s in ("majority", "clr", "length", "oracle")}
    draws: dict[str, list[float]] = defaultdict(list)
    for _ in range(n_boot):
        index = rng.integers(0, len(routes), len(routes))
        values = {s: apgr(*(a[index] for a in arrays[s])) for s in arrays}
        for s, v in values.items():
            draws[s].append(np.nan if v is None else v)
        if values["clr"] is not None and values["majority"] is not None:
            draws["clr-majority"].append(values["clr"] - values["majority"])

    def interval(values):
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        return [round(float(x), 4) for x in np.quantile(finite, [0.025, 0.975])] if finite.size else None

    return {f"{s}_apgr_ci": interval(v) for s, v in draws.items() if s != "clr-majority"} | {
        "clr_minus_majority_apgr_ci": interval(draws["clr-majority"])}


def route_eval(local_dir: str | os.PathLike, upstream_dir: str | os.PathLike, k: int | None = None,
               n_boot: int = 1000, seed: int = 0, questions: dict[str, str] | None = None) -> dict:
    routes = problem_routes(read_samples(local_dir), read_samples(upstream_dir), k, questions)
    result = {"problems": len(routes), "k": k, "local": str(local_dir), "upstream": str(upstream_dir),
              "signals": {s: signal_figures(routes, s) for s in SIGNALS},
              "intervals": bootstrap(routes, n_boot, seed), "n_boot": n_boot, "seed": seed,
              "mean_local_tokens": float(np.mean([r.local_tokens for r in routes]))}
    majority, clr = result["signals"]["majority"]["apgr"], result["signals"]["clr"]["apgr"]
    low = (result["intervals"]["clr_minus_majority_apgr_ci"] or [None])[0]
    result["clr_beats_majority"] = (None if majority is None or clr is None else
                                    bool(clr > majority and low is not None and low > 0))
    return result
