"""Harvest verified-correct traces from the teacher checkpoints (SPEC 2.6 step 1).

Each teacher samples ``samples_per_problem`` responses per problem. A response becomes a :class:`Trace` only when
it (1) stopped on its own (never cut at ``max_new_tokens``, even if its answer verifies), (2) passes the domain's
verifier (``vibethinker.verify.score``), and (3) with ``dedupe`` is not a text already kept for the same problem
(from this or an earlier teacher).

Sampling and grading are :func:`vibethinker.eval.sample_grade.sample_and_grade`. The samples are cached as one
JSONL per teacher under ``cache_dir``, named after the teacher folder and a hash of (teacher fingerprint, problems,
sampling settings), so a rerun neither reloads the teacher nor samples again; verification is cheap next to
sampling and runs on every call, so a verifier fix or another ``require_think`` takes effect without resampling.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vibethinker.data.records import Problem
from vibethinker.distill.config import DistillConfig
from vibethinker.eval.sample_grade import GradedBatch, SampleCache, sample_and_grade, sample_key
from vibethinker.generate import SamplingParams, make_generator
from vibethinker.model.fingerprint import model_fingerprint


@dataclass(frozen=True)
class Trace:
    """One verified-correct response. ``num_tokens`` counts the generated tokens, stop token included."""

    problem_id: str
    domain: str
    subdomain: str
    teacher: str
    text: str
    num_tokens: int


@dataclass
class HarvestResult:
    traces: list[Trace]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # teacher -> sampled/truncated/wrong/...
    cache_files: dict[str, str] = field(default_factory=dict)  # teacher -> cache file
    cache_hits: list[str] = field(default_factory=list)  # teachers read from the cache

    def summary(self) -> dict:
        return {"traces": len(self.traces), "per_teacher": self.counts, "cache_files": self.cache_files,
                "cache_hits": self.cache_hits}


def sampling_params(config: DistillConfig) -> SamplingParams:
    return config.sampling_params()


def harvest_cache_path(teacher: str | os.PathLike, fingerprint: str, problems: Sequence[Problem],
                       sampling: SamplingParams, cache_dir: str | os.PathLike) -> Path:
    """Where ``teacher``'s samples for these problems under ``sampling`` are cached (one file per teacher and set)."""
    keys = [sample_key(fingerprint, sampling, p) for p in problems]
    digest = hashlib.sha256(json.dumps([[p.id for p in problems], keys]).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"{Path(teacher).name}-{digest}.jsonl"


def _sample_teacher(teacher: str | os.PathLike, problems: Sequence[Problem], sampling: SamplingParams,
                    config: DistillConfig, cache: SampleCache) -> GradedBatch:
    batch = sample_and_grade(
        lambda: make_generator(teacher, batch_size=config.generation_batch_size, device=config.device,
                               max_model_len=config.sampling.max_model_len), problems,
        sampling, require_think=config.require_think, cache=cache)
    if batch.generated:  # one teacher in memory at a time
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return batch


def harvest_with_stats(teachers: Sequence[str | os.PathLike], problems: Sequence[Problem], config: DistillConfig,
                       cache_dir: str | os.PathLike) -> HarvestResult:
    """Traces of every teacher in teacher order, with per-teacher counts of what was dropped and why."""
    by_id: dict[str, Problem] = {}
    for problem in problems:
        if problem.id in by_id:
            raise ValueError(f"problem id {problem.id!r} occurs twice; harvested traces are keyed by problem id")
        by_id[problem.id] = problem
    if not teachers:
        raise ValueError("self-distillation needs at least one teacher checkpoint")
    sampling = sampling_params(config)
    result = HarvestResult(traces=[])
    seen: dict[str, set[str]] = {pid: set() for pid in by_id}
    for teacher in teachers:
        name = str(teacher)
        fingerprint = model_fingerprint(teacher)
        path = harvest_cache_path(teacher, fingerprint, problems, sampling, cache_dir)
        batch = _sample_teacher(teacher, problems, sampling, config, SampleCache.open(path, fingerprint))
        if batch.generated == 0:
            result.cache_hits.append(name)
        result.cache_files[name] = str(path)
        counts = Counter(sampled=sum(len(group) for group in batch.samples))
        for problem, group in zip(problems, batch.samples):
            for sample in group:
                if sample.finish_reason == "length":
                    counts["truncated"] += 1
                elif not sample.correct:
                    counts["wrong"] += 1
                elif config.dedupe and sample.text in seen[problem.id]:
                    counts["duplicate"] += 1
                else:
                    seen[problem.id].add(sample.text)
                    counts["kept"] += 1
                    result.traces.append(Trace(problem.id, problem.domain, problem.subdomain, name, sample.text,
                                               sample.num_tokens))
        result.counts[name] = {key: counts[key] for key in ("sampled", "truncated", "wrong", "duplicate", "kept")}
    return result


def harvest_traces(teachers: Sequence[str | os.PathLike], problems: Sequence[Problem], config: DistillConfig,
                   cache_dir: str | os.PathLike) -> list[Trace]:
    """The verified-correct, untruncated, deduplicated traces of all teachers (see the module docstring)."""
    return harvest_with_stats(teachers, problems, config, cache_dir).traces
