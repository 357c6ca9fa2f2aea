"""Long prompts in the native engine (issue 18): chunked prefill and the bottom-right causal bias give the tokens
and log-probs of one full prefill."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vibethinker.generate import SamplingParams
from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.generate.native.layers.attention import Attention

SETTINGS = dict(max_num_seqs=4, block_size=4, device="cpu", dtype="float32")


def _prompts(tokenizer):
    questions = ["What is 3 plus 4? Think about it carefully before answering, then write the answer " * 3, "hi",
                 "x = 2; y = x + 1; z = y * 3 " * 4]
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                          add_generation_prompt=True) for q in questions]


def test_chunked_prefill_gives_the_tokens_of_one_pass(varied_tiny):
    _, tokenizer, path = varied_tiny
    prompts = _prompts(tokenizer)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert max(lengths) > 3 * 16  # several chunks of 16
    sampling = SamplingParams(n=2, temperature=1.0, max_new_tokens=20, seed=3)
    whole = NativeGenerator(path, config=EngineConfig(**SETTINGS, prefill_chunk_tokens=None))
    chunked = NativeGenerator(path, config=EngineConfig(**SETTINGS, prefill_chunk_tokens=16))
    expected, got = whole.generate(prompts, sampling), chunked.generate(prompts, sampling)
    assert [c.token_ids for c in got] == [c.token_ids for c in expected]
    for a, b in zip(got, expected):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=1e-5)


def test_preempted_sequences_recompute_in_chunks_with_the_same_tokens(varied_tiny):
    _, tokenizer, path = varied_tiny
    prompts = _prompts(tokenizer)
    sampling = SamplingParams(n=2, temperature=1.0, max_new_tokens=40, seed=1)
    roomy = NativeGenerator(path, config=EngineConfig(**SETTINGS, prefill_chunk_tokens=None)).generate(prompts,
                                                                                                        sampling)
    block_bytes = 2 * 2 * 4 * 2 * 16 * 4  # (K, V) x layers x block size x kv heads x head dim x fp32
    tight = NativeGenerator(path, config=EngineConfig(**SETTINGS, prefill_chunk_tokens=16,
                                                      kv_cache_gib=60 * block_bytes / 2 ** 30))
    squeezed = tight.generate(prompts, sampling)
    assert tight.engine.stats["preemptions"] > 0
    assert [c.token_ids for c in squeezed] == [c.token_ids for c in roomy]
    for a, b in zip(squeezed, roomy):
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4, rtol=1e-4)


def test_prefill_after_a_cached_prefix_uses_the_bottom_right_causal_bias():
    torch.manual_seed(0)
    heads, kv_heads, dim, new, context = 4, 2, 8, 5, 12
    attention = Attention(heads, kv_heads, dim, dim ** -0.5, rotary=None)
    attention.k_cache, attention.v_cache = torch.randn(context, kv_heads, dim), torch.randn(context, kv_heads, dim)

    class Ctx:
        spans = [(0, new, context, 0)]
        context_slots = torch.arange(context)

    q = torch.randn(new, heads, dim)
    out = attention._prefill(q, Ctx)
    mask = torch.ones(new, context, dtype=torch.bool).tril(context - new)
    k = attention.k_cache.repeat_interleave(2, 1).transpose(0, 1)[None]
    v = attention.v_cache.repeat_interleave(2, 1).transpose(0, 1)[None]
    expected = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k, v, attn_mask=mask, scale=dim ** -0.5)
    torch.testing.assert_close(out, expected[0].transpose(0, 1))


def test_admission_reserve_avoids_preemptions_with_the_same_tokens(varied_tiny):
    _, tokenizer, path = varied_tiny
    prompts = _prompts(tokenizer)
    sampling = SamplingParams(n=2, temperature=1.0, max_new_tokens=40, seed=1)
    block_bytes = 2 * 2 * 4 * 2 * 16 * 4
    tight = dict(SETTINGS, prefill_chunk_tokens=16, kv_cache_gib=60 * block_bytes / 2 ** 30)
    greedy = NativeGenerator(path, config=EngineConfig(**tight))
    careful = NativeGenerator(path, config=EngineConfig(**tight, admission_reserve=1.0))
    greedy_out, careful_out = greedy.generate(prompts, sampling), careful.generate(prompts, sampling)
    assert greedy.engine.stats["preemptions"] > 0
    assert careful.engine.stats["preemptions"] == 0
    assert [c.token_ids for c in careful_out] == [c.token_ids for c in greedy_out]


def test_a_prompt_that_leaves_less_than_max_new_tokens_is_counted_and_said(varied_tiny):
    import pytest

    _, tokenizer, path = varied_tiny
    prompts = _prompts(tokenizer)
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    generator = NativeGenerator(path, config=EngineConfig(**SETTINGS, max_model_len=longest + 10))
    with pytest.warns(UserWarning, match="stopped at max_model_len"):
        out = generator.generate(prompts, SamplingParams(n=1, temperature=1.0, max_new_tokens=30, seed=2))
    assert generator.engine.stats["window_cut"] >= 1
    assert all(len(c.token_ids) <= 30 for c in out)
