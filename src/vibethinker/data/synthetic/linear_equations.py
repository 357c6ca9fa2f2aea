"""Linear equations in one unknown with an integer solution, e.g. ``Solve 3(x - 2) + 4 = 2(x + 1) + 9 for x.``

Two solution paths that pass through different numbers:
- ``x_left``: gather the x terms on the left and the constants on the right, ``(A - C)x = D - B``;
- ``x_right``: gather the x terms on the right and the constants on the left, ``B - D = (C - A)x``.
Both first expand brackets the same way. Difficulty adds structure: d1 ``ax + b = cx + d`` with x > 0; d2 signed
constants and negative x; d3 a bracket on the left; d4 a bracket plus a constant; d5 brackets on both sides.
Coefficients are at least 2 and ``|A - C| >= 2`` so every trace has the same shape (no ``1x``, no skipped division).
Numbers stay small at every level: coefficients 2..9, x in 1..9 (d1) or -9..9, bracket constants -9..9 (so every
expansion is a single-digit product), written constants at most 12 (the solved-for one at most ``GAP_MAX``), and every
number in the trace within [-99, 99].
"""

from __future__ import annotations

import random

from vibethinker.data.synthetic.common import LIMIT, Draft, Rejected, Steps, bounded, draw, math_trace, small

SUBDOMAIN = "linear_equations"
DOMAIN = "math"
GAP_MAX = 30  # the constant fixed by the solution (copied from the question into a step) stays small


def _signed(value: int) -> str:
    """`` + 3`` / `` - 3``: a constant written after an x term."""
    return f" + {value}" if value >= 0 else f" - {-value}"


def _top(difficulty: int) -> int:
    """The largest written constant: 8, 10, then 12."""
    return min(12, 6 + 2 * difficulty)


def _side(rng: random.Random, coef: int, bracket: bool, extra: bool, difficulty: int) -> dict:
    top = _top(difficulty)
    side = {"coef": coef, "bracket": None, "extra": None}
    if bracket:
        side["bracket"] = rng.choice([1, -1]) * rng.randint(1, 9)
    if extra:
        side["extra"] = rng.choice([1, -1]) * rng.randint(1, top)
    return side


def _text(side: dict, const: int | None = None) -> str:
    """Render ``m(x + k) + e`` or ``mx + e``; ``const`` is the constant of a bracket-free side."""
    if side["bracket"] is not None:
        text = f"{side['coef']}(x{_signed(side['bracket'])})"
        return text + (_signed(side["extra"]) if side["extra"] is not None else "")
    return f"{side['coef']}x{_signed(const)}"


def _expand(steps: Steps, side: dict) -> int:
    """Write the expansion of a bracket side and return its constant term."""
    m, k = side["coef"], side["bracket"]
    steps.say(f"{m}(x{_signed(k)}) = {m}x{_signed(m * k)}.")
    const = m * k
    if side["extra"] is not None:
        const = steps.calc(const, "+" if side["extra"] > 0 else "-", abs(side["extra"]))
    return const


def _minus(steps: Steps, a: int, b: int) -> int:
    """``a - b`` written without a double sign (``11 - -2`` becomes ``11 + 2``)."""
    return steps.calc(a, "-", b) if b >= 0 else steps.calc(a, "+", -b)


def _collect(plan: str, left: dict, right: dict, consts: tuple[int, int], x: int, to_left: bool) -> Steps:
    steps = Steps(plan)
    B, D = consts
    if left["bracket"] is not None:
        B = _expand(steps, left)
    if right["bracket"] is not None:
        D = _expand(steps, right)
    A, C = left["coef"], right["coef"]
    small(B, D)
    if left["bracket"] is not None or right["bracket"] is not None:
        steps.say(f"{A}x{_signed(B)} = {C}x{_signed(D)}.")
    if to_left:
        coef = A - C
        steps.say(f"{A}x - {C}x = {coef}x.")
        const = _minus(steps, D, B)
        steps.say(f"{coef}x = {const}.")
    else:
        coef = C - A
        steps.say(f"{C}x - {A}x = {coef}x.")
        const = _minus(steps, B, D)
        steps.say(f"{const} = {coef}x.")
    steps.say(f"x = {const} / {coef} = {const // coef}.")
    if const != coef * x:
        raise AssertionError("collecting terms lost the solution")
    return steps


def _build(rng: random.Random, difficulty: int) -> Draft:
    a, c = rng.randint(2, 9), rng.randint(2, 9)
    if abs(a - c) < 2 or (difficulty == 1 and a < c):
        raise Rejected("coefficients too close")
    x = rng.randint(1, 9) if difficulty == 1 else rng.choice([1, -1]) * rng.randint(1, 9)
    left = _side(rng, a, bracket=difficulty >= 3, extra=difficulty >= 4, difficulty=difficulty)
    right = _side(rng, c, bracket=difficulty == 5, extra=difficulty == 5, difficulty=difficulty)
    lo = 1 if difficulty == 1 else -_top(difficulty)
    b = rng.randint(lo, _top(difficulty)) if left["bracket"] is None else None
    left_const = b if b is not None else a * left["bracket"] + (left["extra"] or 0)
    right_x_part = c * x + (c * right["bracket"] if right["bracket"] is not None else 0)
    gap = a * x + left_const - right_x_part  # what the right side's last constant must be
    if right["bracket"] is not None:
        right["extra"] = gap
        if gap == 0 or c * right["bracket"] + gap == 0:
            raise Rejected("degenerate constant")
        d = None
    else:
        d = gap
    if left_const == 0 or d == 0 or (difficulty == 1 and d <= 0) or abs(gap) > GAP_MAX:
        raise Rejected("degenerate or large constant")
    question = f"Solve {_text(left, b)} = {_text(right, d)} for x."
    consts = (b if b is not None else 0, d if d is not None else 0)
    first = _collect("move x terms to the left", left, right, consts, x, to_left=True)
    second = _collect("move x terms to the right", left, right, consts, x, to_left=False)
    bounded(LIMIT, first, second)
    return Draft(
        question=question, answer=x, traces=[math_trace(first, x), math_trace(second, x)],
        paths=["x_left", "x_right"], key=f"lin:{_text(left, b)}={_text(right, d)}", template=f"linear_d{difficulty}",
    )


def generate(rng: random.Random, difficulty: int) -> Draft:
    return draw(rng, _build, difficulty)
