"""Which requests the local reasoner may answer: a documented rule, not a model.

The local model is trained for verifiable tasks: answers that can be computed (math with a final answer, code).
Open-domain questions (facts, opinions, knowledge the small model cannot hold) go straight to the large model. The
rule reads the last user message and calls it *verifiable* when it carries

* mathematical notation: LaTeX (``$...$``, ``\\frac``, ``\\sqrt``, ``\\boxed`` and other backslash commands) or an
  arithmetic expression (a number, an operator among ``+ - * / ^ = < >``, a number);
* at least two numbers (a word problem states its quantities); or
* code: a fenced block, or a line that defines a function or class.

An empty ``\\boxed{}`` is ignored: it is the evaluation protocol's answer-format instruction (SPEC 3), which a
knowledge question asked in that format also carries. Everything else is *open* and escalated without local
sampling. The rule is deliberately narrow: a question with one
year in it ("who ruled France in 1700?") stays open. ``route-eval`` measures the routing after the gate; the gate's
own accuracy on a labelled set is measured by :func:`gate_accuracy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LATEX = re.compile(r"\$[^$]+\$|\\(?:frac|sqrt|boxed|sum|int|binom|cdot|times|le|ge|pi)\b")
EXPRESSION = re.compile(r"\d\s*[-+*/^=<>]\s*\(?-?\d")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w.])")
CODE = re.compile(r"```|^\s*(?:def|class|function|fn|int|public)\s+\w+\s*\(|^\s*class\s+\w+", re.MULTILINE)


def is_verifiable(text: str) -> bool:
    text = text.replace("\\boxed{}", "")  # the answer-format instruction of every protocol prompt, not math
    if LATEX.search(text) or EXPRESSION.search(text) or CODE.search(text):
        return True
    return len(NUMBER.findall(text)) >= 2


def gate_accuracy(labelled: Iterable[tuple[str, bool]]) -> dict:
    """Accuracy, and the share of verifiable / open questions the rule sends the wrong way, on (text, verifiable)."""
    rows = [(is_verifiable(text), truth) for text, truth in labelled]
    if not rows:
        raise ValueError("gate_accuracy needs labelled questions")
    verifiable = [got for got, truth in rows if truth]
    open_ = [got for got, truth in rows if not truth]
    return {"accuracy": sum(got == truth for got, truth in rows) / len(rows), "n": len(rows),
            "verifiable_sent_upstream": (verifiable.count(False) / len(verifiable)) if verifiable else None,
            "open_answered_locally": (open_.count(True) / len(open_)) if open_ else None}
