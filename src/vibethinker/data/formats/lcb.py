"""LiveCodeBench ``code_generation_lite`` rows (JSONL or parquet).

Fields: ``question_title``, ``question_content``, ``platform``, ``question_id``, ``contest_id``, ``contest_date``,
``starter_code``, ``difficulty``, ``public_test_cases`` (JSON text), ``private_test_cases`` (JSON text, or
``base64(zlib(pickle(json text)))``, decoded without executing anything, see :mod:`.safe_pickle`), ``metadata``
(JSON text; ``func_name`` for functional problems).

- ``id`` = ``"<platform>/<question_id>"`` (the form the shared LiveCodeBench rows use, e.g. ``leetcode/2727``).
- ``tests`` = public then private cases (:mod:`.code_tests`); ``meta`` records how many were public.
- ``difficulty``: easy/medium/hard -> 2/3/4; ``subdomain`` = the platform; ``starter_code`` goes to ``meta`` where
  the prompt renders it.
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext
from vibethinker.data.formats.code_tests import (
    decode_cases,
    function_name,
    tests_from_cases,
)


def detect(row: dict) -> bool:
    return "question_content" in row and "public_test_cases" in row


def convert(row: dict, ctx: RowContext) -> dict:
    problem = ctx.text(row, "question_content")
    platform = ctx.text(row, "platform", required=False)
    question_id = ctx.text(row, "question_id")
    metadata = ctx.mapping(row, "metadata", required=False) or {}
    fn_name = function_name(metadata.get("func_name"))
    public = tests_from_cases(decode_cases(row.get("public_test_cases"), ctx, "public_test_cases"), fn_name, ctx,
                              "public_test_cases")
    private = tests_from_cases(decode_cases(row.get("private_test_cases"), ctx, "private_test_cases"), fn_name, ctx,
                               "private_test_cases")
    if not public and not private:
        ctx.fail("public_test_cases", "the row has no tests (public and private both empty)")
    meta = {"question_title": row.get("question_title"), "platform": platform, "question_id": question_id,
            "contest_id": row.get("contest_id"), "contest_date": row.get("contest_date"),
            "starter_code": row.get("starter_code") or None, "func_name": fn_name,
            "public_tests": len(public), "private_tests": len(private)}
    native_id = f"{platform}/{question_id}" if platform else question_id
    return ctx.record(id=ctx.make_id(native_id), domain=ctx.domain(None, "code", "domain"),
                      subdomain=ctx.subdomain(platform), difficulty=ctx.difficulty(row.get("difficulty"), meta),
                      problem=problem, tests=public + private, meta=meta)


LCB = Converter("lcb", "LiveCodeBench code_generation_lite (public/private test cases, metadata func_name)",
                detect, convert)
