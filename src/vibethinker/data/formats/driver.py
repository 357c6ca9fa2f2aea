"""The conversion loop: source rows -> converter -> ``parse_problem`` -> unique ids, with counts for the report.

Every written record has passed ``parse_problem``. A row that fails (a converter's :class:`RecordError` naming the
source field, a schema error naming ours, a duplicate id) stops the conversion, or with ``skip_bad`` is skipped and
listed in the report with its row, field and reason. Rows are streamed, so a large dump is converted in constant
memory apart from the id set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vibethinker.data.formats.base import Converter, ConvertOptions, RowContext
from vibethinker.data.formats.reading import iter_source_rows
from vibethinker.data.records import Problem, RecordError, parse_problem


@dataclass
class ConvertReport:
    """What happened to each row: counts, the skipped rows with reasons, and how often each default was used."""

    format: str
    input: str
    output: str | None = None
    rows_read: int = 0
    written: int = 0
    traces: int = 0
    skipped: list[dict] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"format": self.format, "input": self.input, "output": self.output, "rows_read": self.rows_read,
                "written": self.written, "skipped": len(self.skipped),
                "skipped_by_field": dict(Counter(item["field"] for item in self.skipped)),
                "traces": self.traces, "notes": dict(self.notes), "skipped_rows": self.skipped}


class NothingConverted(RecordError):
    """Every row was skipped (or the file had none): writing an empty problem file would only fail later."""


def iter_converted(path: Path, converter: Converter, options: ConvertOptions,
                   report: ConvertReport) -> Iterator[Problem]:
    """Validated problems of ``path``, filling ``report`` as rows are read; raises on the first bad row unless
    ``options.skip_bad``, and :class:`NothingConverted` at the end when nothing was produced."""
    first_row_of: dict[str, int] = {}
    for row_no, row in iter_source_rows(path):
        if options.limit is not None and report.rows_read >= options.limit:
            break
        report.rows_read += 1
        ctx = RowContext(path=path, row=row_no, fmt=converter.name, options=options)
        try:
            problem = _convert_one(row, ctx, converter, first_row_of)
        except RecordError as exc:
            if not options.skip_bad:
                raise
            report.skipped.append({"row": exc.line, "field": exc.field, "reason": str(exc)})
            continue
        first_row_of[problem.id] = row_no
        report.written += 1
        report.traces += len(problem.traces)
        report.notes.update(ctx.notes)
        yield problem
    if report.written == 0:
        raise NothingConverted(path, 0, "<file>", f"no rows converted ({report.rows_read} read, "
                                                  f"{len(report.skipped)} skipped)")


def _convert_one(row: object, ctx: RowContext, converter: Converter, first_row_of: dict[str, int]) -> Problem:
    if not isinstance(row, dict):
        ctx.fail("<record>", f"expected an object, got {type(row).__name__}")
    record = converter.convert(row, ctx)
    try:
        problem = parse_problem(record, ctx.path, ctx.row)
    except RecordError as exc:
        prefix = f"{exc.path}:{exc.line}: field '{exc.field}': "
        message = str(exc).removeprefix(prefix)
        raise RecordError(ctx.path, ctx.row, exc.field,
                          f"{message} (in the record converted as {converter.name})") from None
    if problem.id in first_row_of:
        ctx.fail("id", f"duplicate id {problem.id!r} (first on row {first_row_of[problem.id]})")
    return problem
