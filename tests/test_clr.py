"""CLR (SPEC 4): reliability formula, cluster choice and tie rule, claim extraction and checking, repeated draws,
the model claim source on a real tiny checkpoint, the driver's clr.json and the ``clr`` command."""

from __future__ import annotations

import json
import random
from itertools import combinations

import pytest
import typer
from typer.testing import CliRunner

from vibethinker.data.records import CodeTest, Problem, write_jsonl
from vibethinker.data.synthetic import make_problem
from vibethinker.eval.clr.command import clr_command
from vibethinker.eval.clr.model_claims import (assess_with_model, load_template, parse_claim_list, parse_verdict,
                                               render_template, verify_claims)
from vibethinker.eval.clr.run import CLRConfig, cluster_keys, load_samples, math_equivalence, run_clr
from vibethinker.eval.clr.scoring import (clr_pass_at_1, clr_select, majority_select, merge_equivalent_keys,
                                          response_reliability)
from vibethinker.eval.clr.tool_claims import check_statement, extract_tool_claims, parse_side, reference_solution
from vibethinker.verify import score
from vibethinker.verify.math import MathChecker


def _problem(pid: str, **fields) -> Problem:
    base = dict(id=pid, domain="math", subdomain="test", difficulty=1, source="test", problem=f"Problem {pid}.")
    return Problem(**{**base, **fields})


# ------------------------------------------------------------------------------------------------ scoring

def test_reliability_matches_spec_examples_exactly():
    assert response_reliability([True, True, True, True, False], 5) == 0.32768
    assert response_reliability([True, False, True, False, True], 5) == 0.07776
    assert response_reliability([True] * 5, 5) == 1.0


def test_reliability_with_fewer_claims_means_over_found_and_keeps_exponent_m():
    assert response_reliability([True, True, False], 5) == pytest.approx((2 / 3) ** 5, rel=1e-15)
    assert response_reliability([True], 5) == 1.0
    assert response_reliability([], 5) == 0.0
    with pytest.raises(ValueError, match="at most M"):
        response_reliability([True] * 6, 5)


def test_low_reliability_responses_that_agree_beat_one_high():
    assert clr_select([("7", 0.4), ("9", 0.7), ("7", 0.4)]) == "7"
    # ... and CLR can overrule the majority when the majority's claims fail
    responses = [("7", 0.1), ("7", 0.1), ("9", 0.9)]
    assert clr_select(responses) == "9"
    assert majority_select([key for key, _ in responses]) == "7"


def test_ties_go_to_the_larger_cluster_then_the_earlier():
    assert clr_select([("a", 0.5), ("b", 0.25), ("b", 0.25)]) == "b"
    assert clr_select([("a", 0.5), ("b", 0.5)]) == "a"
    assert clr_select([("b", 0.0), ("a", 0.0), ("a", 0.0)]) == "a"  # all-zero reliabilities: majority vote
    assert majority_select(["x", "y", "y", "x"]) == "x"


def test_responses_without_an_answer_are_dropped():
    assert clr_select([(None, 1.0), ("a", 0.01)]) == "a"
    assert clr_select([(None, 1.0)]) is None
    assert majority_select([None, None]) is None


def test_equivalent_answers_share_a_cluster():
    problem = _problem("half", answer="1/2")
    keys = cluster_keys(problem, ["\\frac{1}{2}", "0.5", None, "3"], lambda pairs: [False] * len(pairs))
    assert keys[0] == keys[1] and keys[2] is None and keys[3] != keys[0]
    # math-verify decides what vote keys cannot: 2^{-1} is 1/2 (real worker process)
    with MathChecker(n_workers=1) as checker:
        keys = cluster_keys(problem, ["0.5", "2^{-1}", "3"], math_equivalence(checker, timeout_s=30))
    assert keys[0] == keys[1] != keys[2]
    choice = _problem("mc", domain="stem", answer="B", choices=["x", "y", "z"])
    keys = cluster_keys(choice, ["B", "(B)", "\\text{B}", "C"], lambda pairs: [False] * len(pairs))
    assert keys == ["B", "B", "B", "C"]


def test_merge_joins_the_earliest_equivalent_representative():
    same = {frozenset({"a", "A"}), frozenset({"b", "B"})}
    merged = merge_equivalent_keys(["a", "b", "A", None, "B", "c"],
                                   lambda pairs: [frozenset(p) in same for p in pairs])
    assert merged == ["a", "b", "a", None, "b", "c"]


# ------------------------------------------------------------------------------------------------ repetitions

# sample: (cluster key, reliability, graded correct)
SAMPLES = [("A", 1.0, True), ("B", 0.2, False), ("B", 0.2, False), ("C", 0.0, False)]
# every K=3 draw, worked by hand: (CLR right, majority right, plain pass@1)
BY_HAND = {
    (0, 1, 2): (True, False, 1 / 3),  # A 1.0 beats B 0.4; majority B (2 of 3)
    (0, 1, 3): (True, True, 1 / 3),   # A, B, C one each: majority tie goes to the earliest, A
    (0, 2, 3): (True, True, 1 / 3),
    (1, 2, 3): (False, False, 0.0),
}


def _columns():
    return [s[0] for s in SAMPLES], [s[1] for s in SAMPLES], [s[2] for s in SAMPLES]


def test_repetitions_score_each_seeded_draw_and_average():
    keys, rel, correct = _columns()
    result = clr_pass_at_1(keys, rel, correct, k=3, repetitions=8, seed=0)
    assert len(result.draws) == 8 and len({tuple(d.indices) for d in result.draws}) > 1
    for draw in result.draws:
        assert (draw.clr_correct, draw.majority_correct, draw.pass_at_1) == BY_HAND[tuple(draw.indices)]
    expected = [BY_HAND[tuple(d.indices)] for d in result.draws]
    assert result.clr == sum(e[0] for e in expected) / 8
    assert result.majority == sum(e[1] for e in expected) / 8
    assert result.pass_at_1 == pytest.approx(sum(e[2] for e in expected) / 8)
    again = clr_pass_at_1(keys, rel, correct, k=3, repetitions=8, seed=0)
    assert [d.indices for d in again.draws] == [d.indices for d in result.draws]
    assert set(BY_HAND) >= {tuple(d.indices) for d in clr_pass_at_1(keys, rel, correct, 3, 8, seed=1).draws}


def test_with_exactly_k_samples_every_repetition_is_the_whole_set():
    keys, rel, correct = _columns()
    result = clr_pass_at_1(keys, rel, correct, k=4, repetitions=3, seed=5)
    assert all(d.indices == [0, 1, 2, 3] for d in result.draws)
    assert (result.clr, result.majority, result.pass_at_1) == (1.0, 0.0, 0.25)
    with pytest.raises(ValueError, match="cannot draw"):
        clr_pass_at_1(keys, rel, correct, k=5, repetitions=1, seed=0)


def test_over_all_subsets_the_draws_are_uniform_enough():
    keys, rel, correct = _columns()
    result = clr_pass_at_1(keys, rel, correct, k=3, repetitions=400, seed=0)
    assert {tuple(d.indices) for d in result.draws} == set(combinations(range(4), 3))
    assert result.clr == pytest.approx(0.75, abs=0.08)


# ------------------------------------------------------------------------------------------------ tool claims

def test_wrong_intermediate_result_is_caught():
    trace = ("<think>\nWe have 12 / 4 = 3. Then 7 + 5 = 13, and gcd(12, 18) = 6, C(5, 2) = 10, 5! = 120.\n"
             "17 mod 5 = 2 and 17 % 5 = 2, 3 + 4 * 2 = 11.\n</think>\nThe answer is \\boxed{13}.")
    found = extract_tool_claims(trace, m=20)
    verdicts = {claim.text: claim.verdict for claim in found.claims}
    assert verdicts == {"12 / 4 = 3": True, "7 + 5 = 13": False, "gcd(12, 18) = 6": True, "C(5, 2) = 10": True,
                        "5! = 120": True, "17 mod 5 = 2": True, "17 % 5 = 2": True, "3 + 4 * 2 = 11": True}
    assert found.found == found.checked == 8


def test_latex_claims_decimals_and_undecidable_ones():
    trace = (r"<think>So $3 \times 4 = 12$ and $\frac{12}{4} = 3$, $2^{10} = 1024$, $\binom{5}{2} = 10$, "
             r"$\sqrt{2} \cdot \sqrt{8} = 4$, $\frac{1}{3} = 0.333$, $0.5 \cdot 3 = 1.6$, $80 \equiv 8 \pmod{9}$. "
             "Half of 20 = 10. Let y = 3, so a^2 + b^2 = c^2.</think> \\boxed{1}")
    found = extract_tool_claims(trace, m=20)
    assert [c.verdict for c in found.claims] == [True, True, True, True, True, True, False, True]
    assert found.found == 10 and found.checked == 8  # y = 3 and a^2 + b^2 = c^2 have free variables: skipped
    assert check_statement("x = 5")[0] is None
    assert check_statement("1/0 = 5")[0] is None


def test_the_last_m_checkable_claims_are_kept():
    steps = "\n".join(f"{i} + 1 = {i + 1}." for i in range(1, 9))
    found = extract_tool_claims(f"<think>\n{steps}\nx = 4\n</think>\n\\boxed{{9}}", m=5)
    assert [c.text for c in found.claims] == [f"{i} + 1 = {i + 1}" for i in range(4, 9)]
    assert found.found == 9 and found.examined == 6  # the walk back from </think> stops once M are kept
    assert extract_tool_claims("<think>no equations here</think>\\boxed{1}", m=5).claims == []


def test_solution_steps_check_against_the_problem_equation():
    problem = "Solve 5x + 1 = 3x + 17 for x."
    assert {str(k): int(v) for k, v in reference_solution(problem).items()} == {"x": 8}
    trace = "<think>\n5x - 3x = 2x.\n17 - 1 = 16.\n2x = 16.\nx = 16 / 2 = 8.\n</think>\n\\boxed{8}"
    assert extract_tool_claims(trace, 5, problem).verdicts == [True, True, True, True]
    wrong = "<think>\n5x - 3x = 2x.\n2x = 18.\nx = 18 / 2 = 9.\n</think>\n\\boxed{9}"
    assert extract_tool_claims(wrong, 5, problem).verdicts == [True, False, False]
    # no reference: 2x = 18 is undecidable; x = 18 / 2 = 9 only names the value of 18 / 2 = 9, which holds
    assert extract_tool_claims(wrong, 5, None).verdicts == [True, True]


def test_synthetic_suite_traces_yield_true_checkable_claims():
    for subdomain in ("arithmetic", "linear_equations", "number_theory", "counting"):
        for difficulty in (1, 3, 5):
            problem = make_problem(subdomain, difficulty, random.Random(difficulty))
            for trace in problem.traces:
                found = extract_tool_claims(trace, 5, problem.problem)
                assert found.claims, (subdomain, difficulty, trace)
                assert all(found.verdicts), (subdomain, difficulty, [(c.text, c.verdict) for c in found.claims])
                assert response_reliability(found.verdicts, 5) == 1.0


def test_hostile_text_never_reaches_eval():
    trace = "<think>exec(chr(112)+chr(114)) = 1. __import__('os') = 2. x.y = 3. 10**99999 = 1</think>"
    assert extract_tool_claims(trace, 5).claims == []
    for text in ("exec(chr(112))", "chr(101)+chr(102)", "x.y", "(lambda: 1)()", "10**99999", "100000!", "a_1"):
        assert parse_side(text) is None, text
    assert parse_side("gcd(12, 18)") == 6


def test_free_form_competition_trace():
    trace = r"""<think>
Okay, so the total is $\binom{10}{3} = 120$. Subtract the all-red cases, $3 \cdot 4 = 12$, so $120 - 12 = 108$.
Double check: 10*9*8/6 = 720/6 = 120. Let $n = 5$; then $n^2 = 25$. Half of 20 = 10.
\[ \begin{aligned} P &= \frac{108}{120} \\ &= \frac{9}{10} = 0.9 \end{aligned} \]
The remainder when 100 is divided by 7 is 2, and the gcd of 12 and 18 is 6.
</think>
So the answer is $\boxed{\frac{9}{10}}$."""
    found = extract_tool_claims(trace, m=5)
    assert [(c.text, c.verdict) for c in found.claims] == [
        ("120 - 12 = 108", True), ("10*9*8/6 = 720/6 = 120", True), ("P = ((108)/(120)) = ((9)/(10)) = 0.9", True),
        ("100 mod 7 = 2", True), ("gcd(12, 18) = 6", True)]
    assert found.found == 9 and found.examined == 7  # n = 5 and n^2 = 25 (n is no problem variable): skipped


# ------------------------------------------------------------------------------------------------ model claims

def test_claim_list_parsing():
    reply = ("<think>let me see</think>\nCLAIM: 12 / 4 = 3\n2. CLAIM: x = 5\n- **Claim 3:** gcd(4, 6) = 2\n"
             "CLAIM: 12 / 4 = 3")
    assert parse_claim_list(reply, 5) == ["12 / 4 = 3", "x = 5", "gcd(4, 6) = 2"]
    assert parse_claim_list(reply, 2) == ["12 / 4 = 3", "x = 5"]
    assert parse_claim_list("1. a = 1\n2) b = 2\n* c = 3\nplain text", 5) == ["a = 1", "b = 2", "c = 3"]
    assert parse_claim_list("qz 8 ) ( ]] 7", 5) == []
    assert parse_claim_list("<think>CLAIM: cut off inside the reasoning", 5) == []


def test_templates_render_in_one_pass_and_document_themselves():
    assert render_template("{problem} | {claim}", problem="uses {claim} literally", claim="x = {m}") == \
        "uses {claim} literally | x = {m}"
    with pytest.raises(KeyError, match="response"):
        render_template("{problem} {response}", problem="p")
    for name in ("extract_claims.md", "verify_claim.md"):
        assert "<!--" not in load_template(name) and "{problem}" in load_template(name)


def test_verdict_parsing():
    assert parse_verdict("checking... VERDICT: true") is True
    assert parse_verdict("VERDICT: true\nwait, no.\nVERDICT: **False**") is False
    assert parse_verdict("<think>VERDICT: false</think>\nVerdict: correct") is True
    assert parse_verdict("<think>VERDICT: true") is None
    assert parse_verdict("looks right to me") is None


def test_model_claims_end_to_end_on_a_tiny_checkpoint(tiny_checkpoint, addition_problems):
    from vibethinker.generate import SamplingParams, make_generator

    generator = make_generator(tiny_checkpoint, batch_size=8)
    problems = addition_problems[:3]
    assessment = assess_with_model(generator, [(p, p.traces[0]) for p in problems], m=2, extract_max_new_tokens=12,
                                   verify_max_new_tokens=6)
    extraction = assessment.extraction
    assert len(assessment.responses) == 3 and extraction.prompts == 3
    assert 0 < extraction.generated_tokens <= 3 * 12 and extraction.prompt_tokens > 3 * 50
    for response in assessment.responses:  # garbage replies: at most M claims, never a crash
        assert len(response.claims) <= 2 and response.missing_verdicts == len(response.claims)

    # the verification pass on crafted claims: a random model writes no VERDICT line, so every verdict is
    # missing, false and counted; prompt tokens are the tokenizer's count of exactly the prompts sent
    claims = [["1 + 1 = 2"], [], ["x = 3", "2 = 2"]]
    results, usage = verify_claims(generator, problems, claims, SamplingParams(temperature=0, max_new_tokens=6))
    assert [[c.text for c in r.claims] for r in results] == claims
    assert [r.missing_verdicts for r in results] == [1, 0, 2] and not any(v for r in results for v in r.verdicts)
    template = load_template("verify_claim.md")
    sent = [generator.tokenizer.apply_chat_template(
        [{"role": "user", "content": render_template(template, problem=p.problem, claim=c)}], tokenize=False,
        add_generation_prompt=True) for p, listed in zip(problems, claims) for c in listed]
    counted = sum(len(generator.tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in sent)
    assert usage.prompts == 3 and usage.prompt_tokens == counted
    assert 0 < usage.generated_tokens <= 3 * 6
    assert response_reliability(results[2].verdicts, 5) == 0.0


# ------------------------------------------------------------------------------------------------ driver + command

def _suite_case(tmp_path):
    """One arithmetic problem with a right trace, two agreeing wrong traces, one unanswered; plus a code problem."""
    problem = _problem("arith", subdomain="arithmetic", problem="Compute 4 * (3 + 5).", answer="32")
    code = _problem("code", domain="code", subdomain="functions", problem="Write f.",
                    tests=[CodeTest(type="assert", code="assert f() == 1")])
    responses = ["<think>\n3 + 5 = 8.\n4 * 8 = 32.\n</think>\nThe answer is \\boxed{32}.",
                 "<think>\n3 + 5 = 9.\n4 * 9 = 36.\n</think>\nThe answer is \\boxed{36}.",
                 "<think>\n3 + 5 = 9.\n4 * 9 = 36.\n</think>\nThe answer is \\boxed{36}.",
                 "<think>\n3 + 5 = 8.\n"]
    rows = []
    for index, response in enumerate(responses):
        verdict = score(problem, response)
        rows.append({"problem_id": "arith", "sample_index": index, "response": response, "answer": verdict.answer,
                     "correct": verdict.correct, "tokens": 10})
    write_jsonl(tmp_path / "eval" / "samples.jsonl", rows)
    write_jsonl(tmp_path / "problems.jsonl", [problem, code])
    return [problem, code], rows


def test_run_clr_writes_clr_json_with_hand_checked_numbers(tmp_path):
    problems, _ = _suite_case(tmp_path)
    samples = load_samples(tmp_path / "eval" / "samples.jsonl")
    summary = run_clr(problems, samples, "tool", CLRConfig(k=32, repetitions=2), out_dir=tmp_path / "clr")
    # r = 1 for the right trace, (1/2)^5 for each wrong one: 1 > 2/32, so CLR answers 32; majority answers 36
    assert (summary["clr_pass@1"], summary["majority_pass@1"], summary["pass@1"]) == (1.0, 0.0, 0.25)
    assert summary["skipped"] == {"code": 1} and summary["by_subdomain"]["arithmetic"]["n_problems"] == 1
    assert any("capped" in note for note in summary["notes"])
    assert summary["extra_tokens"] is None and summary["claims"]["claims_kept"] == 6
    record = json.loads((tmp_path / "clr" / "clr.json").read_text())["problems"][0]
    assert [s["reliability"] for s in record["samples"]] == [1.0, 1 / 32, 1 / 32, 0.0]
    assert {c["key"]: c["reliability_sum"] for c in record["clusters"]} == {"32": 1.0, "36": 1 / 16}
    assert record["repetitions"][0]["clr_answer"] == "32" and record["repetitions"][0]["majority_answer"] == "36"


def test_run_clr_with_the_model_source_counts_extra_tokens(tmp_path, tiny_checkpoint):
    from vibethinker.generate import make_generator

    problems, _ = _suite_case(tmp_path)
    config = CLRConfig(k=3, m=2, repetitions=2, extract_max_new_tokens=8, verify_max_new_tokens=4)
    summary = run_clr(problems, load_samples(tmp_path / "eval" / "samples.jsonl"), "model", config,
                      generator=make_generator(tiny_checkpoint, batch_size=8), out_dir=tmp_path / "clr")
    assert summary["extra_tokens"]["extraction"]["prompts"] == 3  # the unanswered sample is not assessed
    assert summary["extra_tokens"]["prompt_tokens"] > 0 and summary["claims"]["source"] == "model"
    assert summary["claims"]["missing_verdicts"] == summary["claims"]["claims_kept"]
    with pytest.raises(ValueError, match="needs a generator"):
        run_clr(problems, {}, "model", config, out_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="not in the problem set"):
        run_clr(problems, {"other": []}, "tool", config, out_dir=tmp_path / "x")


def _cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    app.command("clr")(clr_command)
    return app


def test_clr_command_prints_the_comparison_and_writes_clr_json(tmp_path):
    _suite_case(tmp_path)
    runner = CliRunner()
    result = runner.invoke(_cli_app(), ["clr", str(tmp_path / "eval"), "--data", str(tmp_path / "problems.jsonl"),
                                        "--out", str(tmp_path / "clr"), "--k", "4", "--r", "2"])
    assert result.exit_code == 0, result.output
    assert "CLR" in result.output and "majority" in result.output and "100.0" in result.output
    summary = json.loads((tmp_path / "clr" / "clr.json").read_text())["summary"]
    assert summary["config"]["k"] == 4 and summary["clr_pass@1"] == 1.0


def test_clr_command_errors_exit_2(tmp_path):
    _suite_case(tmp_path)
    runner, app = CliRunner(), _cli_app()
    base = ["--data", str(tmp_path / "problems.jsonl"), "--out", str(tmp_path / "clr")]
    result = runner.invoke(app, ["clr", str(tmp_path / "missing"), *base])
    assert result.exit_code == 2 and "error:" in result.output and "no such file" in result.output
    result = runner.invoke(app, ["clr", str(tmp_path / "eval"), *base, "--source", "model"])
    assert result.exit_code == 2 and "needs --model" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": "arith", "sample_index": 0, "response": "x", "correct": true}\n'
                   '{"problem_id": "arith", "sample_index": "1", "response": "x", "correct": true}\n')
    result = runner.invoke(app, ["clr", str(bad), *base])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output and "sample_index" in result.output
