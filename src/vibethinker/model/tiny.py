"""The tiny from-scratch model: a ``Qwen2ForCausalLM`` of configurable size.

Same architecture family as Qwen2.5 (QKV bias, GQA, RoPE, RMSNorm, SwiGLU), so everything that runs on the tiny
model runs unchanged on a real Qwen2.5 checkpoint.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM

from vibethinker.model.config import TinyModelConfig


def build_tiny_model(tokenizer: PreTrainedTokenizerBase, config: TinyModelConfig, seed: int = 0) -> Qwen2ForCausalLM:
    """A randomly initialised Qwen2 sized for ``tokenizer``, with generation defaults that stop at end of turn."""
    fields = config.model_dump()
    rope_theta = fields.pop("rope_theta")
    hf_config = Qwen2Config(
        vocab_size=len(tokenizer), **fields,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(hf_config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id], pad_token_id=tokenizer.pad_token_id,
    )
    return model
