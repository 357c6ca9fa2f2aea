"""route-eval: the cost-quality arithmetic against values computed by hand, and the command on small eval folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vibethinker.route.curve import (apgr, expected_calibration_error, oracle_confidence, risk_coverage,
                                     routing_curve, share_to_recover)

# 4 problems; confidences with a tie at 0.2. Escalating lowest first: {1, 3} (gains +1 and -0.5, in random order),
# then 2 (+1), then 0 (0). Gap = acc(1) - acc(0) = 3.5/4 - 2/4 = 1.5/4.
CONF, LOCAL, UP = [0.9, 0.2, 0.5, 0.2], [1, 0, 0, 1], [1, 1, 1, 0.5]


def test_curve_and_apgr_equal_the_hand_computation():
    shares, accuracies = routing_curve(CONF, LOCAL, UP)
    assert shares.tolist() == [0, 0.5, 0.75, 1]
    assert accuracies.tolist() == pytest.approx([0.5, 0.625, 0.875, 0.875])
    # PGR at the boundaries: 0, 1/3, 1, 1 -> area 0.5*(1/3)/2 + 0.25*(4/3)/2 + 0.25*2/2 = 1/12 + 2/12 + 3/12
    assert apgr(CONF, LOCAL, UP) == pytest.approx(0.5)
    # 50% of the gap: between (0.5, 1/3) and (0.75, 1): s = 0.5 + 0.25 * (0.5 - 1/3) / (2/3)
    assert share_to_recover(CONF, LOCAL, UP, 0.5) == pytest.approx(0.5625)
    assert share_to_recover(CONF, LOCAL, UP, 0.8) == pytest.approx(0.675)
    # the oracle escalates the gains +1, +1, 0, -0.5 in that order: PGR 0, 2/3, 4/3, 4/3, 1 -> 23/24
    assert apgr(oracle_confidence(LOCAL, UP), LOCAL, UP) == pytest.approx(23 / 24)
    assert apgr([0.0] * 4, LOCAL, UP) == pytest.approx(0.5)  # one constant signal: random routing
    assert apgr(CONF, UP, LOCAL) is None  # the "large" model is worse: no gap to recover


def test_risk_coverage_and_calibration_by_hand():
    coverage, risk, aurc = risk_coverage(CONF, LOCAL)
    # answered locally most confident first: 0 (right), then 2 (wrong), then the tie {1, 3} at their mean 0.5
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk.tolist() == pytest.approx([0.0, 0.5, 0.5, 0.5])
    assert aurc == pytest.approx(0.375)
    # bins: 0.9 -> right (|0.9-1|), 0.5 -> wrong (0.5), 0.2 x2 -> one right (|0.2-0.5|): (0.1 + 0.5 + 2*0.3) / 4
    assert expected_calibration_error(CONF, LOCAL) == pytest.approx(0.3)


def _sample(pid, i, answer, correct, tokens=50, finish="stop"):
    response = f"<think>2 + 3 = 5</think> The answer is \\boxed{{{answer}}}." if answer is not None else "no idea"
    return {"problem_id": pid, "domain": "math", "subdomain": "arith", "difficulty": 1, "sample_index": i,
            "response": response, "answer": answer, "correct": correct, "tokens": tokens, "finish_reason": finish}


def _write(folder, rows):
    folder.mkdir(parents=True)
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_route_eval_command_on_two_eval_folders(tmp_path):
    local = []
    # p0: 4/4 agree, right; p1: 3/4 agree, right; p2: 2/4 agree on a wrong answer; p3: no final answer;
    # p4: 4/4 agree but the chosen response was cut at the limit; p5: 1/4 each, the first wrong
    for i in range(4):
        local.append(_sample("p0", i, "5", True))
        local.append(_sample("p1", i, "7" if i < 3 else "8", i < 3))
        local.append(_sample("p2", i, ["9", "9", "4", "6"][i], i == 2))
        local.append(_sample("p3", i, None, False))
        local.append(_sample("p4", i, "2", True, finish="length" if i == 0 else "stop"))
        local.append(_sample("p5", i, ["1", "2", "3", "4"][i], i == 3))
    upstream = [_sample(p, i, "x", c) for p, c in (("p0", True), ("p1", False), ("p2", True), ("p3", True),
                                                   ("p4", True), ("p5", True)) for i in range(2)]
    _write(tmp_path / "local", local)
    _write(tmp_path / "up", upstream)
    out = tmp_path / "route"
    result = subprocess.run([sys.executable, "-m", "vibethinker.cli", "route-eval", str(tmp_path / "local"),
                             str(tmp_path / "up"), "--out", str(out), "--n-boot", "50"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((out / "route_eval.json").read_text())
    majority = data["signals"]["majority"]
    # majority confidence: p3, p4 escalated first (-1), then p5 (0.25), p2 (0.5), p1 (0.75), p0 (1.0)
    # q_local = [1, 1, 0, 0, 1, 0], q_up = [1, 0, 1, 1, 1, 1]: gains in escalation order {p3: +1, p4: 0}, p5 +1,
    # p2 +1, p1 -1, p0 0; gap = 5/6 - 3/6; cumulative gain at shares 0, 2/6, 3/6, 4/6, 5/6, 1: 0, 1, 2, 3, 2, 2
    # PGR = gain / 2: 0, 0.5, 1, 1.5, 1, 1 -> area (1/3)*0.25 + (1/6)*(0.75 + 1.25 + 1.25 + 1)
    assert majority["local_accuracy"] == pytest.approx(0.5) and majority["upstream_accuracy"] == pytest.approx(5 / 6)
    assert majority["apgr"] == pytest.approx(1 / 12 + 4.25 / 6)
    assert data["signals"]["random"]["apgr"] == pytest.approx(0.5)
    assert data["signals"]["oracle"]["apgr"] >= majority["apgr"]
    assert set(data["intervals"]) >= {"majority_apgr_ci", "clr_apgr_ci", "clr_minus_majority_apgr_ci"}
    assert "<img" in (out / "route_eval.html").read_text() and "APGR" in result.stdout


def test_bad_samples_name_the_file_line_and_field(tmp_path):
    _write(tmp_path / "local", [_sample("p0", 0, "5", True), {"problem_id": "p1", "correct": "yes"}])
    _write(tmp_path / "up", [_sample("p0", 0, "5", True)])
    result = subprocess.run([sys.executable, "-m", "vibethinker.cli", "route-eval", str(tmp_path / "local"),
                             str(tmp_path / "up"), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "samples.jsonl:2: field 'correct' must be a bool" in result.stdout.replace("\n", "")
    assert not (tmp_path / "o").exists()


def test_domain_gate_rule():
    from vibethinker.route.domain_gate import gate_accuracy, is_verifiable

    verifiable = ["What is 3 + 4?", "Compute $\\frac{1}{2} + x$ when x = 3.", "A train goes 60 km in 2 hours; how "
                  "fast is it?", "```python\ndef f(x):\n    return x\n```\nFix the bug.", "Solve 2x - 5 = 11."]
    open_ = ["Who wrote the play Hamlet?", "What is the capital of Peru?", "Who ruled France in 1700?",
             "Describe the causes of the First World War.",
             "What is the capital of Peru?\n(A) Lima\n(B) Quito\nPut your choice letter with \\boxed{} in the end."]
    assert all(is_verifiable(q) for q in verifiable) and not any(is_verifiable(q) for q in open_)
    figures = gate_accuracy([(q, True) for q in verifiable] + [(q, False) for q in open_] + [("Name 2 cats.", False)])
    assert figures["n"] == 11 and figures["verifiable_sent_upstream"] == 0.0
    assert figures["open_answered_locally"] == 0.0 and figures["accuracy"] == 1.0
