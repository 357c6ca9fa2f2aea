import json
from pathlib import Path

import pytest

from vibethinker.verify.math import MathChecker, default_checker, malformed_reason, verify_math, verify_math_many
from vibethinker.verify.math_workers import equivalent

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"


@pytest.fixture(scope="module")
def checker():
    with MathChecker(n_workers=2, timeout_s=10.0) as pool:
        yield pool


def resp(box: str) -> str:
    return f"<think>reasoning</think> So the answer is \\boxed{{{box}}}."


EQUAL = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "1/2"), ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("\\frac12", "\\tfrac{1}{2}"),
    ("\\frac{1}{576}", "1/576"), ("0.15", ".15"), ("3.21", "3.210"), ("0.1", "0.10000000000001"),
    ("2\\sqrt{2}", "\\sqrt{8}"), ("\\frac{9 \\sqrt{23}}{23}", "\\frac{9}{\\sqrt{23}}"), ("11\\sqrt2", "11\\sqrt{2}"),
    ("(1, 2]", "(1,2]"), ("(3,4]", "\\left(3, 4\\right]"), ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
    ("\\{1,2\\}", "\\{2,1\\}"), ("1,-2", "-2, 1"), ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"),
    ("1000", "1,000"), ("10,\\!080", "10080"), ("1500", "1.5 \\times 10^{3}"), ("1500", "1.5e3"),
    ("5", "5\\text{ cm}"), ("5", "5 \\mbox{ cm}"), ("90^\\circ", "90"), ("50", "50\\%"), ("0.5", "50\\%"),
    ("x=5", "5"), ("2", "x = 2"), ("y = 2x + 1", "2x + 1 = y"), ("y=2x+1", "y - 2x - 1 = 0"),
    ("6 - 5i", "6-5i"), ("\\text{Evelyn}", "\\text{Evelyn}"), ("\\pi", "3.14159265358979"),
    ("\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}", "\\begin{pmatrix} -\\frac13 \\\\ \\frac{2}{3} \\end{pmatrix}"),
    ("2^{-7}", "0.0078125"), ("10^{-8}", "0.00000001"),
    # rounded decimals (MathPolicy.rounded_decimals): correctly rounded, at least 3 significant digits
    ("\\frac{1}{3}", "0.333333"), ("\\pi", "3.14159"),
    # a stray trailing backslash or brace is dropped (MathPolicy.repair_trailing)
    ("1", "1\\"), ("2", "2}"),
]

DIFFERENT = [
    ("\\frac{1}{2}", "0.51"), ("(1, 2]", "[1, 2]"), ("(1,2)", "(2,1)"), ("\\{1,2\\}", "(1,2)"), ("(1,2)", "\\{1,2\\}"),
    ("2\\sqrt{2}", "\\sqrt{7}"), ("1500", "1.5 \\times 10^{4}"), ("y = 2x + 1", "y = 2x + 2"),
    ("y=2x+1", "x = 2y + 1"), ("3", "2"), ("\\text{Evelyn}", "\\text{Navin}"), ("6-5i", "6+5i"),
    # (a) relative tolerance, not 6 absolute decimals
    ("0.0000001", "0.0000002"), ("1e-7", "2e-7"), ("10^{-7}", "2 \\times 10^{-7}"), ("(0.0000001, 1)", "(0.0000002, 1)"),
    ("\\frac{1}{3}", "0.33"), ("\\frac{1}{3}", "0.3333334"), ("\\pi", "3.1417"),
    # (b) tiny exact values are not chopped
    ("0", "10^{-8}"), ("0", "0.00000001"), ("0", "1e-11"), ("\\pi", "\\pi + 10^{-20}"),
    # (c) malformed LaTeX
    ("\\frac{1}{2}", "\\frac{1}{"), ("2", "{2"), ("1", "\\"), ("7", "\\frac{7}{}"),
    ("1", "\\sqrt{}"), ("\\frac{1}{2}", "\\frac{1}"), ("2", "\\left(2"), ("x", "x^"),
]


@pytest.mark.parametrize("gold,pred", EQUAL)
def test_equal(checker, gold, pred):
    verdict = verify_math(resp(pred), gold, checker=checker)
    assert verdict.correct and verdict.verdict == "correct" and verdict.reward == 1.0, verdict


@pytest.mark.parametrize("gold,pred", DIFFERENT)
def test_different(checker, gold, pred):
    verdict = verify_math(resp(pred), gold, checker=checker)
    assert not verdict.correct and verdict.reward == 0.0, verdict
    # an unbalanced brace can already break the box itself (no answer); otherwise the answer is judged wrong
    assert verdict.verdict == ("no_answer" if verdict.answer is None else "wrong"), verdict
    if "{" not in pred and "}" not in pred:
        assert verdict.verdict == "wrong"


def test_check_many_matches_singles(checker):
    pairs = [(pred, gold) for gold, pred in EQUAL + DIFFERENT]
    assert checker.check_many(pairs) == [True] * len(EQUAL) + [False] * len(DIFFERENT)
    assert checker.check("\\sqrt{8}", "2\\sqrt{2}") and not checker.check("3", "2")


def test_deviations_are_ours_not_math_verify():
    """The in-process comparison itself (no string rules) already applies the relative float tolerance."""
    assert not equivalent("0.0000002", "0.0000001")
    assert not equivalent("0.00000001", "0")
    assert equivalent("0.10000000000001", "0.1")
    assert equivalent("\\sqrt{8}", "2\\sqrt{2}")


def test_malformed_never_equal(checker):
    # an opener that never closes may hide a cut answer: wrong even against the same string
    assert not checker.check("{2", "{2") and not checker.check("\\frac{1}{", "\\frac{1}{")
    assert not checker.check("\\", "\\")


def test_malformed_reason():
    for bad in ["\\frac{1}{", "2}", "\\", "\\frac{1}{}", "\\sqrt{}", "\\left( 1, 2", "x^"]:
        assert malformed_reason(bad), bad
    for good in ["\\frac{1}{2}", "\\frac12", "\\frac 59", "\\frac9{19}", "\\frac{270}7\\text{ degrees}",
                 "\\{1\\pm\\sqrt{5},-2\\}", "\\left( 3, \\frac{\\pi}{2} \\right)", "10,\\!080", "\\sqrt[3]{2}",
                 "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}", "x^2", "\\$32,\\!348", "4210_{5}"]:
        assert malformed_reason(good) is None, good


def test_reward_hacking(checker):
    # answer only inside <think>
    assert verify_math("<think>\\boxed{42}</think> I am done.", "42", checker=checker).verdict == "no_answer"
    # several boxes: the last one counts
    assert not verify_math("<think>x</think> \\boxed{42} or \\boxed{41}", "42", checker=checker).correct
    assert verify_math("<think>x</think> \\boxed{41} no: \\boxed{42}", "42", checker=checker).correct
    # empty box
    for box in ["", "  ", "$$"]:
        verdict = verify_math(resp(box), "0", checker=checker)
        assert not verdict.correct and verdict.reward == 0.0
    # no </think> when required
    assert verify_math("\\boxed{42}", "42", checker=checker).verdict == "no_answer"
    assert verify_math("\\boxed{42}", "42", require_think=False, checker=checker).correct
    # listing every candidate does not match a single gold
    assert not verify_math(resp("41, 42, 43"), "42", checker=checker).correct
    # no box at all
    assert verify_math("<think>x</think> 42", "42", checker=checker).verdict == "no_answer"


def test_timeout_replaces_worker():
    with MathChecker(n_workers=1) as pool:
        assert pool.check("1+\\sqrt{2}", "\\sqrt{2}+1")  # warm the worker
        slow = ("(3^{3^{3^{3^{3}}}})!", "(3^{3^{3^{3^{3}}}})! + 1")
        results = pool.run_many([slow, ("\\sqrt{8}", "2\\sqrt{2}")], timeout_s=1.0)
        assert results[0][0] == "timeout" and results[1][0] == "correct"
        assert pool.replaced == 1
        verdict = verify_math(resp(slow[0]), slow[1], timeout_s=1.0, checker=pool)
        assert verdict.verdict == "timeout" and not verdict.correct and verdict.reward == 0.0
        assert pool.check("\\frac{1}{2}", "\\frac{2}{4}")


def test_default_checker_and_batch():
    assert default_checker() is default_checker()
    verdicts = verify_math_many([(resp("\\sqrt{8}"), "2\\sqrt{2}"), ("no think", "1"), (resp("3"), "4")])
    assert [v.verdict for v in verdicts] == ["correct", "no_answer", "wrong"]


def _perturb(gold: str) -> str:
    text = gold.strip()
    if text.lstrip("-").isdigit():
        return str(int(text) + 1)
    return text + "+1"


@pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark data not found at {DATA}")
def test_benchmark_golds_self_consistent(checker):
    golds = []
    for name in ["aime_2024", "aime_2025", "hmmt_feb_2025", "math500"]:
        for line in (DATA / f"{name}.jsonl").read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                golds.append((record["id"], record["answer"]))
    assert len(golds) >= 500
    right = verify_math_many([(f"<think>x</think> \\boxed{{{g}}}", g) for _, g in golds], checker=checker)
    wrong = verify_math_many([(f"<think>x</think> \\boxed{{{_perturb(g)}}}", g) for _, g in golds], checker=checker)
    assert [i for (i, _), v in zip(golds, right) if not v.correct] == []
    assert [i for (i, _), v in zip(golds, wrong) if v.correct] == []
