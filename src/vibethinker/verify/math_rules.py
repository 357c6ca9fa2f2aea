"""What the math verifier decides before (or instead of) asking math-verify: a :class:`Plan` per answer pair.

A plan is a verdict reached from the strings alone (a malformed answer, two plain numbers, two different units),
one math-verify check in a worker process, or several checks that must all hold (the terms of a sequence or a
ratio chain). The rewrites on the way are in :mod:`~vibethinker.verify.math_rewrite`, units in
:mod:`~vibethinker.verify.math_units`, term lists in :mod:`~vibethinker.verify.math_sequences`; which of them
apply is the :class:`~vibethinker.verify.math_policy.MathPolicy`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from vibethinker.verify.exact import as_number
from vibethinker.verify.math_policy import DEFAULT_POLICY, MathPolicy
from vibethinker.verify.math_rewrite import (base_subscript, brace_depth_ok, column_as_tuple, decimal_comma,
                                             degrees_in_trigonometry, expand_multipliers, is_mixed_number,
                                             list_words, mixed_number_latex, repair_trailing, sqrt_parentheses,
                                             unify_definitions)
from vibethinker.verify.math_sequences import term_checks, term_list
from vibethinker.verify.math_units import WILDCARD, split_unit, units_differ
from vibethinker.verify.math_workers import ABS_TOL, REL_TOL, digits_match, normalise_latex

_SCI_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Plan:
    """How one ``(pred, gold)`` pair is decided: ``decided`` from the strings, else one worker ``pair``, else all
    of ``parts``."""

    decided: bool | None = None
    detail: str = ""
    pair: tuple[str, str] | None = None
    parts: tuple["Plan", ...] = ()


# ----------------------------------------------------------------------------------------------- plain numbers

@dataclass(frozen=True)
class PlainNumber:
    value: Fraction
    kind: str  # "exact", "decimal" (positional, digits after a point) or "scientific"
    places: int = 0
    significant: int = 0


def plain_number(text: str) -> PlainNumber | None:
    """An integer / fraction / mixed number / decimal / scientific literal, else ``None``."""
    text = text.strip().strip("$").strip()
    value = as_number(text)
    compact = text.replace(" ", "")
    if value is not None:
        if "." not in compact:
            return PlainNumber(value, "exact")
        fraction_digits = compact.split(".")[1]
        places = len(re.match(r"\d*", fraction_digits).group())
        significant = len(re.sub(r"\D", "", compact.split("/")[0]).lstrip("0"))
        return PlainNumber(value, "decimal", places, significant)
    if _SCI_NUMBER.match(compact):
        try:
            return PlainNumber(Fraction(compact), "scientific")
        except (ValueError, ZeroDivisionError):
            return None
    return None


def numbers_equal(a: PlainNumber, b: PlainNumber, policy: MathPolicy = DEFAULT_POLICY) -> bool:
    """Exact values compare exactly; a decimal against an exact value by the rounding rule (or a relative 1e-9);
    two decimals to a relative 1e-9 (see :class:`~vibethinker.verify.math_policy.MathPolicy`)."""
    if a.kind == "exact" and b.kind == "exact":
        return a.value == b.value
    if a.value == b.value:
        return True
    decimal, exact = (a, b) if b.kind == "exact" else (b, a) if a.kind == "exact" else (None, None)
    if decimal is not None and decimal.kind == "decimal" and policy.rounded_decimals \
            and decimal.significant >= policy.min_significant_digits \
            and digits_match(exact.value - decimal.value, decimal.value, decimal.places, policy.truncated_decimals):
        return True
    return abs(a.value - b.value) <= max(Fraction(ABS_TOL), Fraction(REL_TOL) * max(abs(a.value), abs(b.value)))


def fast_decision(pred: str, gold: str, policy: MathPolicy = DEFAULT_POLICY) -> bool | None:
    """Decide plain-number pairs without a worker; ``None`` when math-verify is needed."""
    p, g = plain_number(pred), plain_number(gold)
    if p is None or g is None:
        return None
    return numbers_equal(p, g, policy)


# ----------------------------------------------------------------------------------------------- malformed LaTeX

def _strip_escaped_braces(text: str) -> str:
    return text.replace("\\{", "").replace("\\}", "")


def malformed_reason(text: str) -> str | None:
    """Why ``text`` cannot be read unambiguously, or ``None`` when it can."""
    body = _strip_escaped_braces(text.replace("\\\\", " "))
    if brace_depth_ok(text):
        return "unbalanced braces"
    if body.endswith("\\"):  # "\ " is LaTeX's control space, not a dangling backslash
        return "dangling backslash"
    if re.search(r"(\\[dt]?frac|\\sqrt|\\binom|\\text|\^|_)\s*(\{[^{}]*\})?\s*\{\s*\}", body):
        return "empty argument"  # \frac{1}{}, \sqrt{}, x^{}
    if re.search(r"\\[dt]?frac\s*\(", body):
        return "\\frac with parenthesised arguments"
    for match in re.finditer(r"\\[dt]?frac(?![a-zA-Z])", body):
        if _count_args(body, match.end(), 2) < 2:
            return "\\frac without two arguments"
    for match in re.finditer(r"\\sqrt(?![a-zA-Z])", body):
        rest = re.sub(r"^\s*\[[^\]]*\]", "", body[match.end():])
        if _count_args(rest, 0, 1) < 1:
            return "\\sqrt without an argument"
    if re.search(r"[\^_]\s*$", body):
        return "dangling ^ or _"
    if len(re.findall(r"\\left(?![a-zA-Z])", body)) != len(re.findall(r"\\right(?![a-zA-Z])", body)):
        return "\\left without \\right"
    return None


def _count_args(text: str, pos: int, wanted: int) -> int:
    """How many of ``wanted`` TeX arguments (a ``{group}``, one character or one command) follow ``pos``."""
    found = 0
    while found < wanted:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text) or text[pos] in "}^_=,)]":
            return found
        if text[pos] == "{":
            depth = 0
            for end in range(pos, len(text)):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
            if not text[pos + 1:end].strip():
                return found
            pos = end + 1
        elif text[pos] == "\\":
            match = re.match(r"\\[a-zA-Z]+|\\.", text[pos:])
            if not match:
                return found
            pos += match.end()
        else:
            pos += 1
        found += 1
    return found


# ----------------------------------------------------------------------------------------------- structure

def _strip_left_right(text: str) -> str:
    return re.sub(r"\\(left|right|bigl|bigr|Bigl|Bigr)(?![a-zA-Z])", "", text).strip()


def _outer_kind(text: str) -> str | None:
    """``"set"`` for ``\\{...\\}``, ``"paren"`` for ``(...)`` / ``[...]`` / mixed interval brackets."""
    text = _strip_left_right(text.strip().strip("$"))
    if text.startswith("\\{") and text.endswith("\\}"):
        return "set"
    if text[:1] in "([" and text[-1:] in ")]" and "," in text:
        return "paren"
    return None


def structural_mismatch(pred: str, gold: str) -> bool:
    """A braced set against a parenthesised tuple or interval (math-verify accepts ``(1,2)`` for ``\\{1,2\\}``)."""
    return {_outer_kind(pred), _outer_kind(gold)} == {"set", "paren"}


# ----------------------------------------------------------------------------------------------- the plan

def plan(pred: str, gold: str, policy: MathPolicy = DEFAULT_POLICY) -> Plan:
    """How to decide whether ``pred`` (an extracted answer) equals ``gold``; the steps are documented in
    ``verify/math.py``'s module docstring, in the order they run."""
    pred, gold = pred.strip().strip("$").strip(), gold.strip().strip("$").strip()
    if policy.repair_trailing:
        pred, gold = repair_trailing(pred), repair_trailing(gold)
    reason = malformed_reason(pred)
    if reason:
        return Plan(False, f"malformed answer: {reason}")
    if not normalise_latex(pred):
        return Plan(False, "empty answer")
    pred, gold = (degrees_in_trigonometry(expand_multipliers(sqrt_parentheses(list_words(side))))
                  for side in (pred, gold))

    (pred_value, pred_unit), (gold_value, gold_unit) = split_unit(pred), split_unit(gold)
    if policy.units != "ignore" and units_differ(pred_unit, gold_unit):
        return Plan(False, f"units differ: {pred_unit} vs {gold_unit}")
    if policy.units == "require" and gold_unit not in (None, WILDCARD) and pred_unit is None:
        return Plan(False, f"missing unit: {gold_unit}")
    pred, gold = pred_value or pred, gold_value or gold
    pred_base, gold_base = base_subscript(pred), base_subscript(gold)
    if pred_base and gold_base and pred_base != gold_base:
        return Plan(False, f"bases differ: {pred_base} vs {gold_base}")

    pred_terms, gold_terms = term_list(pred), term_list(gold)
    if pred_terms or gold_terms:
        checks = term_checks(pred_terms, gold_terms)
        if not checks:
            return Plan(False, "term lists differ")
        return Plan(detail="term by term", parts=tuple(plan(p, g, policy) for p, g in checks))

    if policy.decimal_comma:
        pred, gold = decimal_comma(pred, gold), decimal_comma(gold, pred)
    if not policy.mixed_numbers and is_mixed_number(pred) and pred != gold:
        return Plan(False, "mixed number (policy: not read)")
    decided = fast_decision(pred, gold, policy)
    if decided is not None:
        return Plan(decided, "numeric fast path")
    pred, gold = mixed_number_latex(pred), mixed_number_latex(gold)
    pred, gold = unify_definitions(pred, gold)
    pred, gold = column_as_tuple(pred, gold)
    if structural_mismatch(pred, gold):
        return Plan(False, "set vs tuple/interval")
    return Plan(pair=(pred, gold))


def precheck(pred: str, gold: str, policy: MathPolicy = DEFAULT_POLICY) -> tuple[bool | None, str]:
    """``(True/False, detail)`` when the strings decide, ``(None, "")`` when math-verify is needed."""
    decision = plan(pred, gold, policy)
    return (decision.decided, decision.detail) if decision.decided is not None else (None, "")
