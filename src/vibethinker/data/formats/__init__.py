"""Converters from common public data formats into the problem schema (:mod:`vibethinker.data.records`).

``convert_file(path, fmt, out)`` reads a source file (JSONL, JSON array or parquet), converts every row with the
converter ``CONVERTERS[fmt]`` (``fmt="auto"``: the first converter whose ``detect`` accepts the first row, in the
order of :data:`CONVERTERS`), validates each record with ``parse_problem``, and writes the problems atomically as
JSONL plus a report JSON (counts, skipped rows with reasons, how often each default was applied) next to it.

The conventions shared by all formats (ids, ``source``, default difficulty and sub-domain, provenance in ``meta``)
are in :mod:`.base`; each format's field mapping is in its own module's docstring.
"""

from __future__ import annotations

import os
from pathlib import Path

from vibethinker.data.formats.base import Converter, ConvertOptions
from vibethinker.data.formats.deepscaler import DEEPSCALER
from vibethinker.data.formats.driver import (
    ConvertReport,
    NothingConverted,
    iter_converted,
)
from vibethinker.data.formats.lcb import LCB
from vibethinker.data.formats.openr1 import OPENR1
from vibethinker.data.formats.reading import first_row
from vibethinker.data.formats.shared_bench import SHARED_BENCH
from vibethinker.data.formats.shared_code import SHARED_CODE
from vibethinker.data.formats.verl import VERL
from vibethinker.data.records import (
    Problem,
    RecordError,
    load_problems,
    parse_problem,
    write_jsonl,
)
from vibethinker.utils.files import write_json_atomic

# Auto-detection tries these in order: the most specific signatures first, DeepScaleR (problem + answer) last.
CONVERTERS: dict[str, Converter] = {c.name: c for c in (VERL, LCB, OPENR1, SHARED_CODE, SHARED_BENCH, DEEPSCALER)}
FORMAT_NAMES = ("auto", *CONVERTERS)

__all__ = ["CONVERTERS", "FORMAT_NAMES", "ConvertOptions", "ConvertReport", "Converter", "convert_file",
           "convert_problems", "detect_format", "load_problems_any", "report_path_for"]


def detect_format(path: str | os.PathLike) -> str:
    """The name of the converter for ``path``, judged from its first row."""
    path = Path(path)
    row_no, row = first_row(path)
    if not isinstance(row, dict):
        raise RecordError(path, row_no, "<record>", f"expected an object, got {type(row).__name__}")
    if _in_our_schema(row):
        parse_problem(row, path, row_no)  # a broken record of ours is reported as such, not converted
        raise RecordError(path, row_no, "<file>", "already in the vibethinker problem schema: nothing to convert")
    for name, converter in CONVERTERS.items():
        if converter.detect(row):
            return name
    raise RecordError(path, row_no, "<file>", f"cannot tell the format from the fields {sorted(row)}; pass "
                                              f"--format (one of {', '.join(CONVERTERS)})")


def convert_problems(path: str | os.PathLike, fmt: str = "auto",
                     options: ConvertOptions | None = None) -> tuple[list[Problem], ConvertReport]:
    """Convert in memory (no files written): the problems and the report."""
    path, converter, options = _prepare(path, fmt, options)
    report = ConvertReport(format=converter.name, input=str(path))
    return list(iter_converted(path, converter, options, report)), report


def convert_file(path: str | os.PathLike, fmt: str, out: str | os.PathLike, options: ConvertOptions | None = None,
                 report_path: str | os.PathLike | None = None) -> ConvertReport:
    """Convert ``path`` into a problem JSONL at ``out`` and write the report JSON (default: beside ``out``).

    Without ``options.skip_bad`` the first bad row raises :class:`RecordError` and nothing is written; with it, bad
    rows are listed in the report. When no row converts, the report is still written and the error raised.
    """
    path, converter, options = _prepare(path, fmt, options)
    out = Path(out)
    if out.suffix == ".parquet":
        raise ValueError(f"{out}: the converted problems are written as JSONL; use a .jsonl name")
    if out.resolve() == path.resolve():
        raise ValueError(f"{out}: the output would overwrite the input")
    report_path = Path(report_path) if report_path is not None else report_path_for(out)
    report = ConvertReport(format=converter.name, input=str(path), output=str(out))
    try:
        write_jsonl(out, iter_converted(path, converter, options, report))
    except NothingConverted:
        report.output = None
        write_json_atomic(report_path, report.to_dict())
        raise
    write_json_atomic(report_path, report.to_dict())
    return report


def load_problems_any(path: str | os.PathLike) -> tuple[list[Problem], str]:
    """Problems from a file in our schema, or converted (strictly) from a detected public format; and which."""
    path = Path(path)
    _, row = first_row(path)
    if isinstance(row, dict) and _in_our_schema(row):
        return load_problems(path), "vibethinker"
    problems, report = convert_problems(path, "auto")
    return problems, report.format


def report_path_for(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.report.json")


def _prepare(path: str | os.PathLike, fmt: str, options: ConvertOptions | None) -> tuple[Path, Converter,
                                                                                          ConvertOptions]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = detect_format(path) if fmt == "auto" else fmt
    if name not in CONVERTERS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMAT_NAMES)})")
    return path, CONVERTERS[name], options or ConvertOptions()


def _in_our_schema(row: dict) -> bool:
    # No public format here has both: a row with them is one of ours (valid or not).
    return "domain" in row and "subdomain" in row
