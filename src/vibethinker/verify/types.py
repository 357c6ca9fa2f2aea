"""The verdict every verifier returns: a plain record that rewards, evaluation and reports all read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Verdict:
    """Outcome of checking one response.

    ``reward`` is in [0, 1] (1.0 for a correct binary answer; graded verifiers such as instruction validators may
    give partial credit). ``verdict`` is a short machine-readable label: ``correct`` / ``wrong`` / ``no_answer`` /
    ``timeout`` for answers; ``accepted`` / ``wrong_answer`` / ``runtime_error`` / ``time_limit`` /
    ``memory_limit`` / ``syntax_error`` / ``no_code`` for programs. ``answer`` is the extracted final answer (boxed
    text or program), ``None`` when missing; ``detail`` says why, e.g. the failing test.
    """

    correct: bool
    answer: str | None
    detail: str = ""
    reward: float | None = None
    verdict: str | None = None

    def __post_init__(self) -> None:
        if self.reward is None:
            self.reward = 1.0 if self.correct else 0.0
        if self.verdict is None:
            self.verdict = "correct" if self.correct else ("no_answer" if self.answer is None else "wrong")
        if not 0.0 <= self.reward <= 1.0:
            raise ValueError(f"reward must be in [0, 1], got {self.reward}")
