"""Verifiers: decide whether a response solves a problem. ``score`` dispatches on the problem's domain."""

from __future__ import annotations

from vibethinker.data.records import Problem
from vibethinker.verify.choice import verify_choice
from vibethinker.verify.code import verify_code
from vibethinker.verify.exact import answer_key
from vibethinker.verify.instruct import verify_instruct
from vibethinker.verify.math import verify_math
from vibethinker.verify.types import Verdict


def score(problem: Problem, response: str, require_think: bool = True) -> Verdict:
    """Grade one response. A missing or empty answer is always wrong (SPEC 5)."""
    if problem.domain == "code":
        return verify_code(response, problem.tests, require_think=require_think)
    if problem.domain == "stem" and problem.choices:
        return verify_choice(response, problem.answer, require_think=require_think, n_choices=len(problem.choices))
    if problem.domain in ("math", "stem"):
        return verify_math(response, problem.answer, require_think=require_think)
    if problem.domain == "instruct":
        constraints = problem.meta.get("constraints")
        if not constraints:
            raise ValueError(f"problem {problem.id}: an instruct problem needs meta.constraints for the rule "
                             f"validators (rubric rewards from a judge model are a separate reward)")
        return verify_instruct(response, constraints, require_think=require_think)
    raise ValueError(f"problem {problem.id}: no verifier for domain {problem.domain!r}")


def vote_key(problem: Problem, answer: str) -> str:
    """The key under which equal answers are counted together for cons@n (majority voting)."""
    if problem.domain == "code":
        return "\n".join(line.rstrip() for line in answer.strip().splitlines())
    return answer_key(answer)


__all__ = ["Verdict", "score", "vote_key"]
