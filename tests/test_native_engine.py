"""The native engine on tiny random models (CPU, fp32): equivalence with transformers, continuous batching,
preemption, sampling, log-probs, stop tokens, live weight updates (the Triton kernels: test_native_triton.py)."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

from vibethinker.generate import BACKENDS, HFGenerator, SamplingParams, make_generator
from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.generate.native.kv_cache import KVCacheManager
from vibethinker.generate.native.sampler import Sampler, logit_floors
from vibethinker.generate.native.scheduler import Scheduler
from vibethinker.generate.native.sequence import Sequence, Status
from vibethinker.model import load_model, save_pretrained_atomic

QUESTIONS = ["hi", "What is 3 plus 4? Think about it carefully before answering.", "x = 2", "def f(x): return x + 1",
             "What is 12 plus 5?"]
# small blocks: prompts span many blocks and share some; CPU fp32 so the reference comparisons are exact anywhere
SMALL = dict(max_num_seqs=8, block_size=4, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def tiny(varied_tiny):
    return varied_tiny


def _prompts(tokenizer, questions=QUESTIONS) -> list[str]:
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            for q in questions]


def _teacher_forced_logprobs(model, tokenizer, prompt: str, tokens: list[int], temperature: float) -> torch.Tensor:
    """(len(tokens), vocab) log_softmax(logits / T) of a plain transformers forward at each generated position."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + tokens])).logits[0, len(prompt_ids) - 1:-1].float()
    return torch.log_softmax(logits / temperature, dim=-1)


def _reference_greedy(model, tokenizer, prompt: str, max_new_tokens: int, stops: list[int]) -> list[int]:
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens,
                         eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
    return out[:next((i + 1 for i, t in enumerate(out) if t in stops), len(out))]


def test_greedy_matches_transformers_generate_token_for_token(tiny):
    model, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    out = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=24, n=2))
    assert [(c.prompt_index, c.sample_index) for c in out] == [(p, s) for p in range(len(prompts)) for s in range(2)]
    stops = native.stop_ids(SamplingParams())
    for c in out:
        assert c.token_ids == _reference_greedy(model, tokenizer, prompts[c.prompt_index], 24, stops)
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
        expected = _teacher_forced_logprobs(model, tokenizer, prompts[c.prompt_index], c.token_ids, 1.0)
        torch.testing.assert_close(torch.tensor(c.logprobs), expected.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0],
                                   atol=1e-4, rtol=0)
    assert len({tuple(c.token_ids) for c in out}) > 2  # the outputs really depend on the prompt
    assert native.engine.stats["prefill_tokens"] < 2 * sum(len(tokenizer(p)["input_ids"]) for p in prompts)  # shared
    reference = HFGenerator(model, tokenizer).generate(prompts, SamplingParams(temperature=0, max_new_tokens=24, n=2))
    for ours, theirs in zip(out, reference):
        assert ours.token_ids == theirs.token_ids and ours.finish_reason == theirs.finish_reason
        assert ours.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)


def _save_tiny(model, tokenizer, path):
    model.generation_config = GenerationConfig(eos_token_id=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id)
    return save_pretrained_atomic(model, tokenizer, path)


@pytest.mark.parametrize("arch", ["llama", "llama3-rope", "qwen3"])
def test_other_architectures_match_transformers(tiny, tmp_path, arch):
    _, tokenizer, _ = tiny
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, initializer_range=0.3, max_position_embeddings=256,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    if arch == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(**common, head_dim=32, tie_word_embeddings=False))
    else:  # SmolLM2-like: Llama with tied embeddings
        rope = {"rope_type": "default", "rope_theta": 100000.0} if arch == "llama" else \
            {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
             "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=True, rope_parameters=rope))
    path = _save_tiny(model.eval(), tokenizer, tmp_path / arch)
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    out = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16))
    for c in out:
        assert c.token_ids == _reference_greedy(model, tokenizer, prompts[c.prompt_index], 16, [tokenizer.eos_token_id])
    assert len({tuple(c.token_ids) for c in out}) > 1


def test_unsupported_architecture_is_refused(tiny, tmp_path):
    from transformers import GPT2Config

    from vibethinker.generate.native import LLMEngine

    with pytest.raises(ValueError, match="Qwen2ForCausalLM.*GPT2LMHeadModel"):
        LLMEngine(GPT2Config(architectures=["GPT2LMHeadModel"]))


def test_continuous_batching_matches_running_alone(tiny):
    """Two decode slots for five prompts: sequences end at different steps (a stop token ends some early) and
    each freed slot is refilled from the queue; every output equals that of its prompt run alone."""
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(max_num_seqs=2, block_size=4, device="cpu", dtype="float32"))
    free = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=20, stop_token_ids=[0]))
    stop = next(c.token_ids[4] for c in free if len(c.token_ids) > 8)
    sampling = SamplingParams(temperature=0, max_new_tokens=20, stop_token_ids=[stop])
    together = native.generate(prompts, sampling)
    assert native.engine.stats["prefill_steps"] > 1  # later prompts were admitted as slots freed
    assert len({len(c.token_ids) for c in together}) > 1 and {c.finish_reason for c in together} == {"stop", "length"}
    for prompt, c in zip(prompts, together):
        (alone,) = native.generate([prompt], sampling)
        assert c.token_ids == alone.token_ids and c.finish_reason == alone.finish_reason
        assert c.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_preemption_under_a_small_cache_keeps_outputs(tiny):
    """A cache too small for the running sequences forces preemptions (recomputed later); seeded sampling gives
    the same tokens as with a roomy cache, because each sample's noise depends on its seed and position only."""
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=20, n=2, seed=7)
    roomy = NativeGenerator(path, config=EngineConfig(**SMALL)).generate(prompts, sampling)
    block_bytes = 2 * 2 * 4 * 2 * 16 * 4  # (K, V) x layers x block size x kv heads x head dim x fp32
    tight = NativeGenerator(path, config=EngineConfig(max_num_seqs=4, block_size=4, device="cpu", dtype="float32",
                                                      kv_cache_gib=24 * block_bytes / 2 ** 30))
    squeezed = tight.generate(prompts, sampling)
    assert tight.engine.kv.num_blocks == 24 and tight.engine.stats["preemptions"] > 0
    for a, b in zip(roomy, squeezed):
        assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)  # recomputed by prefill after preemption


def test_decode_windows_give_the_tokens_of_single_steps(tiny):
    """Decode steps chained on the device (decode_window 5) give the same samples as one step at a time: stops
    inside a window drop the window's later tokens, max_model_len caps the window, freed slots are refilled from
    the queue after the window, and a cache too small for a window falls back to single steps (and preempts)."""
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    longest = max(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    free = NativeGenerator(path, config=EngineConfig(**SMALL)).generate(
        prompts, SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=24, n=2, seed=5))
    stop = next(c.token_ids[6] for c in free if len(c.token_ids) > 8)  # ends some samples mid-window
    sampling = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=24, n=2, seed=5, stop_token_ids=[stop])
    block_bytes = 2 * 2 * 4 * 2 * 16 * 4  # (K, V) x layers x block size x kv heads x head dim x fp32
    settings = dict(max_num_seqs=3, block_size=4, device="cpu", dtype="float32", max_model_len=longest + 14)
    steps = NativeGenerator(path, config=EngineConfig(**settings, decode_window=1))
    reference = steps.generate(prompts, sampling)
    assert {c.finish_reason for c in reference} == {"stop", "length"}
    assert any(c.finish_reason == "length" and len(c.token_ids) < 24 for c in reference)  # max_model_len
    for extra in ({}, {"kv_cache_gib": 30 * block_bytes / 2 ** 30}):
        windows = NativeGenerator(path, config=EngineConfig(**settings, **extra, decode_window=5))
        out = windows.generate(prompts, sampling)
        assert windows.engine.stats["decode_windows"] > 0
        assert (windows.engine.stats["preemptions"] > 0) == bool(extra)
        for a, b in zip(reference, out, strict=True):
            assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_overlapped_windows_give_the_tokens_of_single_steps(tiny):
    """A follow-on window queued before the host reads the running one (overlap_windows) changes no token: samples
    that stopped in the window being read run on until the host knows (their tokens dropped), then go to the
    scratch block while the rest continue; overlap pauses while sequences wait for a slot and when the cache cannot
    hold the next window."""
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    free = NativeGenerator(path, config=EngineConfig(**SMALL)).generate(
        prompts, SamplingParams(temperature=1.0, max_new_tokens=30, n=2, seed=3))
    common = Counter(token for c in free for token in set(c.token_ids))  # stops that end samples at varied steps
    sampling = SamplingParams(temperature=1.0, max_new_tokens=30, n=2, seed=3,
                              stop_token_ids=[token for token, _ in common.most_common(2)])
    reference = NativeGenerator(path, config=EngineConfig(**SMALL, decode_window=1)).generate(prompts, sampling)
    assert len({len(c.token_ids) for c in reference}) > 4
    block_bytes = 2 * 2 * 4 * 2 * 16 * 4  # (K, V) x layers x block size x kv heads x head dim x fp32
    for extra in ({}, {"kv_cache_gib": 40 * block_bytes / 2 ** 30}):
        overlapped = NativeGenerator(path, config=EngineConfig(**SMALL, **extra, decode_window=4))
        retired = []
        launch = overlapped.engine.runner.launch_window

        def spy(seqs, steps, sample, retire=None):
            retired.extend(retire or [])
            return launch(seqs, steps, sample, retire)

        overlapped.engine.runner.launch_window = spy
        out = overlapped.generate(prompts, sampling)
        stats = overlapped.engine.stats
        assert stats["follow_on_windows"] > 0 and stats["decode_windows"] > stats["follow_on_windows"]
        # roomy: some sample stopped while the window after its stop was already queued; tight: preemptions
        assert bool(retired) != bool(extra) and (stats["preemptions"] > 0) == bool(extra)
        for a, b in zip(reference, out, strict=True):
            assert a.token_ids == b.token_ids and a.finish_reason == b.finish_reason
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert overlapped.engine.kv.num_free_blocks == overlapped.engine.kv.num_blocks  # every block came back
    off = NativeGenerator(path, config=EngineConfig(**SMALL, decode_window=4, overlap_windows=False))
    assert [c.token_ids for c in off.generate(prompts, sampling)] == [c.token_ids for c in reference]
    assert off.engine.stats["follow_on_windows"] == 0


def test_postprocess_keeps_each_windows_tokens_up_to_its_stop():
    """A window's tokens are kept up to the first stop token (kept), the max_new_tokens or max_model_len limit;
    a stop token on the last allowed position ends it as "stop"; finished sequences free their blocks and slots."""
    kv = KVCacheManager(num_blocks=16, block_size=4, max_seqs=8, max_blocks_per_seq=8)
    scheduler = Scheduler(kv, max_num_seqs=8, max_num_batched_tokens=64, max_model_len=12)
    scheduler.stop_ids = frozenset({99})
    limits = [(6, 5), (6, 5), (6, 5), (6, 3), (6, 9), (2, 10)]  # (prompt tokens, max_new_tokens)
    for i, (prompt, limit) in enumerate(limits):
        scheduler.add(Sequence(i, 0, list(range(prompt)), prompt, limit, seed=i))
    seqs, is_prefill = scheduler.schedule()
    assert is_prefill and len(seqs) == len(limits)
    free_before = kv.num_free_blocks
    drawn = [[1, 99, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 99, 4], [1, 2, 3, 4], [1, 2, 3, 4]]
    kept = scheduler.postprocess(seqs, drawn, [[-0.5 * j for j in range(4)]] * len(seqs), ignore_eos=False)
    assert kept == [2, 4, 4, 3, 4, 4]
    assert [s.finish_reason for s in seqs] == ["stop", None, None, "stop", None, None]
    assert seqs[0].generated_ids == [1, 99] and seqs[0].logprobs == [0.0, -0.5]
    assert [s.status for s in seqs].count(Status.RUNNING) == 4 and len(scheduler.running) == 4
    assert kv.num_free_blocks > free_before
    # room left: 1 token for seqs 1 and 2 (max_new_tokens), 2 for seq 4 (max_model_len), 6 for seq 5 (both), whose
    # stop token comes on its last allowed position
    kept = scheduler.postprocess(seqs, [[7, 8]] * 3 + [[7, 8]] + [[5, 6, 7, 8, 9, 99, 1]] * 2, [[0.0] * 7] * 6,
                                 ignore_eos=False)
    assert kept == [0, 1, 1, 0, 2, 6]
    assert [s.finish_reason for s in seqs] == ["stop", "length", "length", "stop", "length", "stop"]
    assert scheduler.done and kv.num_free_blocks == 16 and len(kv.free_rows) == 8


@pytest.mark.parametrize("temperature,top_p,top_k", [(0.7, 0.9, 20), (1.3, 1.0, 3), (1.0, 0.6, 0)])
def test_sampling_is_reproducible_truncated_and_logprobs_match_a_forward(tiny, temperature, top_p, top_k):
    model, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    sampling = SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=12, n=3, seed=3)
    out = native.generate(prompts, sampling)
    assert [(c.token_ids, c.logprobs) for c in native.generate(prompts, sampling)] == \
        [(c.token_ids, c.logprobs) for c in out]
    other_seed = native.generate(prompts, SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k,
                                                         max_new_tokens=12, n=3, seed=4))
    assert [c.token_ids for c in other_seed] != [c.token_ids for c in out]
    assert len({tuple(c.token_ids) for c in out if c.prompt_index == 1}) > 1  # the samples of a prompt differ
    for c in out:
        logprobs = _teacher_forced_logprobs(model, tokenizer, prompts[c.prompt_index], c.token_ids, temperature)
        chosen = logprobs.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(c.logprobs), chosen, atol=1e-4, rtol=0)
        allowed = logit_floors(logprobs, top_k, top_p)  # same cut on log-probs as on logits / T (shift-invariant)
        if allowed is not None:
            assert bool((chosen >= allowed - 1e-5).all()), "a token outside top-k / top-p was emitted"


def test_top_k_one_is_greedy_and_floors_match_the_definition():
    scaled = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 0.0, 5.0, 4.9]])
    torch.testing.assert_close(logit_floors(scaled, 2, 1.0), torch.tensor([2.0, 4.9]))
    probs = scaled.softmax(-1)
    # top-p 0.5: the most likely token alone has mass >= 0.5 in row 0 (0.66) but not in row 1 (0.52 -> just it)
    assert probs[0, 0] > 0.5 and probs[1, 2] > 0.5
    torch.testing.assert_close(logit_floors(scaled, 0, 0.5), torch.tensor([3.0, 5.0]))
    torch.testing.assert_close(logit_floors(scaled, 0, 0.9), torch.tensor([1.0, 4.9]))
    tokens, _ = Sampler(use_triton=False)(scaled, SamplingParams(temperature=1.0, top_k=1), [1, 2], [5, 5])
    assert tokens == [0, 2]


def test_seeded_sample_does_not_depend_on_batch_composition(tiny):
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    sampling = SamplingParams(temperature=1.0, max_new_tokens=10, n=2, seed=11)
    first = native.generate(prompts[:1], sampling)
    with_others = native.generate(prompts, sampling)  # a sample's noise depends on (seed, prompt, sample) only
    for alone, batched in zip(first, with_others[:2]):
        assert alone.token_ids == batched.token_ids
        assert alone.logprobs == pytest.approx(batched.logprobs, abs=1e-4)  # batch-size rounding only


def test_stop_tokens_end_sequences_and_ignore_eos_does_not(tiny):
    _, tokenizer, path = tiny
    prompts = _prompts(tokenizer)
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    free = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16, stop_token_ids=[0]))
    target = next(c for c in free if len(c.token_ids) >= 6 and 0 not in c.token_ids)
    stop = target.token_ids[5]
    stopped = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16, stop_token_ids=[stop]))
    c = stopped[target.prompt_index]
    assert c.token_ids == target.token_ids[:target.token_ids.index(stop) + 1] and c.finish_reason == "stop"
    for other in stopped:
        assert (other.finish_reason == "stop") == (stop in other.token_ids)
        assert stop not in other.token_ids[:-1]
    endless = NativeGenerator(path, config=EngineConfig(**SMALL, ignore_eos=True))
    for c in endless.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16, stop_token_ids=[stop])):
        assert len(c.token_ids) == 16 and c.finish_reason == "length"


def test_live_model_weight_update_is_seen(tiny):
    _, tokenizer, path = tiny
    live = load_model(path, device="cpu")
    generator = make_generator((live, tokenizer), backend="native", **SMALL)
    prompts = _prompts(tokenizer)
    sampling = SamplingParams(temperature=0, max_new_tokens=12)
    before = generator.generate(prompts, sampling)
    with torch.no_grad():  # an "optimiser step": in place, as AdamW does
        live.model.layers[1].mlp.up_proj.weight.mul_(-1.5)
        live.model.layers[0].self_attn.q_proj.bias.add_(0.5)
    after = generator.generate(prompts, sampling)
    assert [c.token_ids for c in after] != [c.token_ids for c in before]
    _assert_follows(live, tokenizer, generator, prompts, after, sampling)
    # parameters replaced by other tensors (not updated in place) are found too
    state = {name: tensor.clone() for name, tensor in live.state_dict().items()}
    state["model.layers.0.mlp.down_proj.weight"].mul_(2.0)
    live.load_state_dict(state, assign=True)
    replaced = generator.generate(prompts, sampling)
    assert [c.token_ids for c in replaced] != [c.token_ids for c in after]
    _assert_follows(live, tokenizer, generator, prompts, replaced, sampling)


def _assert_follows(live, tokenizer, generator, prompts, completions, sampling) -> None:
    """The completions are the live model's greedy ones, with its log-probs."""
    for c in completions:
        assert c.token_ids == _reference_greedy(live, tokenizer, prompts[c.prompt_index], 12,
                                                generator.stop_ids(sampling))
        expected = _teacher_forced_logprobs(live, tokenizer, prompts[c.prompt_index], c.token_ids, 1.0)
        torch.testing.assert_close(torch.tensor(c.logprobs), expected.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0],
                                   atol=1e-4, rtol=0)


def test_make_generator_and_input_errors(tiny):
    _, tokenizer, path = tiny
    assert "native" in BACKENDS
    generator = make_generator(path, backend="native", device="cpu", batch_size=3, block_size=8)
    assert generator.engine.config.max_num_seqs == 3 and generator.engine.model.model.norm.weight.dtype == torch.float32
    assert generator.generate([], SamplingParams()) == []
    with pytest.raises(ValueError, match="empty prompt"):
        generator.generate([""], SamplingParams())
    with pytest.raises(ValueError, match="max_model_len"):
        make_generator(path, backend="native", max_model_len=8, **SMALL).generate(_prompts(tokenizer)[1:2],
                                                                                 SamplingParams(max_new_tokens=2))
    with pytest.raises(ValueError, match="extra"):
        make_generator(path, backend="native", warp_speed=True)


def test_kv_cache_manager_shares_full_prompt_blocks_and_frees_them():
    kv = KVCacheManager(num_blocks=10, block_size=4, max_seqs=3, max_blocks_per_seq=5)
    a = Sequence(0, 0, list(range(10)), 10, 5, seed=0)
    b = Sequence(0, 1, list(range(10)), 10, 5, seed=1)
    c = Sequence(1, 0, list(range(8)), 8, 5, seed=2)  # 8 tokens: the block of its last token is never shared
    for seq in (a, b, c):
        kv.admit(seq)
    assert a.num_cached_tokens == 0 and b.num_cached_tokens == 8 and c.num_cached_tokens == 4
    assert b.block_ids[:2] == a.block_ids[:2] and b.block_ids[2] != a.block_ids[2]
    assert c.block_ids[0] == a.block_ids[0] and c.block_ids[1] != a.block_ids[1]
    assert kv.num_free_blocks == 10 - 3 - 1 - 1
    assert kv.table[b.row, :3].tolist() == b.block_ids and set(kv.take_dirty_rows()) == {a.row, b.row, c.row}
    for seq in (a, b, c):
        kv.release(seq)
    assert kv.num_free_blocks == 10 and len(kv.free_rows) == 3
    again = Sequence(0, 2, list(range(10)), 10, 5, seed=3)
    assert kv.cached_prefix_len(again) == 8  # freed blocks keep their content until reused
    kv.reset()
    assert kv.cached_prefix_len(again) == 0
