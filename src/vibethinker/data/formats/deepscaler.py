"""DeepScaleR-style math rows: ``problem``, ``answer``, optional ``solution`` (a JSON array file or JSONL).

The written ``solution`` is kept in ``meta["solution"]``, not as a trace: it is a human write-up, not a model
response. Optional ``id``/``uuid``, ``difficulty``/``level`` and ``subject``/``type`` are used when present; any
other field is carried into ``meta`` untouched. Domain: the source has none, so ``--domain`` or ``math``.
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext
from vibethinker.data.formats.chat import strip_instructions

USED = {"problem", "answer", "solution", "id", "uuid", "difficulty", "level", "subject", "type"}


def detect(row: dict) -> bool:
    return "problem" in row and "answer" in row


def convert(row: dict, ctx: RowContext) -> dict:
    problem = strip_instructions(ctx.text(row, "problem"))
    answer = ctx.text(row, "answer")
    meta = {"solution": ctx.text(row, "solution", required=False),
            **{key: value for key, value in row.items() if key not in USED}}
    difficulty = row.get("difficulty", row.get("level"))
    subject = row.get("subject", row.get("type"))
    return ctx.record(id=ctx.make_id(row.get("id", row.get("uuid"))), domain=ctx.domain(None, "math", "domain"),
                      subdomain=ctx.subdomain(subject), difficulty=ctx.difficulty(difficulty, meta),
                      problem=problem, answer=answer, meta=meta)


DEEPSCALER = Converter("deepscaler", "DeepScaleR-style math (problem, answer, optional solution)", detect, convert)
