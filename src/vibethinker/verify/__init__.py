"""Verifiers: decide whether a response solves a problem.

Each verifier is a plain callable ``(problem, response, require_think) -> Verdict``; :data:`VERIFIERS` maps a
problem domain to its verifier, so a recipe names a domain (or registers its own callable) instead of importing a
checker. ``score`` is the one entry point the evaluation and RL stages use.
"""

from __future__ import annotations

from typing import Callable

from vibethinker.data.records import Problem
from vibethinker.verify.choice import verify_choice
from vibethinker.verify.code import verify_code
from vibethinker.verify.exact import answer_key
from vibethinker.verify.instruct import verify_instruct
from vibethinker.verify.math import verify_math
from vibethinker.verify.types import Verdict

ProblemVerifier = Callable[[Problem, str, bool], Verdict]


def _math(problem: Problem, response: str, require_think: bool) -> Verdict:
    return verify_math(response, problem.answer, require_think=require_think)


def _stem(problem: Problem, response: str, require_think: bool) -> Verdict:
    if problem.choices:
        return verify_choice(response, problem.answer, require_think=require_think, n_choices=len(problem.choices))
    return _math(problem, response, require_think)


def _code(problem: Problem, response: str, require_think: bool) -> Verdict:
    return verify_code(response, problem.tests, require_think=require_think)


def _instruct(problem: Problem, response: str, require_think: bool) -> Verdict:
    constraints = problem.meta.get("constraints")
    if not constraints:
        raise ValueError(f"problem {problem.id}: an instruct problem needs meta.constraints for the rule "
                         f"validators (rubric rewards from a judge model are a separate reward)")
    return verify_instruct(response, constraints, require_think=require_think)


VERIFIERS: dict[str, ProblemVerifier] = {"math": _math, "stem": _stem, "code": _code, "instruct": _instruct}


def register_verifier(domain: str, verifier: ProblemVerifier) -> None:
    """Use ``verifier`` for ``domain`` (replacing the built-in one)."""
    VERIFIERS[domain] = verifier


def score(problem: Problem, response: str, require_think: bool = True) -> Verdict:
    """Grade one response with its domain's verifier. A missing or empty answer is always wrong (SPEC 5)."""
    verifier = VERIFIERS.get(problem.domain)
    if verifier is None:
        raise ValueError(f"problem {problem.id}: no verifier for domain {problem.domain!r} "
                         f"(registered: {', '.join(sorted(VERIFIERS))})")
    return verifier(problem, response, require_think)


def vote_key(problem: Problem, answer: str) -> str:
    """The key under which equal answers are counted together for cons@n (majority voting)."""
    return domain_vote_key(problem.domain, answer)


def domain_vote_key(domain: str, answer: str) -> str:
    """:func:`vote_key` from the domain alone (records that carry no Problem, e.g. an eval's samples.jsonl)."""
    if domain == "code":
        return "\n".join(line.rstrip() for line in answer.strip().splitlines())
    return answer_key(answer)


__all__ = ["VERIFIERS", "Verdict", "domain_vote_key", "register_verifier", "score", "vote_key"]
