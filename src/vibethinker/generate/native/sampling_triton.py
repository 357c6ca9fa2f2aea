"""Fused sampling on CUDA: one pass over each row's logits computes the log-sum-exp of ``logits / T`` (for the
reported log-prob) and the Gumbel-max choice among the tokens at or above the row's floor (see :mod:`.sampler`).

One program per row walks the vocabulary in tiles; the uniforms are Philox draws ``tl.rand(key, token id)`` with
``key = seed ^ (position * odd constant)``, so a row's noise depends on its sequence's seed and position only. ``NOISE=False`` gives the greedy argmax with T = 1 log-probs.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from vibethinker.generate.native.transfer import to_device


@triton.jit
def _gumbel_max_kernel(logits_ptr, stride, keys_ptr, floors_ptr, tokens_ptr, logprobs_ptr, inv_temperature, vocab,
                       NOISE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = logits_ptr + row.to(tl.int64) * stride
    seed = tl.load(keys_ptr + row) ^ (tl.load(keys_ptr + tl.num_programs(0) + row) * 6364136223846793005)
    floor = tl.load(floors_ptr + row)
    run_max = tl.full([], float("-inf"), tl.float32)
    run_sum = tl.zeros([], tl.float32)
    best = tl.full([], float("-inf"), tl.float32)
    best_token = tl.zeros([], tl.int32)
    best_scaled = tl.zeros([], tl.float32)
    for start in range(0, vocab, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        valid = cols < vocab
        scaled = tl.load(base + cols, mask=valid, other=float("-inf")).to(tl.float32) * inv_temperature
        new_max = tl.maximum(run_max, tl.max(scaled, 0))
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(scaled - new_max), 0)
        run_max = new_max
        scores = scaled
        if NOISE:
            uniform = tl.maximum(tl.rand(seed, cols), 1e-10)
            scores = scaled - tl.log(-tl.log(uniform))
        scores = tl.where(valid & (scaled >= floor), scores, float("-inf"))
        tile_best = tl.max(scores, 0)
        tile_token = tl.argmax(scores, 0) + start
        tile_scaled = tl.sum(tl.where(cols == tile_token, scaled, 0.0), 0)
        better = tile_best > best
        best = tl.where(better, tile_best, best)
        best_token = tl.where(better, tile_token, best_token)
        best_scaled = tl.where(better, tile_scaled, best_scaled)
    tl.store(tokens_ptr + row, best_token)
    tl.store(logprobs_ptr + row, best_scaled - run_max - tl.log(run_sum))


def sampling_keys(seeds: list[int], positions: list[int], device: torch.device) -> torch.Tensor:
    """(2, rows) int64 on ``device``: each row's seed and position, the kernel's noise key (one host-to-device
    copy through pinned memory, queued without waiting for the device: a decode window builds it once and
    advances the positions there)."""
    return to_device([seeds, positions], device, torch.int64)


def gumbel_max_triton(logits: torch.Tensor, temperature: float, keys: torch.Tensor, floors: torch.Tensor | None,
                      noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (rows, vocab); keys from :func:`sampling_keys` -> (tokens int64, log-probs fp32), on the device."""
    rows, vocab = logits.shape
    logits = logits.contiguous()
    if floors is None:
        floors = torch.full((rows,), float("-inf"), device=logits.device)
    tokens = torch.empty(rows, dtype=torch.int32, device=logits.device)
    logprobs = torch.empty(rows, dtype=torch.float32, device=logits.device)
    _gumbel_max_kernel[(rows,)](logits, logits.stride(0), keys, floors.float().contiguous(), tokens, logprobs,
                                1.0 / temperature, vocab, NOISE=noise, BLOCK=2048, num_warps=8)
    return tokens.long(), logprobs
