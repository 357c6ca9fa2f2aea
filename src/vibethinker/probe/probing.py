"""Diversity probing (SPEC 2.2 steps 2-4): score every SFT checkpoint per sub-domain with Pass@K, pick specialists.

For checkpoint t and sub-domain i with probing problems Q_i, each problem q gets n samples of which c_q are correct:

    P_i(t)      = mean_{q in Q_i} pass@K(n, c_q, K)      pass@K = 1 - C(n-c, K) / C(n, K)   (unbiased, SPEC 2.2)
    pass@1_i(t) = mean_{q in Q_i} c_q / n                 (avg@n, reported beside it, never used to select)
    M*_i        = argmax_t P_i(t)                         ties -> the later step *(our default)*
    w(M)        = sum_{i : M*_i = M} 1 / N                uniform over the N sub-domains (1.5B report)

Pass@K counts how many problems a checkpoint can solve at all within K tries: the "spectrum" of valid solutions
that RL later sharpens. It is not best pass@1 and not lowest loss.

Each checkpoint's graded samples are cached in ``out_dir/samples/step-NNNNNN-<key>.jsonl``, where the key hashes the
checkpoint's fingerprint, the sampling settings that change what is estimated (n, temperature, top-p, length, seed,
require_think) and the probing problems; a re-run with the same key reads the file instead of sampling.
``batch_size`` / ``device`` are left out of the key: they change only which random draw a seed gives.

Outputs in ``out_dir``: ``probing.json`` (the table, specialists and fusion weights), ``probing.md`` and
``probing.png`` (P_i(t) over steps, pass@1 dashed beside it).
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from vibethinker.data.records import Problem
from vibethinker.eval.metrics import avg_at_n, pass_at_k
from vibethinker.eval.sample_grade import SampleCache, sample_and_grade
from vibethinker.generate import Generator, make_generator
from vibethinker.model.fingerprint import model_fingerprint
from vibethinker.probe.config import ProbeConfig
from vibethinker.utils.files import read_json, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

GeneratorFactory = Callable[[Path], Generator]
_STEP_DIR = re.compile(r"^step-(\d+)$")
_KEY_FIELDS = ("n", "temperature", "top_p", "top_k", "max_new_tokens", "seed", "require_think")


@dataclass
class SubdomainScore:
    pass_at_k: float  # P_i(t)
    pass_at_1: float  # avg@n, for comparison only
    problems: int


@dataclass
class CheckpointProbe:
    """One checkpoint's probing outcome; ``correct`` maps problem id -> correct samples out of n."""

    step: int
    path: str
    fingerprint: str
    scores: dict[str, SubdomainScore]
    correct: dict[str, int] = field(default_factory=dict)
    cached: bool = False  # read from the sample cache instead of sampled


@dataclass
class ProbeResult:
    k: int
    n: int
    checkpoints: list[CheckpointProbe]  # ascending step

    @property
    def subdomains(self) -> list[str]:
        return sorted({name for c in self.checkpoints for name in c.scores})

    def to_json(self) -> dict[str, Any]:
        table = [{"step": c.step, "path": c.path, "fingerprint": c.fingerprint, "cached": c.cached,
                  "subdomains": {name: {f"pass@{self.k}": s.pass_at_k, "pass@1": s.pass_at_1, "problems": s.problems}
                                 for name, s in sorted(c.scores.items())},
                  "correct": c.correct} for c in self.checkpoints]
        return {"k": self.k, "n": self.n, "table": table}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProbeResult:
        """Inverse of :meth:`to_json` (reads the ``table`` part of ``probing.json``)."""
        k = data["k"]
        checkpoints = [CheckpointProbe(
            step=row["step"], path=row["path"], fingerprint=row["fingerprint"], cached=row.get("cached", False),
            scores={name: SubdomainScore(s[f"pass@{k}"], s["pass@1"], s["problems"])
                    for name, s in row["subdomains"].items()},
            correct=row.get("correct", {})) for row in data["table"]]
        return cls(k=k, n=data["n"], checkpoints=checkpoints)


class Specialist(NamedTuple):
    """M*_i of one sub-domain: the checkpoint with the highest Pass@K there, and that Pass@K."""

    step: int
    path: str
    score: float


def list_checkpoints(sft_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """The SFT stage's ``checkpoints/step-NNNNNN/`` folders plus its final ``model/``, ascending by step.

    The final model's step is ``steps`` of ``sft_summary.json`` when the trainer wrote it, else the largest saved
    step + 1 (the trainer never saves a periodic checkpoint at the last step, so the two never coincide).
    """
    sft_dir = Path(sft_dir)
    found: list[tuple[int, Path]] = []
    for child in sorted((sft_dir / "checkpoints").glob("step-*")):
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir() and (child / "config.json").exists():
            found.append((int(match.group(1)), child))
    final = sft_dir / "model"
    if (final / "config.json").exists():
        summary_path = sft_dir / "sft_summary.json"
        if summary_path.exists():
            summary = read_json(summary_path)
            if not isinstance(summary.get("steps"), int):
                raise ValueError(f"{summary_path}: field 'steps': expected the final step count, "
                                 f"got {summary.get('steps')!r}")
            final_step = summary["steps"]
        else:
            final_step = max((step for step, _ in found), default=0) + 1
        found = [(step, path) for step, path in found if step != final_step] + [(final_step, final)]
    if not found:
        raise FileNotFoundError(f"{sft_dir}: no SFT checkpoints (neither checkpoints/step-*/ nor model/)")
    return sorted(found, key=lambda item: item[0])


def probe_checkpoints(checkpoints: Sequence[tuple[int, str | os.PathLike]], probe_problems: Sequence[Problem],
                      config: ProbeConfig, out_dir: str | os.PathLike, cache: bool = True,
                      generator_factory: GeneratorFactory | None = None) -> ProbeResult:
    """Sample, grade and score every checkpoint on the probing problems; write the outputs; return the table.

    ``generator_factory(path)`` loads a checkpoint for sampling (default: :func:`make_generator` with the config's
    batch size and device); it is called only for checkpoints whose samples are not cached.
    """
    problems = list(probe_problems)
    _check_inputs(checkpoints, problems)
    out_dir = Path(out_dir)
    factory = generator_factory or (lambda path: make_generator(path, batch_size=config.batch_size,
                                                                device=config.device,
                                                                max_model_len=config.sampling.max_model_len))
    problems_hash = _problems_hash(problems)
    sampling = config.sampling_params()
    probes = []
    for step, path in sorted(checkpoints, key=lambda item: item[0]):
        fingerprint = model_fingerprint(path)
        cache_file = out_dir / "samples" / f"step-{step:06d}-{_cache_key(fingerprint, config, problems_hash)}.jsonl"
        samples = SampleCache.open(cache_file, fingerprint) if cache else SampleCache(cache_file, fingerprint)
        batch = sample_and_grade(lambda path=path: factory(Path(path)), problems, sampling,
                                 require_think=config.require_think, cache=samples,
                                 score_workers=config.score_workers)
        cached = batch.generated == 0
        if not cached:  # free the checkpoint before the next one loads
            gc.collect()
            _empty_cuda_cache()
        log.info("probed step %d (%s)%s", step, path, " from cache" if cached else "")
        rows = [{"problem_id": s.problem_id, "correct": s.correct} for group in batch.samples for s in group]
        scores, correct = score_samples(rows, problems, config.k, config.n)
        probes.append(CheckpointProbe(step, str(path), fingerprint, scores, correct, cached))
    result = ProbeResult(k=config.k, n=config.n, checkpoints=probes)
    write_probe_outputs(result, out_dir, config)
    return result


def score_samples(rows: Sequence[dict[str, Any]], problems: Sequence[Problem], k: int,
                  n: int) -> tuple[dict[str, SubdomainScore], dict[str, int]]:
    """Per sub-domain P_i = mean pass@k and mean avg@n over its problems, from graded sample rows."""
    flags: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        flags[row["problem_id"]].append(bool(row["correct"]))
    by_subdomain: dict[str, list[tuple[float, float]]] = defaultdict(list)
    correct = {}
    for problem in problems:
        got = flags[problem.id]
        if len(got) != n:
            raise ValueError(f"problem {problem.id}: {len(got)} graded samples, expected n={n}")
        correct[problem.id] = sum(got)
        by_subdomain[problem.subdomain].append((pass_at_k(n, sum(got), k), avg_at_n(got)))
    scores = {name: SubdomainScore(pass_at_k=sum(v[0] for v in values) / len(values),
                                   pass_at_1=sum(v[1] for v in values) / len(values), problems=len(values))
              for name, values in sorted(by_subdomain.items())}
    return scores, correct


def select_specialists(result: ProbeResult) -> dict[str, Specialist]:
    """M*_i = argmax_t P_i(t) per sub-domain (SPEC 2.2 step 3); a tie goes to the later step *(our default: the
    longer-trained checkpoint, at equal coverage, has the lower loss and sharper answers)*."""
    if not result.checkpoints:
        raise ValueError("no probed checkpoints to select specialists from")
    specialists: dict[str, Specialist] = {}
    for name in result.subdomains:
        for probe in sorted(result.checkpoints, key=lambda c: c.step):
            if name not in probe.scores:
                continue
            value = probe.scores[name].pass_at_k
            if name not in specialists or value >= specialists[name].score:
                specialists[name] = Specialist(probe.step, probe.path, value)
    return specialists


def fusion_weights(specialists: dict[str, Specialist], scheme: str = "uniform") -> dict[str, float]:
    """Weight of each distinct specialist checkpoint (path -> w), summing to 1, ordered by step (SPEC 2.2 step 4).

    ``uniform``: every sub-domain contributes 1/N (the 1.5B report); a checkpoint that is the specialist of
    several sub-domains collects all their shares, so M_merge = sum_i (1/N) M*_i exactly.
    """
    if scheme != "uniform":
        raise ValueError(f"unknown fusion weight scheme {scheme!r}; choices: uniform")
    if not specialists:
        raise ValueError("no specialists to fuse")
    weights: dict[str, float] = {}
    share = 1.0 / len(specialists)
    for specialist in sorted(specialists.values(), key=lambda s: s.step):
        weights[specialist.path] = weights.get(specialist.path, 0.0) + share
    return weights


def write_probe_outputs(result: ProbeResult, out_dir: str | os.PathLike, config: ProbeConfig | None = None) -> None:
    """``probing.json``, ``probing.md`` and ``probing.png`` for ``result`` in ``out_dir``."""
    from vibethinker.probe.plot import plot_probe_curves

    out_dir = Path(out_dir)
    specialists = select_specialists(result)
    weights = fusion_weights(specialists)
    steps = {c.path: c.step for c in result.checkpoints}
    data = result.to_json()
    data["specialists"] = {name: s._asdict() for name, s in specialists.items()}
    data["weights"] = [{"step": steps[path], "path": path, "weight": weight,
                        "subdomains": sorted(n for n, s in specialists.items() if s.path == path)}
                       for path, weight in weights.items()]
    if config is not None:
        data["config"] = config.model_dump()
    write_json_atomic(out_dir / "probing.json", data)
    write_text_atomic(out_dir / "probing.md", probe_markdown(result, specialists, weights))
    plot_probe_curves(result, specialists, out_dir / "probing.png")


def probe_markdown(result: ProbeResult, specialists: dict[str, Specialist], weights: dict[str, float]) -> str:
    """Pass@K and Pass@1 side by side per sub-domain and step; each sub-domain's specialist in bold with a star."""
    k, names = result.k, result.subdomains
    intro = (f"P_i(t) = mean over sub-domain i's probing problems of the unbiased pass@{k} from n={result.n} "
             f"samples; pass@1 (avg@{result.n}) beside it for comparison. The specialist of each sub-domain (argmax "
             f"of pass@{k}, ties to the later step) is marked **bold ★**.")
    lines = ["# Diversity probing (SPEC 2.2)", "", intro, ""]
    header = ["step", "checkpoint"] + [f"{name} {metric}" for name in names for metric in (f"pass@{k}", "pass@1")]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for probe in result.checkpoints:
        cells = [str(probe.step), Path(probe.path).name]
        for name in names:
            s = probe.scores.get(name)
            if s is None:
                cells += ["-", "-"]
                continue
            best = specialists[name].step == probe.step
            cells += [f"**{s.pass_at_k:.3f} ★**" if best else f"{s.pass_at_k:.3f}", f"{s.pass_at_1:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Specialists", "", f"| sub-domain | step | pass@{k} | pass@1 there | best pass@1 at step |",
              "|---|---|---|---|---|"]
    for name, specialist in specialists.items():
        probe = next(c for c in result.checkpoints if c.step == specialist.step)
        by_pass1 = max((c for c in result.checkpoints if name in c.scores),
                       key=lambda c: (c.scores[name].pass_at_1, c.step))
        lines.append(f"| {name} | {specialist.step} | {specialist.score:.3f} | "
                     f"{probe.scores[name].pass_at_1:.3f} | {by_pass1.step} |")
    steps = {c.path: c.step for c in result.checkpoints}
    lines += ["", "## Fusion weights (uniform 1/N over sub-domains)", "", "| step | checkpoint | weight |",
              "|---|---|---|"]
    lines += [f"| {steps[path]} | {path} | {weight:.4f} |" for path, weight in weights.items()]
    return "\n".join(lines) + "\n"


def _check_inputs(checkpoints: Sequence[tuple[int, str | os.PathLike]], problems: Sequence[Problem]) -> None:
    if not checkpoints:
        raise ValueError("probing needs at least one checkpoint")
    steps = [step for step, _ in checkpoints]
    if len(set(steps)) != len(steps):
        raise ValueError(f"two checkpoints share a step: {sorted(steps)}")
    if not problems:
        raise ValueError("probing needs at least one probing problem")
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise ValueError(f"probing problem id {problem.id!r} appears twice; ids must be unique")
        seen.add(problem.id)


def _problems_hash(problems: Sequence[Problem]) -> str:
    """Hash of everything about the problems that changes the prompt or the grading (traces do not)."""
    payload = json.dumps([p.model_dump(mode="json", exclude={"traces"}) for p in problems], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _cache_key(fingerprint: str, config: ProbeConfig, problems_hash: str) -> str:
    settings = {name: getattr(config, name) for name in _KEY_FIELDS}
    payload = json.dumps({"model": fingerprint, "settings": settings, "problems": problems_hash}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = ["CheckpointProbe", "GeneratorFactory", "ProbeResult", "Specialist", "SubdomainScore", "fusion_weights",
           "list_checkpoints", "probe_checkpoints", "probe_markdown", "score_samples", "select_specialists",
           "write_probe_outputs"]
