"""RMSNorm: ``weight * x / sqrt(mean(x^2) + eps)``, the statistics in fp32, the product in the model dtype.

:meth:`RMSNorm.add` first adds the residual stream (``residual = x + residual``, in the model dtype) and returns
both the normalised sum and the new residual: the pre-norm decoder's residual add and the next norm as one step.

The cast order is the one of transformers' Qwen2/Llama RMSNorm (normalise in fp32, cast back, then scale), so
bf16 results match the reference and greedy decoding agrees with it. On CUDA, 2-D inputs go through one fused
Triton kernel (:mod:`.fused_triton`), the residual add included, when the forward context says the Triton kernels
are in use.
"""

from __future__ import annotations

import torch
from torch import nn

from vibethinker.generate.native.context import current_uses_triton


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(size), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.stride(-1) == 1 and current_uses_triton():
            from vibethinker.generate.native.layers.fused_triton import rmsnorm_triton

            return rmsnorm_triton(x, self.weight, self.eps)
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)

    def add(self, x: torch.Tensor, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(norm(x + residual), x + residual)."""
        if x.dim() == 2 and x.stride(-1) == 1 and residual.is_contiguous() and current_uses_triton():
            from vibethinker.generate.native.layers.fused_triton import add_rmsnorm_triton

            return add_rmsnorm_triton(x, residual, self.weight, self.eps)
        residual = x + residual
        return self(residual), residual
