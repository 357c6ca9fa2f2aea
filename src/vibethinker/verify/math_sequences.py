"""Answers that are lists of terms math-verify cannot read whole: sequences with an ellipsis and ratio chains.

math-verify reads ``2, 4, 6, \\ldots, 2n`` as one of its numbers and ``1:8:27:\\ldots`` as ``1``, so any two such
answers that share a term pass. Here they are split into terms at the top level, and the answer becomes a set of
term-by-term checks that must all hold:

* a **sequence with an ellipsis** (``\\ldots``, ``\\cdots``, ``\\dots``, ``...``) equals another when the terms
  before the ellipsis agree and the terms after it (the general or last terms) agree. One side may list more
  leading terms than the other when both end in the same terms after the ellipsis (``2, 4, 6, \\ldots, 2n`` and
  ``2, 4, \\ldots, 2n``). The general term is never inferred: ``1, 2, \\ldots`` and ``1, 2, 3, \\ldots`` differ.
* a **ratio chain** of three or more terms (``1:2:3``), or any chain with an ellipsis, equals another of as many
  terms when they are proportional (``1:2:3`` = ``2:4:6``): term ``i`` over term ``0`` agrees for every ``i``.
  A two-term ratio ``3:4`` is left to math-verify, which reads it as ``3/4``.

A chain named on its left (``a:b:c = 1:2:3``, ``S_{MBCN}:S = 7:32``) is its right-hand side.

A list on one side only (``1:2:3`` against ``\\frac{1}{6}``) is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ELLIPSIS = re.compile(r"^(?:\\[lc]?dots[cbmio]?|\.\.\.|…|\\ldotp\\ldotp\\ldotp)$")
_ELLIPSIS_ANYWHERE = re.compile(r"\\[lc]?dots[cbmio]?(?![a-zA-Z])|\.\.\.|…")
_NAME = r"(?:\\[a-zA-Z]+|[a-zA-Z])(?:_\{[^{}]*\}|_[a-zA-Z0-9])?'*"
_NAMED_CHAIN = re.compile(rf"^\s*{_NAME}(?:\s*:\s*{_NAME})+\s*$")
_WRAPPERS = (("\\{", "\\}"), ("(", ")"), ("[", "]"), ("\\langle", "\\rangle"))


@dataclass(frozen=True)
class TermList:
    separator: str  # "," or ":"
    wrapper: str | None  # the opening bracket around the list, or None when bare
    terms: tuple[str | None, ...]  # None marks an ellipsis


def _unwrap(text: str) -> tuple[str | None, str]:
    body = re.sub(r"\\(?:left|right|bigl|bigr|Bigl|Bigr)(?![a-zA-Z])", "", text).strip()
    for opener, closer in _WRAPPERS:
        if body.startswith(opener) and body.endswith(closer):
            inner = body[len(opener):-len(closer)]
            if _split(inner, ",") is not None or _split(inner, ":") is not None:
                return opener, inner
    return None, body


def _split(text: str, separator: str) -> list[str] | None:
    """Split at top-level ``separator`` (brackets and braces nest); ``None`` when it does not occur there."""
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(text):
        if text.startswith("\\{", i) or text.startswith("\\}", i):
            depth += 1 if text[i + 1] == "{" else -1
            i += 2
            continue
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == separator and depth == 0 and not text.startswith(",\\!", i):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if not parts:
        return None
    parts.append(text[start:])
    return parts


def term_list(answer: str) -> TermList | None:
    """The answer as a sequence with an ellipsis or a ratio chain, else ``None`` (leave it to math-verify)."""
    wrapper, body = _unwrap(answer.strip())
    sides = _split(body, "=")
    if sides is not None and len(sides) == 2 and _NAMED_CHAIN.match(sides[0]):
        body = sides[1].strip()
    for separator in (",", ":"):
        parts = _split(body, separator)
        if parts is None:
            continue
        terms = tuple(None if _ELLIPSIS.match(part.strip()) else part.strip() for part in parts)
        if any(term == "" for term in terms):
            return None
        has_ellipsis = None in terms
        if separator == "," and has_ellipsis:
            return TermList(",", wrapper, terms)
        if separator == ":" and (has_ellipsis or len(terms) >= 3):
            return TermList(":", wrapper, terms)
        return None
    return None


def has_ellipsis(answer: str) -> bool:
    return bool(_ELLIPSIS_ANYWHERE.search(answer))


def term_checks(pred: TermList | None, gold: TermList | None) -> list[tuple[str, str]] | None:
    """The ``(pred, gold)`` checks that must all hold for the two lists to be equal; ``None`` when they cannot be."""
    if pred is None or gold is None or pred.separator != gold.separator:
        return None
    if pred.wrapper and gold.wrapper and pred.wrapper != gold.wrapper:
        return None
    if pred.separator == ":":
        return _ratio_checks(pred.terms, gold.terms)
    return _sequence_checks(pred.terms, gold.terms)


def _sequence_checks(pred: tuple, gold: tuple) -> list[tuple[str, str]] | None:
    if len(pred) == len(gold):
        if [t is None for t in pred] != [t is None for t in gold]:
            return None
        return [(p, g) for p, g in zip(pred, gold) if p is not None]
    if pred.count(None) != 1 or gold.count(None) != 1:
        return None
    p_head, p_tail = pred[:pred.index(None)], pred[pred.index(None) + 1:]
    g_head, g_tail = gold[:gold.index(None)], gold[gold.index(None) + 1:]
    if not p_tail or len(p_tail) != len(g_tail) or not p_head or not g_head:
        return None
    common = min(len(p_head), len(g_head))
    return list(zip(p_head[:common], g_head[:common])) + list(zip(p_tail, g_tail))


def _ratio_checks(pred: tuple, gold: tuple) -> list[tuple[str, str]] | None:
    if len(pred) != len(gold) or [t is None for t in pred] != [t is None for t in gold] or pred[0] is None:
        return None
    return [(f"\\frac{{{p}}}{{{pred[0]}}}", f"\\frac{{{g}}}{{{gold[0]}}}")
            for p, g in zip(pred[1:], gold[1:]) if p is not None]
