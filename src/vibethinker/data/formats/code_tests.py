"""Public code-test encodings -> our ``CodeTest`` dicts, with LiveCodeBench semantics (what our judge runs).

Accepted shapes:

- LiveCodeBench case lists: ``[{"input", "output", "testtype": "stdin" | "functional"}, ...]``, given as a list, a
  JSON string, or ``base64(zlib(pickle(json string)))`` (``private_test_cases``; decoded by
  :mod:`.safe_pickle`, never by ``pickle.loads``). A case without ``testtype`` is functional when a function name
  is known, else stdin.
- LiveCodeBench ``input_output`` objects: ``{"inputs": [...], "outputs": [...], "fn_name": name | null}``.

``stdin`` tests keep input/output text as is (the judge compares stripped lines). ``functional`` tests hold one JSON
value per line per positional argument and the JSON expected value, with ``fn_name`` called on ``Solution()``; a
non-text functional value (e.g. an argument list) is written in that form here.
"""

from __future__ import annotations

import json
from typing import Any

from vibethinker.data.formats.base import RowContext
from vibethinker.data.formats.safe_pickle import UnsafePickleError, decode_compressed


def decode_cases(value: Any, ctx: RowContext, field: str) -> list:
    """A LiveCodeBench test-case list from any of its encodings; ``[]`` for an empty field."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = decode_compressed(value.strip())
            except UnsafePickleError as exc:
                ctx.fail(field, str(exc))
        if isinstance(value, (str, bytes)):  # the pickle held the JSON text
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                ctx.fail(field, f"decoded payload is not JSON: {exc.msg}")
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        ctx.fail(field, f"expected a list of test cases, got {type(value).__name__}")
    return value


def tests_from_cases(cases: list, fn_name: str | None, ctx: RowContext, field: str) -> list[dict]:
    tests = []
    for position, case in enumerate(cases):
        where = f"{field}[{position}]"
        if not isinstance(case, dict):
            ctx.fail(where, f"expected an object with input/output, got {type(case).__name__}")
        kind = case.get("testtype") or ("functional" if fn_name else "stdin")
        if kind not in ("stdin", "functional"):
            ctx.fail(f"{where}.testtype", f"unknown test type {kind!r} (known: stdin, functional)")
        tests.append(_test(kind, case.get("input"), case.get("output"), fn_name, ctx, where))
    return tests


def tests_from_io_spec(spec: Any, ctx: RowContext, field: str) -> list[dict]:
    """LiveCodeBench ``input_output``: parallel ``inputs``/``outputs`` lists and an optional ``fn_name``."""
    spec = ctx.maybe_json(spec, field)
    if not isinstance(spec, dict):
        ctx.fail(field, f"expected an object with inputs/outputs, got {type(spec).__name__}")
    inputs, outputs = spec.get("inputs"), spec.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        ctx.fail(field, "needs 'inputs' and 'outputs' lists")
    if len(inputs) != len(outputs):
        ctx.fail(field, f"{len(inputs)} inputs but {len(outputs)} outputs")
    fn_name = function_name(spec.get("fn_name"))
    kind = "functional" if fn_name else "stdin"
    return [_test(kind, i, o, fn_name, ctx, f"{field}[{position}]")
            for position, (i, o) in enumerate(zip(inputs, outputs))]


def function_name(value: Any) -> str | None:
    """Dumps write a missing name as null, ``""`` or the string ``"None"``."""
    if not isinstance(value, str) or value.strip() in ("", "None", "null"):
        return None
    return value.strip()


def _test(kind: str, given: Any, expected: Any, fn_name: str | None, ctx: RowContext, where: str) -> dict:
    if given is None or expected is None:
        ctx.fail(where, "a test needs both 'input' and 'output'")
    if kind == "stdin":
        if not isinstance(given, str) or not isinstance(expected, str):
            ctx.fail(where, "a stdin test needs text input and output")
        return {"type": "stdin", "input": given, "output": expected}
    if fn_name is None:
        ctx.fail(where, "a functional test needs a function name (metadata func_name / fn_name)")
    if not isinstance(given, str):
        args = given if isinstance(given, list) else [given]
        given = "\n".join(json.dumps(arg) for arg in args)
    if not isinstance(expected, str):
        expected = json.dumps(expected)
    return {"type": "functional", "fn_name": fn_name, "input": given, "output": expected}
