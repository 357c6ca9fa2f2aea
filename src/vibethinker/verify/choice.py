"""Multiple-choice verification: the boxed letter after ``</think>`` must match the gold letter (SPEC 2.5).

Accepted spellings of one letter inside the last ``\\boxed{}``: ``B``, ``b``, ``(B)``, ``B.``, ``B)``, ``[B]``,
``\\text{B}``, ``\\textbf{B}``, ``\\mathrm{B}`` (and nestings such as ``\\text{(B)}``), optionally ``$``-wrapped.
Anything else (several letters such as ``A, B`` or ``AB``, an empty box, a letter beyond ``n_choices``, an
option's text instead of its letter) is wrong or missing, so hedging never scores.
"""

from __future__ import annotations

import re
import string

from vibethinker.verify.extract import final_part, last_boxed
from vibethinker.verify.types import Verdict

_WRAPPERS = re.compile(r"^\\(?:text|textbf|textrm|mathrm|mathbf|mbox|textit|mathit)\s*\{(.*)\}$", re.DOTALL)
_LETTER = re.compile(r"^[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*[.:]?$")


def parse_choice(answer: str) -> str | None:
    """The single upper-case letter an answer names, or ``None``."""
    text = answer.strip()
    for _ in range(4):  # peel $...$, \text{...}, {...} wrappers
        text = text.strip().strip("$").strip()
        match = _WRAPPERS.match(text)
        if match:
            text = match.group(1)
        elif text.startswith("{") and text.endswith("}"):
            text = text[1:-1]
        else:
            break
    match = _LETTER.match(text.strip())
    if not match:
        return None
    bracketed = text.strip()
    if (bracketed.startswith("(") and not bracketed.rstrip(".:").endswith(")")) or \
            (bracketed.startswith("[") and not bracketed.rstrip(".:").endswith("]")):
        return None
    return match.group(1).upper()


def verify_choice(response: str, gold_letter: str, *, require_think: bool = True,
                  n_choices: int | None = None) -> Verdict:
    """Grade a multiple-choice response against ``gold_letter``."""
    gold = parse_choice(gold_letter)
    if gold is None:
        raise ValueError(f"gold answer {gold_letter!r} is not a single letter")
    part = final_part(response, require_think)
    if part is None:
        return Verdict(False, None, "no </think>", verdict="no_answer")
    boxed = last_boxed(part)
    if boxed is None or not boxed.strip():
        return Verdict(False, None, "no boxed answer after </think>", verdict="no_answer")
    answer = boxed.strip()
    letter = parse_choice(answer)
    if letter is None:
        return Verdict(False, answer, "not a single option letter", verdict="wrong")
    if n_choices is not None and letter not in string.ascii_uppercase[:n_choices]:
        return Verdict(False, answer, f"letter beyond the {n_choices} options", verdict="wrong")
    correct = letter == gold
    return Verdict(correct, answer, "" if correct else f"chose {letter}, gold {gold}")


__all__ = ["parse_choice", "verify_choice"]
