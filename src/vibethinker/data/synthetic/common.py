"""Shared pieces of the synthetic generators: the draft record, the step writer and the trace formats.

Every sub-domain writes its reasoning in one small, regular language so that a tiny model trained on the whole
suite sees the same vocabulary everywhere: a first line ``Plan: <path>.`` that names the solution path (the model
commits to a path on its first tokens), then one local computation per line (``5 * 3 = 15.``), then the answer
after ``</think>``.

The math sub-domains keep their arithmetic facts few so that a tiny model can learn them in minutes: every number in a
step line is at most ``LIMIT`` (99) in size, and every product is an "easy" one (:func:`easy_product`: both factors
single-digit, or a two-digit factor times 2..5). Difficulty adds steps, not larger numbers.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass, field


@dataclass
class Draft:
    """What a generator returns before the suite gives it an id: the question, its gold and its traces.

    ``key`` identifies the underlying computation independently of the surface wording (nouns, phrasing): the
    suite keeps held-out keys out of the training split, so a test problem is never a reworded training problem.
    """

    question: str
    traces: list[str]
    paths: list[str]
    key: str
    template: str
    answer: int | None = None
    tests: list[str] | None = None
    extra: dict = field(default_factory=dict)


class Rejected(Exception):
    """A sampled instance broke a regularity rule (too-large value, degenerate step); the generator resamples."""


def _exact_div(a: int, b: int) -> int:
    if b == 0 or a % b:
        raise Rejected(f"{a} / {b} is not exact")
    return a // b


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _exact_div, "//": operator.floordiv,
       "mod": operator.mod}


LIMIT = 99  # the largest |number| a math step line may hold (counting documents its few exceptions)


def easy_product(a: int, b: int) -> bool:
    """A product from the small table: one factor 2..9 (or less), and a two-digit factor only times at most 5."""
    low, high = sorted((abs(a), abs(b)))
    return low <= 9 and (high <= 9 or low <= 5)


class Steps:
    """Collects the lines of one reasoning path; ``calc`` writes ``a op b = c.`` and returns ``c``."""

    def __init__(self, plan: str):
        self.lines = [f"Plan: {plan}."]
        self.values: list[int] = []
        self.facts: list[tuple[int, str, int, int]] = []

    def calc(self, a: int, op: str, b: int) -> int:
        value = OPS[op](a, b)
        self.lines.append(f"{a} {op} {b} = {value}.")
        self.values.append(value)
        self.facts.append((a, op, b, value))
        return value

    def say(self, text: str) -> None:
        self.lines.append(text)

    def think(self) -> str:
        return "<think>\n" + "\n".join(self.lines) + "\n</think>\n"


def math_trace(steps: Steps, answer: int) -> str:
    return steps.think() + f"The answer is \\boxed{{{answer}}}."


def code_trace(steps: Steps, sentence: str, program: str) -> str:
    return steps.think() + f"{sentence}\n```python\n{program.strip()}\n```"


def bounded(limit: int, *step_lists: Steps) -> None:
    """Reject an instance with a step number outside [-limit, limit] or a product off the small table."""
    for steps in step_lists:
        for a, op, b, value in steps.facts:
            if max(abs(a), abs(b), abs(value)) > limit:
                raise Rejected("step number too large")
            if op == "*" and not easy_product(a, b):
                raise Rejected(f"{a} * {b} is not an easy product")


def small(*numbers: int, limit: int = LIMIT) -> None:
    """Reject an instance whose numbers written outside ``calc`` lines (expansions, factor lists) are too large."""
    if any(abs(n) > limit for n in numbers):
        raise Rejected("number too large")


def draw(rng: random.Random, build, difficulty: int, tries: int = 1000) -> Draft:
    """Call ``build(rng, difficulty)`` until it produces an instance that passes its own regularity checks."""
    for _ in range(tries):
        try:
            return build(rng, difficulty)
        except Rejected:
            continue
    raise RuntimeError(f"{build.__module__}.{build.__name__}: no valid instance in {tries} tries at d{difficulty}")
