"""Judge a program against code tests with LiveCodeBench semantics, all tests of a program in one sandboxed run.

Test kinds (``vibethinker.data.records.CodeTest`` or plain dicts): ``stdin`` (stdout compared line by line after
stripping, differing lines token-wise as exact Decimals), ``functional`` (one JSON value per input line as positional
arguments to ``Solution().<fn_name>``, a top-level function as fallback; tuples become lists; ``==`` with the JSON
expected) and ``assert`` (code run after the program, e.g. a ``check(candidate)`` function). In assert code every
``assert <expr> == <literal>`` is rewritten so the child only *reports* ``<expr>`` and the parent compares it with the
literal; other assert forms run in the child and are trusted (the only part a hostile program could subvert).
The child reports raw results; the parent decides, stops the run at the first failing test, and enforces a per-test
time limit from the harness's per-test start markers (plus the total CPU and wall limits of the sandbox).
"""

from __future__ import annotations

import ast
import json
import signal
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from vibethinker.verify.code._canon import canon
from vibethinker.verify.code.sandbox import Limits, RunResult, new_nonce, run_python
from vibethinker.verify.extract import extract_program
from vibethinker.verify.types import Verdict

LCB_HEADER = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\n"
    "from bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\n"
    "from itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\n"
    "from json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\n"
    "import itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\n"
    "sys.setrecursionlimit(50000)\n"
)
_HERE = Path(__file__).parent
HARNESS = (_HERE / "_canon.py").read_text() + "\n" + (_HERE / "_harness.py").read_text()
OUTPUT_CAP = 8 << 20  # per-test stdout kept by the child; more is a wrong answer
VERDICTS = ("accepted", "wrong_answer", "runtime_error", "time_limit", "memory_limit", "syntax_error")


@dataclass
class JudgeResult:
    verdict: str  # one of VERDICTS
    passed: bool
    failed_test_index: int | None = None
    detail: str = ""


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text)} chars]"


def stdout_matches(got: str, expected: str) -> bool:
    """LiveCodeBench stdin comparison: stripped lines; unequal lines must match token-wise as exact Decimals."""
    got_lines = [line.strip() for line in got.strip().split("\n")]
    exp_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(exp_lines):
        return False
    for a, b in zip(got_lines, exp_lines):
        if a == b:
            continue
        ta, tb = a.split(), b.split()
        if len(ta) != len(tb):
            return False
        try:
            if any(Decimal(x) != Decimal(y) for x, y in zip(ta, tb)):
                return False
        except InvalidOperation:
            return False
    return True


def _rewrite_asserts(code: str) -> tuple[str, list[Any]]:
    """Replace ``assert E == <literal>`` by ``__vt_report__(k, E)``; returns new code and the literals."""
    tree = ast.parse(code)
    expected: list[Any] = []

    class Rewriter(ast.NodeTransformer):
        def visit_Assert(self, node: ast.Assert) -> ast.AST:
            test = node.test
            if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
                for expr, lit in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
                    try:
                        value = ast.literal_eval(lit)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        continue
                    call = ast.Call(ast.Name("__vt_report__", ast.Load()), [ast.Constant(len(expected)), expr], [])
                    expected.append(value)
                    return ast.copy_location(ast.Expr(call), node)
            return node

    tree = ast.fix_missing_locations(Rewriter().visit(tree))
    return ast.unparse(tree), expected


def _as_dict(test: Any) -> dict:
    data = test.model_dump() if hasattr(test, "model_dump") else dict(test)
    if data.get("type") not in ("stdin", "functional", "assert"):
        raise ValueError(f"unknown test type {data.get('type')!r}")
    return data


def tests_from_lcb(io_spec: dict | str) -> list[dict]:
    """LiveCodeBench ``input_output`` (``inputs``/``outputs``/``fn_name``) as test dicts."""
    spec = json.loads(io_spec) if isinstance(io_spec, str) else io_spec
    kind = "functional" if spec.get("fn_name") else "stdin"
    return [{"type": kind, "input": i, "output": o, "fn_name": spec.get("fn_name")}
            for i, o in zip(spec["inputs"], spec["outputs"])]


class _Referee:
    """Reads the child's frames as they arrive and judges each finished test; asks to stop at the first failure."""

    def __init__(self, tests: list[dict], expected_asserts: list[list[Any]], nonce: str) -> None:
        self.tests, self.expected_asserts, self.nonce = tests, expected_asserts, nonce
        self.current, self.done, self.values = -1, 0, []
        self.failure: JudgeResult | None = None
        self.syntax: str | None = None
        self._pending = b""
        self._tag = nonce.encode()

    def feed(self, chunk: bytes) -> bool:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            if self.failure is None and line.startswith(self._tag):
                try:
                    self._frame(json.loads(line[len(self._tag):]))
                except (ValueError, TypeError, KeyError, AttributeError):
                    continue
        return self.failure is not None or self.syntax is not None

    def _frame(self, frame: dict) -> None:
        if "syntax_error" in frame and self.current < 0:
            self.syntax = str(frame["syntax_error"])
        elif "start" in frame and frame["start"] == self.done:
            self.current, self.values = frame["start"], []
        elif frame.get("i") == self.current == self.done:
            if "k" in frame:
                self.values.append((frame["k"], frame["value"]))
            else:
                self._judge(self.current, frame)

    def _fail(self, index: int, verdict: str, why: str) -> None:
        test = self.tests[index]
        shown = test.get("input") if test["type"] != "assert" else test.get("code")
        self.failure = JudgeResult(verdict, False, index, f"test {index} ({test['type']}): {why}; input: {_short(shown)}")

    def _judge(self, index: int, frame: dict) -> None:
        test = self.tests[index]
        if "error" in frame:
            verdict = "memory_limit" if frame["error"] == "MemoryError" else "runtime_error"
            return self._fail(index, verdict, f"{frame['error']}: {_short(frame.get('message', ''))}")
        if test["type"] == "stdin":
            if frame.get("overflow"):
                return self._fail(index, "wrong_answer", "output too large")
            got = str(frame.get("stdout", ""))
            if not stdout_matches(got, test["output"]):
                return self._fail(index, "wrong_answer", f"expected {_short(test['output'])}, got {_short(got)}")
        elif test["type"] == "functional":
            expected = canon(json.loads(test["output"]))
            if "value" not in frame or frame["value"] != expected:
                return self._fail(index, "wrong_answer", f"expected {_short(test['output'])}, got "
                                                         f"{_short(json.dumps(frame.get('value')))}")
        else:
            wanted = self.expected_asserts[index]
            got = dict(self.values)
            for k, literal in enumerate(wanted):
                if k not in got or got[k] != canon(literal):
                    return self._fail(index, "wrong_answer", f"assertion {k}: expected {_short(literal)}, got "
                                                             f"{_short(json.dumps(got.get(k)))}")
            if not frame.get("done"):
                return self._fail(index, "runtime_error", "test code did not finish")
        self.done += 1


def judge_program(program: str, tests: Iterable[Any], *, time_limit_s: float = 6.0,
                  memory_mb: int = 1024) -> JudgeResult:
    """Run ``program`` against every test (one sandboxed interpreter); pass only if all pass."""
    tests = [_as_dict(t) for t in tests]
    if not tests:
        raise ValueError("judge_program needs at least one test")
    expected_asserts: list[list[Any]] = []
    child_tests = []
    for test in tests:
        item = {"type": test["type"], "input": test.get("input"), "fn_name": test.get("fn_name")}
        literals: list[Any] = []
        if test["type"] == "assert":
            item["code"], literals = _rewrite_asserts(test["code"])
        expected_asserts.append(literals)
        child_tests.append(item)
    nonce = new_nonce()
    payload = json.dumps({"nonce": nonce, "output_cap": OUTPUT_CAP, "header": LCB_HEADER, "program": program,
                          "tests": child_tests})
    n = len(tests)
    limits = Limits(cpu_s=n * time_limit_s + 2, wall_s=n * (time_limit_s + 1) + 5, memory_mb=memory_mb,
                    output_bytes=n * (OUTPUT_CAP + 4096) + (1 << 20), step_marker=nonce.encode(),
                    step_timeout_s=time_limit_s + 1.0)
    referee = _Referee(tests, expected_asserts, nonce)
    run = run_python(HARNESS, payload, limits, watch=referee.feed)
    return _conclude(referee, run, n)


def _conclude(referee: _Referee, run: RunResult, n: int) -> JudgeResult:
    if referee.syntax is not None:
        return JudgeResult("syntax_error", False, None, referee.syntax)
    if referee.failure is not None:
        return referee.failure
    if referee.done == n:
        return JudgeResult("accepted", True, None, f"passed {n} tests")
    index = max(referee.current, 0)
    tail = _short(run.stderr.strip()[-400:], 400)
    if run.timed_out or run.exit_code == -signal.SIGXCPU:
        verdict = "time_limit"
    elif run.memory_exceeded:
        verdict = "memory_limit"
    else:
        verdict = "runtime_error"
    why = {"time_limit": "time limit exceeded", "memory_limit": "memory limit exceeded"}.get(
        verdict, f"process ended (exit code {run.exit_code}) without reporting a result")
    if run.output_truncated:
        why += " (report channel overflow)"
    test = referee.tests[index]
    shown = test.get("input") if test["type"] != "assert" else test.get("code")
    return JudgeResult(verdict, False, index, f"test {index} ({test['type']}): {why}; input: {_short(shown)}; "
                                              f"stderr: {tail}")


def verify_code(response: str, tests: list[Any], *, require_think: bool = True, time_limit_s: float = 6.0,
                memory_mb: int = 1024) -> Verdict:
    """Binary code reward: the last fenced block after ``</think>`` must pass every test."""
    program = extract_program(response, require_think)
    if program is None:
        return Verdict(False, None, "no code block after </think>" if require_think else "no code block",
                       0.0, "no_code")
    result = judge_program(program, tests, time_limit_s=time_limit_s, memory_mb=memory_mb)
    return Verdict(result.passed, program, result.detail, 1.0 if result.passed else 0.0, result.verdict)
