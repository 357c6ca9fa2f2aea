"""Curriculum filters of SFT stage 2 (SPEC 2.1, 3B): long traces only, then hard problems only.

1. Trace length. A reference trace is kept when it has at least ``min_tokens`` response tokens, counted exactly as the
   SFT trainer tokenises it: the response part of the chat-templated conversation, including the end-of-turn
   marker the model learns to emit (:func:`response_tokens`). A problem left with no trace is dropped.
2. Difficulty. A reference model samples ``n`` rollouts per problem; with c of them correct the error rate is

       e(q) = 1 - c / n         (a response cut at the length limit counts as an error)

   and q is kept when e(q) >= ``min_error_rate`` (SPEC 2.1: n = 8, 0.75, i.e. solved at most 2 times in 8).
   Accuracies come from :func:`vibethinker.rl.filtering.estimate_and_filter`, so the samples are cached on disk
   under the reference's fingerprint, the sampling settings and the problem's text / gold / tests: a re-run neither
   samples nor loads the reference model. Problems are sampled in chunks and the cache is written after each chunk,
   so an interrupted run keeps what it had.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from vibethinker.data.records import Problem
from vibethinker.generate import Generator, SamplingParams, make_generator
from vibethinker.model.fingerprint import model_fingerprint
from vibethinker.prompts import render_response
from vibethinker.rl.filtering import estimate_and_filter
from vibethinker.sft.config import CurriculumConfig

GeneratorFactory = Callable[[Path], Generator]
_RATE_TOLERANCE = 1e-9  # e = 1 - c/n is a float: 1 - 2/8 must count as 0.75


def response_tokens(tokenizer: PreTrainedTokenizerBase, problem: Problem, trace: str) -> int:
    """Tokens of ``trace`` as an SFT response: what the trainer puts a loss on (the end-of-turn marker included)."""
    _, response = render_response(tokenizer, problem, trace)
    return len(tokenizer(response, add_special_tokens=False)["input_ids"])


def filter_min_trace_tokens(problems: Sequence[Problem], tokenizer: PreTrainedTokenizerBase,
                            min_tokens: int) -> tuple[list[Problem], dict[str, Any]]:
    """Keep traces of at least ``min_tokens`` response tokens (a trace of exactly ``min_tokens`` stays); drop
    problems left with none."""
    if min_tokens < 0:
        raise ValueError(f"min_tokens must be >= 0, got {min_tokens}")
    kept, dropped, lengths, traces_kept = [], [], [], 0
    for problem in problems:
        long_traces = []
        for trace in problem.traces:
            length = response_tokens(tokenizer, problem, trace)
            lengths.append(length)
            if length >= min_tokens:
                long_traces.append(trace)
        traces_kept += len(long_traces)
        if long_traces:
            kept.append(problem.model_copy(update={"traces": long_traces}))
        else:
            dropped.append(problem.id)
    report = {
        "min_tokens": min_tokens, "problems_in": len(problems), "problems_kept": len(kept),
        "traces_in": len(lengths), "traces_kept": traces_kept, "dropped_problems": dropped,
        "trace_tokens": ({"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)}
                         if lengths else None),
    }
    return kept, report


def filter_hard(problems: Sequence[Problem], reference_model: str | os.PathLike, n_rollouts: int = 8,
                min_error_rate: float = 0.75, sampling: SamplingParams | None = None,
                cache_path: str | os.PathLike | None = None, batch_size: int = 64, device: str | None = None,
                chunk_problems: int = 256, generator_factory: GeneratorFactory | None = None,
                require_think: bool = True) -> tuple[list[Problem], dict[str, Any]]:
    """Keep problems whose error rate over ``n_rollouts`` reference rollouts is >= ``min_error_rate``.

    ``sampling`` gives temperature / top-p / length / seed (its ``n`` is replaced by ``n_rollouts``).
    ``generator_factory(path)`` loads the reference (default :func:`make_generator`); it is called at most once, and
    not at all when every problem is in the cache.
    """
    if not 0 <= min_error_rate <= 1:
        raise ValueError(f"min_error_rate must be in [0, 1], got {min_error_rate}")
    if chunk_problems < 1:
        raise ValueError(f"chunk_problems must be >= 1, got {chunk_problems}")
    reference_model = Path(reference_model)
    sampling = replace(sampling or SamplingParams(), n=n_rollouts)
    factory = generator_factory or (lambda path: make_generator(path, batch_size=batch_size, device=device))
    fingerprint = model_fingerprint(reference_model)
    problems = list(problems)
    result = estimate_and_filter(lambda: factory(reference_model), problems, sampling, fingerprint, cache_path,
                                 require_think=require_think, chunk_problems=chunk_problems)
    error_rate = {p.id: 1.0 - result.accuracy[p.id] for p in problems}
    kept = [p for p in problems if error_rate[p.id] >= min_error_rate - _RATE_TOLERANCE]
    kept_ids = {p.id for p in kept}
    report = {
        "reference": str(reference_model), "fingerprint": fingerprint, "n_rollouts": n_rollouts,
        "min_error_rate": min_error_rate, "problems_in": len(problems), "problems_kept": len(kept),
        "dropped_easy": [p.id for p in problems if p.id not in kept_ids], "cache_hits": result.cache_hits,
        "reference_loaded": result.generated > 0, "error_rate": error_rate,
    }
    return kept, report


def apply_curriculum(problems: Sequence[Problem], config: CurriculumConfig, tokenizer: PreTrainedTokenizerBase,
                     cache_dir: str | os.PathLike,
                     generator_factory: GeneratorFactory | None = None) -> tuple[list[Problem], dict[str, Any]]:
    """Trace-length filter, then the difficulty filter (cheap one first, so only survivors are sampled).

    ``tokenizer`` is the SFT model's (lengths are counted as that model will train on them); the difficulty cache is
    ``cache_dir/difficulty_cache.jsonl``.
    """
    kept = list(problems)
    report: dict[str, Any] = {"problems_in": len(kept), "trace_length": None, "difficulty": None}
    if config.min_trace_tokens > 0:
        kept, report["trace_length"] = filter_min_trace_tokens(kept, tokenizer, config.min_trace_tokens)
    if config.difficulty_reference is not None and kept:
        kept, report["difficulty"] = filter_hard(
            kept, config.difficulty_reference, config.difficulty_rollouts, config.min_error_rate,
            config.sampling_params(), Path(cache_dir) / "difficulty_cache.jsonl", config.batch_size, config.device,
            config.chunk_problems, generator_factory, require_think=config.require_think)
    report["problems_kept"] = len(kept)
    return kept, report


__all__ = ["CurriculumConfig", "apply_curriculum", "filter_hard", "filter_min_trace_tokens", "response_tokens"]
