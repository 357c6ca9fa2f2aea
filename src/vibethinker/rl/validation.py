"""Held-out validation during RL (verl's ``test_freq``, TRL's ``eval_steps``): every ``eval_every`` optimiser steps
the live policy answers the held-out problems with SPEC 3 sampling (T = 1.0, top-p 0.95) and the phase logs
pass@1 (avg@n), pass@n and the mean response length, so accuracy can be plotted against steps.

The rollout generator is reused (the native engine copies the live weights before each call), so validation costs
only its own sampling. Each evaluation writes ``validation/step-NNNNNN/{samples.jsonl,summary.json}`` and appends
one row to ``validation.jsonl``; the sampling seed is the same at every step, so steps differ by the policy only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from vibethinker.data.records import Problem
from vibethinker.eval.config import EvalConfig
from vibethinker.eval.runner import evaluate
from vibethinker.generate.types import Generator
from vibethinker.utils.files import read_jsonl

VALIDATION_SEED = 20_251_129  # one fixed seed: the curve moves with the policy, not with the sampling noise


def validation_config(samples: int, max_new_tokens: int, require_think: bool, batch_size: int) -> EvalConfig:
    """SPEC 3 sampling (:class:`~vibethinker.sampling.SamplingSettings` defaults) at the phase's window."""
    return EvalConfig(n=samples, k=[1, samples], max_new_tokens=max_new_tokens, seed=VALIDATION_SEED,
                      batch_size=batch_size, require_think=require_think, progress=False)


def validate(generator: Generator, problems: list[Problem], config: EvalConfig, out_dir: Path,
             step: int) -> dict[str, float]:
    """Evaluate the current policy; return the ``heldout/*`` metrics and append them to ``validation.jsonl``."""
    summary = evaluate(generator, problems, config, out_dir / "validation" / f"step-{step:06d}")
    metrics = {"heldout/pass@1": summary["pass@1"], "heldout/mean_tokens": summary["mean_tokens"],
               "heldout/cutoff_ratio": summary["cutoff_ratio"]}
    if config.n > 1:
        metrics[f"heldout/pass@{config.n}"] = summary[f"pass@{config.n}"]
    with (out_dir / "validation.jsonl").open("a") as handle:  # one short append per evaluation; a torn last line
        handle.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")  # is dropped by read_validation
    return metrics


def read_validation(path: Path) -> list[dict]:
    """Rows of ``validation.jsonl``, the last row per step (a resumed phase re-validates its resume step)."""
    if not path.exists():
        return []
    rows: dict[int, dict] = {}
    for _, row in read_jsonl(path, skip_torn_lines=True):
        rows[row["step"]] = row
    return [rows[step] for step in sorted(rows)]
