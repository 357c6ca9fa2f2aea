"""Prompt filtering before an RL phase (SPEC 2.3): drop prompts the starting model always or never solves.

A prompt whose G samples are all right or all wrong has zero group-relative advantage, so it costs rollouts and
teaches nothing. Each prompt's accuracy is estimated from ``n`` samples of the phase's starting model; prompts at
exactly 0 or 1 are dropped. Estimates are cached on disk, keyed by the model's fingerprint, the sampling settings
and the problem text, so re-running a phase (or resuming) does not sample again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from vibethinker.data.records import Problem
from vibethinker.generate import Generator, SamplingParams
from vibethinker.prompts import render_prompt
from vibethinker.utils.files import write_text_atomic
from vibethinker.verify import score


def model_fingerprint(model_dir: str | os.PathLike, head_bytes: int = 4 << 20) -> str:
    """A cheap identity of a checkpoint: its config plus, per weight file, the size and a hash of the first bytes.

    Hashing whole multi-GB files on every phase start would be slow; training changes every tensor, so the head of
    each shard differs between checkpoints.
    """
    model_dir = Path(model_dir)
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors or *.bin weights to fingerprint")
    for path in weights:
        with path.open("rb") as handle:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
            digest.update(handle.read(head_bytes))
    return digest.hexdigest()[:24]


@dataclass
class FilterResult:
    kept: list[Problem]
    accuracy: dict[str, float]
    dropped_all_correct: list[str] = field(default_factory=list)
    dropped_all_wrong: list[str] = field(default_factory=list)
    cache_hits: int = 0

    def summary(self) -> dict:
        return {"kept": len(self.kept), "dropped_all_correct": len(self.dropped_all_correct),
                "dropped_all_wrong": len(self.dropped_all_wrong), "cache_hits": self.cache_hits}


def _cache_key(fingerprint: str, sampling: SamplingParams, problem: Problem) -> str:
    payload = json.dumps({"model": fingerprint, "sampling": asdict(sampling), "problem": problem.problem,
                          "gold": problem.answer, "tests": [t.model_dump() for t in problem.tests or []]},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def estimate_and_filter(generator: Generator, problems: Sequence[Problem], sampling: SamplingParams,
                        fingerprint: str, cache_path: str | os.PathLike | None = None) -> FilterResult:
    """Estimate each problem's accuracy with ``sampling.n`` samples (cached) and keep those strictly in (0, 1)."""
    if sampling.n < 2:
        raise ValueError("prompt filtering needs n >= 2 samples per prompt to tell 0 and 1 from the rest")
    cache: dict[str, float] = {}
    cache_path = Path(cache_path) if cache_path else None
    if cache_path and cache_path.exists():
        for line in cache_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                cache[row["key"]] = row["accuracy"]
    keys = [_cache_key(fingerprint, sampling, p) for p in problems]
    todo = [i for i, key in enumerate(keys) if key not in cache]
    if todo:
        prompts = [render_prompt(generator.tokenizer, problems[i]) for i in todo]
        completions = generator.generate(prompts, sampling)
        for slot, index in enumerate(todo):
            group = completions[slot * sampling.n:(slot + 1) * sampling.n]
            correct = [c.finish_reason != "length" and score(problems[index], c.text).correct for c in group]
            cache[keys[index]] = sum(correct) / len(correct)
        if cache_path:
            rows = [json.dumps({"key": k, "accuracy": v}) for k, v in cache.items()]
            write_text_atomic(cache_path, "\n".join(rows) + "\n")
    result = FilterResult(kept=[], accuracy={}, cache_hits=len(problems) - len(todo))
    for problem, key in zip(problems, keys):
        accuracy = cache[key]
        result.accuracy[problem.id] = accuracy
        if accuracy == 1.0:
            result.dropped_all_correct.append(problem.id)
        elif accuracy == 0.0:
            result.dropped_all_wrong.append(problem.id)
        else:
            result.kept.append(problem)
    return result
