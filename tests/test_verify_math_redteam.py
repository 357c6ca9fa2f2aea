"""Red team for the math verifier: a false accept is a reward the policy learns to exploit (SPEC 5).

``tests/data/math_redteam.jsonl`` holds our own cases, each kind of hole with answers on both sides (accepted and
refused); ``bench/verifier_agreement.py`` reads the same file. The property test perturbs every gold of
``shared/data/bench`` (last digit changed, sign flipped, factorial shifted, an ellipsis term changed) and no
perturbation may pass.
"""

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from vibethinker.verify.math import MathChecker, MathPolicy, verify_math

CASES = Path(__file__).parent / "data" / "math_redteam.jsonl"
BENCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench"


def load_cases() -> list[dict]:
    return [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def checker():
    with MathChecker(n_workers=2, timeout_s=20.0) as pool:
        yield pool


def test_every_kind_has_both_sides():
    sides = defaultdict(set)
    for case in load_cases():
        sides[case["kind"]].add(case["equal"])
    assert len(sides) >= 14
    assert {kind for kind, seen in sides.items() if seen != {True, False}} == set()


def test_red_team_verdicts(checker):
    cases = load_cases()
    results = checker.run_many([(c["pred"], c["gold"]) for c in cases])
    false_accepts = [(c["kind"], c["gold"], c["pred"], r) for c, r in zip(cases, results)
                     if not c["equal"] and r[0] == "correct"]
    false_refusals = [(c["kind"], c["gold"], c["pred"], r) for c, r in zip(cases, results)
                      if c["equal"] and r[0] != "correct"]
    assert false_accepts == []
    assert false_refusals == []


def test_verify_math_reads_the_boxed_form(checker):
    # the same rules hold through extraction from a response (braces inside the box are brace-matched)
    assert verify_math("<think>w</think> \\boxed{2,75}", "2.75", checker=checker).correct
    assert not verify_math("<think>w</think> \\boxed{3\\sqrt(5)}", "3", checker=checker).correct
    assert not verify_math("<think>w</think> \\boxed{1, 2, \\ldots, n}", "2, 4, 6, \\ldots, 2n",
                           checker=checker).correct


# ----------------------------------------------------------------------------------------------- policy settings

@pytest.mark.parametrize("field,value,gold,pred,default_verdict", [
    ("decimal_comma", False, "2.75", "2,75", True),
    ("rounded_decimals", False, "\\frac{2}{3}", "0.667", True),
    ("rounded_decimals", False, "\\sqrt{2}", "1.414", True),  # the worker-side rule
    ("truncated_decimals", False, "\\frac{2}{3}", "0.666", True),
    ("truncated_decimals", False, "40\\pi", "125.663", True),
    ("min_significant_digits", 2, "\\frac{2}{3}", "0.67", False),
    ("min_significant_digits", 5, "\\frac{2}{3}", "0.6667", True),
    ("mixed_numbers", False, "\\frac{9}{4}", "2 1/4", True),
    ("mixed_numbers", False, "\\frac{9}{4}", "2\\frac{1}{4}", True),
    ("units", "ignore", "5\\text{ cm}", "5\\text{ m}", False),
    ("units", "require", "5\\text{ cm}", "5", True),
    ("percent_either_way", False, "50\\%", "50", True),
    ("repair_trailing", False, "42", "42\\", True),
])
def test_each_convention_is_a_setting(checker, field, value, gold, pred, default_verdict):
    assert checker.check(pred, gold) is default_verdict
    assert checker.check(pred, gold, policy=MathPolicy(**{field: value})) is (not default_verdict)


def test_policy_keeps_what_it_does_not_change(checker):
    strict_units = MathPolicy(units="require")
    assert checker.check("5\\text{ centimeters}", "5\\text{ cm}", policy=strict_units)
    assert checker.check("0.5", "50\\%", policy=MathPolicy(percent_either_way=False))
    assert not checker.check("2 1/4", "\\frac{21}{4}", policy=MathPolicy(mixed_numbers=False))


# ----------------------------------------------------------------------------------------------- perturbed golds

def _last_digit_changed(gold: str) -> str | None:
    digits = list(re.finditer(r"\d", gold))
    if not digits:
        return None
    last = digits[-1]
    return gold[:last.start()] + str((int(last.group()) + 1) % 10) + gold[last.end():]


def _sign_flipped(gold: str) -> str | None:
    text = gold.strip()
    # not for answers whose negation is not a different answer of the same kind (lists, relations, +-, text)
    if re.search(r"\\pm|\\mp|,|=|\\text|\\in|<|>|\\le|\\ge|\\cup|\\infty|:", text) or not re.search(r"[1-9a-zA-Z]", text):
        return None
    if text.startswith("-"):
        return text[1:]
    return f"-{text}" if re.fullmatch(r"[\d.]+", text) else f"-({text})"


def _factorial_shifted(gold: str) -> str | None:
    match = re.search(r"(\d+)!", gold)
    return None if not match else gold[:match.start()] + f"{int(match.group(1)) + 1}!" + gold[match.end():]


def _ellipsis_term_changed(gold: str) -> str | None:
    match = re.search(r"(\d+)(\s*,\s*\\[lc]?dots)", gold)
    return None if not match else gold[:match.start()] + str(int(match.group(1)) + 1) + gold[match.start(2):]


PERTURBATIONS = [_last_digit_changed, _sign_flipped, _factorial_shifted, _ellipsis_term_changed]


def _bench_golds() -> list[tuple[str, str]]:
    golds = []
    for name in ["aime_2024", "aime_2025", "hmmt_feb_2025", "math500"]:
        for line in (BENCH / f"{name}.jsonl").read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                golds.append((record.get("id") or record.get("unique_id"), str(record["answer"])))
    return golds


def test_perturbations_change_the_answer():
    assert _last_digit_changed("\\frac{1}{576}") == "\\frac{1}{577}"
    assert _sign_flipped("\\frac{1}{2}") == "-(\\frac{1}{2})" and _sign_flipped("-3") == "3"
    assert _sign_flipped("1, 2") is None and _sign_flipped("0") is None
    assert _factorial_shifted("\\frac{1}{3000!}") == "\\frac{1}{3001!}"
    assert _ellipsis_term_changed("1, 3, 5, \\ldots, 2n-1") == "1, 3, 6, \\ldots, 2n-1"


@pytest.mark.skipif(not BENCH.is_dir(), reason=f"benchmark data not found at {BENCH}")
def test_perturbed_golds_are_never_accepted(checker):
    golds = _bench_golds()
    assert len(golds) >= 590
    pairs = [(perturb(gold), gold, ident, perturb.__name__) for ident, gold in golds for perturb in PERTURBATIONS]
    pairs = [p for p in pairs if p[0] is not None and p[0] != p[1]]
    assert len(pairs) >= 1000
    results = checker.run_many([(pred, gold) for pred, gold, _, _ in pairs])
    accepted = [(ident, how, gold, pred, r) for (pred, gold, ident, how), r in zip(pairs, results)
                if r[0] == "correct"]
    assert accepted == []
    # and the red-team golds with an ellipsis or a factorial get their perturbations refused too
    extra = [(perturb(c["gold"]), c["gold"]) for c in load_cases()
             for perturb in (_factorial_shifted, _ellipsis_term_changed) if perturb(c["gold"])]
    assert len(extra) >= 4
    assert [r for r in checker.run_many(extra) if r[0] == "correct"] == []
