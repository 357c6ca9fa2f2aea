"""Exact answer comparison for answers that are integers, fractions, decimals or plain strings.

This is the checker of the embedded synthetic suite, whose gold answers are exact numbers. Numbers compare as
exact rationals (``6/4 == 3/2 == 1.5``); anything else compares as text with white space and a surrounding
``$...$`` removed. LaTeX equivalence for real benchmark answers is the math verifier's job.
"""

from __future__ import annotations

import re
from fractions import Fraction

_FRAC = re.compile(r"^\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")


def as_number(text: str) -> Fraction | None:
    """Parse ``-12``, ``3/4``, ``\\frac{3}{4}``, ``1.25`` or ``1,000`` as an exact rational; ``None`` otherwise."""
    text = text.strip().strip("$").replace(" ", "")
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


def exact_equal(predicted: str, gold: str) -> bool:
    """True when both parse to the same rational number, or, failing that, are the same text."""
    pred_num, gold_num = as_number(predicted), as_number(gold)
    if pred_num is not None and gold_num is not None:
        return pred_num == gold_num
    return normalise_text(predicted) == normalise_text(gold) != ""


def answer_key(text: str) -> str:
    """A canonical key so equal answers vote together in majority voting."""
    number = as_number(text)
    return str(number) if number is not None else normalise_text(text)
