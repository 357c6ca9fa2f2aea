"""Decode attention over the paged KV cache, as one Triton kernel (CUDA; also runs under TRITON_INTERPRET=1).

One program per (sequence, KV head) computes the attention of that KV head's whole query-head group at once, so a
KV tile is read from memory once for all the heads that share it (grouped-query attention). The program walks the
sequence's context in tiles of ``BLOCK_N`` tokens: each token's cache slot comes from the block table
(``table[row, t // block_size] * block_size + t % block_size``), so tiles may span several cache blocks and any
block size works. Softmax is computed online (running max ``m``, running sum ``l``, rescaled accumulator), in fp32.

Lengths are read inside the kernel, so one launch shape serves every step: the kernel can be captured in a CUDA
graph per batch size.

A decode step uses :func:`rope_store_decode_triton`, the same attention with the step's RoPE and K/V cache write
done first in the same program (one kernel a layer instead of two: at decode batch sizes a launch and the gap after
it cost more than the work). The new token's rotated query and key stay in registers: the program attends over
the cached tokens before it, then over the new token itself, so it never reads back what it has just written. The
prefill, whose new tokens attend to each other, keeps the separate RoPE + store kernel. With split-K (few
sequences, long contexts) each (sequence, KV head) runs as several programs over consecutive shares of the
context (the last one also over the new token), whose partial softmax states a second kernel merges.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vibethinker.generate.native.layers.fused_triton import _rotate, _round


# Launch shape of the one-kernel decode step: context tokens per tile, warps, software-pipeline stages (None:
# Triton's default). bench/decode_attention_tiles.py times the alternatives on the GPU: on the H200, for the RL
# benchmark's decode batch, 128 tokens x 4 warps took 10.2 us a launch against 11.9 us for 64 x 4 (2026-11-29).
DECODE_TILE = {"BLOCK_N": 128, "num_warps": 4, "num_stages": None}


@triton.jit
def _online_softmax(scores, m, l):
    """One tile of the online softmax: scores (heads, tokens) against the running max ``m`` and sum ``l`` ->
    (the tile's probabilities at the new max, the factor that rescales what came before, new max, new sum)."""
    m_new = tl.maximum(m, tl.max(scores, 1))
    p = tl.exp(scores - m_new[:, None])
    alpha = tl.exp(m - m_new)
    return p, alpha, m_new, l * alpha + tl.sum(p, 1)


@triton.jit
def _paged_decode_kernel(q_ptr, k_ptr, v_ptr, table_ptr, rows_ptr, lens_ptr, out_ptr, scale, table_stride,
                         NUM_HEADS: tl.constexpr, NUM_KV_HEADS: tl.constexpr, GROUP: tl.constexpr,
                         GROUP_PAD: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_SIZE: tl.constexpr,
                         BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    row = tl.load(rows_ptr + seq).to(tl.int64)
    length = tl.load(lens_ptr + seq).to(tl.int32)
    group = tl.arange(0, GROUP_PAD)
    head_ok = group < GROUP
    heads = kv_head * GROUP + group
    dims = tl.arange(0, HEAD_DIM)
    q_offsets = (seq * NUM_HEADS + heads)[:, None] * HEAD_DIM + dims[None, :]
    q = tl.load(q_ptr + q_offsets, mask=head_ok[:, None], other=0.0)  # (GROUP_PAD, HEAD_DIM)

    m = tl.full([GROUP_PAD], float("-inf"), tl.float32)
    l = tl.zeros([GROUP_PAD], tl.float32)
    acc = tl.zeros([GROUP_PAD, HEAD_DIM], tl.float32)
    for start in range(0, length, BLOCK_N):
        tokens = start + tl.arange(0, BLOCK_N)
        valid = tokens < length
        blocks = tl.load(table_ptr + row * table_stride + tokens // BLOCK_SIZE, mask=valid, other=0)
        slots = blocks.to(tl.int64) * BLOCK_SIZE + tokens % BLOCK_SIZE
        kv_offsets = (slots * NUM_KV_HEADS + kv_head)[:, None] * HEAD_DIM + dims[None, :]
        k = tl.load(k_ptr + kv_offsets, mask=valid[:, None], other=0.0)  # (BLOCK_N, HEAD_DIM)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * scale  # (GROUP_PAD, BLOCK_N)
        p, alpha, m, l = _online_softmax(tl.where(valid[None, :], scores, float("-inf")), m, l)
        v = tl.load(v_ptr + kv_offsets, mask=valid[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
    out = acc / l[:, None]
    tl.store(out_ptr + q_offsets, out.to(out_ptr.dtype.element_ty), mask=head_ok[:, None])


def decode_attention_triton(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_table: torch.Tensor,
                            rows: torch.Tensor, context_lens: torch.Tensor, scale: float,
                            block_size: int) -> torch.Tensor:
    """q (batch, heads, D); caches (slots, kv_heads, D); block_table (table rows, blocks per row) int32;
    rows / context_lens (batch,) -> (batch, heads, D)."""
    batch, num_heads, head_dim = q.shape
    num_kv_heads = k_cache.shape[1]
    group = num_heads // num_kv_heads
    q = q.contiguous()
    out = torch.empty_like(q)
    _paged_decode_kernel[(batch, num_kv_heads)](
        q, k_cache, v_cache, block_table, rows, context_lens, out, scale, block_table.stride(0),
        NUM_HEADS=num_heads, NUM_KV_HEADS=num_kv_heads, GROUP=group, GROUP_PAD=max(16, triton.next_power_of_2(group)),
        HEAD_DIM=head_dim, BLOCK_SIZE=block_size, BLOCK_N=64, num_warps=4,
        # Triton's default for an fp32 dot is TF32 (10-bit mantissa): 1e-2 log-prob errors measured against
        # transformers in fp32 on the H200. fp32 models get exact products; bf16 operands are exact either way.
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32")
    return out


@triton.jit
def _rope_store_decode_kernel(q_ptr, k_ptr, v_ptr, q_stride, k_stride, v_stride, cos_ptr, sin_ptr, positions_ptr,
                              slots_ptr, k_cache_ptr, v_cache_ptr, table_ptr, rows_ptr, out_ptr, scale, table_stride,
                              NUM_HEADS: tl.constexpr, NUM_KV_HEADS: tl.constexpr, GROUP: tl.constexpr,
                              GROUP_PAD: tl.constexpr, HALF: tl.constexpr, BLOCK_SIZE: tl.constexpr,
                              BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr, NUM_SPLITS: tl.constexpr = 1,
                              part_acc_ptr=None, part_ml_ptr=None):
    seq = tl.program_id(0).to(tl.int64)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    position = tl.load(positions_ptr + seq).to(tl.int64)
    slot = tl.load(slots_ptr + seq).to(tl.int64)
    row = tl.load(rows_ptr + seq).to(tl.int64)
    half = tl.arange(0, HALF)
    cos = _round(tl.load(cos_ptr + position * 2 * HALF + half), out_ptr)  # both halves of a table row are equal
    sin = _round(tl.load(sin_ptr + position * 2 * HALF + half), out_ptr)

    # The new token: its group's queries and its key rotated (in registers), its key and value stored to its slot.
    group = tl.arange(0, GROUP_PAD)
    head_ok = (group < GROUP)[:, None]
    heads = kv_head * GROUP + group
    src = q_ptr + seq * q_stride + heads[:, None] * (2 * HALF) + half[None, :]
    q1, q2 = _rotate(tl.load(src, mask=head_ok, other=0.0).to(tl.float32),
                     tl.load(src + HALF, mask=head_ok, other=0.0).to(tl.float32), cos, sin, out_ptr)
    src = k_ptr + seq * k_stride + kv_head * (2 * HALF) + half[None, :]
    k1_new, k2_new = _rotate(tl.load(src).to(tl.float32), tl.load(src + HALF).to(tl.float32), cos, sin, out_ptr)
    src = v_ptr + seq * v_stride + kv_head * (2 * HALF) + half[None, :]
    v1_new, v2_new = tl.load(src), tl.load(src + HALF)
    if split == 0:  # one program of the (sequence, KV head) writes; no split reads this slot
        dst = (slot * NUM_KV_HEADS + kv_head) * (2 * HALF) + half[None, :]
        tl.store(k_cache_ptr + dst, k1_new)
        tl.store(k_cache_ptr + dst + HALF, k2_new)
        tl.store(v_cache_ptr + dst, v1_new)
        tl.store(v_cache_ptr + dst + HALF, v2_new)

    # The cached context (positions before the new token), in tiles; the two halves of the head dimension are
    # kept apart, as the rotation produced them.
    m = tl.full([GROUP_PAD], float("-inf"), tl.float32)
    l = tl.zeros([GROUP_PAD], tl.float32)
    acc1 = tl.zeros([GROUP_PAD, HALF], tl.float32)
    acc2 = tl.zeros([GROUP_PAD, HALF], tl.float32)
    cached = position.to(tl.int32)
    # split-K: split s attends over its share of the cached tokens, whole tiles each (one split: all of them)
    span = tl.cdiv(tl.cdiv(cached, NUM_SPLITS), BLOCK_N) * BLOCK_N
    begin = split * span
    end = tl.minimum(begin + span, cached)
    for start in range(begin, end, BLOCK_N):
        tokens = start + tl.arange(0, BLOCK_N)
        valid = tokens < end
        blocks = tl.load(table_ptr + row * table_stride + tokens // BLOCK_SIZE, mask=valid, other=0)
        slots = blocks.to(tl.int64) * BLOCK_SIZE + tokens % BLOCK_SIZE
        offsets = (slots * NUM_KV_HEADS + kv_head)[:, None] * (2 * HALF) + half[None, :]
        k1 = tl.load(k_cache_ptr + offsets, mask=valid[:, None], other=0.0)
        k2 = tl.load(k_cache_ptr + offsets + HALF, mask=valid[:, None], other=0.0)
        scores = (tl.dot(q1, tl.trans(k1), input_precision=DOT_PRECISION)
                  + tl.dot(q2, tl.trans(k2), input_precision=DOT_PRECISION)) * scale
        p, alpha, m, l = _online_softmax(tl.where(valid[None, :], scores, float("-inf")), m, l)
        v1 = tl.load(v_cache_ptr + offsets, mask=valid[:, None], other=0.0)
        v2 = tl.load(v_cache_ptr + offsets + HALF, mask=valid[:, None], other=0.0)
        acc1 = acc1 * alpha[:, None] + tl.dot(p.to(v1.dtype), v1, input_precision=DOT_PRECISION)
        acc2 = acc2 * alpha[:, None] + tl.dot(p.to(v1.dtype), v2, input_precision=DOT_PRECISION)
    # ... then the new token itself, from registers: a tile of one column (in the last split)
    if split == NUM_SPLITS - 1:
        score = (tl.sum(q1.to(tl.float32) * k1_new.to(tl.float32), 1)
                 + tl.sum(q2.to(tl.float32) * k2_new.to(tl.float32), 1)) * scale
        p, alpha, m, l = _online_softmax(score[:, None], m, l)
        p = p.to(v1_new.dtype).to(tl.float32)  # rounded as a tile's probabilities enter its product
        acc1 = acc1 * alpha[:, None] + p * v1_new.to(tl.float32)
        acc2 = acc2 * alpha[:, None] + p * v2_new.to(tl.float32)
    if NUM_SPLITS == 1:
        dst = out_ptr + (seq * NUM_HEADS + heads)[:, None] * (2 * HALF) + half[None, :]
        tl.store(dst, (acc1 / l[:, None]).to(out_ptr.dtype.element_ty), mask=head_ok)
        tl.store(dst + HALF, (acc2 / l[:, None]).to(out_ptr.dtype.element_ty), mask=head_ok)
    else:  # unnormalised partials; _combine_splits_kernel merges them
        part = (seq * NUM_HEADS + heads) * NUM_SPLITS + split
        dst = part_acc_ptr + part[:, None] * (2 * HALF) + half[None, :]
        tl.store(dst, acc1, mask=head_ok)
        tl.store(dst + HALF, acc2, mask=head_ok)
        tl.store(part_ml_ptr + part * 2, m, mask=group < GROUP)
        tl.store(part_ml_ptr + part * 2 + 1, l, mask=group < GROUP)


@triton.jit
def _combine_splits_kernel(part_acc_ptr, part_ml_ptr, out_ptr, NUM_SPLITS: tl.constexpr, SPLITS_PAD: tl.constexpr,
                           HEAD_DIM: tl.constexpr):
    """One program per (sequence, query head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s."""
    head = tl.program_id(0).to(tl.int64)
    splits = tl.arange(0, SPLITS_PAD)
    ok = splits < NUM_SPLITS
    part = head * NUM_SPLITS + splits
    m = tl.load(part_ml_ptr + part * 2, mask=ok, other=float("-inf"))
    l = tl.load(part_ml_ptr + part * 2 + 1, mask=ok, other=0.0)
    weight = tl.exp(m - tl.max(m, 0))  # the last split holds the new token: the max is finite
    dims = tl.arange(0, HEAD_DIM)
    acc = tl.load(part_acc_ptr + part[:, None] * HEAD_DIM + dims[None, :], mask=ok[:, None], other=0.0)
    out = tl.sum(weight[:, None] * acc, 0) / tl.sum(weight * l, 0)
    tl.store(out_ptr + head * HEAD_DIM + dims, out.to(out_ptr.dtype.element_ty))


def rope_store_decode_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                             positions: torch.Tensor, slots: torch.Tensor, k_cache: torch.Tensor,
                             v_cache: torch.Tensor, block_table: torch.Tensor, rows: torch.Tensor, scale: float,
                             block_size: int, tile: dict | None = None, splits: int = 1) -> torch.Tensor:
    """One decode step's attention in one launch: RoPE on the new token's q and k, its K/V written to its slot,
    attention over its context (the tokens before ``positions`` through its block-table row, then itself).

    q (batch, heads, D), k / v (batch, kv_heads, D) with contiguous heads (views of the fused projection are fine),
    D of at least 32 (each half of it is one side of a tensor-core product); cos / sin the (positions, D) tables of
    :class:`.rotary.RotaryEmbedding`; ``tile`` a launch shape like :data:`DECODE_TILE` (the default); ``splits``
    > 1 divides each context among that many programs (split-K, :func:`decode_splits`), merged by a second
    kernel -> (batch, heads, D)."""
    batch, num_heads, head_dim = q.shape
    num_kv_heads = k.shape[1]
    group = num_heads // num_kv_heads
    out = torch.empty(batch, num_heads, head_dim, dtype=q.dtype, device=q.device)
    tile = tile or DECODE_TILE
    partials = {}
    if splits > 1:
        partials = dict(part_acc_ptr=torch.empty(batch, num_heads, splits, head_dim, dtype=torch.float32,
                                                 device=q.device),
                        part_ml_ptr=torch.empty(batch, num_heads, splits, 2, dtype=torch.float32, device=q.device))
    _rope_store_decode_kernel[(batch, num_kv_heads, splits)](
        q, k, v, q.stride(0), k.stride(0), v.stride(0), cos, sin, positions, slots, k_cache, v_cache, block_table,
        rows, out, scale, block_table.stride(0), NUM_HEADS=num_heads, NUM_KV_HEADS=num_kv_heads, GROUP=group,
        GROUP_PAD=max(16, triton.next_power_of_2(group)), HALF=head_dim // 2, BLOCK_SIZE=block_size,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32", BLOCK_N=tile["BLOCK_N"], NUM_SPLITS=splits,
        num_warps=tile["num_warps"], **({"num_stages": tile["num_stages"]} if tile.get("num_stages") else {}),
        **partials)
    if splits > 1:
        _combine_splits_kernel[(batch * num_heads,)](partials["part_acc_ptr"], partials["part_ml_ptr"], out,
                                                     NUM_SPLITS=splits, SPLITS_PAD=triton.next_power_of_2(splits),
                                                     HEAD_DIM=head_dim, num_warps=1)
    return out


def decode_splits(batch: int, num_kv_heads: int, max_model_len: int, num_sms: int, most: int = 8) -> int:
    """Split-K ways of a decode batch: one program per (sequence, KV head) leaves SMs idle when there are fewer
    programs than SMs, and at long contexts each program then walks thousands of tokens alone; splitting gives
    about two programs per SM. Short windows (under 8K) stay whole: there the second launch costs more than the
    idle SMs."""
    programs = batch * num_kv_heads
    if max_model_len < 8192 or programs >= num_sms:
        return 1
    return max(1, min(most, -(-2 * num_sms // programs)))
