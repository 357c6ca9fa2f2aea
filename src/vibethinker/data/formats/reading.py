"""Source rows from JSONL, a JSON array, or parquet, streamed as ``(row number, dict)`` pairs.

Row numbers are what a person needs to find the row: the 1-based line of a JSONL file, the 1-based element of a
JSON array, the 1-based row of a parquet file. Parquet is read in batches so a large public dump is never held in
memory twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vibethinker.data.records import RecordError
from vibethinker.utils.files import JsonlError, read_jsonl

PARQUET_BATCH_ROWS = 512


def iter_source_rows(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".parquet":
        yield from _parquet_rows(path)
    elif _starts_with_array(path):
        yield from _array_rows(path)
    else:
        yield from _jsonl_rows(path)


def first_row(path: Path) -> tuple[int, Any]:
    for row_no, row in iter_source_rows(path):
        return row_no, row
    raise RecordError(path, 0, "<file>", "no rows")


def _parquet_rows(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise RecordError(path, 0, "<file>", f"not a readable parquet file: {exc}") from None
    number = 0
    for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _starts_with_array(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return False
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0] == "["


def _array_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(path, exc.lineno, "<json>", f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    yield from enumerate(data, start=1)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows of a JSONL file, streamed (converted files can be large); a bad line is a :class:`RecordError`."""
    try:
        yield from read_jsonl(path)
    except JsonlError as exc:
        raise RecordError(path, exc.line, "<json>", f"not valid JSON: {exc.reason} at column {exc.column}") from None