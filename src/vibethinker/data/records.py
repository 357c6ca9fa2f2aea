"""The one problem schema every stage reads and writes, with loaders for JSONL and parquet.

A problem record (one JSON object per line, or one parquet row) has these fields:

| field      | type                          | meaning                                                          |
|------------|-------------------------------|------------------------------------------------------------------|
| id         | str, unique within a file     | stable identifier                                                |
| domain     | math, code, stem, instruct    | selects the verifier                                             |
| subdomain  | str                           | e.g. ``linear_equations``; probing and reports group by it       |
| difficulty | int 1..5                      | 1 easiest                                                        |
| problem    | str                           | the question as the user sees it (no chat formatting)            |
| answer     | str or null                   | gold final answer (math, stem); the gold letter for choices      |
| tests      | list of test objects or null  | code: ``{"type": "assert", "code": ...}``,                       |
|            |                               | ``{"type": "stdin", "input": ..., "output": ...}`` or            |
|            |                               | ``{"type": "functional", "fn_name": ..., "input": ..., "output": ...}`` |
| choices    | list of str or null           | multiple choice options, letter A first                          |
| source     | str                           | where the record came from (``synthetic``, a file name, ...)     |
| traces     | list of str (optional)        | reference responses ``<think>...</think>`` + answer, for SFT     |
| meta       | object (optional)             | anything else, carried through untouched                         |

Which of answer / tests / choices is required depends on the domain: math needs ``answer``; code needs a
non-empty ``tests``; stem needs ``answer`` (a letter when ``choices`` is given); instruct needs none.
Invalid input raises :class:`RecordError` naming the file, the line (or parquet row) and the field:
nothing is silently skipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vibethinker.utils.files import JsonlError, atomic_file, read_jsonl

Domain = Literal["math", "code", "stem", "instruct"]


class RecordError(ValueError):
    """A record that does not satisfy the schema; the message names file, line and field."""

    def __init__(self, path: str | os.PathLike, line: int, field: str, message: str):
        self.path, self.line, self.field = str(path), line, field
        super().__init__(f"{path}:{line}: field '{field}': {message}")


class CodeTest(BaseModel):
    """One test of a code problem (LiveCodeBench semantics for stdin / functional, plain asserts otherwise)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["assert", "stdin", "functional"]
    code: str | None = None
    input: str | None = None
    output: str | None = None
    fn_name: str | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> "CodeTest":
        needed = {"assert": ["code"], "stdin": ["input", "output"], "functional": ["fn_name", "input", "output"]}
        for name in needed[self.type]:
            if getattr(self, name) is None:
                raise ValueError(f"a '{self.type}' test needs '{name}'")
        return self


class Problem(BaseModel):
    """A verifiable problem; see the module docstring for the field table."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    domain: Domain
    subdomain: str = Field(min_length=1)
    difficulty: int = Field(ge=1, le=5)
    problem: str = Field(min_length=1)
    answer: str | None = None
    tests: list[CodeTest] | None = None
    choices: list[str] | None = None
    source: str = Field(min_length=1)
    traces: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("answer", mode="before")
    @classmethod
    def _answer_as_text(cls, value: Any) -> Any:
        # Public answer sets store integers (AIME) as JSON numbers; the schema keeps text.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        return value

    @model_validator(mode="after")
    def _gold_for_domain(self) -> "Problem":
        if self.domain == "math" and not (self.answer or "").strip():
            raise _FieldError("answer", "a math problem needs a non-empty answer")
        if self.domain == "code" and not self.tests:
            raise _FieldError("tests", "a code problem needs at least one test")
        if self.domain == "stem":
            if not (self.answer or "").strip():
                raise _FieldError("answer", "a stem problem needs an answer")
            if self.choices is not None:
                letters = [chr(ord("A") + i) for i in range(len(self.choices))]
                if self.answer.strip() not in letters:
                    raise _FieldError("answer", f"must be one of the choice letters {letters}, got {self.answer!r}")
        return self

    def to_json(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), ensure_ascii=False)


class _FieldError(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def parse_problem(row: Any, path: str | os.PathLike = "<memory>", line: int = 0) -> Problem:
    """Validate one decoded row; errors become :class:`RecordError` with the offending field."""
    if not isinstance(row, dict):
        raise RecordError(path, line, "<record>", f"expected a JSON object, got {type(row).__name__}")
    try:
        return Problem.model_validate(row)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(part) for part in err["loc"]) or "<record>"
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldError):
            loc = cause.field
        message = str(cause) if cause is not None else err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (allowed: " + ", ".join(Problem.model_fields) + ")"
        raise RecordError(path, line, loc, message) from None


def load_problems(path: str | os.PathLike) -> list[Problem]:
    """Load a JSONL (``.jsonl``/``.json``) or parquet file of problem records; ids must be unique."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such problem file")
    rows = read_rows(path)
    problems, seen = [], {}
    for line, row in rows:
        problem = parse_problem(row, path, line)
        if problem.id in seen:
            raise RecordError(path, line, "id", f"duplicate id {problem.id!r} (first on line {seen[problem.id]})")
        seen[problem.id] = line
        problems.append(problem)
    if not problems:
        raise RecordError(path, 0, "<file>", "no records")
    return problems


def read_rows(path: Path) -> Iterable[tuple[int, Any]]:
    """(line or parquet row number, decoded row) pairs of a JSONL or parquet file, before validation."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(i + 1, row) for i, row in enumerate(pq.read_table(path).to_pylist())]
    # A list, not a generator: callers rely on a bad line raising here, before they act on any row.
    try:
        return list(read_jsonl(path))
    except JsonlError as exc:
        raise RecordError(path, exc.line, "<json>", f"not valid JSON: {exc.reason} at column {exc.column}") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[BaseModel | dict]) -> Path:
    """Write rows atomically: a temp file in the same folder, then rename, so a crash leaves the old file."""
    path = Path(path)
    with atomic_file(path, "w") as handle:
        for row in rows:
            handle.write(row.to_json() if isinstance(row, Problem) else json.dumps(
                row.model_dump() if isinstance(row, BaseModel) else row, ensure_ascii=False))
            handle.write("\n")
    return path
