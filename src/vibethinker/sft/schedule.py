"""Learning-rate schedule of SPEC 2.1: linear warm-up from 0, then cosine decay to a floor.

    lr(s) = peak * (s + 1) / W                                                   for s < W
    lr(s) = floor + (peak - floor) * (1 + cos(pi * (s - W) / (T - W - 1))) / 2   for W <= s < T

with W = round(warmup_ratio * T) warm-up steps, T optimiser steps and s = 0..T-1 the index of the update. Warm-up
ends exactly at the peak, and the last update (s = T - 1) uses the floor.
"""

from __future__ import annotations

import math


def warmup_cosine_lr(step: int, total_steps: int, peak: float, floor: float, warmup_ratio: float) -> float:
    warmup = round(warmup_ratio * total_steps)
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total_steps - warmup - 1)
    progress = min(1.0, (step - warmup) / span)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
