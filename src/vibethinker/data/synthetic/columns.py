"""Digit-by-digit derivations: every multi-digit step is worked out in columns from single-digit table facts.

A tiny model cannot memorise ``38 + 47 = 85`` for every pair of two-digit numbers (ten thousand facts), but it can
learn the hundred single-digit sums and the procedure, as a pupil does. So a step line whose numbers are not all
single digits is preceded, on the same line, by its columns (ones first), and ends with the claim itself::

    8 + 7 = 15, 3 + 4 + 1 = 8, so 38 + 47 = 85.          carry written as "+ 1" in the next column
    12 - 7 = 5, 5 - 1 - 1 = 3, so 52 - 17 = 35.          borrow: the ones column is read as 12, the tens pay "- 1"
    7 - 1 = 6, so 1 - 17 = -16.                          signs: the magnitudes are worked out, then the sign applied
    6 * 3 = 18, 3 * 3 + 1 = 10, so 36 * 3 = 108.         a multi-digit factor times a single digit
    6 = 4 * 1 + 2, 20 = 4 * 5, so 60 // 4 = 15.          short division by a single digit, leading digit first

Every column fact comes from one of four small tables (a + b (+ 1), a - b (- 1) with a <= 19, a * b (+ carry),
c = d * q + r with q, r single digits), so the facts a trace relies on stay few however long the trace is; difficulty
adds steps. A step that already is a table fact (``7 + 8 = 15``, ``6 * 7 = 42``, ``42 / 6 = 7``) is written alone.
The final claim stays in the ``a op b = c.`` form that tool-checked CLR (SPEC 4) reads.
"""

from __future__ import annotations


class NotDerivable(ValueError):
    """The step has no column derivation here (two multi-digit factors, a multi-digit divisor with a long quotient)."""


def _digits(n: int) -> list[int]:
    """Ones first."""
    return [int(c) for c in reversed(str(n))]


def _add_columns(x: int, y: int) -> list[str]:
    xs, ys, facts, carry = _digits(x), _digits(y), [], 0
    for i in range(max(len(xs), len(ys))):
        terms = [d[i] for d in (xs, ys) if i < len(d)] + ([1] if carry else [])
        total = sum(terms)
        if len(terms) > 1:
            facts.append(" + ".join(map(str, terms)) + f" = {total}")
        carry = total // 10
    return facts


def _sub_columns(x: int, y: int) -> list[str]:
    """``x - y`` for ``x >= y >= 0``."""
    xs, ys, facts, borrow = _digits(x), _digits(y), [], 0
    for i, top in enumerate(xs):
        low = ys[i] if i < len(ys) else None
        need = 1 if top - borrow < (low or 0) else 0
        left = top + 10 * need
        terms = [str(left)] + ([str(low)] if low is not None else []) + (["1"] if borrow else [])
        leading_zero = i == len(xs) - 1 and low is None and left - borrow == 0
        if len(terms) > 1 and not leading_zero:
            facts.append(" - ".join(terms) + f" = {left - (low or 0) - borrow}")
        borrow = need
    return facts


def _mul_columns(x: int, d: int) -> list[str]:
    """``x * d`` for a multi-digit ``x >= 0`` and a single digit ``d``."""
    facts, carry = [], 0
    for digit in _digits(x):
        value = digit * d + carry
        facts.append(f"{digit} * {d}" + (f" + {carry}" if carry else "") + f" = {value}")
        carry = value // 10
    return facts


def _short_division(x: int, d: int) -> list[str]:
    """``x // d`` and ``x mod d`` for ``x >= 0`` and a single digit ``d >= 1``, leading digit first."""
    facts, rest, started = [], 0, False
    for digit in reversed(_digits(x)):
        current = rest * 10 + digit
        quotient, rest = divmod(current, d)
        if quotient == 0 and not started:
            continue
        started = True
        facts.append(f"{current} = {d} * {quotient}" + (f" + {rest}" if rest else ""))
    return facts


def _signed_sum(a: int, b: int) -> list[str]:
    """Columns of ``a + b`` for signed integers: add magnitudes when the signs agree, else subtract them."""
    if (a >= 0) == (b >= 0) or a == 0 or b == 0:
        x, y = abs(a), abs(b)
        return [] if x <= 9 and y <= 9 and a >= 0 and b >= 0 else _add_columns(x, y)
    big, low = max(abs(a), abs(b)), min(abs(a), abs(b))
    if big <= 19 and low <= 9 and big - low <= 9:  # 15 - 7 = 8 is itself a subtraction-table fact
        return [] if a >= -b > 0 else [f"{big} - {low} = {big - low}"]
    return _sub_columns(big, low)


def derivation(a: int, op: str, b: int) -> list[str]:
    """The column facts that precede the step ``a op b``; empty when the step is a single table fact."""
    if op == "+":
        return _signed_sum(a, b)
    if op == "-":
        return _signed_sum(a, -b)
    x, y = abs(a), abs(b)
    if op == "*":
        if x <= 9 and y <= 9:
            return []
        if x > 9 and y > 9:
            raise NotDerivable(f"{a} * {b}: both factors have several digits")
        return _mul_columns(max(x, y), min(x, y))
    if op in ("/", "//", "mod"):
        if y > 9:
            if op == "mod" and x < 2 * y:
                return _sub_columns(x, y) if x >= y else []  # one subtraction: Euclid's usual step
            raise NotDerivable(f"{a} {op} {b}: a multi-digit divisor")
        if op == "/" and x % y == 0 and x // y <= 9:
            return []  # 42 / 6 = 7 reads the product table backwards
        return _short_division(x, y)
    raise NotDerivable(f"unknown operation {op!r}")


def step_line(a: int, op: str, b: int, value: int) -> str:
    """``a op b = value.``, preceded by its columns when it is not a single table fact."""
    claim = f"{a} {op} {b} = {value}."
    facts = derivation(a, op, b)
    return ", ".join(facts) + ", so " + claim if facts else claim


__all__ = ["NotDerivable", "derivation", "step_line"]
