"""The code judge on public reference data (LiveCodeBench semantics) and on hand-made programs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibethinker.verify.code.judge import judge_program, stdout_matches, verify_code
from vibethinker.verify.code.judge import tests_from_lcb as lcb_tests

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "code"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"reference data not found at {DATA}")


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _wrong_leetcode(row: dict) -> str:
    """The starter code with a body that returns a constant: wrong on every row here."""
    return row["starter_code"].rstrip() + "\n        return -12345\n"


@needs_data
def test_leetcode_correct_solutions_accepted_both_ways():
    rows = _rows("leetcode_functional.jsonl")
    assert len(rows) == 50
    for row in rows:
        by_io = judge_program(row["correct_solution"], lcb_tests(row["lcb_input_output"]))
        by_check = judge_program(row["correct_solution"], [{"type": "assert", "code": row["check_code"]}])
        assert by_io.passed and by_io.verdict == "accepted", (row["id"], by_io)
        assert by_check.passed and by_check.verdict == "accepted", (row["id"], by_check)


@needs_data
def test_leetcode_wrong_programs_rejected_both_ways():
    for row in _rows("leetcode_functional.jsonl")[:12]:
        wrong = _wrong_leetcode(row)
        by_io = judge_program(wrong, lcb_tests(row["lcb_input_output"]))
        by_check = judge_program(wrong, [{"type": "assert", "code": row["check_code"]}])
        assert by_io.verdict == "wrong_answer" and by_io.failed_test_index == 0, (row["id"], by_io)
        assert by_check.verdict == "wrong_answer" and "assertion 0" in by_check.detail, (row["id"], by_check)


@needs_data
def test_sandboxfusion_rows_correct_accepted_wrong_rejected():
    rows = _rows("lcb_v1_sandboxfusion.jsonl")
    assert {r["test_type"] for r in rows} == {"stdin", "functional"}
    for row in rows:
        tests = lcb_tests(row["lcb_input_output"])
        good = judge_program(row["correct_solution"], tests)
        bad = judge_program(row["wrong_solution"], tests)
        assert good.verdict == "accepted", (row["id"], good)
        assert bad.verdict == "wrong_answer" and not bad.passed, (row["id"], bad)
        assert "expected" in bad.detail and "got" in bad.detail


@needs_data
def test_codeforces_trivially_wrong_rejected():
    for row in _rows("codeforces_stdin.jsonl")[:4]:
        tests = [{"type": "stdin", **t} for t in row["tests"]]
        assert judge_program("print(42)", tests).verdict == "wrong_answer"
        assert judge_program("import sys\nsys.stdin.read()\n", tests).verdict == "wrong_answer"
        # echoing the expected output of test 0 for every test cannot be right on a later test with another answer
        echo = f"print({row['tests'][0]['output']!r})"
        result = judge_program(echo, tests)
        if len({t["output"].strip() for t in row["tests"]}) > 1:
            assert not result.passed


def test_stdout_comparison_semantics():
    assert stdout_matches("1 2\n3\n", "1 2\n3")
    assert stdout_matches("  1 2  \r\n3 \n\n", "1 2\n3")
    assert stdout_matches("1.0 2\n", "1 2.00")  # exact Decimal equality of tokens
    assert not stdout_matches("1.0000001\n", "1")  # no tolerance
    assert not stdout_matches("1 2\n", "1\n2")
    assert not stdout_matches("YES\n", "yes\n")
    assert not stdout_matches("", "0")


STDIN_TESTS = [{"type": "stdin", "input": "2 3\n", "output": "5\n"}, {"type": "stdin", "input": "10 -4\n", "output": "6"}]


@pytest.mark.parametrize("program", [
    "a, b = map(int, input().split())\nprint(a + b)\n",
    "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
    "print(sum(map(int, open(0).read().split())))\nexit()\n",
    "import os\nos.write(1, (str(sum(map(int, os.read(0, 100).split()))) + '\\n').encode())\n",
    "import sys\nsys.stdout.buffer.write(str(sum(map(int, sys.stdin.buffer.read().split()))).encode())\nsys.exit(0)\n",
])
def test_stdin_io_styles_accepted(program):
    assert judge_program(program, STDIN_TESTS, time_limit_s=2).verdict == "accepted"


def test_verdict_kinds():
    tl = judge_program("while True: pass", STDIN_TESTS, time_limit_s=1)
    assert tl.verdict == "time_limit" and tl.failed_test_index == 0
    assert judge_program("def f(:\n", STDIN_TESTS).verdict == "syntax_error"
    assert judge_program("raise ValueError('boom')", STDIN_TESTS).verdict == "runtime_error"
    assert judge_program("import sys\nsys.exit(3)", STDIN_TESTS).verdict == "runtime_error"
    mem = judge_program("x = bytearray(4 << 30)", STDIN_TESTS, memory_mb=512)
    assert mem.verdict == "memory_limit"
    second = judge_program("a, b = map(int, input().split())\nprint(5)\n", STDIN_TESTS)
    assert second.verdict == "wrong_answer" and second.failed_test_index == 1
    assert "expected 6" in second.detail and "got 5" in second.detail


def test_per_test_time_limit_in_one_batch():
    program = "n = int(input())\nimport time\ntime.sleep(n)\nprint(n)\n"
    tests = [{"type": "stdin", "input": f"{s}\n", "output": f"{s}\n"} for s in (0, 0, 0)]
    assert judge_program(program, tests, time_limit_s=1).passed
    tests.append({"type": "stdin", "input": "30\n", "output": "30\n"})
    result = judge_program(program, tests, time_limit_s=1)
    assert result.verdict == "time_limit" and result.failed_test_index == 3


FUNC = [{"type": "functional", "fn_name": "pair", "input": "[1, 2]\n3", "output": "[3, [1, 2]]"},
        {"type": "functional", "fn_name": "pair", "input": "[]\n0", "output": "[0, []]"}]


def test_functional_semantics():
    tuple_ok = "class Solution:\n    def pair(self, xs, n):\n        return (sum(xs), list(xs))\n"
    assert judge_program(tuple_ok, FUNC).passed  # a top-level tuple counts as a list
    top_level = "def pair(xs, n):\n    return [n, xs]\n"
    assert judge_program(top_level, FUNC).passed
    wrong = "class Solution:\n    def pair(self, xs, n):\n        return [n, xs[::-1] + [0]]\n"
    assert judge_program(wrong, FUNC).verdict == "wrong_answer"
    missing = "class Solution:\n    pass\n"
    assert judge_program(missing, FUNC).verdict == "runtime_error"


def test_lying_eq_object_cannot_pass():
    liar = "class Eq:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n" \
           "class Solution:\n    def pair(self, *a): return Eq()\n"
    assert not judge_program(liar, FUNC).passed
    check = "def check(candidate):\n    assert candidate([1, 2], 3) == [3, [1, 2]]\ncheck(Solution().pair)\n"
    assert not judge_program(liar, [{"type": "assert", "code": check}]).passed
    honest = "class Solution:\n    def pair(self, xs, n): return [n, xs]\n"
    assert judge_program(honest, [{"type": "assert", "code": check}]).passed


def test_plain_assert_tests_and_codetest_records():
    from vibethinker.data.records import CodeTest

    program = "def add(a, b):\n    return a + b\n"
    tests = [CodeTest(type="assert", code="assert add(1, 2) == 3"), {"type": "assert", "code": "assert 4 == add(2, 2)"},
             {"type": "assert", "code": "assert add(1, 1) > 1"}]
    assert judge_program(program, tests).passed
    bad = judge_program(program, tests + [{"type": "assert", "code": "assert add(1, 1) != 2"}])
    assert bad.verdict == "runtime_error" and bad.failed_test_index == 3 and "AssertionError" in bad.detail
    wrong = judge_program("def add(a, b):\n    return a - b\n", tests)
    assert wrong.verdict == "wrong_answer" and wrong.failed_test_index == 0


def test_verify_code():
    good = "<think>hmm</think>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    verdict = verify_code(good, STDIN_TESTS)
    assert verdict.correct and verdict.reward == 1.0 and verdict.verdict == "accepted"
    inside = "<think>```python\nprint(5)\n```</think> done"
    assert verify_code(inside, STDIN_TESTS).verdict == "no_code"
    assert verify_code("```python\nprint(5)\n```", STDIN_TESTS).verdict == "no_code"  # no </think>
    loose = verify_code("```python\na, b = map(int, input().split())\nprint(a + b)\n```", STDIN_TESTS,
                        require_think=False)
    assert loose.correct
    wrong = verify_code("</think>```python\nprint(5)\n```", STDIN_TESTS)
    assert not wrong.correct and wrong.reward == 0.0 and wrong.verdict == "wrong_answer"
