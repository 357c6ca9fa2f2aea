"""Per-layer elementwise steps fused into one Triton kernel each (CUDA; also runs under TRITON_INTERPRET=1).

In a decode step the matrices are small, so the many tiny kernels of elementwise code cost more than the
arithmetic: RMSNorm is eight torch kernels, the residual add before it one more, RoPE plus the K/V cache writes
about a dozen, ``silu(gate) * up`` two, per layer. Each group becomes one kernel here. The rounding copies the
torch code they replace (transformers' Qwen2/Llama): RMSNorm normalises in fp32, rounds to the model dtype, then
multiplies by the weight (after the residual sum, itself rounded to the model dtype); ``silu(gate)`` is rounded
before the product; RoPE rounds ``x * cos`` and ``rotate_half(x) * sin`` to the model dtype before adding them.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_kernel(x_ptr, weight_ptr, out_ptr, stride, size, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    valid = cols < size
    x = tl.load(x_ptr + row.to(tl.int64) * stride + cols, mask=valid, other=0.0).to(tl.float32)
    normed = (x * tl.rsqrt(tl.sum(x * x, 0) / size + eps)).to(x_ptr.dtype.element_ty)
    weight = tl.load(weight_ptr + cols, mask=valid, other=0.0)
    out = weight.to(tl.float32) * normed.to(tl.float32)
    tl.store(out_ptr + row.to(tl.int64) * size + cols, out.to(out_ptr.dtype.element_ty), mask=valid)


@triton.jit
def _add_rmsnorm_kernel(x_ptr, residual_ptr, weight_ptr, out_ptr, sum_ptr, stride, size, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    valid = cols < size
    x = tl.load(x_ptr + row * stride + cols, mask=valid, other=0.0).to(tl.float32)
    residual = tl.load(residual_ptr + row * size + cols, mask=valid, other=0.0).to(tl.float32)
    total = (x + residual).to(sum_ptr.dtype.element_ty)
    tl.store(sum_ptr + row * size + cols, total, mask=valid)
    total = total.to(tl.float32)
    normed = (total * tl.rsqrt(tl.sum(total * total, 0) / size + eps)).to(sum_ptr.dtype.element_ty)
    weight = tl.load(weight_ptr + cols, mask=valid, other=0.0)
    tl.store(out_ptr + row * size + cols, (weight.to(tl.float32) * normed.to(tl.float32)).to(out_ptr.dtype.element_ty),
             mask=valid)


def add_rmsnorm_triton(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                       eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(rmsnorm(x + residual), x + residual) in one pass; x (rows, size) with contiguous rows, residual contiguous."""
    total = torch.empty_like(residual)
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    size = x.shape[-1]
    _add_rmsnorm_kernel[(x.shape[0],)](x, residual, weight, out, total, x.stride(0), size, eps,
                                       BLOCK=triton.next_power_of_2(size), num_warps=4)
    return out, total


@triton.jit
def _silu_mul_kernel(gate_up_ptr, out_ptr, size, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    valid = cols < size
    gate = tl.load(gate_up_ptr + row * 2 * size + cols, mask=valid, other=0.0).to(tl.float32)
    up = tl.load(gate_up_ptr + row * 2 * size + size + cols, mask=valid, other=0.0).to(tl.float32)
    silu = _round(gate * tl.sigmoid(gate), out_ptr)
    tl.store(out_ptr + row * size + cols, (silu * up).to(out_ptr.dtype.element_ty), mask=valid)


def silu_mul_triton(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up (rows, 2 * size) contiguous, gate first -> silu(gate) * up (rows, size)."""
    rows, size = gate_up.shape[0], gate_up.shape[1] // 2
    out = torch.empty(rows, size, dtype=gate_up.dtype, device=gate_up.device)
    block = 1024
    _silu_mul_kernel[(rows, triton.cdiv(size, block))](gate_up, out, size, BLOCK=block, num_warps=4)
    return out


def rmsnorm_triton(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x (rows, size), rows contiguous -> weight * normalised x, in the dtype torch would give."""
    out = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    size = x.shape[-1]
    _rmsnorm_kernel[(x.shape[0],)](x, weight, out, x.stride(0), size, eps, BLOCK=triton.next_power_of_2(size),
                                   num_warps=4)
    return out


@triton.jit
def _round(x, like_ptr):
    """x rounded to the element type of ``like_ptr`` (the model dtype), back in fp32."""
    return x.to(like_ptr.dtype.element_ty).to(tl.float32)


@triton.jit
def _rotate(x1, x2, cos, sin, like_ptr):
    """(x1, x2) halves of the head dimension -> (x1 cos - x2 sin, x2 cos + x1 sin), rounded as torch does."""
    first = _round(x1 * cos[None, :], like_ptr) - _round(x2 * sin[None, :], like_ptr)
    second = _round(x2 * cos[None, :], like_ptr) + _round(x1 * sin[None, :], like_ptr)
    return first.to(like_ptr.dtype.element_ty), second.to(like_ptr.dtype.element_ty)


@triton.jit
def _rope_store_kernel(q_ptr, k_ptr, v_ptr, q_stride, k_stride, v_stride, cos_ptr, sin_ptr, positions_ptr, slots_ptr,
                       q_out_ptr, k_cache_ptr, v_cache_ptr, NUM_HEADS: tl.constexpr, NUM_KV_HEADS: tl.constexpr,
                       HEADS_PAD: tl.constexpr, KV_HEADS_PAD: tl.constexpr, HEAD_DIM: tl.constexpr,
                       HALF: tl.constexpr):
    token = tl.program_id(0).to(tl.int64)
    position = tl.load(positions_ptr + token).to(tl.int64)
    slot = tl.load(slots_ptr + token).to(tl.int64)
    half = tl.arange(0, HALF)
    cos = _round(tl.load(cos_ptr + position * HEAD_DIM + half), q_out_ptr)  # both halves of a row are equal
    sin = _round(tl.load(sin_ptr + position * HEAD_DIM + half), q_out_ptr)

    heads = tl.arange(0, HEADS_PAD)
    head_ok = (heads < NUM_HEADS)[:, None]
    src = q_ptr + token * q_stride + heads[:, None] * HEAD_DIM + half[None, :]
    out1, out2 = _rotate(tl.load(src, mask=head_ok, other=0.0).to(tl.float32),
                         tl.load(src + HALF, mask=head_ok, other=0.0).to(tl.float32), cos, sin, q_out_ptr)
    dst = q_out_ptr + token * NUM_HEADS * HEAD_DIM + heads[:, None] * HEAD_DIM + half[None, :]
    tl.store(dst, out1, mask=head_ok)
    tl.store(dst + HALF, out2, mask=head_ok)

    kv_heads = tl.arange(0, KV_HEADS_PAD)
    kv_ok = (kv_heads < NUM_KV_HEADS)[:, None]
    src = k_ptr + token * k_stride + kv_heads[:, None] * HEAD_DIM + half[None, :]
    out1, out2 = _rotate(tl.load(src, mask=kv_ok, other=0.0).to(tl.float32),
                         tl.load(src + HALF, mask=kv_ok, other=0.0).to(tl.float32), cos, sin, q_out_ptr)
    dst_offsets = slot * NUM_KV_HEADS * HEAD_DIM + kv_heads[:, None] * HEAD_DIM + half[None, :]
    tl.store(k_cache_ptr + dst_offsets, out1, mask=kv_ok)
    tl.store(k_cache_ptr + dst_offsets + HALF, out2, mask=kv_ok)
    src = v_ptr + token * v_stride + kv_heads[:, None] * HEAD_DIM + half[None, :]
    tl.store(v_cache_ptr + dst_offsets, tl.load(src, mask=kv_ok, other=0.0), mask=kv_ok)
    tl.store(v_cache_ptr + dst_offsets + HALF, tl.load(src + HALF, mask=kv_ok, other=0.0), mask=kv_ok)


def rope_store_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                      positions: torch.Tensor, slots: torch.Tensor, k_cache: torch.Tensor,
                      v_cache: torch.Tensor) -> torch.Tensor:
    """Rotates q (returned, contiguous) and k, writes k and v into their cache slots.

    q (tokens, heads, D), k / v (tokens, kv_heads, D), each with contiguous heads (views of the fused q/k/v
    projection are fine); cos / sin the (positions, D) fp32 tables of :class:`.rotary.RotaryEmbedding`."""
    tokens, heads, dim = q.shape
    kv_heads = k.shape[1]
    out = torch.empty(tokens, heads, dim, dtype=q.dtype, device=q.device)
    _rope_store_kernel[(tokens,)](
        q, k, v, q.stride(0), k.stride(0), v.stride(0), cos, sin, positions, slots, out, k_cache, v_cache,
        NUM_HEADS=heads, NUM_KV_HEADS=kv_heads, HEADS_PAD=triton.next_power_of_2(heads),
        KV_HEADS_PAD=triton.next_power_of_2(kv_heads), HEAD_DIM=dim, HALF=dim // 2, num_warps=1)
    return out
