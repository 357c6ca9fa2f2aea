"""Exact numbers in answers: parsing integers, fractions and decimals as rationals, and voting keys.

``as_number`` lets the math verifier decide plain numbers (``6/4 == 3/2 == 1.5``) without a worker process;
``answer_key`` gives equal answers the same key for majority voting (cons@n).
"""

from __future__ import annotations

import re
from fractions import Fraction

_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")


_MIXED = re.compile(r"^(-?)(\d+)\s+(\d+)\s*/\s*(\d+)$")


def as_number(text: str) -> Fraction | None:
    """Parse ``-12``, ``3/4``, ``\\frac{3}{4}``, ``1.25``, ``1,000`` or the mixed number ``2 1/4`` as an exact
    rational; ``None`` otherwise. Spaces inside a number are never glued (``2 1/4`` is not ``21/4``)."""
    text = text.strip().strip("$").strip()
    mixed = _MIXED.match(text)
    if mixed:
        sign, whole, num, den = mixed.groups()
        if int(den) == 0 or int(num) >= int(den):
            return None  # not a proper fraction after the whole part: ambiguous, let the full check decide
        value = int(whole) + Fraction(int(num), int(den))
        return -value if sign else value
    text = re.sub(r"\s*([/.])\s*", r"\1", text)
    if re.search(r",\s", text):
        return None  # "32, 349" is a list of two numbers, not 32349
    if re.search(r"\d\s+\d", text) and not re.fullmatch(r"-?\d{1,3}( \d{3})+", text):
        return None
    text = text.replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", text):
        text = text.replace(",", "")
    match = _FRAC.match(text)
    if match:
        text = f"{match.group(1)}/{match.group(2)}"
    if not re.fullmatch(r"-?\d+(\.\d+)?(/-?\d+)?", text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", "", text.strip().strip("$"))


def answer_key(text: str) -> str:
    """A canonical key so equal answers vote together in majority voting."""
    number = as_number(text)
    return str(number) if number is not None else normalise_text(text)
