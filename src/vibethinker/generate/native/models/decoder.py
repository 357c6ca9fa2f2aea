"""The decoder-only transformer of Qwen2 / Qwen3 / Llama, wired from the engine's layers.

Inputs are packed: ``input_ids`` and ``positions`` are (tokens,) for all sequences of the batch together, and the
attention layers find the sequence boundaries and cache slots in the forward context. Parameter names follow the
transformers checkpoints, except that q/k/v and gate/up are fused (``PACKED`` maps the checkpoint names).

    h = embed(ids)
    per layer:  h = h + o_proj(attention(rope(q), rope(k), v))     with q, k, v = qkv_proj(rmsnorm(h))
                h = h + down_proj(silu(gate) * up)                   with gate, up = gate_up_proj(rmsnorm(h))
    logits = lm_head(rmsnorm(h))                                     (lm_head = embed when tied)

Each residual add is done by the norm that follows it (:meth:`.RMSNorm.add`), so on CUDA the add, the norm and
``silu(gate) * up`` are one kernel each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vibethinker.generate.native.context import current_uses_triton
from vibethinker.generate.native.layers.attention import Attention
from vibethinker.generate.native.layers.linear import Linear
from vibethinker.generate.native.layers.rmsnorm import RMSNorm
from vibethinker.generate.native.layers.rotary import RotaryEmbedding
from vibethinker.generate.native.models.spec import ModelSpec

# checkpoint projection name -> (fused module name, shard index)
PACKED = {"q_proj": ("qkv_proj", 0), "k_proj": ("qkv_proj", 1), "v_proj": ("qkv_proj", 2),
          "gate_proj": ("gate_up_proj", 0), "up_proj": ("gate_up_proj", 1)}


class SelfAttention(nn.Module):
    def __init__(self, spec: ModelSpec, rotary: RotaryEmbedding):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        q_size, kv_size = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
        self.qkv_proj = Linear(spec.hidden_size, [q_size, kv_size, kv_size], bias=spec.qkv_bias)
        self.o_proj = Linear(q_size, spec.hidden_size, bias=spec.o_bias)
        if spec.qk_norm:
            self.q_norm = RMSNorm(spec.head_dim, spec.rms_norm_eps)
            self.k_norm = RMSNorm(spec.head_dim, spec.rms_norm_eps)
        self.qk_norm = spec.qk_norm
        self.attn = Attention(spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.head_dim ** -0.5, rotary)

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv_proj(x).split(self.qkv_proj.shard_sizes, dim=-1)
        q = q.view(-1, self.heads, self.head_dim)
        k = k.view(-1, self.kv_heads, self.head_dim)
        v = v.view(-1, self.kv_heads, self.head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        return self.o_proj(self.attn(positions, q, k, v))


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.gate_up_proj = Linear(spec.hidden_size, [spec.intermediate_size] * 2, bias=spec.mlp_bias)
        self.down_proj = Linear(spec.intermediate_size, spec.hidden_size, bias=spec.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = self.gate_up_proj(x)
        if gate_up.dim() == 2 and current_uses_triton():
            from vibethinker.generate.native.layers.fused_triton import silu_mul_triton

            return self.down_proj(silu_mul_triton(gate_up))
        gate, up = gate_up.chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, spec: ModelSpec, rotary: RotaryEmbedding):
        super().__init__()
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.self_attn = SelfAttention(spec, rotary)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.mlp = MLP(spec)

    def forward(self, positions: torch.Tensor, h: torch.Tensor,
                residual: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual stream is ``h + residual`` (``h`` alone in the first layer); returns this layer's MLP output
        and its input stream, which the next norm adds together (one fused step on CUDA)."""
        if residual is None:
            x, residual = self.input_layernorm(h), h
        else:
            x, residual = self.input_layernorm.add(h, residual)
        x, residual = self.post_attention_layernorm.add(self.self_attn(positions, x), residual)
        return self.mlp(x), residual


class Body(nn.Module):
    def __init__(self, spec: ModelSpec, max_positions: int):
        super().__init__()
        self.embed_tokens = nn.Embedding(spec.vocab_size, spec.hidden_size, _freeze=True,
                                         _weight=torch.empty(spec.vocab_size, spec.hidden_size))
        self.rotary = RotaryEmbedding(spec.inv_freq, max_positions, spec.rope_scaling)
        self.layers = nn.ModuleList(DecoderLayer(spec, self.rotary) for _ in range(spec.num_layers))
        self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)


class DecoderLM(nn.Module):
    def __init__(self, spec: ModelSpec, max_positions: int):
        super().__init__()
        self.spec = spec
        self.model = Body(spec, max_positions)
        self.lm_head = None if spec.tie_word_embeddings else Linear(spec.hidden_size, spec.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """(tokens,) ids and positions -> (tokens, hidden) final hidden states (normalised)."""
        h, residual = self.model.embed_tokens(input_ids), None
        for layer in self.model.layers:
            h, residual = layer(positions, h, residual)
        return self.model.norm.add(h, residual)[0]

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        weight = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(hidden, weight)

    @property
    def attention_layers(self) -> list[Attention]:
        return [layer.self_attn.attn for layer in self.model.layers]
