"""HFGenerator on a tiny random Qwen2: batching/padding invariance, log-probs, stopping, seeding, validation."""

from __future__ import annotations

import pytest
import torch

from vibethinker.generate import BACKENDS, Completion, Generator, HFGenerator, SamplingParams, make_generator
from vibethinker.model import TinyModelConfig, build_tiny_model

QUESTIONS = ["hi", "What is 3 plus 4? Think about it carefully before answering.", "x = 2", "def f(x): return x + 1"]


@pytest.fixture(scope="module")
def tiny(varied_tiny):
    return varied_tiny


def _prompts(tokenizer) -> list[str]:
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            for q in QUESTIONS]


def test_shapes_order_and_text(tiny):
    model, tokenizer, _ = tiny
    gen = HFGenerator(model, tokenizer, batch_size=5)
    assert isinstance(gen, Generator)
    out = gen.generate(_prompts(tokenizer), SamplingParams(max_new_tokens=12, n=3, seed=0))
    assert [(c.prompt_index, c.sample_index) for c in out] == [(p, s) for p in range(4) for s in range(3)]
    stops = set(gen.stop_ids(SamplingParams()))
    for c in out:
        assert isinstance(c, Completion) and 1 <= len(c.token_ids) <= 12 and len(c.logprobs) == len(c.token_ids)
        assert all(lp <= 0 for lp in c.logprobs)
        assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
        assert not stops & set(c.token_ids[:-1])  # truncated after the first stop token
        if c.finish_reason == "stop":
            assert c.token_ids[-1] in stops
        else:
            assert c.finish_reason == "length" and len(c.token_ids) == 12


def test_greedy_batched_equals_single_prompt_generate(tiny):
    model, tokenizer, _ = tiny
    prompts = _prompts(tokenizer)
    batched = HFGenerator(model, tokenizer, batch_size=8).generate(prompts, SamplingParams(temperature=0,
                                                                                           max_new_tokens=16, n=2))
    stops = HFGenerator(model, tokenizer).stop_ids(SamplingParams())
    for c in batched:
        ids = tokenizer(prompts[c.prompt_index], add_special_tokens=False, return_tensors="pt")["input_ids"]
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=16,
                             eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
        cut = next((i + 1 for i, t in enumerate(ref) if t in stops), len(ref))
        assert c.token_ids == ref[:cut]
    assert len({tuple(c.token_ids) for c in batched}) > 1  # outputs really depend on the prompt
    single = HFGenerator(model, tokenizer, batch_size=1).generate(prompts, SamplingParams(temperature=0,
                                                                                          max_new_tokens=16))
    assert [c.token_ids for c in single] == [c.token_ids for c in batched[::2]]


@pytest.mark.parametrize("temperature,top_p,top_k", [(0.7, 0.9, 20), (0.0, 1.0, 0)])
def test_logprobs_match_teacher_forcing(tiny, temperature, top_p, top_k):
    model, tokenizer, _ = tiny
    prompts = _prompts(tokenizer)
    out = HFGenerator(model, tokenizer, batch_size=3).generate(
        prompts, SamplingParams(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=10, n=2, seed=3))
    scale = temperature or 1.0  # greedy reports temperature-1 log-probs
    for c in out:
        prompt_ids = tokenizer(prompts[c.prompt_index], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + c.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt_ids) - 1:-1].float()
        expected = torch.log_softmax(logits / scale, dim=-1).gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=0)


def test_stop_token_truncates_and_sets_reason(tiny):
    model, tokenizer, _ = tiny
    gen = HFGenerator(model, tokenizer, batch_size=4)
    prompts = _prompts(tokenizer)
    free = gen.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16, stop_token_ids=[0]))
    target = next(c for c in free if len(c.token_ids) >= 6 and 0 not in c.token_ids)
    stop = target.token_ids[5]
    first = target.token_ids.index(stop)
    stopped = gen.generate(prompts, SamplingParams(temperature=0, max_new_tokens=16, stop_token_ids=[stop]))
    c = stopped[target.prompt_index]
    assert c.token_ids == target.token_ids[:first + 1]  # the stop token itself is kept (RL trains on it)
    assert c.logprobs == pytest.approx(target.logprobs[:first + 1], abs=1e-5)
    assert c.finish_reason == "stop"
    for other in stopped:
        assert (other.finish_reason == "stop") == (stop in other.token_ids)


def test_special_stop_token_is_kept_in_ids_but_not_in_text(tiny):
    model, tokenizer, _ = tiny
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    model_copy = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=64, intermediate_size=128,
                                                             num_hidden_layers=2, num_attention_heads=4,
                                                             num_key_value_heads=2, tie_word_embeddings=False))
    head = torch.nn.Linear(64, len(tokenizer), bias=True)
    with torch.no_grad():  # make <|im_end|> the certain next token
        head.weight.zero_()
        head.bias.zero_()
        head.bias[eos] = 10.0
    model_copy.lm_head = head
    gen = HFGenerator(model_copy, tokenizer)
    (c,) = gen.generate(_prompts(tokenizer)[:1], SamplingParams(temperature=0, max_new_tokens=5))
    assert c.token_ids == [eos] and c.finish_reason == "stop" and c.text == ""


def test_max_new_tokens_gives_length(tiny):
    model, tokenizer, _ = tiny
    out = HFGenerator(model, tokenizer).generate(_prompts(tokenizer), SamplingParams(max_new_tokens=4, n=2, seed=1,
                                                                                     stop_token_ids=[0]))
    for c in out:
        assert 0 not in c.token_ids and len(c.token_ids) == 4 and c.finish_reason == "length"


def test_seeding_is_reproducible_and_keeps_global_rng(tiny):
    model, tokenizer, _ = tiny
    gen = HFGenerator(model, tokenizer, batch_size=3)
    prompts = _prompts(tokenizer)

    def run(seed):
        return [(c.token_ids, c.logprobs) for c in gen.generate(prompts, SamplingParams(max_new_tokens=8, n=2,
                                                                                        seed=seed))]

    state = torch.get_rng_state()
    first = run(11)
    assert torch.equal(state, torch.get_rng_state())
    assert run(11) == first
    assert run(12) != first


def test_invalid_sampling_params():
    for kwargs in ({"temperature": -0.1}, {"temperature": float("nan")}, {"top_p": 0.0}, {"top_p": 1.5},
                   {"top_k": -1}, {"max_new_tokens": 0}, {"n": 0}, {"stop_token_ids": []}, {"seed": 1.5}):
        with pytest.raises(ValueError):
            SamplingParams(**kwargs)
    with pytest.raises(ValueError, match="top_p"):
        SamplingParams(top_p=2)


def test_make_generator(tiny):
    model, tokenizer, path = tiny
    with pytest.raises(ValueError, match="hf"):
        make_generator((model, tokenizer), backend="vllm")
    assert "hf" in BACKENDS
    from_path = make_generator(path, device="cpu", batch_size=2)
    from_pair = make_generator((model, tokenizer))
    sampling = SamplingParams(temperature=0, max_new_tokens=6)
    prompts = _prompts(tokenizer)[:2]
    assert [c.token_ids for c in from_path.generate(prompts, sampling)] == \
        [c.token_ids for c in from_pair.generate(prompts, sampling)]


def test_training_mode_is_restored_and_empty_prompt_rejected(tiny):
    model, tokenizer, _ = tiny
    gen = HFGenerator(model, tokenizer)
    model.train()
    try:
        gen.generate(_prompts(tokenizer)[:1], SamplingParams(temperature=0, max_new_tokens=2))
        assert model.training
    finally:
        model.eval()
    assert gen.generate([], SamplingParams()) == []
    with pytest.raises(ValueError, match="empty prompt"):
        gen.generate([""], SamplingParams())


def test_decode_texts_is_the_tokenizers_own_decode(tiny):
    """One batched call of the Rust backend gives exactly ``tokenizer.decode`` (special tokens skipped, multi-byte
    characters split across tokens); a tokenizer that cleans up spaces decodes one sequence at a time."""
    import copy

    from vibethinker.generate.types import decode_texts

    _, tokenizer, _ = tiny
    texts = ["What is 3 plus 4? The answer is 7.", "caf\u00e9 \u2014 \u03c0 \u2248 3.14 \U0001F600", " x  = 2 ,"]
    sequences = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    sequences += [[tokenizer.eos_token_id] + sequences[0], sequences[1][:3], [], list(range(0, 300, 7))]
    expected = [tokenizer.decode(ids, skip_special_tokens=True) for ids in sequences]
    assert decode_texts(tokenizer, sequences) == expected
    assert expected[3] == expected[0] and expected[1] == texts[1]
    cleaning = copy.deepcopy(tokenizer)
    cleaning.clean_up_tokenization_spaces = True
    assert decode_texts(cleaning, sequences) == [cleaning.decode(ids, skip_special_tokens=True) for ids in sequences]
