"""Reward of instruct RL (SPEC 2.5, 2.7): rule validators for explicit constraints, rubric scores from a judge.

For each completion y of a problem q (only the text after ``</think>`` is graded, SPEC 2.5):

    rule(y)    = #{constraints of q.meta["constraints"] that y satisfies} / #constraints      (verify_instruct)
    rubric(y)  = (s - 1) / 9      s = the judge's LAST "SCORE: <integer 1-10>"; missing or invalid s -> 0
    reward(y)  = rule_weight * rule(y) + (1 - rule_weight) * rubric(y)    q has constraints and a judge is given
               = rule(y) or rubric(y)                                     only one of the two exists
    correct(y) = every constraint holds; for q without constraints: rubric(y) >= 0.5 (a judge score >= 6)

A completion cut at the length limit, or with no text after ``</think>`` (when required), gets reward 0, is wrong
and is never sent to the judge (an empty answer must never score, SPEC 5). The other G completions of a group go to
the judge in ONE ``grade`` call. The judge prompt is ``judge_prompts/rubric.md`` (documented in the file).

The rewards are graded, not binary, and MGPO's weight w(q) is built from a binary accuracy p(q): SPEC 2.7 trains
instruct RL with plain group-relative advantages, i.e. ``mgpo_lambda: 0`` in the recipe's RL stage;
:func:`check_graded_config` refuses any other value.

Example (rule-only; pass a :class:`~vibethinker.rl.judge.Judge` to add rubric scores):

>>> from vibethinker.data.records import Problem
>>> from vibethinker.generate.types import Completion
>>> q = Problem(id="q1", domain="instruct", subdomain="format", difficulty=1, problem="Greet in lowercase.",
...             source="doc", meta={"constraints": [{"kind": "letter_case", "case": "lower"},
...                                                 {"kind": "keywords", "keywords": ["hello"]}]})
>>> done = lambda text: Completion(0, 0, [1], text, [0.0], "stop")
>>> instruct_reward(None)(q, [done("<think>ok</think>hello there"), done("<think>ok</think>Hi")]).rewards
[1.0, 0.0]
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion
from vibethinker.rl.config import RLConfig
from vibethinker.rl.judge import Judge
from vibethinker.rl.rewards import GroupReward
from vibethinker.verify.extract import final_part
from vibethinker.verify.instruct import validate_constraints, verify_instruct

RUBRIC_TEMPLATE = Path(__file__).parent / "judge_prompts" / "rubric.md"
PLACEHOLDERS = ("instruction", "response", "rubric")
MIN_SCORE, MAX_SCORE = 1, 10
DEFAULT_RUBRIC = (
    "1. Helpfulness: the response addresses what the user actually asked and is useful to them.\n"
    "2. Correctness: facts, reasoning, numbers and any code are accurate; nothing is made up.\n"
    "3. Instruction following: every explicit requirement of the instruction (format, length, order, keywords, "
    "style, language) is met."
)
STAT_KEYS = ("completions", "truncated", "no_answer", "judged", "score_ok", "score_missing", "score_invalid")

_LEADING_COMMENT = re.compile(r"\A\s*<!--.*?-->", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_SCORE_LABEL = re.compile(r"\bSCORE\b[\s*_]*[:=]", re.IGNORECASE)
_SCORE_VALUE = re.compile(r"[\s*_\[(]*(-?\d+(?:\.\d+)?)(?:\s*/\s*10\b)?")


# ---- the judge's score --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JudgeScore:
    """A parsed judge reply: ``score`` in 1..10, or ``None`` with status 'missing' (no ``SCORE:``) / 'invalid'."""

    score: int | None
    status: Literal["ok", "missing", "invalid"]

    @property
    def normalised(self) -> float:
        """(s - 1) / 9 in [0, 1]; a missing or invalid score is the minimum, 0."""
        return 0.0 if self.score is None else (self.score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)


def parse_score(reply: str) -> JudgeScore:
    """The score of the LAST ``SCORE:`` label in ``reply`` (case-insensitive; ``SCORE = 7``, ``**SCORE:** 7``,
    ``SCORE: [7]`` and ``SCORE: 7/10`` are read as 7; ``7.0`` as 7). A last label with no number, a fraction or a
    value outside 1..10 is 'invalid'; earlier labels (e.g. a draft score in the judge's reasoning) are ignored."""
    labels = list(_SCORE_LABEL.finditer(reply))
    if not labels:
        return JudgeScore(None, "missing")
    value = _SCORE_VALUE.match(reply, labels[-1].end())
    if value is None:
        return JudgeScore(None, "invalid")
    number = float(value.group(1))
    if not number.is_integer() or not MIN_SCORE <= number <= MAX_SCORE:
        return JudgeScore(None, "invalid")
    return JudgeScore(int(number), "ok")


# ---- the judge's prompt -------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def load_rubric_template(path: str | Path = RUBRIC_TEMPLATE) -> str:
    """The template without its leading ``<!-- documentation -->`` comment; every placeholder checked."""
    text = _LEADING_COMMENT.sub("", Path(path).read_text(encoding="utf-8"), count=1).strip()
    found = set(_PLACEHOLDER.findall(text))
    unknown = sorted(found - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"{path}: unknown placeholder(s) {unknown}; known: {list(PLACEHOLDERS)}")
    missing = [name for name in PLACEHOLDERS if name not in found]
    if missing:
        raise ValueError(f"{path}: the rubric template lacks the placeholder(s) "
                         f"{', '.join('{{' + m + '}}' for m in missing)}")
    return text


def render_rubric_prompt(template: str, instruction: str, response: str, rubric: str) -> str:
    """Fill the placeholders in ONE pass, so a response that contains ``{{rubric}}`` is not expanded."""
    values = {"instruction": instruction.strip(), "response": response.strip(), "rubric": rubric.strip()}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def problem_rubric(problem: Problem) -> str:
    """``problem.meta["rubric"]`` (a string, or a list of criteria as a numbered list), else :data:`DEFAULT_RUBRIC`."""
    rubric = problem.meta.get("rubric")
    if rubric is None:
        return DEFAULT_RUBRIC
    if isinstance(rubric, str) and rubric.strip():
        return rubric
    if isinstance(rubric, list) and rubric and all(isinstance(c, str) and c.strip() for c in rubric):
        return "\n".join(f"{i}. {c.strip()}" for i, c in enumerate(rubric, 1))
    raise ValueError(f"problem {problem.id}: field 'meta.rubric' must be a non-empty string or a list of non-empty "
                     f"strings, got {rubric!r}")


# ---- the reward ---------------------------------------------------------------------------------------------------

class InstructReward:
    """The :data:`~vibethinker.rl.rewards.RewardFunction` of instruct RL; see the module docstring for the formula.

    ``stats`` counts, over every call so far: completions, truncated, no_answer, judged and the judge replies whose
    score was ok / missing / invalid (a high missing share means the judge ignores the format: check its replies).
    """

    def __init__(self, judge: Judge | None, rule_weight: float = 0.5, require_think: bool = True,
                 template_path: str | Path = RUBRIC_TEMPLATE):
        if not 0.0 <= rule_weight <= 1.0:
            raise ValueError(f"rule_weight must be in [0, 1], got {rule_weight}")
        if judge is not None and not callable(getattr(judge, "grade", None)):
            raise TypeError(f"judge must have a grade(prompts) -> list[str] method, got {type(judge).__name__}")
        self.judge, self.rule_weight, self.require_think = judge, rule_weight, require_think
        self.template = load_rubric_template(str(template_path)) if judge is not None else None
        self._stats: Counter[str] = Counter()
        self._lock = threading.Lock()  # the RL loop scores groups from several threads

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {key: self._stats[key] for key in STAT_KEYS}

    def __call__(self, problem: Problem, completions: Sequence[Completion]) -> GroupReward:
        constraints = problem.meta.get("constraints") or None
        if constraints is None and self.judge is None:
            raise ValueError(f"problem {problem.id}: no rule constraints (meta.constraints) and no judge, so no "
                             f"instruct reward can be computed; add constraints or pass a judge")
        if constraints is not None:
            if not isinstance(constraints, list):
                raise ValueError(f"problem {problem.id}: field 'meta.constraints' must be a list of constraint "
                                 f"objects, got {type(constraints).__name__}")
            try:
                validate_constraints(constraints)
            except ValueError as exc:
                raise ValueError(f"problem {problem.id}: field 'meta.constraints': {exc}") from None
        # With rule_weight 1 the rubric only decides correctness of problems without constraints.
        use_judge = self.judge is not None and (constraints is None or self.rule_weight < 1.0)
        answers = [self._graded_part(c) for c in completions]
        live = [i for i, answer in enumerate(answers) if answer is not None]

        rule = {i: verify_instruct(completions[i].text, constraints, require_think=self.require_think)
                for i in live} if constraints is not None else {}
        scores = self._judge(problem, [answers[i] for i in live]) if use_judge else []
        rubric = dict(zip(live, scores))

        rewards, correct = [0.0] * len(completions), [False] * len(completions)
        for i in live:
            if constraints is not None and use_judge:
                rewards[i] = self.rule_weight * rule[i].reward + (1 - self.rule_weight) * rubric[i].normalised
            elif constraints is not None:
                rewards[i] = rule[i].reward
            else:
                rewards[i] = rubric[i].normalised
            correct[i] = rule[i].correct if constraints is not None else rubric[i].normalised >= 0.5
        self._count(completions, answers, scores)
        return GroupReward(rewards, correct)

    def _graded_part(self, completion: Completion) -> str | None:
        """The text after ``</think>``; ``None`` when cut at the length limit, or missing / empty."""
        if completion.finish_reason == "length":
            return None
        part = final_part(completion.text, self.require_think)
        return part.strip() if part is not None and part.strip() else None

    def _judge(self, problem: Problem, responses: list[str]) -> list[JudgeScore]:
        if not responses:
            return []
        rubric = problem_rubric(problem)
        prompts = [render_rubric_prompt(self.template, problem.problem, r, rubric) for r in responses]
        replies = self.judge.grade(prompts)
        if len(replies) != len(prompts):
            raise ValueError(f"problem {problem.id}: the judge returned {len(replies)} replies for {len(prompts)} "
                             f"prompts")
        return [parse_score(reply) for reply in replies]

    def _count(self, completions: Sequence[Completion], answers: list[str | None], scores: list[JudgeScore]) -> None:
        with self._lock:
            self._stats["completions"] += len(completions)
            self._stats["truncated"] += sum(c.finish_reason == "length" for c in completions)
            self._stats["no_answer"] += sum(a is None and c.finish_reason != "length"
                                            for a, c in zip(answers, completions))
            self._stats["judged"] += len(scores)
            for score in scores:
                self._stats[f"score_{score.status}"] += 1


def instruct_reward(judge: Judge | None, rule_weight: float = 0.5, require_think: bool = True,
                    template_path: str | Path = RUBRIC_TEMPLATE) -> InstructReward:
    """The instruct RL reward function: rule fraction and/or judge rubric score (module docstring)."""
    return InstructReward(judge, rule_weight=rule_weight, require_think=require_think, template_path=template_path)


def check_graded_config(config: RLConfig) -> None:
    """Refuse MGPO weighting with graded rewards: SPEC 2.7 uses plain group-relative advantages (mgpo_lambda 0)."""
    if config.mgpo_lambda != 0:
        raise ValueError(
            f"instruct RL uses graded rewards (constraint fractions, judge scores) but mgpo_lambda="
            f"{config.mgpo_lambda}: MGPO's weight w(q) comes from a binary accuracy p(q) and does not describe "
            f"graded rewards (SPEC 2.7). Set mgpo_lambda: 0 in the instruct RL stage for plain group-relative "
            f"advantages.")


__all__ = [
    "DEFAULT_RUBRIC",
    "PLACEHOLDERS",
    "RUBRIC_TEMPLATE",
    "STAT_KEYS",
    "InstructReward",
    "JudgeScore",
    "check_graded_config",
    "instruct_reward",
    "load_rubric_template",
    "parse_score",
    "problem_rubric",
    "render_rubric_prompt",
]
