"""Qwen2 / Qwen2.5 (bias on q/k/v, none elsewhere) and Qwen3 (no biases, RMSNorm of each q and k head)."""

from __future__ import annotations

from vibethinker.generate.native.models.spec import ModelSpec, common_fields


def qwen2_spec(hf_config) -> ModelSpec:
    return ModelSpec(**common_fields(hf_config, "Qwen2ForCausalLM"), qkv_bias=True)


def qwen3_spec(hf_config) -> ModelSpec:
    bias = bool(getattr(hf_config, "attention_bias", False))
    return ModelSpec(**common_fields(hf_config, "Qwen3ForCausalLM"), qkv_bias=bias, o_bias=bias, qk_norm=True)
