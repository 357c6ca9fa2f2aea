"""Digit-by-digit derivations: each column fact is true, comes from a single-digit table, and the columns give the
claim's digits."""

from __future__ import annotations

import re

import pytest

from vibethinker.data.synthetic.columns import NotDerivable, derivation, step_line

def _true_table_fact(fact: str) -> bool:
    """A column fact is one of the four small tables, and it is arithmetically true."""
    if m := re.fullmatch(r"(\d) \+ (\d)(?: \+ 1)? = (\d+)", fact):
        return eval(fact.split(" = ")[0]) == int(m.group(3))
    if m := re.fullmatch(r"(\d+) - (\d)(?: - 1)? = (\d)|(\d+) - 1 = (\d)", fact):
        left, right = fact.split(" = ")
        return int(left.split(" - ")[0]) <= 19 and eval(left) == int(right)
    if m := re.fullmatch(r"(\d) \* (\d)(?: \+ (\d))? = (\d+)", fact):
        left, right = fact.split(" = ")
        return eval(left) == int(right)
    if m := re.fullmatch(r"(\d+) = (\d) \* (\d)(?: \+ (\d))?", fact):
        whole, right = fact.split(" = ")
        rest = int(m.group(4) or 0)
        return int(whole) == eval(right) and rest < int(m.group(2))
    return False


def _value(a: int, op: str, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b, "//": a // b, "mod": a % b}[op]


CASES = ([(a, op, b) for a in range(-99, 100, 7) for b in range(-99, 100, 5) for op in "+-"]
         + [(a, "*", b) for a in range(0, 100, 3) for b in range(2, 10)]
         + [(a, op, b) for a in range(0, 100, 1) for b in range(2, 10) for op in ("//", "mod")]
         + [(b * q, "/", b) for b in range(2, 10) for q in range(1, 40)]
         + [(a, "mod", b) for b in range(10, 60, 3) for a in range(b, 2 * b)])


def test_every_column_fact_is_a_true_table_fact():
    for a, op, b in CASES:
        facts = derivation(a, op, b)
        assert all(_true_table_fact(f) for f in facts), (a, op, b, facts)
        line = step_line(a, op, b, _value(a, op, b))
        assert line.endswith(f"{a} {op} {b} = {_value(a, op, b)}.")


def test_columns_give_the_digits_of_the_result():
    assert step_line(38, "+", 47, 85) == "8 + 7 = 15, 3 + 4 + 1 = 8, so 38 + 47 = 85."
    assert step_line(52, "-", 17, 35) == "12 - 7 = 5, 5 - 1 - 1 = 3, so 52 - 17 = 35."
    assert step_line(1, "-", 17, -16) == "7 - 1 = 6, so 1 - 17 = -16."
    assert step_line(36, "*", 3, 108) == "6 * 3 = 18, 3 * 3 + 1 = 10, so 36 * 3 = 108."
    assert step_line(60, "//", 4, 15) == "6 = 4 * 1 + 2, 20 = 4 * 5, so 60 // 4 = 15."
    assert step_line(100, "-", 1, 99) == "10 - 1 = 9, 10 - 1 = 9, so 100 - 1 = 99."


@pytest.mark.parametrize("a,op,b,value", [(7, "+", 8, 15), (15, "-", 7, 8), (6, "*", 7, 42), (42, "/", 6, 7),
                                          (-16, "/", -2, 8), (-3, "*", 4, -12), (5, "mod", 8, 5)])
def test_a_single_table_fact_is_written_alone(a, op, b, value):
    assert derivation(a, op, b) == []
    assert step_line(a, op, b, value) == f"{a} {op} {b} = {value}."


def test_a_negative_result_works_out_the_magnitudes_first():
    assert step_line(8, "-", 15, -7) == "15 - 8 = 7, so 8 - 15 = -7."
    assert step_line(-15, "-", 3, -18) == "5 + 3 = 8, so -15 - 3 = -18."


@pytest.mark.parametrize("a,op,b", [(12, "*", 13), (96, "/", 12), (90, "mod", 13)])
def test_steps_without_a_column_derivation_are_refused(a, op, b):
    with pytest.raises(NotDerivable):
        derivation(a, op, b)
