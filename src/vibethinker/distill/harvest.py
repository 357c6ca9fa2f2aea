"""Harvest verified-correct traces from the teacher checkpoints (SPEC 2.6 step 1).

Each teacher samples ``samples_per_problem`` responses per problem. A response becomes a :class:`Trace` only when
it (1) stopped on its own (never cut at ``max_new_tokens``, even if its answer verifies), (2) passes the domain's
verifier (``vibethinker.verify.score``), and (3) with ``dedupe`` is not a text already kept for the same problem
(from this or an earlier teacher).

The raw samples (before verification) are cached as one JSONL per teacher under ``cache_dir``, named after the
teacher folder and a hash of (teacher fingerprint, rendered prompts with their problem ids, sampling settings), so
a rerun neither reloads the teacher nor samples again; verification is cheap next to sampling and runs on every
call, so a verifier fix or another ``require_think`` takes effect without resampling.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from vibethinker.data.records import Problem, RecordError, read_rows, write_jsonl
from vibethinker.distill.config import DistillConfig
from vibethinker.generate import SamplingParams, make_generator
from vibethinker.model import load_tokenizer
from vibethinker.prompts import render_prompt
from vibethinker.rl.filtering import model_fingerprint
from vibethinker.verify import score

CACHE_FIELDS = {"problem_id": str, "sample_index": int, "text": str, "num_tokens": int, "finish_reason": str}


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
    return SamplingParams(n=config.samples_per_problem, temperature=config.temperature, top_p=config.top_p,
                          max_new_tokens=config.max_new_tokens, seed=config.seed)


def harvest_cache_path(teacher: str | os.PathLike, prompts: list[tuple[str, str]], sampling: SamplingParams,
                       cache_dir: str | os.PathLike) -> Path:
    """Where ``teacher``'s samples for these (problem id, prompt) pairs under ``sampling`` are cached."""
    payload = json.dumps({"teacher": model_fingerprint(teacher), "prompts": prompts, "sampling": asdict(sampling)},
                         sort_keys=True)
    key = hashlib.sha256(payload.encode()).hexdigest()[:24]
    return Path(cache_dir) / f"{Path(teacher).name}-{key}.jsonl"


def _read_cache(path: Path, problem_ids: set[str]) -> list[dict]:
    rows = []
    for line, row in read_rows(path):
        for name, kind in CACHE_FIELDS.items():
            if not isinstance(row, dict) or not isinstance(row.get(name), kind):
                raise RecordError(path, line, name, f"missing or not a {kind.__name__} (delete the file to resample)")
        if row["problem_id"] not in problem_ids:
            raise RecordError(path, line, "problem_id", f"unknown problem {row['problem_id']!r} for this cache key")
        rows.append(row)
    return rows


def _sample(teacher: str | os.PathLike, prompts: list[str], problem_ids: list[str], sampling: SamplingParams,
            config: DistillConfig) -> list[dict]:
    generator = make_generator(teacher, batch_size=config.generation_batch_size, device=config.device)
    completions = generator.generate(prompts, sampling)
    del generator  # one teacher in memory at a time
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return [{"problem_id": problem_ids[c.prompt_index], "sample_index": c.sample_index, "text": c.text,
             "num_tokens": c.num_tokens, "finish_reason": c.finish_reason} for c in completions]


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
        tokenizer = load_tokenizer(teacher)
        prompts = [render_prompt(tokenizer, p) for p in problems]
        path = harvest_cache_path(teacher, [(p.id, text) for p, text in zip(problems, prompts)], sampling, cache_dir)
        if path.exists():
            rows = _read_cache(path, set(by_id))
            result.cache_hits.append(name)
        else:
            rows = _sample(teacher, prompts, [p.id for p in problems], sampling, config)
            write_jsonl(path, rows)
        result.cache_files[name] = str(path)
        counts = Counter(sampled=len(rows))
        for row in rows:
            problem = by_id[row["problem_id"]]
            if row["finish_reason"] == "length":
                counts["truncated"] += 1
            elif not score(problem, row["text"], require_think=config.require_think).correct:
                counts["wrong"] += 1
            elif config.dedupe and row["text"] in seen[problem.id]:
                counts["duplicate"] += 1
            else:
                seen[problem.id].add(row["text"])
                counts["kept"] += 1
                result.traces.append(Trace(problem.id, problem.domain, problem.subdomain, name, row["text"],
                                           row["num_tokens"]))
        result.counts[name] = {key: counts[key] for key in ("sampled", "truncated", "wrong", "duplicate", "kept")}
    return result


def harvest_traces(teachers: Sequence[str | os.PathLike], problems: Sequence[Problem], config: DistillConfig,
                   cache_dir: str | os.PathLike) -> list[Trace]:
    """The verified-correct, untruncated, deduplicated traces of all teachers (see the module docstring)."""
    return harvest_with_stats(teachers, problems, config, cache_dir).traces
