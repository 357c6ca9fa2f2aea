"""`vibethinker verify`: records with responses in, verdicts out; bad rows name the file, line and field."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vibethinker.cli import app

MATH = {"id": "m1", "domain": "math", "subdomain": "a", "difficulty": 1, "problem": "1+1?", "answer": "2",
        "source": "t"}
CODE = {"id": "c1", "domain": "code", "subdomain": "f", "difficulty": 1, "problem": "double", "source": "t",
        "tests": [{"type": "assert", "code": "assert double(3) == 6"}]}
GOOD_CODE = "<think>\nloop\n</think>\n```python\ndef double(x):\n    return 2 * x\n```"


def _run(tmp_path, rows):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["verify", "--input", str(src), "--out", str(out)])
    return result, out


def test_verify_writes_verdicts(tmp_path):
    rows = [
        {**MATH, "response": "<think>\n1 + 1 = 2.\n</think>\nThe answer is \\boxed{2}."},
        {**MATH, "id": "m2", "response": "<think>\\boxed{2}</think> no final answer"},
        {**CODE, "response": GOOD_CODE},
        {**CODE, "id": "c2", "response": GOOD_CODE.replace("2 * x", "x + 2")},
        {**MATH, "id": "m3", "answer": "\\frac{\\sqrt{8}}{4}", "response": "<think>x</think> \\boxed{\\dfrac{\\sqrt{2}}{2}}"},
        {**MATH, "id": "m4", "answer": "(1, 2]", "response": "<think>x</think> \\boxed{[1, 2]}"},
    ]
    result, out = _run(tmp_path, rows)
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["correct"] for r in got] == [True, False, True, False, True, False]
    assert [r["reward"] for r in got] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert got[1]["verdict"] == "no_answer" and got[3]["verdict"] == "wrong_answer"
    assert got[0]["response"] == rows[0]["response"] and "detail" in got[0]


def test_verify_rejects_rows_without_response(tmp_path):
    result, out = _run(tmp_path, [{**MATH, "response": "x"}, MATH])
    assert result.exit_code == 2 and "in.jsonl:2" in result.output and "'response'" in result.output
    assert not out.exists()


def test_verify_dispatches_instruct_constraints(tmp_path):
    row = {"id": "i1", "domain": "instruct", "subdomain": "format", "difficulty": 1, "problem": "two bullets",
           "source": "t", "meta": {"constraints": [{"kind": "bullet_count", "n": 2}, {"kind": "letter_case",
                                                                                      "case": "lower"}]}}
    result, out = _run(tmp_path, [{**row, "response": "<think>ok</think>\n* one\n* two"},
                                  {**row, "id": "i2", "response": "<think>ok</think>\n* One"}])
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in got] == [1.0, 0.0]


def test_registry_dispatches_by_domain_and_accepts_custom_verifiers(monkeypatch):
    from vibethinker.data.records import Problem
    from vibethinker.verify import VERIFIERS, Verdict, register_verifier, score

    problem = Problem(**MATH)
    assert score(problem, "<think>x</think>\\boxed{2}").correct
    monkeypatch.setitem(VERIFIERS, "math", VERIFIERS["math"])  # restored after the test
    register_verifier("math", lambda p, response, require_think: Verdict(True, "always", verdict="custom"))
    assert score(problem, "nothing").verdict == "custom"
