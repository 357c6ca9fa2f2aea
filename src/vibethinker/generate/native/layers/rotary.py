"""Rotary position embedding (RoPE), "rotate half" layout (GPT-NeoX / transformers' Qwen2 and Llama).

For position ``p`` and frequency ``f_i`` (``i < D/2``), ``x' = x * cos(p f) + rotate_half(x) * sin(p f)`` with
``rotate_half([a, b]) = [-b, a]`` over the two halves of the head dimension. The cos/sin tables are computed once
for every position up to ``max_positions`` (in fp32, as ``p * f`` like transformers), then looked up per token, so
a decode step captured in a CUDA graph only gathers rows.

``inv_freq`` and ``scaling`` come from the model config (:func:`rope_parameters`): plain RoPE with ``rope_theta``,
or one of the static scaled variants transformers defines (linear, llama3, yarn).
"""

from __future__ import annotations

import torch
from torch import nn

STATIC_ROPE_TYPES = ("default", "linear", "llama3", "yarn")


def rope_parameters(hf_config, head_dim: int) -> tuple[torch.Tensor, float]:
    """(inv_freq of shape (head_dim/2,), attention scaling) for ``hf_config``; refuses RoPE types that change
    with the sequence length (dynamic NTK, longrope), which a fixed table cannot express."""
    params = getattr(hf_config, "rope_parameters", None) or getattr(hf_config, "rope_scaling", None) or {}
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in STATIC_ROPE_TYPES:
        raise ValueError(f"RoPE type {rope_type!r} is not supported by the native engine "
                         f"(supported: {', '.join(STATIC_ROPE_TYPES)})")
    if rope_type == "default":
        theta = params.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
        return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim)), 1.0
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inv_freq, scaling = ROPE_INIT_FUNCTIONS[rope_type](hf_config, None)
    return inv_freq.float().cpu(), float(scaling)


class RotaryEmbedding(nn.Module):
    def __init__(self, inv_freq: torch.Tensor, max_positions: int, scaling: float = 1.0):
        super().__init__()
        positions = torch.arange(max_positions, dtype=torch.float)  # on the default device (the engine sets it)
        freqs = positions[:, None] * inv_freq.to(positions.device)[None, :]
        angles = torch.cat((freqs, freqs), dim=-1)  # (max_positions, head_dim)
        self.register_buffer("cos", angles.cos() * scaling, persistent=False)
        self.register_buffer("sin", angles.sin() * scaling, persistent=False)

    def forward(self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q`` (tokens, heads, D) and ``k`` (tokens, kv_heads, D) rotated by their token's position."""
        cos = self.cos[positions].to(q.dtype)[:, None, :]
        sin = self.sin[positions].to(q.dtype)[:, None, :]
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)
