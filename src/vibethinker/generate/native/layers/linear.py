"""``y = x W^T + b`` whose output rows may be several checkpoint matrices stacked (fused projections).

Fusing q/k/v into one matrix and gate/up into another turns three (two) small matrix products per layer into one,
which matters at decode batch sizes. ``shard_sizes`` lists the stacked matrices in order; :meth:`shard_rows` gives
the rows one checkpoint tensor fills, so the loader never needs to know the layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Linear(nn.Module):
    def __init__(self, in_features: int, shard_sizes: int | list[int], bias: bool):
        super().__init__()
        self.shard_sizes = [shard_sizes] if isinstance(shard_sizes, int) else list(shard_sizes)
        out_features = sum(self.shard_sizes)
        self.weight = nn.Parameter(torch.empty(out_features, in_features), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(out_features), requires_grad=False) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def shard_rows(self, kind: str, shard: int, shape: torch.Size) -> torch.Tensor:
        """The rows of shard ``shard`` of the ``weight`` or ``bias``, a view, checked against a checkpoint tensor's
        ``shape``."""
        target = self.weight if kind == "weight" else self.bias
        if target is None:
            raise ValueError(f"this projection has no {kind}, but the checkpoint has one")
        start = sum(self.shard_sizes[:shard])
        rows = target.data[start:start + self.shard_sizes[shard]]
        if rows.shape != shape:
            raise ValueError(f"{kind} shard {shard}: checkpoint shape {tuple(shape)}, expected {tuple(rows.shape)}")
        return rows
