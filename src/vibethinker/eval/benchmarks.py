"""Benchmark files and their evaluation settings (SPEC 3), and running a suite of them.

``run_benchmarks`` evaluates each benchmark into ``<out>/<name>/`` (the runner's ``samples.jsonl`` and
``summary.json``, plus the info and the pass@k curve) and writes ``<out>/benchmarks.json`` (per benchmark: pass@1 =
avg@n with its bootstrap CI, the pass@k curve, cons@n, mean tokens, cut-off ratio) and ``<out>/pass_curve.png``.

``load_benchmark(path) -> (problems, BenchmarkInfo)`` reads, judged from the first row:

1. a file in our problem schema (rows with ``domain`` and ``subdomain``);
2. a multiple-choice set, GPQA style (a ``choices`` or ``options`` field): :data:`CHOICE` below, since no converter
   in :mod:`vibethinker.data.formats` keeps the options (DeepScaleR's would take ``problem`` + ``answer`` alone);
3. anything else through :func:`vibethinker.data.formats.load_problems_any`: the shared answer sets
   (``/work/shared/data/bench``), the shared code sets, LiveCodeBench ``code_generation_lite`` rows, ...

The benchmark's name is the file name without its extension; its kind is ``code`` (code problems), ``choice``
(problems with options) or ``math`` (final-answer problems: math, and stem without options). A file mixing kinds
is refused: they have different defaults.

SPEC 3 defaults (every one overridable, see :meth:`BenchmarkInfo.with_overrides`):

| kind   | benchmark                                   | samples n | temperature | top-p | top-k |
|--------|---------------------------------------------|-----------|-------------|-------|-------|
| math   | answer sets (AIME, HMMT, MATH-500, ...)     | 64        | 1.0         | 0.95  | off   |
| math   | IMO-AnswerBench (name ``imo-answerbench``)  | 16        | 1.0         | 0.95  | off   |
| choice | GPQA (and any multiple-choice set *(ours)*) | 16        | 1.0         | 0.95  | off   |
| code   | LiveCodeBench-style                         | 8         | 1.0         | 0.95  | off   |

(SPEC 3 also notes "0.6 for code in the 1.5B report"; the protocol's 1.0 is the default here, and ``--temperature``
or ``--top-p`` reproduce that report's code setting.)

GPQA-style rows: ``question`` (or ``problem``); ``choices`` or ``options``, a list of texts (letter A first) or an
object ``{"A": text, "B": text, ...}``; the gold as ``answer`` (a letter such as ``B`` / ``(B)``, or the exact text
of one option) or ``answer_index`` (0-based); optional ``id``, ``subject``/``subdomain``/``category``,
``difficulty``. They become ``stem`` problems graded by the choice verifier.
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich import box
from rich.table import Table

from vibethinker.data.formats import load_problems_any
from vibethinker.data.formats.base import Converter, ConvertOptions, RowContext
from vibethinker.data.formats.driver import ConvertReport, iter_converted
from vibethinker.data.formats.reading import first_row
from vibethinker.data.records import Problem, RecordError, read_rows
from vibethinker.eval.pass_curve import pass_at_k_curve, plot_pass_curve
from vibethinker.eval.config import EvalConfig
from vibethinker.eval.runner import evaluate
from vibethinker.generate import Generator, ModelSource, make_generator
from vibethinker.prompts import CHOICE_SUFFIX
from vibethinker.sampling import SamplingSettings
from vibethinker.utils.files import write_json_atomic
from vibethinker.verify.choice import parse_choice

Kind = Literal["math", "choice", "code"]
SAMPLES_BY_KIND = {"math": 64, "choice": 16, "code": 8}  # SPEC 3
SAMPLES_IMO_ANSWERBENCH = 16  # SPEC 3
SAMPLING_FIELDS = ("n", "temperature", "top_p", "top_k")
_SPEC3 = SamplingSettings.model_fields  # the protocol's defaults, written once in vibethinker.sampling


class BenchmarkInfo(BaseModel):
    """What a benchmark file is, and the sampling settings it is evaluated with."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, description="The file name without its extension *(our default)*.")
    kind: Kind = Field(..., description="math (final answers), choice (options, GPQA style) or code (SPEC 3).")
    path: str = Field(..., description="The benchmark file.")
    format: str = Field(..., description="The reader used: 'vibethinker', 'choice' or a data.formats converter.")
    n_problems: int = Field(..., ge=1, description="Problems in the file.")
    n: int = Field(..., ge=1, description="Samples per problem (SPEC 3: math 64, IMO-AnswerBench and GPQA 16, "
                                          "code 8).")
    temperature: float = Field(_SPEC3["temperature"].default, ge=0, description="Sampling temperature (SPEC 3).")
    top_p: float = Field(_SPEC3["top_p"].default, gt=0, le=1, description="Nucleus sampling (SPEC 3).")
    top_k: int = Field(_SPEC3["top_k"].default, ge=0, description="Top-k sampling, 0 = off (SPEC 3).")
    overridden: list[str] = Field(default_factory=list, description=(
        "Sampling settings set by the user instead of the SPEC 3 default *(our default: none)*."))

    def with_overrides(self, **values: Any) -> BenchmarkInfo:
        """A copy with the given sampling settings replaced; ``None`` keeps the benchmark default."""
        unknown = sorted(set(values) - set(SAMPLING_FIELDS))
        if unknown:
            raise ValueError(f"not a sampling setting: {', '.join(unknown)} (known: {', '.join(SAMPLING_FIELDS)})")
        changes = {key: value for key, value in values.items() if value is not None}
        overridden = sorted({*self.overridden, *changes}, key=SAMPLING_FIELDS.index)
        try:
            return BenchmarkInfo.model_validate({**self.model_dump(), **changes, "overridden": overridden})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"{self.name}: sampling setting {err['loc'][0]}={err['input']!r}: {err['msg']}") from None


def default_samples(name: str, kind: Kind) -> int:
    """SPEC 3 samples per problem for a benchmark of this name and kind."""
    if kind == "math" and "imoanswerbench" in re.sub(r"[^0-9a-z]", "", name.lower()):
        return SAMPLES_IMO_ANSWERBENCH
    return SAMPLES_BY_KIND[kind]


def load_benchmark(path: str | os.PathLike) -> tuple[list[Problem], BenchmarkInfo]:
    """The problems of a benchmark file and its :class:`BenchmarkInfo` with the SPEC 3 defaults."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such benchmark file")
    _, row = first_row(path)
    if isinstance(row, dict) and _is_choice_row(row):
        report = ConvertReport(format=CHOICE.name, input=str(path))
        problems, fmt = list(iter_converted(path, CHOICE, ConvertOptions(), report)), CHOICE.name
    else:
        problems, fmt = load_problems_any(path)
    name = _benchmark_name(path)
    kind = benchmark_kind(problems, path)
    return problems, BenchmarkInfo(name=name, kind=kind, path=str(path), format=fmt, n_problems=len(problems),
                                   n=default_samples(name, kind))


def benchmark_kind(problems: list[Problem], path: str | os.PathLike = "<memory>") -> Kind:
    """The one kind of all ``problems``; a file mixing kinds, or with instruction problems, is an error."""
    first: dict[str, str] = {}
    for problem in problems:
        if problem.domain == "instruct":
            raise RecordError(path, 0, "domain", f"problem {problem.id!r} is an instruction-following problem: "
                                                 "not a SPEC 3 benchmark kind (math, choice, code)")
        kind = "code" if problem.domain == "code" else "choice" if problem.choices else "math"
        first.setdefault(kind, problem.id)
    if len(first) != 1:
        listed = ", ".join(f"{kind} (e.g. {pid!r})" for kind, pid in first.items())
        raise RecordError(path, 0, "domain", f"the benchmark mixes kinds {listed}; split it into one file per kind")
    return next(iter(first))  # type: ignore[return-value]


def _benchmark_name(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name or path.name


def _is_choice_row(row: dict) -> bool:
    ours = "domain" in row and "subdomain" in row  # our schema keeps options in 'choices' too: load it as ours
    return not ours and ("choices" in row or "options" in row)


# -- the GPQA-style multiple-choice reader ----------------------------------------------------------------------

def _convert_choice(row: dict, ctx: RowContext) -> dict:
    question_field = "question" if "question" in row else "problem"
    question = ctx.text(row, question_field).strip().removesuffix(CHOICE_SUFFIX).strip()
    options_field = "choices" if "choices" in row else "options"
    choices = _options(row, options_field, ctx)
    gold = _gold_letter(row, choices, ctx)
    subject = next((row[key] for key in ("subdomain", "subject", "category") if isinstance(row.get(key), str)),
                   None)
    used = {question_field, options_field, "answer", "answer_index", "id", "subdomain", "subject", "category",
            "difficulty"}
    meta = {key: value for key, value in row.items() if key not in used}
    return ctx.record(id=ctx.make_id(row.get("id")), domain=ctx.domain(None, "stem", "domain"),
                      subdomain=ctx.subdomain(subject), difficulty=ctx.difficulty(row.get("difficulty"), meta),
                      problem=question, answer=gold, choices=choices, meta=meta)


def _options(row: dict, name: str, ctx: RowContext) -> list[str]:
    value = ctx.maybe_json(row.get(name), name)
    if isinstance(value, dict):
        letters = list(string.ascii_uppercase[:len(value)])
        if [str(key).strip().upper() for key in value] != letters:
            ctx.fail(name, f"option keys must be the letters {', '.join(letters)} in order, got {list(value)}")
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        ctx.fail(name, f"expected a list of options or an object letter -> option, got {type(value).__name__}")
    if not 2 <= len(value) <= len(string.ascii_uppercase):
        ctx.fail(name, f"expected 2 to 26 options, got {len(value)}")
    options = []
    for index, option in enumerate(value):
        if isinstance(option, (int, float)) and not isinstance(option, bool):
            option = str(option)
        if not isinstance(option, str) or not option.strip():
            ctx.fail(f"{name}[{index}]", "each option must be non-empty text")
        options.append(option.strip())
    return options


def _gold_letter(row: dict, choices: list[str], ctx: RowContext) -> str:
    letters = string.ascii_uppercase[:len(choices)]
    if row.get("answer_index") is not None:
        index = row["answer_index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(choices):
            ctx.fail("answer_index", f"expected an integer 0..{len(choices) - 1}, got {index!r}")
        return letters[index]
    answer = ctx.text(row, "answer")
    letter = parse_choice(answer)
    if letter is not None and letter in letters:
        return letter
    matches = [i for i, option in enumerate(choices) if option == answer.strip()]
    if len(matches) == 1:
        return letters[matches[0]]
    ctx.fail("answer", f"{answer!r} is neither an option letter A-{letters[-1]} nor the text of one option")


CHOICE = Converter("choice", "multiple-choice rows, GPQA style (question, choices/options, answer letter)",
                   _is_choice_row, _convert_choice)


# -- running a suite ----------------------------------------------------------------------------------------------

def run_benchmarks(model: ModelSource | Generator, benchmarks: list[tuple[list[Problem], BenchmarkInfo]],
                   base: EvalConfig, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Evaluate each benchmark with its own sampling settings into ``out_dir/<name>/``; write ``benchmarks.json``
    and ``pass_curve.png`` in ``out_dir``; return the ``benchmarks.json`` content.

    ``base`` gives everything but the sampling settings (length budget, seed, batch size, pass@k list). Each
    ``summary.json`` gains ``benchmark`` (the info) and ``pass_curve`` (``{k: pass@k}``, keys as text as in JSON).
    """
    if not benchmarks:
        raise ValueError("run_benchmarks needs at least one benchmark")
    names = [info.name for _, info in benchmarks]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        paths = [info.path for _, info in benchmarks if info.name in twice]
        raise ValueError(f"two benchmarks share the name {twice[0]!r} ({', '.join(paths)}): their results would "
                         "land in one folder; rename one file")
    out_dir = Path(out_dir)
    generator = model if isinstance(model, Generator) else make_generator(
        model, batch_size=base.batch_size, max_model_len=base.sampling.max_model_len)
    results: dict[str, Any] = {}
    for problems, info in benchmarks:
        config = base.model_copy(update={key: getattr(info, key) for key in SAMPLING_FIELDS})
        bench_dir = out_dir / info.name
        summary = evaluate(generator, problems, config, bench_dir)
        curve = pass_at_k_curve(_sample_counts(bench_dir / "samples.jsonl", problems))
        summary["benchmark"] = info.model_dump()
        summary["pass_curve"] = {str(k): value for k, value in curve.items()}
        write_json_atomic(bench_dir / "summary.json", summary)
        results[info.name] = {
            **info.model_dump(), "pass@1": summary["pass@1"], "pass@1_ci": summary["pass@1_ci"],
            "pass_curve": summary["pass_curve"], "cons@n": summary[f"cons@{info.n}"],
            "mean_tokens": summary["mean_tokens"], "cutoff_ratio": summary["cutoff_ratio"],
            "summary": str(Path(info.name) / "summary.json"),
        }
    report = {"settings": {"max_new_tokens": base.max_new_tokens, "seed": base.seed, "ks": base.ks},
              "benchmarks": results}
    write_json_atomic(out_dir / "benchmarks.json", report)
    plot_pass_curve({name: entry["pass_curve"] for name, entry in results.items()}, out_dir / "pass_curve.png")
    return report


def benchmark_table(report: dict[str, Any]) -> Table:
    """One row per benchmark of a ``benchmarks.json`` report: samples n, pass@1 (avg@n) with its 95% bootstrap CI,
    pass@n, cons@n (all in %), mean response tokens and the cut-off share (cut, %). Fits 80 columns."""
    table = Table(title="benchmarks (SPEC 3), metrics in %", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("benchmark", overflow="fold")  # a long name wraps rather than losing its end
    for column in ("n", "pass@1", "95% CI", "pass@n", "cons@n", "tokens", "cut"):
        table.add_column(column, justify="right")
    for name, entry in report["benchmarks"].items():
        low, high = entry["pass@1_ci"]
        largest = max(entry["pass_curve"], key=int)
        table.add_row(name, str(entry["n"]), f"{100 * entry['pass@1']:.1f}", f"{100 * low:.1f}-{100 * high:.1f}",
                      f"{100 * entry['pass_curve'][largest]:.1f}", f"{100 * entry['cons@n']:.1f}",
                      f"{entry['mean_tokens']:.0f}", f"{100 * entry['cutoff_ratio']:.1f}")
    return table


def _sample_counts(samples_path: Path, problems: list[Problem]) -> list[tuple[int, int]]:
    """``(n, c)`` per problem, from the runner's samples file (the record of what was graded)."""
    counts = {problem.id: [0, 0] for problem in problems}
    for _, row in read_rows(samples_path):
        counts[row["problem_id"]][0] += 1
        counts[row["problem_id"]][1] += bool(row["correct"])
    return [(n, c) for n, c in counts.values()]


__all__ = ["CHOICE", "SAMPLES_BY_KIND", "BenchmarkInfo", "Kind", "benchmark_kind", "benchmark_table",
           "default_samples", "load_benchmark", "run_benchmarks"]
