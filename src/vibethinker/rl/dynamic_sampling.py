"""Dynamic sampling (DAPO-style, optional in SPEC 2.3): replace groups whose rewards are all equal.

A group whose G rewards are identical has zero group-relative advantage everywhere, so it spends rollouts and
contributes no gradient. After a rollout batch, each such group is replaced by a group for a fresh prompt, drawn
deterministically from the training problems (so a resumed run draws the same ones); replacements that are again
zero-variance are retried, up to ``max_rounds`` rounds. Groups still without variance after the last round stay in
the batch, so the batch always has ``prompts_per_step`` groups and training never stalls on a saturated dataset.

Filtering on reward variance rather than on accuracy in {0, 1} keeps all-correct groups whose shaped rewards differ
(Long2Short), which do carry a brevity signal.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from vibethinker.data.records import Problem
from vibethinker.rl.types import RolloutGroup


def has_variance(group: RolloutGroup) -> bool:
    return max(group.rewards) != min(group.rewards)


def replacement_indices(n_problems: int, count: int, seed: int, step: int, round_index: int) -> list[int]:
    """``count`` problem indices for replacement round ``round_index`` of step ``step``: a pure function, so a
    resumed run replaces with the same prompts."""
    rng = random.Random(f"dynamic-sampling:{seed}:{step}:{round_index}")
    return [rng.randrange(n_problems) for _ in range(count)]


@dataclass
class DynamicSamplingStats:
    zero_variance_initial: int  # zero-variance groups in the first rollout of the step
    zero_variance_final: int  # zero-variance groups left in the trained batch
    rounds: int  # replacement rounds run
    extra_groups: int  # groups sampled beyond the batch


def replace_zero_variance(groups: list[RolloutGroup], draw: Callable[[int, int], list[Problem]],
                          sample: Callable[[list[Problem], int], list[RolloutGroup]],
                          max_rounds: int) -> tuple[list[RolloutGroup], DynamicSamplingStats]:
    """Replace zero-variance groups in place order.

    ``draw(round, count)`` gives the replacement problems of a round; ``sample(problems, round)`` rolls them out.
    """
    groups = list(groups)
    initial = sum(not has_variance(g) for g in groups)
    rounds = extra = 0
    for round_index in range(max_rounds):
        empty = [i for i, g in enumerate(groups) if not has_variance(g)]
        if not empty:
            break
        fresh = sample(draw(round_index, len(empty)), round_index)
        rounds, extra = rounds + 1, extra + len(fresh)
        for slot, group in zip(empty, fresh):
            if has_variance(group):
                groups[slot] = group
    final = sum(not has_variance(g) for g in groups)
    return groups, DynamicSamplingStats(initial, final, rounds, extra)
