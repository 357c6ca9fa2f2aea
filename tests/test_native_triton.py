"""The native engine's Triton kernels without a GPU: checked on CPU under TRITON_INTERPRET=1 (alone and inside the
engine, against the torch paths), and compiled for sm_90 by Triton's own GPU compiler."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from vibethinker.generate import SamplingParams
from vibethinker.generate.native import EngineConfig
from vibethinker.generate.native.sampler import logit_floors


def test_triton_kernels_under_the_interpreter():
    """The GPU kernels (paged decode attention, alone and with RoPE + K/V store, sampler, RMSNorm, RoPE + K/V store)
    checked on CPU by Triton's interpreter, alone and inside the engine. Triton reads TRITON_INTERPRET when it is
    first imported (torch imports it early), so the checks run in a fresh interpreter: this file run as a script."""
    pytest.importorskip("triton")
    done = subprocess.run([sys.executable, __file__], env={**os.environ, "TRITON_INTERPRET": "1"}, check=False,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "triton kernels ok" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("dtype,splits", [("bf16", 1), ("fp32", 1), ("bf16", 4)])
def test_fused_decode_attention_compiles_for_the_h200(dtype, splits):
    """The one-kernel decode attention goes through Triton's whole GPU compiler (to PTX, then Triton's own ptxas) for
    sm_90, the H200: catches what the interpreter cannot (tensor-core shapes, layouts), with no GPU."""
    pytest.importorskip("triton")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from vibethinker.generate.native.layers.paged_decode_triton import DECODE_TILE, _rope_store_decode_kernel

    tensor = f"*{dtype}"
    signature = {"q_ptr": tensor, "k_ptr": tensor, "v_ptr": tensor, "q_stride": "i32", "k_stride": "i32",
                 "v_stride": "i32", "cos_ptr": "*fp32", "sin_ptr": "*fp32", "positions_ptr": "*i64",
                 "slots_ptr": "*i64", "k_cache_ptr": tensor, "v_cache_ptr": tensor, "table_ptr": "*i32",
                 "rows_ptr": "*i64", "out_ptr": tensor, "scale": "fp32", "table_stride": "i32",
                 "part_acc_ptr": "*fp32", "part_ml_ptr": "*fp32"}
    constants = dict(NUM_HEADS=14, NUM_KV_HEADS=2, GROUP=7, GROUP_PAD=16, HALF=32, BLOCK_SIZE=16,
                     BLOCK_N=DECODE_TILE["BLOCK_N"], DOT_PRECISION="ieee" if dtype == "fp32" else "tf32",
                     NUM_SPLITS=splits)
    # Qwen2.5-0.5B's heads, and the engine's default launch shape
    signature.update(dict.fromkeys(constants, "constexpr"))
    compiled = triton.compile(ASTSource(fn=_rope_store_decode_kernel, signature=signature, constexprs=constants),
                              target=GPUTarget("cuda", 90, 32), options={"num_warps": DECODE_TILE["num_warps"]})
    assert ".target sm_90" in compiled.asm["ptx"] and compiled.asm["cubin"]
    if splits > 1:  # and the kernel that merges the splits
        from vibethinker.generate.native.layers.paged_decode_triton import _combine_splits_kernel

        merge = dict(NUM_SPLITS=splits, SPLITS_PAD=splits, HEAD_DIM=64)
        compiled = triton.compile(ASTSource(fn=_combine_splits_kernel, signature={
            "part_acc_ptr": "*fp32", "part_ml_ptr": "*fp32", "out_ptr": tensor, **dict.fromkeys(merge, "constexpr")},
            constexprs=merge), target=GPUTarget("cuda", 90, 32), options={"num_warps": 1})
        assert compiled.asm["cubin"]


def _interpreter_shim() -> None:
    """numpy >= 2.4 refuses int() of the 1-element arrays Triton's interpreter loads scalars as (loop bounds)."""
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patched


def _check_triton_decode_attention() -> None:
    from vibethinker.generate.native.layers.attention import decode_attention_torch
    from vibethinker.generate.native.layers.paged_decode_triton import decode_attention_triton

    generator = torch.Generator().manual_seed(0)
    heads, kv_heads, dim, block = 14, 2, 64, 16  # Qwen2.5-0.5B's head layout
    keys, values = (torch.randn(40 * block, kv_heads, dim, generator=generator) for _ in range(2))
    table = torch.randperm(40, generator=generator)[:30].view(3, 10).int()
    rows, lengths = torch.tensor([2, 0, 1]), torch.tensor([1, 100, 160])
    q = torch.randn(3, heads, dim, generator=generator)
    ours = decode_attention_triton(q, keys, values, table, rows, lengths, dim ** -0.5, block)
    reference = decode_attention_torch(q, keys, values, table, rows, lengths, dim ** -0.5, block)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-5)


def _check_fused_decode_attention() -> None:
    """RoPE + K/V write + attention in one kernel equals the two kernels it replaces (head sizes 64 and 32)."""
    from vibethinker.generate.native.layers.fused_triton import rope_store_triton
    from vibethinker.generate.native.layers.paged_decode_triton import (
        decode_attention_triton,
        rope_store_decode_triton,
    )
    from vibethinker.generate.native.layers.rotary import RotaryEmbedding

    generator = torch.Generator().manual_seed(2)
    block = 16
    for heads, kv_heads, dim in ((14, 2, 64), (4, 2, 32)):
        rotary = RotaryEmbedding(1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), 256)
        qkv = torch.randn(3, (heads + 2 * kv_heads) * dim, generator=generator)
        q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)  # strided views, as in the model
        q, k, v = q.view(3, heads, dim), k.view(3, kv_heads, dim), v.view(3, kv_heads, dim)
        table = torch.randperm(40, generator=generator)[:30].view(3, 10).int()
        rows, positions = torch.tensor([2, 0, 1]), torch.tensor([0, 99, 159])  # alone; a partial tile; 2.5 tiles
        slots = table[rows, positions // block].long() * block + positions % block
        caches = [torch.randn(40 * block, kv_heads, dim, generator=generator) for _ in range(2)]
        expected_caches = [c.clone() for c in caches]
        rotated = rope_store_triton(q, k, v, rotary.cos, rotary.sin, positions, slots, *expected_caches)
        expected = decode_attention_triton(rotated, *expected_caches, table, rows, positions + 1, dim ** -0.5, block)
        out = rope_store_decode_triton(q, k, v, rotary.cos, rotary.sin, positions, slots, *caches, table, rows,
                                       dim ** -0.5, block)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        for cache, expected_cache in zip(caches, expected_caches):
            torch.testing.assert_close(cache, expected_cache, atol=1e-6, rtol=1e-6)


def _check_split_decode_attention() -> None:
    """Split-K decode (several programs per sequence, merged by a second kernel) equals the one-program kernel,
    including splits left empty by short contexts; decode_splits only splits small batches of long windows."""
    from vibethinker.generate.native.layers.paged_decode_triton import decode_splits, rope_store_decode_triton
    from vibethinker.generate.native.layers.rotary import RotaryEmbedding

    generator = torch.Generator().manual_seed(3)
    block, heads, kv_heads, dim = 16, 14, 2, 64
    rotary = RotaryEmbedding(1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), 1024)
    qkv = torch.randn(4, (heads + 2 * kv_heads) * dim, generator=generator)
    q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)
    q, k, v = q.view(4, heads, dim), k.view(4, kv_heads, dim), v.view(4, kv_heads, dim)
    table = torch.randperm(260, generator=generator)[:256].view(4, 64).int()
    rows, positions = torch.tensor([2, 0, 1, 3]), torch.tensor([0, 99, 700, 1000])
    slots = table[rows, positions // block].long() * block + positions % block
    base = [torch.randn(260 * block, kv_heads, dim, generator=generator) for _ in range(2)]
    reference_caches = [c.clone() for c in base]
    reference = rope_store_decode_triton(q, k, v, rotary.cos, rotary.sin, positions, slots, *reference_caches,
                                         table, rows, dim ** -0.5, block, tile={"BLOCK_N": 64, "num_warps": 4})
    for splits in (2, 3, 5):
        caches = [c.clone() for c in base]
        out = rope_store_decode_triton(q, k, v, rotary.cos, rotary.sin, positions, slots, *caches, table, rows,
                                       dim ** -0.5, block, tile={"BLOCK_N": 64, "num_warps": 4}, splits=splits)
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)
        for cache, expected in zip(caches, reference_caches):
            assert torch.equal(cache, expected)
    assert decode_splits(8, 2, 65536, num_sms=132) == 8 and decode_splits(40, 2, 65536, num_sms=132) == 4
    assert decode_splits(128, 2, 65536, num_sms=132) == 1 and decode_splits(8, 2, 4096, num_sms=132) == 1


def _check_triton_sampler() -> None:
    from vibethinker.generate.native.sampling_triton import gumbel_max_triton, sampling_keys

    def gumbel_max(logits, temperature, seeds, positions, floors, noise):
        return gumbel_max_triton(logits, temperature, sampling_keys(seeds, positions, logits.device), floors, noise)

    logits = torch.randn(4, 3000, generator=torch.Generator().manual_seed(1)) * 3
    tokens, logprobs = gumbel_max(logits, 1.0, [1, 2, 3, 4], [9] * 4, None, noise=False)
    assert torch.equal(tokens, logits.argmax(-1))
    torch.testing.assert_close(logprobs, torch.log_softmax(logits, -1).gather(1, tokens[:, None])[:, 0])
    scaled = logits * (1.0 / 0.7)
    floors = logit_floors(scaled, 5, 0.8)
    draws = [gumbel_max(logits, 0.7, [seed] * 4, [3] * 4, floors, noise=True) for seed in range(6)]
    for tokens, logprobs in draws:
        chosen = scaled.gather(1, tokens[:, None])[:, 0]
        assert bool((chosen >= floors).all())
        torch.testing.assert_close(logprobs, torch.log_softmax(scaled, -1).gather(1, tokens[:, None])[:, 0])
    assert len({tuple(t.tolist()) for t, _ in draws}) > 1
    assert torch.equal(gumbel_max(logits, 0.7, [0] * 4, [3] * 4, floors, noise=True)[0], draws[0][0])
    later = [gumbel_max(logits, 0.7, [0] * 4, [position] * 4, floors, noise=True)[0] for position in range(6)]
    assert len({tuple(t.tolist()) for t in later}) > 1  # the noise moves on with the position


def _check_fused_kernels() -> None:
    """RMSNorm (alone and after the residual add), silu(gate) * up and RoPE + K/V store kernels equal the torch
    code in fp32 (the interpreter truncates to bf16 where the GPU rounds to nearest, so bf16 is not compared here)."""
    from vibethinker.generate.native.layers.fused_triton import (
        add_rmsnorm_triton,
        rmsnorm_triton,
        rope_store_triton,
        silu_mul_triton,
    )
    from vibethinker.generate.native.layers.rmsnorm import RMSNorm
    from vibethinker.generate.native.layers.rotary import RotaryEmbedding

    generator = torch.Generator().manual_seed(0)
    norm = RMSNorm(96, 1e-6)
    norm.weight.data = torch.randn(96, generator=generator)
    x = torch.randn(5, 96, generator=generator)
    torch.testing.assert_close(rmsnorm_triton(x, norm.weight, 1e-6), norm(x), atol=1e-6, rtol=1e-6)
    wide = torch.randn(5, 2 * 96, generator=generator)
    residual = torch.randn(5, 96, generator=generator)
    normed, total = add_rmsnorm_triton(wide[:, :96], residual, norm.weight, 1e-6)  # strided rows, as in the model
    assert torch.equal(total, wide[:, :96] + residual)
    torch.testing.assert_close(normed, norm(wide[:, :96] + residual), atol=1e-6, rtol=1e-6)
    gate_up = torch.randn(3, 2 * 1500, generator=generator)  # two column tiles, the second partial
    gate, up = gate_up.chunk(2, dim=-1)
    torch.testing.assert_close(silu_mul_triton(gate_up), torch.nn.functional.silu(gate) * up, atol=1e-6, rtol=1e-6)
    tokens, heads, kv_heads, dim = 6, 14, 2, 64
    qkv = torch.randn(tokens, (heads + 2 * kv_heads) * dim, generator=generator)
    q, k, v = qkv.split([heads * dim, kv_heads * dim, kv_heads * dim], dim=-1)  # strided views, as in the model
    q, k, v = q.view(tokens, heads, dim), k.view(tokens, kv_heads, dim), v.view(tokens, kv_heads, dim)
    rotary = RotaryEmbedding(1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), 64)
    positions, slots = torch.tensor([0, 5, 63, 7, 1, 2]), torch.tensor([3, 0, 9, 4, 1, 11])
    k_cache, v_cache = torch.zeros(12, kv_heads, dim), torch.zeros(12, kv_heads, dim)
    rotated = rope_store_triton(q, k, v, rotary.cos, rotary.sin, positions, slots, k_cache, v_cache)
    q_ref, k_ref = rotary(positions, q, k)
    torch.testing.assert_close(rotated, q_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(k_cache[slots], k_ref, atol=1e-6, rtol=1e-6)
    assert torch.equal(v_cache[slots], v)


def _check_engine_with_triton_kernels() -> None:
    """The engine with its GPU code paths (all Triton kernels) forced on, against its CPU paths."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vibethinker.generate.native import LLMEngine
    from vibethinker.generate.native.weights import live_tensors

    torch.manual_seed(0)
    # head size 32: decode steps take the one-kernel RoPE + cache write + attention path
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=96, hidden_size=128, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3,
                                         max_position_embeddings=128))
    prompts = [[(7 * i + j) % 96 for j in range(n)] for i, n in enumerate([3, 17, 9])]
    engines = []
    # CPU paths; kernels with the paged prefill (every prompt token one query of the decode kernel), decode windows
    # of 4 steps and the one-kernel decode attention; kernels with the per-sequence SDPA prefill, single decode
    # steps and separate RoPE + store and attention kernels. Two samples per prompt: the second prefills after a
    # cached prefix.
    variants = ((False, 512, 1, True), (True, 512, 4, True), (True, 0, 1, False), (True, 0, 1, True))
    for triton_paths, paged_prefill, window, fused in variants:
        engine = LLMEngine(model.config, EngineConfig(max_num_seqs=8, block_size=4, ignore_eos=True,
                                                      paged_prefill_max_tokens=paged_prefill, decode_window=window,
                                                      fused_decode_attention=fused), device="cpu")
        engine.load(live_tensors(model), "test model")
        engine.runner.use_triton = engine.sampler.use_triton = triton_paths
        engines.append(engine)
    engines[-1].runner.decode_splits = lambda batch: 3  # split-K decode steps
    reference, *kernels = (e.generate(prompts, SamplingParams(temperature=0, max_new_tokens=10, n=2), [])
                           for e in engines)
    assert [e.stats["paged_prefill_steps"] > 0 for e in engines] == [False, True, False, False]
    assert [e.stats["decode_windows"] > 0 for e in engines] == [False, True, False, False]
    for outputs in kernels:
        for a, b in zip(reference, outputs, strict=True):
            assert a.generated_ids == b.generated_ids
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    sampled = engines[1].generate(prompts, SamplingParams(temperature=1.0, top_k=5, max_new_tokens=6, seed=1), [])
    assert sampled[0].generated_ids == engines[1].generate(
        prompts, SamplingParams(temperature=1.0, top_k=5, max_new_tokens=6, seed=1), [])[0].generated_ids


if __name__ == "__main__":  # see test_triton_kernels_under_the_interpreter
    assert os.environ.get("TRITON_INTERPRET") == "1"
    _interpreter_shim()
    _check_triton_decode_attention()
    _check_fused_decode_attention()
    _check_split_decode_attention()
    _check_triton_sampler()
    _check_fused_kernels()
    _check_engine_with_triton_kernels()
    print("triton kernels ok")
