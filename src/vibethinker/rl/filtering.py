"""Prompt filtering before an RL phase (SPEC 2.3): drop prompts the starting model always or never solves.

A prompt whose G samples are all right or all wrong has zero group-relative advantage, so it costs rollouts and
teaches nothing. Each prompt's accuracy is estimated from ``n`` samples of the phase's starting model
(:func:`vibethinker.eval.sample_grade.sample_and_grade`); prompts at exactly 0 or 1 are dropped. The samples are
cached on disk, keyed by the model's fingerprint, the sampling settings and the problem text, so re-running a phase
(or resuming) does not sample again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

from vibethinker.data.records import Problem
from vibethinker.eval.sample_grade import GeneratorSource, SampleCache, sample_and_grade
from vibethinker.generate.types import SamplingParams


@dataclass
class FilterResult:
    kept: list[Problem]
    accuracy: dict[str, float]
    dropped_all_correct: list[str] = field(default_factory=list)
    dropped_all_wrong: list[str] = field(default_factory=list)
    cache_hits: int = 0
    generated: int = 0  # problems sampled by this call (the others came from the cache)

    def summary(self) -> dict:
        return {"kept": len(self.kept), "dropped_all_correct": len(self.dropped_all_correct),
                "dropped_all_wrong": len(self.dropped_all_wrong), "cache_hits": self.cache_hits}


def estimate_and_filter(generator: GeneratorSource, problems: Sequence[Problem], sampling: SamplingParams,
                        fingerprint: str, cache_path: str | os.PathLike | None = None, *,
                        require_think: bool = True, chunk_problems: int | None = None,
                        score_workers: int = 8) -> FilterResult:
    """Estimate each problem's accuracy with ``sampling.n`` samples (cached) and keep those strictly in (0, 1).

    A response cut at ``max_new_tokens`` counts as wrong, as it scores 0 in training; ``require_think`` is the
    phase's (a chat model answering without a thinking block would otherwise fail every prompt).
    """
    if sampling.n < 2:
        raise ValueError("prompt filtering needs n >= 2 samples per prompt to tell 0 and 1 from the rest")
    cache = SampleCache.open(cache_path, fingerprint) if cache_path else None
    batch = sample_and_grade(generator, problems, sampling, require_think=require_think, truncated_is_wrong=True,
                             cache=cache, chunk_problems=chunk_problems, score_workers=score_workers)
    result = FilterResult(kept=[], accuracy={}, cache_hits=batch.cache_hits, generated=batch.generated)
    for problem, accuracy in zip(problems, batch.accuracy()):
        result.accuracy[problem.id] = accuracy
        if accuracy == 1.0:
            result.dropped_all_correct.append(problem.id)
        elif accuracy == 0.0:
            result.dropped_all_wrong.append(problem.id)
        else:
            result.kept.append(problem)
    return result
