"""What runs inside a math-check worker process: math-verify parsing and comparison, with our numeric rule.

Kept separate from :mod:`vibethinker.verify.math` so that worker processes (spawn/forkserver) import only this
module and math-verify. ``equivalent(pred, gold)`` is also callable in-process (the tests use it directly), but
it has no time limit there: the checker in ``math.py`` runs it in killable worker processes.

Numeric rule (replaces ``math_verify.grader.sympy_numeric_eq`` in this process, so it also applies inside
tuples, sets, intervals, matrices and equations):

* two exact values are equal only when they are: rationals compare as rationals (``\\frac{1}{3000!}`` is not
  ``\\frac{1}{2998!}``, ``10^{-400}`` is not ``2\\cdot 10^{-400}``), other exact numbers when their difference
  evaluates to zero (no significant digit at 60 digits), an infinity only to itself (``\\infty`` is not
  ``10^{400}``);
* a decimal against an exact value: equal under the policy's rounding rule
  (:attr:`~vibethinker.verify.math_policy.MathPolicy.rounded_decimals`), or to a relative 1e-9;
* two decimals: ``|a - b| <= max(ABS_TOL, REL_TOL * max(|a|, |b|))``.

math-verify instead rounds floats to 6 decimals (``1e-7 == 2e-7``), chops tiny values and compares exact
values to 15 digits after subtracting them.
"""

from __future__ import annotations

import functools
import re
import traceback
from typing import Any

from vibethinker.verify.math_policy import DEFAULT_POLICY, MathPolicy

REL_TOL = 1e-9
ABS_TOL = 1e-12
_EXACT_DIGITS = 50

_SCI = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*[eE]\s*([-+]?\d+)\s*$")
_PATCHED = False
POLICY = DEFAULT_POLICY  # the policy of the check in progress (one check at a time per worker process)


def normalise_latex(text: str) -> str:
    """Strip ``$`` and turn a plain ``1.5e-7`` into ``1.5\\times 10^{-7}`` (LaTeX reads ``e`` as Euler's number)."""
    text = text.strip().strip("$").strip()
    match = _SCI.match(text)
    if match:
        text = f"{match.group(1)}\\times 10^{{{int(match.group(2))}}}"
    return text


def _numeric_value(expr: Any):
    """A high-precision complex/real sympy number for ``expr``, or ``None`` if it is not a plain number."""
    from math_verify.grader import safe_sympy_doit

    expr = safe_sympy_doit(expr)
    if not getattr(expr, "is_number", False):
        return None
    try:
        value = expr.evalf(n=_EXACT_DIGITS + 10)
    except Exception:  # noqa: BLE001 - sympy raises many things
        return None
    return value if value.is_number else None


def _is_zero(difference: Any) -> bool:
    """Whether an exact difference is zero: sympy's evalf gives a value with no significant digit (``_prec`` 1,
    magnitude below ~1e-170) when the expression cancels, and a real value otherwise, however small."""
    from sympy import Float

    value = difference.evalf(n=_EXACT_DIGITS + 10)
    if value == 0:
        return True
    parts = value.as_real_imag()
    return all(part == 0 or (isinstance(part, Float) and part._prec <= 1) for part in parts)


def _decimal_literal(expr: Any) -> tuple[Any, int, int] | None:
    """``(exact value, decimal places, significant digits)`` of a positional decimal (``-0.667``), else ``None``.

    The digits are the float's shortest round-trip form; trailing zeros are not seen at this depth (the string
    rules in ``math.py`` see them for a plain answer).
    """
    from sympy import Float, Rational

    sign = 1
    if expr.is_Mul and len(expr.args) == 2 and expr.args[0] == -1:
        sign, expr = -1, expr.args[1]
    if not isinstance(expr, Float) or not expr.is_finite:
        return None
    text = repr(float(expr))
    if "e" in text or "inf" in text or "nan" in text:
        return None
    places = len(text.split(".")[1]) if "." in text else 0
    digits = text.replace("-", "").replace(".", "").lstrip("0")
    return sign * Rational(text), places, len(digits)


def _rounds_to(exact: Any, decimal: tuple[Any, int, int]) -> bool:
    """Policy ``rounded_decimals``: ``exact`` rounded (or, under ``truncated_decimals``, cut) to the decimal's places
    is the decimal, and the decimal has at least ``min_significant_digits`` significant digits."""
    value, places, significant = decimal
    if not POLICY.rounded_decimals or significant < POLICY.min_significant_digits:
        return False
    try:
        return digits_match((exact - value).evalf(n=_EXACT_DIGITS), value, places, POLICY.truncated_decimals)
    except (TypeError, ValueError):
        return False


def digits_match(difference: Any, decimal: Any, places: int, truncated: bool) -> bool:
    """Whether a decimal given to ``places`` places is the exact value rounded there (``difference`` = exact -
    decimal, at most half a unit of the last place), or, when ``truncated``, cut there toward zero (the exact
    value lies beyond the decimal, less than one unit away). Fractions and sympy numbers alike."""
    from fractions import Fraction

    if abs(difference) <= Fraction(1, 2 * 10 ** places):
        return True
    return truncated and abs(difference) < Fraction(1, 10 ** places) and bool(difference * decimal > 0)


def numbers_close(a: Any, b: Any) -> bool:
    """Our numeric equality of two sympy expressions (see module docstring)."""
    from math_verify.grader import safe_sympy_doit
    from sympy import Abs, Float, Rational

    a_float, b_float = a.has(Float), b.has(Float)
    va, vb = _numeric_value(a), _numeric_value(b)
    if va is None or vb is None:
        return False
    try:
        if not (va.is_finite and vb.is_finite):
            return bool(safe_sympy_doit(a) == safe_sympy_doit(b))
        if a_float != b_float:  # a decimal against an exact value: the rounding convention
            decimal = _decimal_literal(a if a_float else b)
            if decimal is not None and _rounds_to(safe_sympy_doit(b if a_float else a), decimal):
                return True
        if a_float or b_float:
            scale = max(Abs(va), Abs(vb))
            return bool(Abs(va - vb) <= max(Float(ABS_TOL), Float(REL_TOL) * scale))
        exact_a, exact_b = safe_sympy_doit(a), safe_sympy_doit(b)
        if isinstance(exact_a, Rational) and isinstance(exact_b, Rational):
            return bool(exact_a == exact_b)
        return _is_zero(exact_a - exact_b)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return False


def _percent_forms(expr: Any) -> list:
    """The readings of a number: ``50\\%`` is its value ``1/2``, and also ``50`` under ``percent_either_way``
    (as math-verify reads it); anything else is itself."""
    from math_verify import grader

    number = grader.get_pct_val(expr, None)
    if number is None:
        return [expr]
    value = grader.safe_sympy_doit(expr)
    return [number, value] if POLICY.percent_either_way else [value]


def _patched_numeric_eq(a, b, float_rounding, numeric_precision):  # noqa: ARG001 - same signature as math-verify
    from math_verify import grader
    from sympy import Integer, Number
    from sympy.matrices import MatrixBase
    from sympy.matrices.expressions import MatrixExpr

    if isinstance(a, (MatrixBase, MatrixExpr)) and isinstance(b, (MatrixBase, MatrixExpr)):
        a, b = grader.safe_sympy_doit(a), grader.safe_sympy_doit(b)
        if isinstance(a, MatrixBase) and isinstance(b, MatrixBase) and a.shape == b.shape:
            return all(_patched_numeric_eq(x, y, 0, 0) for x, y in zip(a.flat(), b.flat(), strict=True))
        return False
    if isinstance(a, (MatrixBase, MatrixExpr)) or isinstance(b, (MatrixBase, MatrixExpr)):
        return False
    if grader.is_atomic_or_pct_atomic(a, Integer) and grader.is_atomic_or_pct_atomic(b, Integer):
        # math-verify's percent rule: 9% == 9
        if POLICY.percent_either_way:
            return grader.get_pct_val(a, a) == grader.get_pct_val(b, b)
    if grader.is_atomic_or_pct_atomic(a, Number) or grader.is_atomic_or_pct_atomic(b, Number):
        return any(numbers_close(x, y) for x in _percent_forms(a) for y in _percent_forms(b))
    try:
        return numbers_close(a, b)
    except Exception:  # noqa: BLE001
        return False


def _install_patch() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from math_verify import grader

    grader.sympy_numeric_eq = _patched_numeric_eq
    _PATCHED = True


@functools.lru_cache(maxsize=1)
def _extraction_config() -> tuple:
    """math-verify's default extraction, less its unit stripping: it drops a trailing ``c``, ``d``, ``h``, ``t``,
    ``ab``, ``bc``... after a number (``2c`` would pass for ``2``) and any trailing ``\\text{}``. Units are split
    off by ``verify/math_units.py`` before a check reaches a worker."""
    from latex2sympy2_extended.math_normalization import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    normalization = NormalizationConfig(basic_latex=True, units=False, malformed_operators=True, nits=True,
                                        boxed="all", equations=False)
    return (LatexExtractionConfig(normalization_config=normalization), ExprExtractionConfig())


def _parse(answer: str) -> list:
    from math_verify import parse

    text = normalise_latex(answer)
    config = list(_extraction_config())
    parsed = parse(f"${text}$", extraction_config=config, parsing_timeout=None)
    if not parsed:
        parsed = parse(f"\\boxed{{{text}}}", extraction_config=config, parsing_timeout=None)
    return parsed


@functools.lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple:
    """Parse a gold answer (cached): ``$gold$`` first, ``\\boxed{gold}`` when that yields nothing."""
    return tuple(_parse(gold))


def parse_pred(pred: str) -> list:
    return _parse(pred)


def _imaginary_unit(parsed: list) -> list:
    """``i`` as the imaginary unit: math-verify parses ``1+3i`` with a symbol ``i``, so ``i(3-i)`` is not
    expanded to ``1+3i``. Applied to both sides whenever either uses ``i``."""
    from sympy import I

    out = []
    for item in parsed:
        symbols = [s for s in getattr(item, "free_symbols", ()) if getattr(s, "name", None) == "i"]
        out.append(item.subs({s: I for s in symbols}) if symbols and not isinstance(item, str) else item)
    return out


def _uses_i(parsed: list) -> bool:
    # math-verify makes its symbols real, so match ``i`` by name, not by Symbol("i")
    return any(getattr(s, "name", None) == "i" for item in parsed if not isinstance(item, str)
               for s in getattr(item, "free_symbols", ()))


def equivalent(pred: str, gold: str, policy: MathPolicy | None = None) -> bool:
    """math-verify equivalence of an extracted answer and a gold answer (gold first), with our numeric rule."""
    from math_verify import verify

    global POLICY
    _install_patch()
    POLICY = policy or DEFAULT_POLICY
    gold_parsed = list(parse_gold(gold))
    pred_parsed = parse_pred(pred)
    if not gold_parsed or not pred_parsed:
        return False
    if _uses_i(gold_parsed) or _uses_i(pred_parsed):
        gold_parsed, pred_parsed = _imaginary_unit(gold_parsed), _imaginary_unit(pred_parsed)
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def worker_main(conn) -> None:  # pragma: no cover - runs in a child process
    """Serve ``(index, pred, gold, policy tuple)`` requests on a pipe, answering ``(index, "correct"|"wrong"|"error", detail)``."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # silence "timeout is disabled": we enforce it
    _install_patch()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        index, pred, gold, policy = request
        try:
            result = ("correct" if equivalent(pred, gold, MathPolicy.from_tuple(policy)) else "wrong", "")
        except Exception:  # noqa: BLE001
            result = ("error", traceback.format_exc(limit=2))
        try:
            conn.send((index, *result))
        except (BrokenPipeError, OSError):
            return
