"""Long2Short (SPEC 2.4, VibeThinker-3B second math RL stage): reward brevity among the correct responses.

Among the correct responses C of one group, with L_i the length of response i in tokens:

    s_i  = 1 / L_i
    s̄    = mean of s over C
    r'_i = r_i + 0.2 * (s_i - s̄) / max_{j in C} |s_j - s̄|        for i in C; wrong responses keep r_i

The shift is zero-sum over C, so the group mean is unchanged; correct rewards stay within [r - 0.2, r + 0.2]
([0.8, 1.2] for binary rewards). With |C| <= 1, or all correct lengths equal, nothing changes.
"""

from __future__ import annotations

from typing import Sequence

SCALE = 0.2


def long2short_rewards(rewards: Sequence[float], correct: Sequence[bool], lengths: Sequence[int],
                       scale: float = SCALE) -> list[float]:
    if not len(rewards) == len(correct) == len(lengths):
        raise ValueError("rewards, correct and lengths must have one entry per response")
    if any(length <= 0 for length in lengths):
        raise ValueError(f"response lengths must be positive, got {list(lengths)}")
    members = [i for i, ok in enumerate(correct) if ok]
    shaped = list(map(float, rewards))
    if len(members) <= 1:
        return shaped
    inverse = {i: 1.0 / lengths[i] for i in members}
    mean = sum(inverse.values()) / len(members)
    spread = max(abs(v - mean) for v in inverse.values())
    if spread == 0.0:
        return shaped
    for i in members:
        shaped[i] += scale * (inverse[i] - mean) / spread
    return shaped
