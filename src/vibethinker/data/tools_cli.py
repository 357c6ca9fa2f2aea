"""``vibethinker data ...``: convert public datasets into the problem schema, and decontaminate training data.

- ``convert FILE --format auto|verl|deepscaler|openr1|lcb|shared-bench|shared-code --out FILE``: see
  :mod:`vibethinker.data.formats`; writes the problems and ``<out stem>.report.json``.
- ``decontaminate --train FILE --eval FILE [--eval FILE ...] --out FILE [--report FILE] [--n 10]``: the SPEC 2.1
  rule (drop every training problem sharing a word n-gram, after normalisation, with an evaluation problem; see
  :mod:`vibethinker.data.decontam`); writes the kept problems and a JSON report naming, for each drop, the eval file
  and problem it overlapped and the shared n-gram as words. Input files may be in our schema or in any format
  ``convert`` detects (e.g. the shared AIME files), converted in memory.

Errors print ``error: ...`` and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from vibethinker.utils.progress import console

data_app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "Data tools: convert public formats into the problem schema; drop training problems that overlap eval sets."))

USER_ERRORS = (ValueError, FileNotFoundError)  # RecordError and pydantic's ValidationError are ValueErrors


def _fail(exc: Exception) -> typer.Exit:
    text = str(exc).strip() if not isinstance(exc, ValidationError) else "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    console.print(f"[red]error:[/red] {escape(text)}", soft_wrap=True)
    return typer.Exit(2)


@data_app.command()
def convert(
    file: Path = typer.Argument(..., help="Source file: JSONL, JSON array or parquet."),
    format: str = typer.Option("auto", "--format", "-f", help=(
        "auto, verl, deepscaler, openr1, lcb, shared-bench or shared-code (auto: detected from the first row).")),
    out: Path = typer.Option(..., "--out", help="Problem JSONL to write (atomically)."),
    domain: Optional[str] = typer.Option(None, help="Domain for rows whose source has none."),
    subdomain: Optional[str] = typer.Option(None, help="Sub-domain for rows whose source has none."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip rows that fail (listed in the report)."),
    limit: Optional[int] = typer.Option(None, help="Convert only the first LIMIT rows."),
    report: Optional[Path] = typer.Option(None, help="Report JSON (default: <out stem>.report.json beside out)."),
) -> None:
    """Convert a public dataset file into vibethinker problem records."""
    from vibethinker.data.formats import ConvertOptions, convert_file, report_path_for

    try:
        options = ConvertOptions(domain=domain, subdomain=subdomain, skip_bad=skip_bad, limit=limit)
        result = convert_file(file, format, out, options, report)
    except USER_ERRORS as exc:
        raise _fail(exc)
    table = Table(title=f"{file.name} ({result.format})", show_header=False)
    for key in ("rows_read", "written", "traces"):
        table.add_row(key.replace("_", " "), str(getattr(result, key)))
    table.add_row("skipped", str(len(result.skipped)))
    for item in result.skipped[:5]:
        table.add_row("", escape(f"row {item['row']} field {item['field']}"))
    for note, count in sorted(result.notes.items()):
        table.add_row(escape(note), str(count))
    console.print(table)
    console.print(f"wrote {escape(str(out))} and {escape(str(report or report_path_for(out)))}", soft_wrap=True)


@data_app.command()
def decontaminate(
    train: Path = typer.Option(..., "--train", help="Training problems (our schema, or a format convert detects)."),
    evals: list[Path] = typer.Option(..., "--eval", help="Evaluation problems; repeat for several files."),
    out: Path = typer.Option(..., "--out", help="Kept training problems (JSONL, written atomically)."),
    report: Optional[Path] = typer.Option(None, help="Report JSON (default: <out stem>.decontamination.json)."),
    n: int = typer.Option(10, "--n", min=1, help="Word n-gram length (SPEC 2.1: 10)."),
    field: list[str] = typer.Option(["problem"], "--field", help=(
        "Training fields to check; repeat (e.g. --field problem --field traces). Eval side: problem text.")),
) -> None:
    """Drop training problems that share an n-gram with any evaluation set (SPEC 2.1) and report each drop."""
    try:
        summary, report_file = decontaminate_files(train, evals, out, report, n, tuple(field))
    except USER_ERRORS as exc:
        raise _fail(exc)
    table = Table(title=f"decontamination ({n}-grams)")
    for column in ("eval file", "problems", "dropped"):
        table.add_column(column)
    for item in summary["eval"]:
        table.add_row(escape(item["file"]), str(item["problems"]), str(item["dropped"]))
    console.print(table)
    totals = summary["totals"]
    console.print(f"train {totals['train']}: kept {totals['kept']}, dropped {totals['dropped']}", soft_wrap=True)
    for drop in summary["dropped"][:5]:
        console.print(escape(f"  {drop['id']} ~ {drop['eval_set']}:{drop['eval_id']}: \"{drop['ngram']}\""),
                      soft_wrap=True)
    if totals["kept"] == 0:
        raise _fail(ValueError(f"every training problem overlaps an eval set; {out} not written "
                               f"(report: {report_file})"))
    console.print(f"wrote {escape(str(out))} and {escape(str(report_file))}", soft_wrap=True)


def decontaminate_files(train: Path, evals: list[Path], out: Path, report: Path | None, n: int,
                        fields: tuple[str, ...]) -> tuple[dict, Path]:
    """Load, decontaminate, write the kept problems (unless none) and the report; returns (report dict, its path)."""
    from vibethinker.data.decontam import decontaminate as run_decontamination
    from vibethinker.data.formats import load_problems_any
    from vibethinker.data.records import Problem, write_jsonl
    from vibethinker.utils.files import write_json_atomic

    unknown = [name for name in fields if name not in Problem.model_fields]
    if unknown:
        raise ValueError(f"--field: unknown problem field(s) {unknown}")
    if out.resolve() == train.resolve():
        raise ValueError(f"{out}: the output would overwrite the training file")
    train_problems, train_format = load_problems_any(train)
    names = _set_names(evals)
    eval_sets, eval_formats = {}, {}
    for name, path in names.items():
        eval_sets[name], eval_formats[name] = load_problems_any(path)
    result = run_decontamination(train_problems, eval_sets, n=n, fields=fields)
    by_set = result.summary()["by_eval_set"]
    summary = {
        "n": n, "fields": list(fields),
        "train": {"file": str(train), "format": train_format, "problems": len(train_problems)},
        "eval": [{"name": name, "file": str(path), "format": eval_formats[name], "problems": len(eval_sets[name]),
                  "dropped": by_set.get(name, 0)} for name, path in names.items()],
        "totals": {"train": len(train_problems), "kept": len(result.kept), "dropped": len(result.dropped)},
        "dropped": [{"id": d.problem_id, "field": d.field, "eval_set": d.eval_set,
                     "eval_file": str(names[d.eval_set]), "eval_id": d.eval_id, "ngram": " ".join(d.gram)}
                    for d in result.dropped],
    }
    report_file = report or out.with_name(f"{out.stem}.decontamination.json")
    if result.kept:
        write_jsonl(out, result.kept)
    write_json_atomic(report_file, summary)
    return summary, report_file


def _set_names(paths: list[Path]) -> dict[str, Path]:
    """Eval sets are named by file stem, or by the whole path when two files share a stem."""
    stems = [path.stem for path in paths]
    names: dict[str, Path] = {}
    for path, stem in zip(paths, stems):
        name = stem if stems.count(stem) == 1 else str(path)
        if name in names:
            raise ValueError(f"--eval {path} is given twice")
        names[name] = path
    return names
