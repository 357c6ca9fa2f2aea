"""What a converter is, and the per-row context it works in.

A converter turns one decoded source row (a dict) into one record dict of the problem schema
(:mod:`vibethinker.data.records`); the driver validates it with ``parse_problem``. Converters read source fields
through :class:`RowContext`, whose accessors raise :class:`RecordError` naming the file, the row and the *source*
field, so a malformed public row is reported where it is, not as a confusing schema error later.

Shared conventions (documented once here, applied by every converter):

- ``source`` = ``"<format>:<file name>"``; the upstream provenance, when the row has one, goes to ``meta``.
- ``id``: the row's own identifier when it has one, else ``"<file stem>-<row number>"`` (stable for a given file).
- ``difficulty``: mapped from the source when it has one (:func:`map_difficulty`), else
  :data:`DEFAULT_DIFFICULTY` with a note in ``meta["convert_notes"]``.
- ``domain`` / ``subdomain``: from the source when present, else ``--domain`` / ``--subdomain``, else the format's
  natural domain and the sub-domain ``general`` (both with a note).
- ``meta["converted_from"]`` = ``{"format", "file", "row"}`` so every record can be traced back to its row.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.data.records import RecordError

DEFAULT_DIFFICULTY = 3  # the middle of 1..5 when a source has no difficulty *(our default)*
FALLBACK_SUBDOMAIN = "general"
DOMAINS = ("math", "code", "stem", "instruct")
# LiveCodeBench's three labels; "medium" is the middle of our 1..5 scale, easy/hard one step either side.
WORD_DIFFICULTY = {"easy": 2, "medium": 3, "hard": 4}


class ConvertOptions(BaseModel):
    """Choices of a conversion that the source rows cannot make themselves."""

    model_config = ConfigDict(extra="forbid")
    domain: Literal["math", "code", "stem", "instruct"] | None = Field(None, description=(
        "Domain for rows whose source has none (math, code, stem, instruct) *(our default: the format's own)*."))
    subdomain: str | None = Field(None, description=(
        "Sub-domain for rows whose source has none *(our default: 'general')*."))
    skip_bad: bool = Field(False, description=(
        "Skip rows that fail to convert and list them in the report, instead of stopping at the first one."))
    limit: int | None = Field(None, gt=0, description="Convert only the first LIMIT rows *(our default: all)*.")


@dataclass
class RowContext:
    """One source row being converted: where it is, the options, and notes for the report."""

    path: Path
    row: int
    fmt: str
    options: ConvertOptions
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return f"{self.fmt}:{self.path.name}"

    def fail(self, field_name: str, message: str) -> NoReturn:
        raise RecordError(self.path, self.row, field_name, message)

    # -- typed access to source fields; errors name the source field -------------------------------------------
    def text(self, row: dict, name: str, *, required: bool = True, label: str | None = None) -> str | None:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(label or name, "missing or empty")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.fail(label or name, f"expected text, got {type(value).__name__}")
        return value

    def mapping(self, row: dict, name: str, *, required: bool = True, label: str | None = None) -> dict | None:
        value = self.maybe_json(row.get(name), label or name)
        if (value is None or value == "") and not required:
            return None
        if not isinstance(value, dict):
            self.fail(label or name, f"expected an object, got {type(value).__name__}")
        return value

    def listing(self, row: dict, name: str, *, required: bool = True, label: str | None = None) -> list | None:
        value = self.maybe_json(row.get(name), label or name)
        if (value is None or value == "") and not required:
            return None
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            self.fail(label or name, f"expected a list, got {type(value).__name__}")
        return value

    def maybe_json(self, value: Any, name: str) -> Any:
        """Public datasets store nested objects either natively (parquet) or as JSON strings (CSV-ish dumps)."""
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                self.fail(name, f"not valid JSON: {exc.msg} at column {exc.colno}")
        return value

    # -- the shared conventions ----------------------------------------------------------------------------------
    def make_id(self, native: Any = None) -> str:
        if native is not None and str(native).strip():
            return str(native).strip()
        return f"{self.path.stem}-{self.row}"

    def domain(self, from_source: str | None, default: str | None, source_field: str) -> str:
        if from_source is not None:
            if from_source not in DOMAINS:
                self.fail(source_field, f"unknown domain {from_source!r} (known: {', '.join(DOMAINS)}); "
                                        "pass --domain to choose one")
            return from_source
        if self.options.domain is not None:
            return self.options.domain
        if default is None:
            self.fail(source_field, "the row has no usable domain; pass --domain")
        return default

    def subdomain(self, from_source: Any) -> str:
        slug = slugify(from_source) if isinstance(from_source, str) else ""
        if slug:
            return slug
        if self.options.subdomain:
            return self.options.subdomain
        self.notes.append(f"subdomain: not in source, '{FALLBACK_SUBDOMAIN}'")
        return FALLBACK_SUBDOMAIN

    def difficulty(self, value: Any, meta: dict) -> int:
        mapped = map_difficulty(value)
        if mapped is not None:
            return mapped
        if value is None or value == "":
            self.notes.append(f"difficulty: not in source, default {DEFAULT_DIFFICULTY}")
        else:
            meta["source_difficulty"] = plain(value)
            self.notes.append(f"difficulty: unmapped source value, default {DEFAULT_DIFFICULTY}")
        return DEFAULT_DIFFICULTY

    def record(self, *, id: str, domain: str, subdomain: str, difficulty: int, problem: str, meta: dict,
               **fields: Any) -> dict:
        """The schema dict, with provenance and notes in ``meta``."""
        meta = {key: plain(value) for key, value in meta.items() if value is not None}
        meta["converted_from"] = {"format": self.fmt, "file": self.path.name, "row": self.row}
        if self.notes:
            meta["convert_notes"] = list(self.notes)
        return {"id": id, "domain": domain, "subdomain": subdomain, "difficulty": difficulty, "problem": problem,
                "source": self.source, "meta": meta, **{k: v for k, v in fields.items() if v is not None}}


@dataclass(frozen=True)
class Converter:
    """A source format: ``detect`` looks at the first row's keys, ``convert`` maps one row to a record dict."""

    name: str
    summary: str
    detect: Callable[[dict], bool]
    convert: Callable[[dict, RowContext], dict]


def map_difficulty(value: Any) -> int | None:
    """Integers 1..5 as they are, MATH's ``"Level k"``, LiveCodeBench's easy/medium/hard -> 2/3/4; else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return value if 1 <= value <= 5 else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in WORD_DIFFICULTY:
            return WORD_DIFFICULTY[text]
        match = re.fullmatch(r"(?:level\s*)?([1-5])", text)
        if match:
            return int(match.group(1))
    return None


def slugify(text: str) -> str:
    """``"Intermediate Algebra"`` -> ``intermediate_algebra``: sub-domains group reports, so keep them tidy."""
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def plain(value: Any) -> Any:
    """A JSON-serialisable copy: parquet rows may hold timestamps, bytes and tuples."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
