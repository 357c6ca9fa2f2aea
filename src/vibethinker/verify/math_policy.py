"""The conventions of the math verifier: where "equal" is a choice, not a fact, the choice is a field here.

A false accept is a reward the policy learns to exploit (SPEC 5), a false refusal is signal thrown away; every
default below leans strict where the answer could mean something else, lenient where it cannot. The README's
"Math" section restates these rules; ``tests/test_verify_math_redteam.py`` pins both sides of each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

UnitRule = Literal["compare", "ignore", "require"]


@dataclass(frozen=True)
class MathPolicy:
    """How the math verifier reads answers whose meaning rests on a convention.

    Every field defaults to what the peers' own test suites (Math-Verify, MARIO_EVAL, NeMo-Skills, hendrycks MATH)
    expect, except where a lenient reading would let a wrong answer through; those exceptions are marked.
    """

    decimal_comma: bool = True
    """``2,75`` reads as ``2.75`` when the other side is one number and no thousands reading exists (the digits
    after the comma are not a group of three). ``2,750`` stays two thousand seven hundred and fifty; against a
    list or tuple gold a comma always separates items."""

    rounded_decimals: bool = True
    """A decimal written positionally (``0.667``) equals an exact value (``\\frac{2}{3}``, ``\\sqrt{2}``, ``\\pi``)
    when the exact value, rounded to the places the decimal gives, is that decimal and the decimal has at least
    ``min_significant_digits`` significant digits. ``0.67`` (two digits) is refused, as is ``0.6670`` (a fourth
    digit that is wrong) and ``0.665``. Scientific notation (``6.67e-1``) is not rounded this way. Two decimals
    always compare to a relative 1e-9."""

    truncated_decimals: bool = True
    """Under ``rounded_decimals``, a decimal that gives the exact value's leading digits and stops (``0.666`` for
    ``\\frac{2}{3}``, ``125.663`` for ``40\\pi``: truncated, not rounded) is also accepted: every digit it gives is
    right (MARIO_EVAL accepts it; math-verify refuses both readings past 6 places)."""

    min_significant_digits: int = 3
    """The fewest significant digits a rounded decimal must give to stand for an exact value (see above)."""

    mixed_numbers: bool = True
    """``2 1/4`` and ``2\\frac{1}{4}`` are the mixed number 9/4 (the whole part and a proper fraction, as written in
    US school mathematics), never ``21/4`` or ``2 \\cdot 1/4``."""

    units: UnitRule = "compare"
    """Units after a value (``5\\text{ cm}``, ``90^\\circ``, ``\\$5``): ``"compare"`` (default) accepts a bare
    number for a gold with a unit, but two different units are wrong (``5\\text{ m}`` for ``5\\text{ cm}``;
    math-verify drops both and accepts); ``"ignore"`` drops units as math-verify does; ``"require"`` also wants
    the prediction to carry the gold's unit. Multiplier words (hundred, thousand, million, billion, trillion,
    dozen) are never units: they scale the value (``5\\text{ million}`` is 5000000), under every rule."""

    percent_either_way: bool = True
    """``50\\%`` accepts ``50`` and ``0.5`` (math-verify and most graders check both readings)."""

    repair_trailing: bool = True
    """A stray backslash or closing brace at the very end of an otherwise well-formed answer (``42\\``, ``42}``)
    is dropped; anything that opens without closing (``\\frac{1}{``, ``{2``, ``\\left(2``) or lacks an argument
    (``\\sqrt{}``) may have been cut and is wrong."""

    def as_tuple(self) -> tuple:
        """A picklable, hashable form sent to the worker processes with each check."""
        return tuple(asdict(self).values())

    @classmethod
    def from_tuple(cls, values: tuple) -> "MathPolicy":
        return cls(*values)


DEFAULT_POLICY = MathPolicy()
