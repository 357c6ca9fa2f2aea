"""Verified best-of-n: of k sampled responses, return one whose final answer the samples (or their checked claims)
support best.

vLLM removed ``best_of`` (it ranked by cumulative log-prob, which favours short, generic answers) and tells users to
select client-side. A verifiable reasoner can do better on the server: the k final answers (``\\boxed{}`` after
``</think>``) are clustered by the verifier's equivalence (math-verify with our policies, in both directions, so
``1/2``, ``0.5`` and ``\\frac{1}{2}`` are one cluster), then

* ``majority``: the largest cluster wins (self-consistency; ties go to the cluster seen first);
* ``clr``: each response's claim-level reliability ``r = ((1/M) sum_m v_m) ** M`` over the last M equations of its
  reasoning checked by exact arithmetic (SPEC 4, tool claims), and the cluster with the largest summed ``r`` wins
  (ties: larger, then earlier).

The returned response is the chosen cluster's first member. ``agreement`` is its share of the k samples; the CLR
``margin`` is the winner's summed reliability minus the runner-up's, over the total (0 when nothing was checkable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vibethinker.eval.clr.run import math_equivalence
from vibethinker.eval.clr.scoring import clr_select, merge_equivalent_keys, response_reliability
from vibethinker.eval.clr.tool_claims import extract_tool_claims
from vibethinker.verify import domain_vote_key
from vibethinker.verify.extract import extract_boxed_answer
from vibethinker.verify.math import default_checker

CLAIMS_PER_RESPONSE = 5  # M of SPEC 4
EQUIVALENCE_TIMEOUT_S = 5.0


@dataclass
class Selection:
    index: int | None  # the chosen response (None: no sample gave a final answer)
    answer: str | None
    agreement: float  # chosen cluster's share of the samples
    clusters: list[dict] = field(default_factory=list)  # {"answer", "size", "reliability"} largest first
    margin: float | None = None  # CLR only
    answered: int = 0


def select_response(responses: list[str], question: str | None, select: Literal["majority", "clr"] = "majority",
                    domain: Literal["math", "exact", "code"] = "math", m: int = CLAIMS_PER_RESPONSE,
                    answers: list[str | None] | None = None) -> Selection:
    """Cluster the final answers of ``responses`` and choose one (see the module docstring). ``answers``: final
    answers already extracted (an eval's samples.jsonl), else the last ``\\boxed{}`` of each response."""
    if answers is None:
        answers = [extract_boxed_answer(text, require_think=False) for text in responses]
    keys = [None if a is None else domain_vote_key(domain, a) for a in answers]
    first: dict[str, str] = {}
    for key, answer in zip(keys, answers):
        if key is not None:
            first.setdefault(key, answer)
    if domain == "math" and len(first) > 1:
        merged = merge_equivalent_keys([None if k is None else first[k] for k in keys],
                                       math_equivalence(default_checker(), EQUIVALENCE_TIMEOUT_S))
        to_key = {answer: key for key, answer in first.items()}
        keys = [None if a is None else to_key[a] for a in merged]
    reliabilities = [0.0] * len(responses)
    if select == "clr":
        for i, (text, key) in enumerate(zip(responses, keys)):
            if key is not None:
                reliabilities[i] = response_reliability(extract_tool_claims(text, m, question).verdicts, m)
        chosen = clr_select(list(zip(keys, reliabilities)))
    else:
        chosen = clr_select([(key, 1.0) for key in keys])
    sizes: dict[str, int] = {}
    totals: dict[str, float] = {}
    for key, reliability in zip(keys, reliabilities):
        if key is not None:
            sizes[key] = sizes.get(key, 0) + 1
            totals[key] = totals.get(key, 0.0) + reliability
    clusters = sorted(({"answer": first[key], "size": size, "reliability": round(totals[key], 6)}
                       for key, size in sizes.items()), key=lambda c: (-c["size"], -c["reliability"]))
    if chosen is None:
        return Selection(None, None, 0.0, clusters, 0.0 if select == "clr" else None, 0)
    margin = None
    if select == "clr":
        ranked = sorted(totals.values(), reverse=True)
        total = sum(ranked)
        margin = (ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)) / total if total else 0.0
    index = keys.index(chosen)
    return Selection(index, first[chosen], sizes[chosen] / len(responses), clusters, margin,
                     sum(k is not None for k in keys))
