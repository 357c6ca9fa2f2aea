"""Shared pieces of the synthetic generators: the draft record, the step writer and the trace formats.

Every sub-domain writes its reasoning in one small, regular language so that a tiny model trained on the whole
suite sees the same vocabulary everywhere: a first line ``Plan: <path>.`` that names the solution path (the model
commits to a path on its first tokens), then one local computation per line (``5 * 3 = 15.``), then the answer
after ``</think>``.
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


class Steps:
    """Collects the lines of one reasoning path; ``calc`` writes ``a op b = c.`` and returns ``c``."""

    def __init__(self, plan: str):
        self.lines = [f"Plan: {plan}."]
        self.values: list[int] = []

    def calc(self, a: int, op: str, b: int) -> int:
        value = OPS[op](a, b)
        self.lines.append(f"{a} {op} {b} = {value}.")
        self.values.append(value)
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
    """Reject an instance whose intermediate values leave [-limit, limit]: small numbers keep steps learnable."""
    for steps in step_lists:
        if any(abs(v) > limit for v in steps.values):
            raise Rejected("intermediate value too large")


def draw(rng: random.Random, build, difficulty: int, tries: int = 1000) -> Draft:
    """Call ``build(rng, difficulty)`` until it produces an instance that passes its own regularity checks."""
    for _ in range(tries):
        try:
            return build(rng, difficulty)
        except Rejected:
            continue
    raise RuntimeError(f"{build.__module__}.{build.__name__}: no valid instance in {tries} tries at d{difficulty}")
