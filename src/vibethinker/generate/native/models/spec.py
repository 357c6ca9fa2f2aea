"""The numbers and switches that define a decoder-only model for the engine, read from a HF config.

Qwen2 / Qwen2.5, Llama and Qwen3 are one network (:mod:`.decoder`) with different switches: bias on the q/k/v
projections (Qwen2), per-head RMSNorm of q and k (Qwen3), biases on o_proj and the MLP (Llama's
``attention_bias`` / ``mlp_bias``). Each architecture's module turns its config into a :class:`ModelSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ModelSpec:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    max_position_embeddings: int  # the window: under YaRN original_max_position_embeddings * factor
    tie_word_embeddings: bool
    inv_freq: torch.Tensor  # (head_dim / 2,) RoPE inverse frequencies
    rope_scaling: float = 1.0  # multiplies cos/sin (yarn)
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False


def common_fields(hf_config, architecture: str) -> dict:
    """The fields every supported architecture reads the same way; refuses what the engine does not implement."""
    from vibethinker.generate.native.layers.rotary import rope_parameters
    from vibethinker.model.window import config_window

    if getattr(hf_config, "hidden_act", "silu") != "silu":
        raise ValueError(f"{architecture}: activation {hf_config.hidden_act!r} is not supported (only silu)")
    if getattr(hf_config, "use_sliding_window", False):
        raise ValueError(f"{architecture}: sliding-window attention is not supported by the native engine")
    heads = hf_config.num_attention_heads
    head_dim = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // heads
    inv_freq, scaling = rope_parameters(hf_config, head_dim)
    return dict(
        architecture=architecture, vocab_size=hf_config.vocab_size, hidden_size=hf_config.hidden_size,
        intermediate_size=hf_config.intermediate_size, num_layers=hf_config.num_hidden_layers, num_heads=heads,
        num_kv_heads=getattr(hf_config, "num_key_value_heads", None) or heads, head_dim=head_dim,
        rms_norm_eps=hf_config.rms_norm_eps, max_position_embeddings=config_window(hf_config).positions,
        tie_word_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)), inv_freq=inv_freq,
        rope_scaling=scaling,
    )
