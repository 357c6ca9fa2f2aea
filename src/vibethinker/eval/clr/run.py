"""Run CLR (SPEC 4) over the samples of an evaluation run and write ``clr.json``.

Input: the problems and the rows of an eval run's ``samples.jsonl`` (``problem_id``, ``sample_index``, ``response``,
``answer`` (the extracted final answer or null), ``correct``; see ``eval.runner``). Only answer-verifiable problems
(math, stem) take part; code and instruct problems are skipped and counted.

Per problem: claims and a reliability r_k for every answered sample (``tool``: equations of the trace checked by
exact arithmetic; ``model``: the model extracts and verifies its own claims), answer clusters (vote keys merged by
the math verifier's equivalence; the option letter for multiple choice), then R seeded draws of K samples scored by
CLR, majority vote and plain pass@1 (``scoring.clr_pass_at_1``). K is capped at the samples available, with a note.

``clr.json``: ``{"summary": ..., "problems": [...]}``. The summary holds CLR / majority-vote / plain pass@1 overall
and by domain and sub-domain (means over problems), claim statistics, the extra tokens the model source spent,
skipped counts, notes and the config.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from vibethinker.data.records import Problem, RecordError, read_rows
from vibethinker.eval.config import CLRConfig, ClaimSource
from vibethinker.eval.clr.model_claims import assess_with_model
from vibethinker.eval.clr.scoring import clr_pass_at_1, merge_equivalent_keys, response_reliability
from vibethinker.eval.clr.tool_claims import Claim, extract_tool_claims
from vibethinker.generate import Generator
from vibethinker.utils.files import write_json_atomic
from vibethinker.verify import vote_key
from vibethinker.verify.choice import parse_choice
from vibethinker.verify.math import MathChecker, default_checker

VERIFIABLE_DOMAINS = ("math", "stem")


def load_samples(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Rows of an eval ``samples.jsonl`` grouped by problem id and sorted by sample index (errors name the line)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    fields = (("problem_id", str), ("sample_index", int), ("response", str), ("correct", bool))
    for line, row in read_rows(path):
        if not isinstance(row, dict):
            raise RecordError(path, line, "<record>", "expected a JSON object")
        for name, kind in fields:
            value = row.get(name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise RecordError(path, line, name, f"expected {kind.__name__}, got {value!r}")
        if row.get("answer") is not None and not isinstance(row["answer"], str):
            raise RecordError(path, line, "answer", f"expected a string or null, got {row['answer']!r}")
        key = (row["problem_id"], row["sample_index"])
        if key in seen:
            raise RecordError(path, line, "sample_index", f"duplicate sample {key[1]} of problem {key[0]!r}")
        seen.add(key)
        grouped[row["problem_id"]].append(row)
    return {pid: sorted(rows, key=lambda r: r["sample_index"]) for pid, rows in grouped.items()}


def math_equivalence(checker: MathChecker, timeout_s: float):
    """An ``equivalent_many`` for ``merge_equivalent_keys``: math-verify in either direction (it is not symmetric)."""
    def equivalent_many(pairs: list[tuple[str, str]]) -> list[bool]:
        checks = checker.check_many(pairs + [(b, a) for a, b in pairs], timeout_s)
        return [forward or backward for forward, backward in zip(checks[:len(pairs)], checks[len(pairs):])]
    return equivalent_many


def cluster_keys(problem: Problem, answers: Sequence[str | None], equivalent_many) -> list[str | None]:
    """One cluster key per sample: the option letter for multiple choice, else vote keys merged by equivalence."""
    if problem.choices:
        return [None if a is None else (parse_choice(a) or vote_key(problem, a)) for a in answers]
    keys = [None if a is None else vote_key(problem, a) for a in answers]
    first_answer: dict[str, str] = {}
    for key, answer in zip(keys, answers):
        if key is not None:
            first_answer.setdefault(key, answer)
    # compare a readable answer per key (vote keys drop spaces), then map the merged answers back to keys
    merged = merge_equivalent_keys([None if k is None else first_answer[k] for k in keys], equivalent_many)
    answer_to_key = {answer: key for key, answer in first_answer.items()}
    return [None if m is None else answer_to_key[m] for m in merged]


def _claims_json(claims: list[Claim]) -> list[dict[str, Any]]:
    return [{"text": c.text, "parsed": c.parsed, "verdict": c.verdict} for c in claims]


def _assess(source: ClaimSource, work: list[tuple[Problem, dict]], config: CLRConfig,
            generator: Generator | None) -> tuple[list[dict[str, Any]], dict | None]:
    """Claims, verdicts and reliability for every answered sample, in ``work`` order; plus model token usage."""
    if source == "tool":
        out = []
        for problem, row in work:
            found = extract_tool_claims(row["response"], config.m, problem.problem)
            out.append({"claims": found.claims, "found": found.found, "checked": found.checked})
        usage = None
    else:
        assessment = assess_with_model(
            generator, [(problem, row["response"]) for problem, row in work], config.m,
            temperature=config.temperature, top_p=config.top_p, extract_max_new_tokens=config.extract_max_new_tokens,
            verify_max_new_tokens=config.verify_max_new_tokens, max_response_chars=config.max_response_chars,
            seed=config.seed)
        out = [{"claims": r.claims, "found": len(r.claims), "checked": len(r.claims) - r.missing_verdicts,
                "missing_verdicts": r.missing_verdicts} for r in assessment.responses]
        usage = assessment.usage()
    for item in out:
        item["reliability"] = response_reliability([c.verdict for c in item["claims"]], config.m)
    return out, usage


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"clr_pass@1": _mean([r["clr_pass@1"] for r in records]),
            "majority_pass@1": _mean([r["majority_pass@1"] for r in records]),
            "pass@1": _mean([r["pass@1"] for r in records]), "n_problems": len(records)}


def run_clr(problems: Sequence[Problem], samples_by_problem: dict[str, list[dict[str, Any]]],
            claim_source: ClaimSource, config: CLRConfig, generator: Generator | None = None,
            out_dir: str | os.PathLike = ".", checker: MathChecker | None = None) -> dict[str, Any]:
    """CLR over every answer-verifiable problem with samples; writes ``out_dir/clr.json`` and returns its summary."""
    if claim_source not in ("tool", "model"):
        raise ValueError(f"claim source must be 'tool' or 'model', got {claim_source!r}")
    if claim_source == "model" and generator is None:
        raise ValueError("claim source 'model' needs a generator (the model verifies its own claims)")
    known = {p.id for p in problems}
    unknown = sorted(set(samples_by_problem) - known)
    if unknown:
        raise ValueError(f"samples for {len(unknown)} problem(s) not in the problem set, e.g. {unknown[0]!r}")
    skipped: dict[str, int] = defaultdict(int)
    chosen: list[Problem] = []
    for problem in problems:
        if problem.domain not in VERIFIABLE_DOMAINS:
            skipped[problem.domain] += 1
        elif not samples_by_problem.get(problem.id):
            skipped["no_samples"] += 1
        else:
            chosen.append(problem)
    if not chosen:
        raise ValueError(f"no answer-verifiable (math / stem) problem with samples; skipped: {dict(skipped)}")

    work = [(p, row) for p in chosen for row in samples_by_problem[p.id] if row.get("answer") is not None]
    assessed, usage = _assess(claim_source, work, config, generator)
    by_sample = {(p.id, row["sample_index"]): item for (p, row), item in zip(work, assessed)}
    equivalent_many = math_equivalence(checker or default_checker(), config.equivalence_timeout_s)

    records, capped = [], 0
    for problem in chosen:
        rows = samples_by_problem[problem.id]
        keys = cluster_keys(problem, [row.get("answer") for row in rows], equivalent_many)
        items = [by_sample.get((problem.id, row["sample_index"])) for row in rows]
        reliabilities = [item["reliability"] if item else 0.0 for item in items]
        correct = [bool(row["correct"]) for row in rows]
        k = min(config.k, len(rows))
        capped += k < config.k
        result = clr_pass_at_1(keys, reliabilities, correct, k, config.repetitions, seed=f"{config.seed}/{problem.id}")
        records.append(_problem_record(problem, rows, keys, items, reliabilities, k, result))

    summary = _metrics(records)
    for name, attr in (("by_domain", "domain"), ("by_subdomain", "subdomain")):
        groups: dict[str, list] = defaultdict(list)
        for record in records:
            groups[str(record[attr])].append(record)
        summary[name] = {key: _metrics(groups[key]) for key in sorted(groups)}
    summary["claims"] = _claim_stats(claim_source, assessed, len(work))
    summary["extra_tokens"] = usage
    summary["skipped"] = dict(skipped)
    summary["notes"] = []
    if capped:
        summary["notes"].append(f"K={config.k} capped at the samples available for {capped} problem(s)")
    if any(r["k"] == r["n_samples"] for r in records) and config.repetitions > 1:
        summary["notes"].append("problems with exactly K samples draw the same K every repetition: their "
                                "repetitions agree (evaluate with more than K samples for independent draws)")
    summary["config"] = {"claim_source": claim_source, **config.model_dump()}
    write_json_atomic(Path(out_dir) / "clr.json", {"summary": summary, "problems": records})
    return summary


def _problem_record(problem, rows, keys, items, reliabilities, k, result) -> dict[str, Any]:
    clusters: dict[str, dict[str, Any]] = {}
    for row, key, reliability in zip(rows, keys, reliabilities):
        if key is None:
            continue
        cluster = clusters.setdefault(key, {"key": key, "answers": [], "samples": [], "reliability_sum": 0.0,
                                            "correct": 0})
        if row["answer"] not in cluster["answers"]:
            cluster["answers"].append(row["answer"])
        cluster["samples"].append(row["sample_index"])
        cluster["reliability_sum"] += reliability
        cluster["correct"] += bool(row["correct"])
    samples = [{"sample_index": row["sample_index"], "answer": row.get("answer"), "cluster": key,
                "correct": bool(row["correct"]), "reliability": reliability,
                "claims": _claims_json(item["claims"]) if item else [],
                "claims_found": item["found"] if item else 0, "claims_checked": item["checked"] if item else 0}
               for row, key, item, reliability in zip(rows, keys, items, reliabilities)]
    draws = [{"samples": [rows[i]["sample_index"] for i in d.indices], "clr_answer": d.clr_key,
              "clr_correct": d.clr_correct, "majority_answer": d.majority_key, "majority_correct": d.majority_correct,
              "pass@1": d.pass_at_1} for d in result.draws]
    return {"problem_id": problem.id, "domain": problem.domain, "subdomain": problem.subdomain,
            "difficulty": problem.difficulty, "n_samples": len(rows), "k": k, "clr_pass@1": result.clr,
            "majority_pass@1": result.majority, "pass@1": result.pass_at_1, "clusters": list(clusters.values()),
            "repetitions": draws, "samples": samples}


def _claim_stats(source: str, assessed: list[dict[str, Any]], answered: int) -> dict[str, Any]:
    claims = [c for item in assessed for c in item["claims"]]
    stats = {"source": source, "responses_assessed": answered,
             "responses_without_claims": sum(not item["claims"] for item in assessed),
             "claims_kept": len(claims), "claims_true": sum(c.verdict for c in claims),
             "mean_claims_per_response": len(claims) / answered if answered else 0.0,
             "mean_reliability": _mean([item["reliability"] for item in assessed]),
             "statements_found": sum(item["found"] for item in assessed),
             "statements_checked": sum(item["checked"] for item in assessed)}
    if source == "model":
        stats["missing_verdicts"] = sum(item["missing_verdicts"] for item in assessed)
    return stats


__all__ = ["CLRConfig", "VERIFIABLE_DOMAINS", "cluster_keys", "load_samples", "math_equivalence", "run_clr"]
