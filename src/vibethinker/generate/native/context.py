"""What the attention layers need to know about the current batch, set once per forward pass.

The model's ``forward(input_ids, positions)`` stays free of batch bookkeeping: the model runner fills a
:class:`ForwardContext` before each pass and every attention layer reads it (the one piece of global state of the
engine). During CUDA-graph capture the context holds the graph's static input buffers, so replays see new values.

Token-level fields use the packed ("varlen") layout: the batch's new tokens are concatenated, no padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ForwardContext:
    is_prefill: bool
    slot_mapping: torch.Tensor  # (tokens,) cache slot (block * block_size + offset) of each new token's K/V
    block_size: int
    # Prefill: per sequence (first row in the packed batch, new tokens, context tokens, first entry in
    # context_slots); context = cached prefix + new tokens; context_slots lists the cache slots of every context
    # token of every sequence (attention reads its keys and values from the cache).
    spans: list[tuple[int, int, int, int]] | None = None
    context_slots: torch.Tensor | None = None
    # Decode: one new token per sequence; its attention reads context_lens[i] tokens through block_table[rows[i]].
    # A paged prefill fills the same three per new token (the row of its sequence, its position + 1).
    context_lens: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    block_table: torch.Tensor | None = None
    use_triton: bool = False  # the Triton kernels (CUDA) instead of the torch code, in every layer
    fused_decode_attention: bool = False  # decode with Triton: RoPE + K/V write + attention in one kernel
    decode_splits: int = 1  # split-K ways of that kernel (paged_decode_triton.decode_splits)


_current: ForwardContext | None = None


def set_context(context: ForwardContext | None) -> None:
    global _current
    _current = context


def current_uses_triton() -> bool:
    return _current is not None and _current.use_triton


def get_context() -> ForwardContext:
    if _current is None:
        raise RuntimeError("no forward context: the model runner sets one before each forward pass")
    return _current
