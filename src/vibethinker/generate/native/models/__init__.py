"""Supported architectures: a HF config's ``architectures`` entry (or ``model_type``) -> its :class:`ModelSpec`."""

from __future__ import annotations

from vibethinker.generate.native.models.decoder import DecoderLM
from vibethinker.generate.native.models.llama import llama_spec
from vibethinker.generate.native.models.qwen2 import qwen2_spec, qwen3_spec
from vibethinker.generate.native.models.spec import ModelSpec

SPECS = {"qwen2": qwen2_spec, "qwen3": qwen3_spec, "llama": llama_spec}
ARCHITECTURES = {"Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3", "LlamaForCausalLM": "llama"}


def spec_from_config(hf_config) -> ModelSpec:
    architectures = getattr(hf_config, "architectures", None) or []
    kind = next((ARCHITECTURES[a] for a in architectures if a in ARCHITECTURES), None)
    if kind is None and not architectures:
        kind = getattr(hf_config, "model_type", None)
    if kind not in SPECS:
        raise ValueError(f"the native engine supports {', '.join(ARCHITECTURES)}; this model is "
                         f"{architectures or getattr(hf_config, 'model_type', 'unknown')} (use backend 'hf')")
    return SPECS[kind](hf_config)


__all__ = ["ARCHITECTURES", "DecoderLM", "ModelSpec", "spec_from_config"]
