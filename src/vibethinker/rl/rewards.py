"""Reward functions of the RL loop: plain callables that see a whole group (SPEC 2.3, 2.5).

A reward function takes the problem and the G completions sampled for it and returns a :class:`GroupReward`:
one reward per completion plus the binary correctness that MGPO's accuracy p(q) is computed from. Seeing the whole
group lets a function rank or normalise within it (a rubric judge, Long2Short-style shaping); the default
:func:`verifier_reward` scores each completion with the domain's verifier.

Whatever the function returns, the trainer enforces the length-limit rule afterwards: a completion cut at
``max_new_tokens`` scores 0 and counts as wrong (SPEC 2.3), so a custom function cannot reward truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion
from vibethinker.verify import score


@dataclass
class GroupReward:
    rewards: list[float]
    correct: list[bool]

    def __post_init__(self):
        if len(self.rewards) != len(self.correct):
            raise ValueError(f"a reward function returned {len(self.rewards)} rewards but {len(self.correct)} "
                             f"correctness flags")


RewardFunction = Callable[[Problem, Sequence[Completion]], GroupReward]


def verifier_reward(require_think: bool = True) -> RewardFunction:
    """Binary reward from the domain's verifier (math equivalence, code tests, choice letter, IFEval rules)."""

    def reward(problem: Problem, completions: Sequence[Completion]) -> GroupReward:
        rewards, correct = [], []
        for completion in completions:
            if completion.finish_reason == "length":  # scores 0 anyway; skip running its code / parsing it
                rewards.append(0.0)
                correct.append(False)
                continue
            verdict = score(problem, completion.text, require_think=require_think)
            rewards.append(float(verdict.reward))
            correct.append(bool(verdict.correct))
        return GroupReward(rewards, correct)

    return reward


def apply_length_limit(result: GroupReward, completions: Sequence[Completion]) -> GroupReward:
    """Completions cut at the length limit score 0 and are wrong, whatever the reward function said."""
    if len(result.rewards) != len(completions):
        raise ValueError(f"a reward function returned {len(result.rewards)} rewards for {len(completions)} "
                         f"completions")
    cut = [c.finish_reason == "length" for c in completions]
    return GroupReward([0.0 if t else float(r) for r, t in zip(result.rewards, cut)],
                       [False if t else bool(ok) for ok, t in zip(result.correct, cut)])
