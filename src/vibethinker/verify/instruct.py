"""IFEval-style rule validators for instruct RL (SPEC 2.5, 2.7): explicit format / order / count / keyword / length.

Every constraint is a dict ``{"kind": ..., **params}``. ``CONSTRAINTS[kind]`` is a checker ``(text, **params) ->
bool`` that validates its parameters first (``ValueError`` naming the kind and the parameter). Only the text after
``</think>`` is checked, stripped of surrounding whitespace. Kinds (``relation`` is one of ``at_least``, ``at_most``,
``exactly``, ``less_than``, ``more_than``; spaces are accepted, e.g. ``"at least"``):

- ``word_count(n, relation="at_least")``: words are runs of letters/digits (unicode), joined by ``'`` or ``-``
  (``don't`` and ``well-known`` are one word); punctuation and extra spaces are ignored.
- ``sentence_count(n, relation="at_least")``: sentences end at ``.``/``!``/``?`` (runs count once) followed by
  whitespace or the end; a trailing fragment without end mark is a sentence; pieces without a word are dropped.
- ``paragraph_count(n, relation="exactly", separator="blank_line")``: paragraphs are separated by blank lines
  (``separator="blank_line"``) or, as IFEval does, by ``***`` markers (``separator="***"``); with ``***`` an empty
  paragraph anywhere but the very start or end fails the check (IFEval semantics).
- ``keywords(keywords, min_count=1)``: each keyword (or phrase) appears at least ``min_count`` times,
  case-insensitive, as whole words (``cat`` does not match ``cats``; ``cat,`` matches).
- ``forbidden_words(words)``: none of the words appears (case-insensitive, whole words).
- ``json_format(allow_fence=True)``: the whole answer parses as JSON; with ``allow_fence`` it may be wrapped in
  one ```` ```json ```` (or untagged) fenced block.
- ``bullet_count(n, relation="exactly", include_nested=False)``: markdown bullets are lines starting with ``* ``
  or ``- ``; indented (nested) bullets count only with ``include_nested``. ``***``/``---`` rules are not bullets.
- ``letter_case(case)``: ``case="lower"`` / ``"upper"``: no letter of the other case, and at least one letter.
- ``start_phrase(phrase, ignore_case=False)`` / ``end_phrase(phrase, ignore_case=False)``: the stripped answer
  starts / ends with the stripped phrase.
- ``sections(n, splitter="Section", relation="at_least")``: section headers are ``<splitter> <number>`` (e.g.
  ``Section 1``, ``SECTION 2``; the splitter is matched case-sensitively as a whole word); IFEval uses at least.
- ``letter_frequency(letter, n, relation="at_least")``: occurrences of one letter, case-insensitive.
- ``placeholders(n, relation="at_least")``: square-bracket placeholders like ``[address]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from vibethinker.verify.extract import final_part
from vibethinker.verify.types import Verdict

_REQUIRED = object()
RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "at_least": lambda v, n: v >= n,
    "at_most": lambda v, n: v <= n,
    "exactly": lambda v, n: v == n,
    "less_than": lambda v, n: v < n,
    "more_than": lambda v, n: v > n,
}
_WORD = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_FENCE = re.compile(r"\A```[ \t]*(?:json)?[ \t]*\n(.*?)\n?```\Z", re.DOTALL | re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]*?\]")

# kind -> {param: (type, default or _REQUIRED)}; type "relation" / "words" / "letter" get extra checks.
PARAMS: dict[str, dict[str, tuple[Any, Any]]] = {
    "word_count": {"n": (int, _REQUIRED), "relation": ("relation", "at_least")},
    "sentence_count": {"n": (int, _REQUIRED), "relation": ("relation", "at_least")},
    "paragraph_count": {"n": (int, _REQUIRED), "relation": ("relation", "exactly"),
                        "separator": (("blank_line", "***"), "blank_line")},
    "keywords": {"keywords": ("words", _REQUIRED), "min_count": (int, 1)},
    "forbidden_words": {"words": ("words", _REQUIRED)},
    "json_format": {"allow_fence": (bool, True)},
    "bullet_count": {"n": (int, _REQUIRED), "relation": ("relation", "exactly"), "include_nested": (bool, False)},
    "letter_case": {"case": (("lower", "upper"), _REQUIRED)},
    "start_phrase": {"phrase": (str, _REQUIRED), "ignore_case": (bool, False)},
    "end_phrase": {"phrase": (str, _REQUIRED), "ignore_case": (bool, False)},
    "sections": {"n": (int, _REQUIRED), "splitter": (str, "Section"), "relation": ("relation", "at_least")},
    "letter_frequency": {"letter": ("letter", _REQUIRED), "n": (int, _REQUIRED), "relation": ("relation", "at_least")},
    "placeholders": {"n": (int, _REQUIRED), "relation": ("relation", "at_least")},
}


def _bad(kind: str, name: str, why: str) -> ValueError:
    return ValueError(f"constraint {kind!r}: parameter {name!r} {why}")


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check ``params`` for ``kind`` and fill defaults; ``ValueError`` naming the kind and the parameter."""
    if kind not in PARAMS:
        raise ValueError(f"unknown constraint kind {kind!r}; known: {', '.join(sorted(PARAMS))}")
    spec = PARAMS[kind]
    for name in params:
        if name not in spec:
            raise _bad(kind, name, f"is not accepted (accepted: {', '.join(spec)})")
    out: dict[str, Any] = {}
    for name, (typ, default) in spec.items():
        if name not in params:
            if default is _REQUIRED:
                raise _bad(kind, name, "is required")
            out[name] = default
            continue
        value = params[name]
        if typ is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(kind, name, f"must be a non-negative int, got {value!r}")
        elif typ is bool or typ is str:
            if not isinstance(value, typ):
                raise _bad(kind, name, f"must be a {typ.__name__}, got {value!r}")
            if typ is str and not value.strip():
                raise _bad(kind, name, "must be a non-empty string")
        elif typ == "relation":
            value = value.strip().lower().replace(" ", "_") if isinstance(value, str) else value
            if value not in RELATIONS:
                raise _bad(kind, name, f"must be one of {sorted(RELATIONS)}, got {params[name]!r}")
        elif typ == "words":
            if isinstance(value, str):
                value = [value]
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(isinstance(w, str) and w.strip() for w in value)):
                raise _bad(kind, name, f"must be a non-empty list of non-empty strings, got {params[name]!r}")
            value = list(value)
        elif typ == "letter":
            if not (isinstance(value, str) and len(value) == 1 and value.isalpha()):
                raise _bad(kind, name, f"must be a single letter, got {value!r}")
        elif isinstance(typ, tuple) and value not in typ:
            raise _bad(kind, name, f"must be one of {list(typ)}, got {value!r}")
        out[name] = value
    return out


def _count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _sentences(text: str) -> list[str]:
    pieces = _SENTENCE_END.split(text)
    return [p for p in pieces if _WORD.search(p)]


def _paragraphs(text: str, separator: str) -> list[str] | None:
    """Paragraphs, or ``None`` when a ``***``-separated text has an empty inner paragraph."""
    if separator == "blank_line":
        return [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    parts = re.split(r"\s?\*\s?\*\s?\*\s?", text)
    for i, part in enumerate(parts):
        if not part.strip() and i not in (0, len(parts) - 1):
            return None
    return [p for p in parts if p.strip()]


def _whole(word: str) -> re.Pattern[str]:
    body = r"\s+".join(re.escape(w) for w in word.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _json_body(text: str, allow_fence: bool) -> str:
    text = text.strip()
    if allow_fence:
        fenced = _FENCE.match(text)
        if fenced:
            return fenced.group(1)
    return text


def _check(kind: str, text: str, p: dict[str, Any]) -> bool:
    text = text.strip()
    rel = RELATIONS.get(p.get("relation", ""))
    if kind == "word_count":
        return rel(_count_words(text), p["n"])
    if kind == "sentence_count":
        return rel(len(_sentences(text)), p["n"])
    if kind == "paragraph_count":
        paras = _paragraphs(text, p["separator"])
        return paras is not None and rel(len(paras), p["n"])
    if kind == "keywords":
        return all(len(_whole(k).findall(text)) >= p["min_count"] for k in p["keywords"])
    if kind == "forbidden_words":
        return not any(_whole(w).search(text) for w in p["words"])
    if kind == "json_format":
        try:
            json.loads(_json_body(text, p["allow_fence"]))
        except ValueError:
            return False
        return True
    if kind == "bullet_count":
        pattern = r"^[ \t]*[*-][ \t]+\S" if p["include_nested"] else r"^[*-][ \t]+\S"
        return rel(len(re.findall(pattern, text, re.MULTILINE)), p["n"])
    if kind == "letter_case":
        return text.islower() if p["case"] == "lower" else text.isupper()
    if kind in ("start_phrase", "end_phrase"):
        phrase = p["phrase"].strip()
        body, phrase = (text.lower(), phrase.lower()) if p["ignore_case"] else (text, phrase)
        return body.startswith(phrase) if kind == "start_phrase" else body.endswith(phrase)
    if kind == "sections":
        found = re.findall(rf"(?<!\w){re.escape(p['splitter'].strip())}\s+\d+\b", text)
        return rel(len(found), p["n"])
    if kind == "letter_frequency":
        return rel(text.lower().count(p["letter"].lower()), p["n"])
    if kind == "placeholders":
        return rel(len(_PLACEHOLDER.findall(text)), p["n"])
    raise AssertionError(kind)  # pragma: no cover - PARAMS and _check list the same kinds


def _make_checker(kind: str) -> Callable[..., bool]:
    def checker(text: str, **params: Any) -> bool:
        return _check(kind, text, validate_params(kind, params))
    checker.__name__ = f"check_{kind}"
    checker.__doc__ = f"Check the {kind!r} constraint; parameters: {', '.join(PARAMS[kind])}."
    return checker


CONSTRAINTS: dict[str, Callable[..., bool]] = {kind: _make_checker(kind) for kind in PARAMS}


def _split(constraint: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(constraint, dict) or "kind" not in constraint:
        raise ValueError(f"constraint must be a dict with a 'kind' key, got {constraint!r}")
    params = dict(constraint)
    kind = params.pop("kind")
    return kind, validate_params(kind, params)


def validate_constraints(constraints: list[dict[str, Any]]) -> None:
    """Raise ``ValueError`` for the first malformed constraint (unknown kind, missing / bad / extra parameter)."""
    for constraint in constraints:
        _split(constraint)


def describe(constraint: dict[str, Any]) -> str:
    """Short label, e.g. ``word_count(n=50, relation='at_least')``."""
    params = ", ".join(f"{k}={v!r}" for k, v in constraint.items() if k != "kind")
    return f"{constraint.get('kind')}({params})"


def check_constraint(text: str, constraint: dict[str, Any]) -> bool:
    """Whether ``text`` (already the graded part) satisfies one ``{"kind": ..., **params}`` constraint."""
    kind, params = _split(constraint)
    return _check(kind, text, params)


def verify_instruct(response: str, constraints: list[dict[str, Any]], *, require_think: bool = True,
                    partial_credit: bool = True) -> Verdict:
    """Grade a response against rule constraints; reward = fraction satisfied (or all-or-nothing).

    ``correct`` only when every constraint holds; ``detail`` lists the failed ones. No text after ``</think>``
    (when required) gives ``no_answer`` with reward 0. Malformed constraints raise ``ValueError`` either way.
    """
    if not constraints:
        raise ValueError("verify_instruct needs at least one constraint")
    parsed = [_split(c) for c in constraints]
    part = final_part(response, require_think)
    if part is None or not part.strip():
        return Verdict(False, None, "no text after </think>", reward=0.0, verdict="no_answer")
    text = part.strip()
    failed = [describe(c) for c, (kind, params) in zip(constraints, parsed) if not _check(kind, text, params)]
    passed = len(constraints) - len(failed)
    correct = not failed
    reward = passed / len(constraints) if partial_credit else float(correct)
    detail = "" if correct else f"failed {len(failed)}/{len(constraints)}: " + "; ".join(failed)
    return Verdict(correct, text, detail, reward=reward, verdict="correct" if correct else "wrong")


__all__ = ["CONSTRAINTS", "PARAMS", "RELATIONS", "check_constraint", "describe", "validate_constraints",
           "validate_params", "verify_instruct"]
