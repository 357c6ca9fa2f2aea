"""What runs inside a math-check worker process: math-verify parsing and comparison, with our numeric rule.

Kept separate from :mod:`vibethinker.verify.math` so that worker processes (spawn/forkserver) import only this
module and math-verify. ``equivalent(pred, gold)`` is also callable in-process (the tests use it directly), but
it has no time limit there: the checker in ``math.py`` runs it in killable worker processes.

Numeric rule (replaces ``math_verify.grader.sympy_numeric_eq`` in this process, so it also applies inside
tuples, sets, intervals, matrices and equations): two numbers are equal when
``|a - b| <= max(ABS_TOL, REL_TOL * max(|a|, |b|))`` if either side holds a float, and only when they are
equal to ~50 significant digits otherwise. math-verify instead rounds floats to 6 decimals (``1e-7 == 2e-7``)
and chops tiny values.
"""

from __future__ import annotations

import functools
import re
import traceback
from typing import Any

REL_TOL = 1e-9
ABS_TOL = 1e-12
_EXACT_DIGITS = 50

_SCI = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*[eE]\s*([-+]?\d+)\s*$")
_PATCHED = False


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


def numbers_close(a: Any, b: Any) -> bool:
    """Our numeric equality of two sympy expressions (see module docstring)."""
    from sympy import Abs, Float

    has_float = a.has(Float) or b.has(Float)
    va, vb = _numeric_value(a), _numeric_value(b)
    if va is None or vb is None:
        return False
    try:
        if has_float:
            ca, cb = complex(va), complex(vb)
            return abs(ca - cb) <= max(ABS_TOL, REL_TOL * max(abs(ca), abs(cb)))
        diff = Abs((va - vb).evalf(n=_EXACT_DIGITS + 10))
        scale = max(Abs(va), Abs(vb), 1)
        return bool(diff <= scale * Float(10) ** (-_EXACT_DIGITS))
    except (TypeError, ValueError, OverflowError):
        return False


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
        return grader.get_pct_val(a, a) == grader.get_pct_val(b, b)
    if grader.is_atomic_or_pct_atomic(a, Number) or grader.is_atomic_or_pct_atomic(b, Number):
        # a percentage may be meant as the number or as its value: 50% == 50 and 50% == 0.5 (as math-verify)
        a_forms = {a, grader.get_pct_val(a, a)}
        b_forms = {b, grader.get_pct_val(b, b)}
        return any(numbers_close(x, y) for x in a_forms for y in b_forms)
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


@functools.lru_cache(maxsize=4096)
def parse_gold(gold: str) -> tuple:
    """Parse a gold answer (cached): ``$gold$`` first, ``\\boxed{gold}`` when that yields nothing."""
    from math_verify import parse

    text = normalise_latex(gold)
    parsed = parse(f"${text}$", parsing_timeout=None)
    if not parsed:
        parsed = parse(f"\\boxed{{{text}}}", parsing_timeout=None)
    return tuple(parsed)


def parse_pred(pred: str) -> list:
    from math_verify import parse

    text = normalise_latex(pred)
    parsed = parse(f"${text}$", parsing_timeout=None)
    if not parsed:
        parsed = parse(f"\\boxed{{{text}}}", parsing_timeout=None)
    return parsed


def equivalent(pred: str, gold: str) -> bool:
    """math-verify equivalence of an extracted answer and a gold answer (gold first), with our numeric rule."""
    from math_verify import verify

    _install_patch()
    gold_parsed = list(parse_gold(gold))
    pred_parsed = parse_pred(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def worker_main(conn) -> None:  # pragma: no cover - runs in a child process
    """Serve ``(index, pred, gold)`` requests on a pipe, answering ``(index, "correct"|"wrong"|"error", detail)``."""
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
        index, pred, gold = request
        try:
            result = ("correct" if equivalent(pred, gold) else "wrong", "")
        except Exception:  # noqa: BLE001
            result = ("error", traceback.format_exc(limit=2))
        try:
            conn.send((index, *result))
        except (BrokenPipeError, OSError):
            return
