"""The embedded synthetic reasoning suite: seeded generators of verifiable problems with several solution paths.

Four math sub-domains (arithmetic, linear equations, number theory, counting) and one code sub-domain (small Python
functions with assert tests) make the default suite (``SUBDOMAINS``). Extra sub-domains (``EXTRA_MODULES``: two-digit
word problems for RL on a pretrained chat model) are selected by name only (``ALL_SUBDOMAINS``), so the default recipe
never changes. Every problem carries at least two traces that take genuinely different paths (SPEC 2.1's
"spectrum"), named in ``meta["paths"]``. Traces are short and written in one regular step language so
that a ~1-2M-parameter model trained for minutes on a CPU can learn the suite; see ``common.py``.

``make_problem(subdomain, difficulty, rng, index)`` turns one generator draw into a :class:`Problem`;
``suite.generate_suite`` builds decontaminated train / probe / test splits.
"""

from __future__ import annotations

import random

from vibethinker.data.records import CodeTest, Problem
from vibethinker.data.synthetic import (arithmetic, code_functions, counting, linear_equations, number_theory,
                                        word_problems)
from vibethinker.data.synthetic.common import Draft

MODULES = {m.SUBDOMAIN: m for m in (arithmetic, linear_equations, number_theory, counting, code_functions)}
SUBDOMAINS: tuple[str, ...] = tuple(MODULES)
EXTRA_MODULES = {m.SUBDOMAIN: m for m in (word_problems,)}
ALL_SUBDOMAINS: tuple[str, ...] = SUBDOMAINS + tuple(EXTRA_MODULES)
DIFFICULTIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def problem_id(subdomain: str, difficulty: int, index: int) -> str:
    return f"{subdomain}-d{difficulty}-{index:06d}"


def module_for(subdomain: str):
    """The generator module of a default or extra sub-domain."""
    module = MODULES.get(subdomain) or EXTRA_MODULES.get(subdomain)
    if module is None:
        raise KeyError(f"unknown synthetic sub-domain {subdomain!r}; known: {', '.join(ALL_SUBDOMAINS)}")
    return module


def draft_problem(subdomain: str, difficulty: int, rng: random.Random) -> Draft:
    """One raw draw of a sub-domain generator; ``rng`` is the caller's own ``random.Random``."""
    module = module_for(subdomain)
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty}")
    return module.generate(rng, difficulty)


def to_problem(draft: Draft, subdomain: str, difficulty: int, index: int) -> Problem:
    module = module_for(subdomain)
    return Problem(
        id=problem_id(subdomain, difficulty, index), domain=module.DOMAIN, subdomain=subdomain,
        difficulty=difficulty, problem=draft.question,
        answer=None if draft.answer is None else str(draft.answer),
        tests=None if draft.tests is None else [CodeTest(type="assert", code=t) for t in draft.tests],
        source="synthetic", traces=list(draft.traces),
        meta={"paths": list(draft.paths), "template": draft.template, "key": draft.key, **draft.extra},
    )


def make_problem(subdomain: str, difficulty: int, rng: random.Random, index: int = 0) -> Problem:
    return to_problem(draft_problem(subdomain, difficulty, rng), subdomain, difficulty, index)


__all__ = ["ALL_SUBDOMAINS", "DIFFICULTIES", "EXTRA_MODULES", "MODULES", "SUBDOMAINS", "Draft", "draft_problem",
           "make_problem", "module_for", "problem_id", "to_problem"]
