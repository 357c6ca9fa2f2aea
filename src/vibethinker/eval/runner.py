"""Run the evaluation protocol (SPEC 3) on a set of problems: sample, grade, write samples and a summary.

``evaluate`` takes a checkpoint path, a ``(model, tokenizer)`` pair or any :class:`Generator` (dependency injection:
tests pass a fake one, faster backends plug in the same way). Problems are generated in chunks so the progress bar
moves and grading (code runs in subprocesses, hence a thread pool) overlaps with generation of the next chunk.

Outputs in ``out_dir``: ``samples.jsonl`` (one row per sample, keys in :data:`SAMPLE_KEYS`) and ``summary.json``
(metric keys of :func:`summarize` overall, plus ``by_domain`` / ``by_subdomain`` / ``by_difficulty`` breakdowns).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from vibethinker.data.records import Problem, write_jsonl
from vibethinker.eval.metrics import avg_at_n, bootstrap_ci, cons_at_n, cutoff_ratio, mean_tokens, pass_at_k
from vibethinker.eval.config import EvalConfig
from vibethinker.eval.sample_grade import GradedSample, sample_and_grade
from vibethinker.generate import Generator, ModelSource, make_generator
from vibethinker.utils.files import write_json_atomic
from vibethinker.verify import vote_key

SAMPLE_KEYS = ("problem_id", "domain", "subdomain", "difficulty", "sample_index", "response", "answer", "correct",
               "tokens", "finish_reason")
_CHUNK_SEED_STRIDE = 1_000_003  # chunk c seeds batches from seed + c * stride: no two batches share a seed


def evaluate(model: ModelSource | Generator, problems: Sequence[Problem], config: EvalConfig,
             out_dir: str | os.PathLike) -> dict[str, Any]:
    """Sample ``config.n`` responses per problem, grade them, write ``samples.jsonl`` + ``summary.json``; return the
    summary."""
    if not problems:
        raise ValueError("evaluate needs at least one problem")
    sampling = config.sampling_params()  # validates before any model is loaded
    generator = model if isinstance(model, Generator) else make_generator(
        model, batch_size=config.batch_size, max_model_len=config.sampling.max_model_len)
    total = len(problems) * config.n
    console = Console(stderr=True)
    with Progress(console=console, disable=not (config.progress and console.is_terminal)) as progress:
        gen_task = progress.add_task("generating", total=total)
        score_task = progress.add_task("grading", total=total)
        batch = sample_and_grade(generator, problems, sampling, require_think=config.require_think,
                                 chunk_problems=max(1, config.samples_per_chunk // config.n),
                                 chunk_seed_stride=_CHUNK_SEED_STRIDE, score_workers=config.score_workers,
                                 on_generated=lambda count: progress.advance(gen_task, count),
                                 on_graded=lambda: progress.advance(score_task))
    rows = [_sample_row(problem, sample) for problem, group in zip(problems, batch.samples) for sample in group]
    out_dir = Path(out_dir)
    write_jsonl(out_dir / "samples.jsonl", rows)
    summary = summarize(rows, problems, config)
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def _sample_row(problem: Problem, sample: GradedSample) -> dict[str, Any]:
    return {"problem_id": problem.id, "domain": problem.domain, "subdomain": problem.subdomain,
            "difficulty": problem.difficulty, "sample_index": sample.sample_index, "response": sample.text,
            "answer": sample.answer, "correct": sample.correct, "tokens": sample.num_tokens,
            "finish_reason": sample.finish_reason}


def summarize(rows: Sequence[dict[str, Any]], problems: Sequence[Problem], config: EvalConfig) -> dict[str, Any]:
    """Overall metrics plus the same metrics per domain, subdomain and difficulty, from graded sample rows."""
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_problem[row["problem_id"]].append(row)
    groups = [(p, sorted(by_problem[p.id], key=lambda r: r["sample_index"])) for p in problems]
    summary = _metrics(groups, config)
    summary["notes"] = [f"pass@{k} skipped: k > n={config.n}" for k in config.ks if k > config.n]
    for name, attr in (("by_domain", "domain"), ("by_subdomain", "subdomain"), ("by_difficulty", "difficulty")):
        split: dict[str, list] = defaultdict(list)
        for problem, samples in groups:
            split[str(getattr(problem, attr))].append((problem, samples))
        summary[name] = {key: _metrics(split[key], config) for key in sorted(split)}
    summary["config"] = config.flat_dump()
    return summary


def _metrics(groups: list[tuple[Problem, list[dict[str, Any]]]], config: EvalConfig) -> dict[str, Any]:
    """pass@1 / pass@k / cons@n averaged over problems; token and cut-off metrics over all samples."""
    per_problem_pass1, pass_k, cons = [], defaultdict(list), []
    ks = sorted({k for k in config.ks if 1 < k <= config.n})
    for problem, samples in groups:
        flags = [s["correct"] for s in samples]
        per_problem_pass1.append(avg_at_n(flags))
        for k in ks:
            pass_k[k].append(pass_at_k(len(flags), sum(flags), k))
        keys = [vote_key(problem, s["answer"]) if s["answer"] is not None else None for s in samples]
        cons.append(cons_at_n(keys, flags))
    samples = [s for _, group in groups for s in group]
    out: dict[str, Any] = {"pass@1": _mean(per_problem_pass1)}
    out.update({f"pass@{k}": _mean(pass_k[k]) for k in ks})
    out[f"cons@{config.n}"] = _mean(cons)
    out["mean_tokens"] = mean_tokens([s["tokens"] for s in samples])
    out["cutoff_ratio"] = cutoff_ratio([s["finish_reason"] for s in samples])
    out["n_problems"], out["n_samples"] = len(groups), len(samples)
    out["pass@1_ci"] = list(bootstrap_ci(per_problem_pass1, seed=0)) if per_problem_pass1 else [0.0, 0.0]
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def format_summary_table(summaries: dict[str, dict[str, Any]], metric: str = "pass@1") -> Table:
    """Models side by side: one ``metric`` column per model (default pass@1, in %), rows overall / domain /
    difficulty. A slice a model was not evaluated on shows as "-"."""
    table = Table(title=f"{metric} (%)")
    table.add_column("slice")
    for model_name in summaries:
        table.add_column(model_name, justify="right")
    slices: list[tuple[str, str | None, str | None]] = [("overall", None, None)]
    for group, label in (("by_domain", "domain"), ("by_difficulty", "difficulty")):
        keys = sorted({k for s in summaries.values() for k in s.get(group, {})}, key=_natural)
        slices += [(f"{label} {key}", group, key) for key in keys]
    for title, group, key in slices:
        cells = []
        for summary in summaries.values():
            source = summary if group is None else summary.get(group, {}).get(key)
            value = None if source is None else source.get(metric)
            cells.append("-" if value is None else f"{100 * value:.1f}")
        table.add_row(title, *cells)
    return table


def _natural(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.isdigit() else (1, key)


__all__ = ["EvalConfig", "SAMPLE_KEYS", "evaluate", "format_summary_table", "summarize"]
