"""The shared competition-math answer sets (``/work/shared/data/bench/*.jsonl``, see its README).

AIME / HMMT rows: ``id, contest?, number, problem, answer, solution?, source, url?, answer_crosscheck``;
MATH-500 rows: ``id, problem, solution, answer, subject, level, source``. Domain math; ``id`` kept; ``subject``
-> sub-domain and ``level`` (1..5) -> difficulty when present (MATH-500), else the file convention (AIME/HMMT have
neither). The upstream ``source`` string is kept as ``meta["origin"]``; solutions stay in ``meta`` (these are
evaluation sets: nothing here becomes a training trace).
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext

CARRIED = ("contest", "number", "url", "answer_crosscheck", "solution_source")


def detect(row: dict) -> bool:
    return {"id", "problem", "answer"} <= set(row) and "domain" not in row and (
        "answer_crosscheck" in row or "level" in row or "contest" in row)


def convert(row: dict, ctx: RowContext) -> dict:
    meta = {"origin": row.get("source"), "solution": ctx.text(row, "solution", required=False),
            **{key: row.get(key) for key in CARRIED}}
    return ctx.record(id=ctx.make_id(ctx.text(row, "id")), domain=ctx.domain(None, "math", "domain"),
                      subdomain=ctx.subdomain(row.get("subject")),
                      difficulty=ctx.difficulty(row.get("level"), meta),
                      problem=ctx.text(row, "problem"), answer=ctx.text(row, "answer"), meta=meta)


SHARED_BENCH = Converter("shared-bench", "the shared math answer sets (AIME, HMMT, MATH-500)", detect, convert)
