"""Causal attention over the paged KV cache.

Cache layout (one tensor per layer for K and one for V): ``(num_slots, kv_heads, head_dim)`` where slot
``b * block_size + i`` is token ``i`` of cache block ``b``. A sequence owns a list of blocks (its block-table row);
its token at position ``p`` lives in slot ``blocks[p // block_size] * block_size + p % block_size``.

Each forward first applies RoPE to the new tokens' q and k and writes their K/V into their slots (one fused
Triton kernel on CUDA, :mod:`.fused_triton`), then attends:

* prefill (several prompts of different lengths, packed): every new token's query attends over its context, read
  from the cache. The context is the new tokens, after a cached prefix when the sequence shares its prompt's blocks
  with another sample or an earlier prefill chunk of the same prompt; query ``j`` sees context tokens
  ``<= cached + j`` (a bottom-right causal bias, no materialised mask). When the model runner filled per-token
  ``rows`` and ``context_lens`` (short prompts on CUDA), every new token is one query of the paged decode kernel,
  all sequences and tokens in one launch; otherwise one scaled-dot-product call per sequence with the causal mask
  aligned to the bottom right.
* decode (one token per sequence): on CUDA one Triton kernel does the RoPE, the K/V write and the paged attention
  (:mod:`.paged_decode_triton`; head sizes of 32 and up, else the two kernels), :func:`decode_attention_torch`
  elsewhere. Grouped-query attention maps query head ``h`` to KV head
  ``h // (heads / kv_heads)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention.bias import causal_lower_right

from vibethinker.generate.native.context import ForwardContext, get_context
from vibethinker.generate.native.layers.rotary import RotaryEmbedding


class Attention(nn.Module):
    def __init__(self, num_heads: int, num_kv_heads: int, head_dim: int, scale: float, rotary: RotaryEmbedding):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim, self.scale = num_heads, num_kv_heads, head_dim, scale
        self.rotary = [rotary]  # shared by all layers; a list keeps it out of this module's children
        self.k_cache: torch.Tensor | None = None  # set by the model runner
        self.v_cache: torch.Tensor | None = None

    def forward(self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (tokens, heads, D), k/v (tokens, kv_heads, D), before RoPE -> (tokens, heads * D)."""
        ctx = get_context()
        rotary = self.rotary[0]
        if ctx.use_triton and ctx.fused_decode_attention and not ctx.is_prefill and self.head_dim >= 32:
            from vibethinker.generate.native.layers.paged_decode_triton import rope_store_decode_triton

            out = rope_store_decode_triton(q, k, v, rotary.cos, rotary.sin, positions, ctx.slot_mapping, self.k_cache,
                                           self.v_cache, ctx.block_table, ctx.rows, self.scale, ctx.block_size,
                                           splits=ctx.decode_splits)
            return out.reshape(q.shape[0], -1)
        if ctx.use_triton:
            from vibethinker.generate.native.layers.fused_triton import rope_store_triton

            q = rope_store_triton(q, k, v, rotary.cos, rotary.sin, positions, ctx.slot_mapping, self.k_cache,
                                  self.v_cache)
        else:
            q, k = rotary(positions, q, k)
            self.k_cache.index_copy_(0, ctx.slot_mapping, k)
            self.v_cache.index_copy_(0, ctx.slot_mapping, v)
        if ctx.is_prefill and ctx.rows is None:
            out = self._prefill(q, ctx)
        elif ctx.use_triton:
            from vibethinker.generate.native.layers.paged_decode_triton import decode_attention_triton

            out = decode_attention_triton(q, self.k_cache, self.v_cache, ctx.block_table, ctx.rows,
                                          ctx.context_lens, self.scale, ctx.block_size)
        else:
            out = decode_attention_torch(q, self.k_cache, self.v_cache, ctx.block_table, ctx.rows,
                                         ctx.context_lens, self.scale, ctx.block_size)
        return out.reshape(q.shape[0], -1)

    def _prefill(self, q, ctx: ForwardContext) -> torch.Tensor:
        out = torch.empty_like(q)
        for first, new, context, slots_at in ctx.spans:
            rows = slice(first, first + new)
            slots = ctx.context_slots[slots_at:slots_at + context]
            k, v = self.k_cache[slots], self.v_cache[slots]
            if new == context:
                out[rows] = _sdpa(q[rows], k, v, None, self.scale)
                continue
            # New tokens after a cached prefix (a shared prompt, a preempted sequence's recompute, a prefill chunk):
            # the causal mask aligned bottom-right, as a bias SDPA's memory-efficient kernel applies itself, never
            # a [new, context] mask (which sends SDPA to its math kernel, fp32 scores of new x context x heads).
            # That kernel has no grouped-query mode, so the KV heads are repeated for it.
            groups = self.num_heads // self.num_kv_heads
            if groups > 1:
                k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            out[rows] = _sdpa(q[rows], k, v, causal_lower_right(new, context), self.scale)
        return out


def decode_attention_torch(q, k_cache, v_cache, block_table, rows, context_lens, scale: float,
                           block_size: int) -> torch.Tensor:
    """Reference decode attention, one sequence at a time (eager only: it reads lengths on the host)."""
    out = torch.empty_like(q)
    offsets = torch.arange(block_size, device=q.device)
    for i, (row, length) in enumerate(zip(rows.tolist(), context_lens.tolist())):
        blocks = block_table[row, :(length + block_size - 1) // block_size].long()
        slots = (blocks[:, None] * block_size + offsets).flatten()[:length]
        out[i:i + 1] = _sdpa(q[i:i + 1], k_cache[slots], v_cache[slots], None, scale, causal=False)
    return out


def _sdpa(q, k, v, mask, scale: float, causal: bool = True) -> torch.Tensor:
    """Token-major (tokens, heads, D) in and out; grouped-query heads handled by SDPA itself."""
    out = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                                         attn_mask=mask, is_causal=causal and mask is None, scale=scale,
                                         enable_gqa=True)
    return out[0].transpose(0, 1)
