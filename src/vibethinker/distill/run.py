"""Offline self-distillation end to end (SPEC 2.6): harvest -> score under the student -> select -> SFT.

Artefacts under ``out_dir``:
- ``harvest/``             raw teacher samples, one JSONL per teacher (the cache that makes reruns skip sampling)
- ``traces.jsonl``         every harvested trace: problem, teacher, tokens, bucket, S_LP, ``reason`` (kept or the
                           filter that removed it), text
- ``selection.json``       harvest counts per teacher and the selection report (see ``selection.py``)
- ``distill_train.jsonl``  the problems that kept a trace, with the kept traces (highest S_LP first) as ``traces``
- ``sft/``                 the student's SFT run; the distilled student is ``sft/model``
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from vibethinker.data.records import Problem, write_jsonl
from vibethinker.distill.config import DistillConfig
from vibethinker.distill.harvest import harvest_with_stats
from vibethinker.distill.scoring import student_logprob_scores
from vibethinker.distill.selection import (
    KEPT,
    ScoredTrace,
    bucket_label,
    length_bucket,
    selection_reasons,
    selection_report,
)
from vibethinker.sft.trainer import train_sft
from vibethinker.utils.files import write_json_atomic


def training_problems(problems: Sequence[Problem], kept: Sequence[ScoredTrace]) -> list[Problem]:
    """Problems (in input order) that kept at least one trace, carrying exactly those traces, highest S_LP first."""
    by_problem: dict[str, list[ScoredTrace]] = {}
    for item in kept:
        by_problem.setdefault(item.trace.problem_id, []).append(item)
    out = []
    for problem in problems:
        items = by_problem.get(problem.id)
        if items:
            items = sorted(items, key=lambda s: -s.score)
            out.append(problem.model_copy(update={"traces": [s.trace.text for s in items]}))
    return out


def run_self_distillation(student: str | os.PathLike, teachers: Sequence[str | os.PathLike],
                          problems: Sequence[Problem], config: DistillConfig, out_dir: str | os.PathLike) -> dict:
    """Distil the verified traces of ``teachers`` into ``student``; returns a summary (see the module docstring)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    harvest = harvest_with_stats(teachers, problems, config, out_dir / "harvest")
    if not harvest.traces:
        raise ValueError(f"self-distillation: no verified-correct, untruncated trace from {len(teachers)} teacher(s) "
                         f"on {len(problems)} problems (per teacher: {harvest.counts}); nothing to distil")

    by_id = {p.id: p for p in problems}
    scores = student_logprob_scores(student, None, by_id, harvest.traces, config.score_batch_size, config.device)
    gc.collect()  # free the scoring copy of the student before SFT loads its own
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    scored = [ScoredTrace(trace, value) for trace, value in zip(harvest.traces, scores)]
    reasons = selection_reasons(scored, config)
    report = selection_report(scored, reasons, config)
    edges = config.length_bucket_edges
    write_jsonl(out_dir / "traces.jsonl", [
        {"problem_id": s.trace.problem_id, "domain": s.trace.domain, "subdomain": s.trace.subdomain,
         "teacher": s.trace.teacher, "num_tokens": s.trace.num_tokens,
         "bucket": bucket_label(length_bucket(s.trace.num_tokens, edges), edges), "score": s.score,
         "reason": reason, "text": s.trace.text}
        for s, reason in zip(scored, reasons)])
    write_json_atomic(out_dir / "selection.json", {"harvest": harvest.summary(), "selection": report})

    kept = [s for s, reason in zip(scored, reasons) if reason == KEPT]
    if not kept:
        raise ValueError(f"self-distillation: all {len(scored)} harvested traces were filtered out "
                         f"(removed: {report['removed']}); see {out_dir / 'selection.json'} and relax min_tokens, "
                         f"the keep band or the domain weights")
    train = training_problems(problems, kept)
    write_jsonl(out_dir / "distill_train.jsonl", train)
    sft = train_sft(student, train, config.sft, out_dir / "sft")
    return {
        "harvested": len(scored), "kept": len(kept), "problems": len(train), "removed": report["removed"],
        "per_teacher": harvest.counts, "cache_hits": harvest.cache_hits, "sft": sft,
        "model": str(out_dir / "sft" / "model"), "traces": str(out_dir / "traces.jsonl"),
        "selection": str(out_dir / "selection.json"), "train_data": str(out_dir / "distill_train.jsonl"),
    }
