"""Multi-step integer arithmetic: one bracketed product ``a * (b +/- c)`` among further signed terms.

Two solution paths that differ in the order of work, not in wording:
- ``brackets_first``: the order of operations: the bracket, then every product, then add and subtract left to right;
- ``expand``: the distributive law first (``a * b`` and ``a * c`` with the signs carried into the sum), so the bracket
  value never appears and the running total passes through different numbers.
Difficulty adds terms (d1: the bracket alone, 2-3 steps; d5: bracket, two products and a number, 7-8 steps); the
numbers stay small at every level: single-digit operands (the bracket's ``b`` 2..9, ``c`` 1..9, products 2..9 times
2..9, a lone number 1..9), a bracket worth more than 9 only times 2..5, and every step value within [-99, 99].
"""

from __future__ import annotations

import random

from vibethinker.data.synthetic.common import LIMIT, Draft, Rejected, Steps, bounded, draw, math_trace

SUBDOMAIN = "arithmetic"
DOMAIN = "math"
EXTRA_TERMS = {1: [], 2: ["num"], 3: ["prod"], 4: ["prod", "num"], 5: ["prod", "prod", "num"]}
NUM_MAX = 9  # every number in the question is a single digit


def _term(rng: random.Random, kind: str) -> tuple:
    if kind == "bracket":
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
        op = rng.choice("+-")
        if op == "-" and b <= c:
            if b == c:
                raise Rejected("empty bracket")
            b, c = c, b
        return ("bracket", a, b, op, c)
    if kind == "prod":
        return ("prod", rng.randint(2, 9), rng.randint(2, 9))
    return ("num", rng.randint(1, NUM_MAX))


def _render(term: tuple) -> str:
    if term[0] == "bracket":
        return f"{term[1]} * ({term[2]} {term[3]} {term[4]})"
    if term[0] == "prod":
        return f"{term[1]} * {term[2]}"
    return str(term[1])


def _combine(steps: Steps, signed: list[tuple[str, int]]) -> int:
    total = signed[0][1]
    for sign, value in signed[1:]:
        total = steps.calc(total, sign, value)
    return total


def _brackets_first(terms: list[tuple], signs: list[str]) -> tuple[Steps, int]:
    steps = Steps("brackets first, then left to right")
    signed = []
    for sign, term in zip(signs, terms):
        if term[0] == "bracket":
            inner = steps.calc(term[2], term[3], term[4])
            signed.append((sign, steps.calc(term[1], "*", inner)))
        elif term[0] == "prod":
            signed.append((sign, steps.calc(term[1], "*", term[2])))
        else:
            signed.append((sign, term[1]))
    return steps, _combine(steps, signed)


def _expand(terms: list[tuple], signs: list[str]) -> tuple[Steps, int]:
    steps = Steps("expand the brackets, then left to right")
    flip = {"+": "-", "-": "+"}
    signed = []
    for sign, term in zip(signs, terms):
        if term[0] == "bracket":
            signed.append((sign, steps.calc(term[1], "*", term[2])))
            second = steps.calc(term[1], "*", term[4])
            signed.append((sign if term[3] == "+" else flip[sign], second))
        elif term[0] == "prod":
            signed.append((sign, steps.calc(term[1], "*", term[2])))
        else:
            signed.append((sign, term[1]))
    return steps, _combine(steps, signed)


def _build(rng: random.Random, difficulty: int) -> Draft:
    terms = [_term(rng, kind) for kind in ["bracket"] + EXTRA_TERMS[difficulty]]
    rng.shuffle(terms)
    signs = ["+"] + [rng.choice("+-") for _ in terms[1:]]
    expression = _render(terms[0]) + "".join(f" {s} {_render(t)}" for s, t in zip(signs[1:], terms[1:]))
    first, answer = _brackets_first(terms, signs)
    second, check = _expand(terms, signs)
    if answer != check:
        raise AssertionError(f"paths disagree on {expression}: {answer} vs {check}")
    if abs(answer) > LIMIT:
        raise Rejected("answer too large")
    bounded(LIMIT, first, second)
    return Draft(
        question=f"Compute {expression}.", answer=answer,
        traces=[math_trace(first, answer), math_trace(second, answer)],
        paths=["brackets_first", "expand"], key=f"arith:{expression}", template="bracket_sum",
    )


def generate(rng: random.Random, difficulty: int) -> Draft:
    return draw(rng, _build, difficulty)
