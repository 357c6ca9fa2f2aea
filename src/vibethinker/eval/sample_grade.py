"""Sample n responses per problem, grade each with its domain's verifier, cache the samples by model fingerprint.

The one sampling loop of evaluation (SPEC 3), RL prompt filtering (SPEC 2.3), the curriculum's difficulty filter
(SPEC 2.1), Pass@K probing (SPEC 2.2) and the distillation harvest (SPEC 2.6), so that they grade alike:

* ``require_think`` reaches the verifier everywhere (SPEC 2.5): only the answer after ``</think>`` counts.
* ``truncated_is_wrong``: a response cut at ``max_new_tokens`` scores 0 (RL rewards and difficulty estimates);
  evaluation and probing grade a cut response on its text (SPEC 3).
* The cache holds *samples*, one JSONL row each, keyed by (model fingerprint, sampling settings, problem id /
  text / gold / tests). Grading runs on every call, cached or not, so a verifier fix or another ``require_think`` takes
  effect without sampling again. A problem is sampled only when the cache lacks its n samples.
* Problems can be sampled in chunks (the cache is written after each, so an interrupted run keeps its samples);
  chunk c samples with ``seed + c * chunk_seed_stride``, and grading of a chunk overlaps generating the next.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vibethinker.data.records import Problem, RecordError, read_rows
from vibethinker.generate.types import Completion, Generator, SamplingParams
from vibethinker.prompts import render_prompt
from vibethinker.utils.files import write_text_atomic
from vibethinker.verify import score

GeneratorSource = Generator | Callable[[], Generator]
CACHE_FIELDS = {"key": str, "problem_id": str, "sample_index": int, "text": str, "num_tokens": int,
                "finish_reason": str}


@dataclass(frozen=True)
class GradedSample:
    """One sample and its grade; ``correct`` already applies the truncation rule of the call."""

    problem_id: str
    sample_index: int
    text: str
    num_tokens: int
    finish_reason: str
    answer: str | None
    correct: bool


@dataclass
class GradedBatch:
    """``samples[i]`` holds the n graded samples of problem i, by sample index."""

    samples: list[list[GradedSample]]
    cache_hits: int = 0  # problems whose samples came from the cache
    generated: int = 0  # problems sampled by this call

    def accuracy(self) -> list[float]:
        return [sum(s.correct for s in group) / len(group) for group in self.samples]


def sample_key(fingerprint: str, sampling: SamplingParams, problem: Problem) -> str:
    """Cache key of one problem's samples: everything that changes what is sampled or how it is graded."""
    payload = json.dumps({"model": fingerprint, "sampling": asdict(sampling), "id": problem.id,
                          "problem": problem.problem,
                          "gold": problem.answer, "tests": [t.model_dump() for t in problem.tests or []]},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class SampleCache:
    """A JSONL file of samples (:data:`CACHE_FIELDS` per row) of one model, keyed by :func:`sample_key`."""

    path: Path
    fingerprint: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | os.PathLike, fingerprint: str) -> SampleCache:
        cache = cls(Path(path), fingerprint)
        if cache.path.exists():
            for line, row in read_rows(cache.path):
                for name, kind in CACHE_FIELDS.items():
                    if not isinstance(row, dict) or not isinstance(row.get(name), kind):
                        raise RecordError(cache.path, line, name, f"missing or not a {kind.__name__} in a cached "
                                                                  f"sample (delete the file to sample again)")
                cache.rows.setdefault(row["key"], []).append(row)
        return cache

    def get(self, key: str, n: int) -> list[dict[str, Any]] | None:
        rows = sorted(self.rows.get(key, []), key=lambda r: r["sample_index"])
        return rows if [r["sample_index"] for r in rows] == list(range(n)) else None

    def put(self, key: str, rows: list[dict[str, Any]]) -> None:
        self.rows[key] = rows

    def save(self) -> None:
        lines = [json.dumps(row, ensure_ascii=False) for rows in self.rows.values() for row in rows]
        write_text_atomic(self.path, "".join(line + "\n" for line in lines))


def sample_and_grade(generator: GeneratorSource, problems: Sequence[Problem], sampling: SamplingParams, *,
                     require_think: bool = True, truncated_is_wrong: bool = False,
                     cache: SampleCache | None = None, chunk_problems: int | None = None,
                     chunk_seed_stride: int = 0, score_workers: int = 8,
                     on_generated: Callable[[int], None] | None = None,
                     on_graded: Callable[[], None] | None = None) -> GradedBatch:
    """Sample ``sampling.n`` responses per problem (cached ones are read, not sampled) and grade all of them.

    ``generator`` may be a zero-argument factory: it is called once, and only if something must be sampled, so a
    fully cached call loads no model. ``on_generated(count)`` / ``on_graded()`` report progress.
    """
    problems = list(problems)
    n = sampling.n
    keys = [sample_key(cache.fingerprint, sampling, p) for p in problems] if cache else []
    raw: list[list[dict[str, Any]] | None] = [cache.get(k, n) for k in keys] if cache else [None] * len(problems)
    todo = [i for i, rows in enumerate(raw) if rows is None]
    batch = GradedBatch(samples=[[] for _ in problems], cache_hits=len(problems) - len(todo), generated=len(todo))
    graded: dict[int, list[Future]] = defaultdict(list)
    with ThreadPoolExecutor(max_workers=score_workers) as pool:
        def grade(index: int, row: dict[str, Any]) -> None:
            future = pool.submit(_grade, problems[index], row, require_think, truncated_is_wrong)
            if on_graded:
                future.add_done_callback(lambda _f: on_graded())
            graded[index].append(future)

        for index, rows in enumerate(raw):
            for row in rows or []:
                grade(index, row)
        if todo:
            live = generator if isinstance(generator, Generator) else generator()
            step = chunk_problems or len(todo)
            for chunk_index, start in enumerate(range(0, len(todo), step)):
                chunk = todo[start:start + step]
                seed = None if sampling.seed is None else sampling.seed + chunk_index * chunk_seed_stride
                completions = live.generate([render_prompt(live.tokenizer, problems[i]) for i in chunk],
                                            replace(sampling, seed=seed))
                if len(completions) != len(chunk) * n:
                    raise RuntimeError(f"generator returned {len(completions)} completions for {len(chunk)} "
                                       f"prompts x n={n}")
                if on_generated:
                    on_generated(len(completions))
                for completion in completions:
                    index = chunk[completion.prompt_index]
                    grade(index, _cache_row(keys[index] if cache else "", problems[index].id, completion))
                if cache:  # written once graded: a reader of the file sees each sample's grade at write time
                    for index in chunk:
                        cache.put(keys[index], [{**_cache_row(keys[index], problems[index].id, s),
                                                 "answer": s.answer, "correct": s.correct}
                                                for s in sorted((f.result() for f in graded[index]),
                                                                key=lambda s: s.sample_index)])
                    cache.save()
            del live  # the caller's factory may have loaded a model: drop it before grading finishes
        for index, futures in graded.items():
            batch.samples[index] = sorted((f.result() for f in futures), key=lambda s: s.sample_index)
    return batch


def _cache_row(key: str, problem_id: str, source: Completion | GradedSample) -> dict[str, Any]:
    return {"key": key, "problem_id": problem_id, "sample_index": source.sample_index, "text": source.text,
            "num_tokens": source.num_tokens, "finish_reason": source.finish_reason}


def _grade(problem: Problem, row: dict[str, Any], require_think: bool, truncated_is_wrong: bool) -> GradedSample:
    verdict = score(problem, row["text"], require_think=require_think)
    correct = bool(verdict.correct) and not (truncated_is_wrong and row["finish_reason"] == "length")
    return GradedSample(problem.id, row["sample_index"], row["text"], row["num_tokens"], row["finish_reason"],
                        verdict.answer, correct)


__all__ = ["GradedBatch", "GradedSample", "SampleCache", "sample_and_grade", "sample_key"]
