"""The shared programming problems (``/work/shared/data/code/*.jsonl``, see its README).

- ``leetcode_functional``: ``problem``, ``starter_code``, ``entry_point``, ``check_code``, ``lcb_input_output``,
  ``correct_solution``: tests from ``lcb_input_output`` (functional, LiveCodeBench semantics); the equivalent
  assert-based ``check_code`` is kept in ``meta`` rather than run a second time.
- ``codeforces_stdin``: ``problem``, ``tests`` (stdin/stdout pairs).
- ``lcb_v1_sandboxfusion``: LiveCodeBench v1 rows with ``difficulty``, ``lcb_input_output`` and a correct and a wrong
  solution.

The problem texts come wrapped in a prompt ("Please solve the programming task ...", LiveCodeBench's "You are an
expert Python programmer ... ### Question: ... ### Format:"); our prompt adds its own, so only the question is kept
(:func:`.chat.strip_instructions`), the original goes to ``meta["original_problem"]`` and starter code found in
the wrapper to ``meta["starter_code"]``. Solutions stay in
``meta`` (evaluation data, never traces). ``id`` kept; sub-domain = ``platform``.
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext
from vibethinker.data.formats.chat import strip_instructions, wrapped_starter_code
from vibethinker.data.formats.code_tests import tests_from_cases, tests_from_io_spec

CARRIED = ("entry_point", "check_code", "correct_solution", "correct_solution_verified", "wrong_solution",
           "extra_modules", "test_type")


def detect(row: dict) -> bool:
    return "problem" in row and ("lcb_input_output" in row or "tests" in row) and "domain" not in row


def convert(row: dict, ctx: RowContext) -> dict:
    original = ctx.text(row, "problem")
    problem = strip_instructions(original)
    if row.get("lcb_input_output") is not None:
        tests = tests_from_io_spec(row["lcb_input_output"], ctx, "lcb_input_output")
    else:
        tests = tests_from_cases(ctx.listing(row, "tests"), None, ctx, "tests")
    if not tests:
        ctx.fail("tests", "the row has no tests")
    meta = {"origin": row.get("source"), "platform": row.get("platform"),
            "starter_code": row.get("starter_code") or wrapped_starter_code(original),
            "original_problem": original if problem != original.strip() else None,
            **{key: row.get(key) for key in CARRIED}}
    return ctx.record(id=ctx.make_id(ctx.text(row, "id")), domain=ctx.domain(None, "code", "domain"),
                      subdomain=ctx.subdomain(row.get("platform")),
                      difficulty=ctx.difficulty(row.get("difficulty"), meta), problem=problem, tests=tests,
                      meta=meta)


SHARED_CODE = Converter("shared-code", "the shared code problems (LeetCode functional, Codeforces stdin, LCB v1)",
                        detect, convert)
