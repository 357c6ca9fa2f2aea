"""Llama (also SmolLM2): no biases unless ``attention_bias`` / ``mlp_bias`` say so; llama3 RoPE scaling works."""

from __future__ import annotations

from vibethinker.generate.native.models.spec import ModelSpec, common_fields


def llama_spec(hf_config) -> ModelSpec:
    attention_bias = bool(getattr(hf_config, "attention_bias", False))
    return ModelSpec(**common_fields(hf_config, "LlamaForCausalLM"), qkv_bias=attention_bias, o_bias=attention_bias,
                     mlp_bias=bool(getattr(hf_config, "mlp_bias", False)))
