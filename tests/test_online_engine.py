"""The online engine (requests arriving while others decode) on a tiny model, CPU fp32: per-request settings,
streaming, cancellation, the thinking budget, the prefix cache across requests, refusals; the closed batch that RL
uses is unchanged by it."""

from __future__ import annotations

import threading
import time

import pytest

from vibethinker.generate import SamplingParams
from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.generate.native.online import OnlineEngine, OnlineRequest, QueueFull

SMALL = dict(max_num_seqs=8, block_size=4, device="cpu", dtype="float32")


class Collector:
    """Gathers a request's outputs; ``done`` is set once each of its samples has ended."""

    def __init__(self, n: int):
        self.tokens = [[] for _ in range(n)]
        self.logprobs = [[] for _ in range(n)]
        self.reasons: list[str | None] = [None] * n
        self.chunks = [0] * n
        self.top = [[] for _ in range(n)]
        self.done = threading.Event()

    def __call__(self, out) -> None:
        self.tokens[out.sample_index] += out.token_ids
        self.logprobs[out.sample_index] += out.logprobs
        self.chunks[out.sample_index] += 1
        self.top[out.sample_index] += out.top_logprobs or []
        if out.finish_reason is not None:
            self.reasons[out.sample_index] = out.finish_reason
            if all(r is not None for r in self.reasons):
                self.done.set()


def _prompt_ids(tokenizer, text: str) -> list[int]:
    chat = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(chat, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def served(varied_tiny):
    model, tokenizer, path = varied_tiny
    generator = NativeGenerator(path, config=EngineConfig(**SMALL, decode_window=4))
    return generator, tokenizer


def _submit(online, tokenizer, generator, rid, text, **kwargs):
    budget = kwargs.pop("thinking_budget", None)
    end = kwargs.pop("think_end_ids", ())
    sampling = SamplingParams(**kwargs)
    collector = Collector(sampling.n)
    online.submit(OnlineRequest(rid, _prompt_ids(tokenizer, text), sampling, generator.stop_ids(sampling), collector,
                                thinking_budget=budget, think_end_ids=end))
    return collector


def test_concurrent_requests_each_get_what_they_get_alone(served):
    generator, tokenizer = served
    texts = ["What is 3 plus 4?", "hi", "def f(x): return x + 1", "x = 2", "What is 12 plus 5?"]
    settings = [dict(temperature=0, max_new_tokens=20), dict(temperature=1.0, seed=7, max_new_tokens=16, n=3),
                dict(temperature=0.7, top_k=20, seed=3, max_new_tokens=24, n=2),
                dict(temperature=1.2, top_p=0.8, seed=11, max_new_tokens=12), dict(temperature=0, max_new_tokens=8)]
    alone = []
    for text, kwargs in zip(texts, settings):  # each request as a closed batch of its own
        seqs = generator.engine.generate([_prompt_ids(tokenizer, text)], SamplingParams(**kwargs),
                                         generator.stop_ids(SamplingParams(**kwargs)))
        alone.append([seq.generated_ids for seq in seqs])
    online = OnlineEngine(generator.engine)
    try:
        collectors = []
        for i, (text, kwargs) in enumerate(zip(texts, settings)):
            collectors.append(_submit(online, tokenizer, generator, f"r{i}", text, **kwargs))
            time.sleep(0.01 * i)  # later ones arrive while the first decode
        for collector in collectors:
            assert collector.done.wait(60)
        for collector, expected in zip(collectors, alone):
            assert collector.tokens == expected
            assert all(r in ("stop", "length") for r in collector.reasons)
        assert sum(c.chunks[0] for c in collectors) > len(collectors)  # streamed in pieces, not once at the end
        stats = online.stats()
        assert stats["requests_finished"] == len(texts) and stats["running"] == 0 and stats["waiting"] == 0
        assert stats["kv_cache_usage"] == 0.0
    finally:
        online.close()
    # the closed batch afterwards: as before (RL's path)
    again = generator.engine.generate([_prompt_ids(tokenizer, texts[1])], SamplingParams(**settings[1]),
                                      generator.stop_ids(SamplingParams(**settings[1])))
    assert [seq.generated_ids for seq in again] == alone[1]


def test_cancel_frees_the_blocks_and_the_others_go_on(served):
    generator, tokenizer = served
    online = OnlineEngine(generator.engine)
    try:
        # no stop tokens: only the cancel (or the limit) can end it, however late the cancel comes
        long = Collector(2)
        online.submit(OnlineRequest("long", _prompt_ids(tokenizer, "What is 3 plus 4?"),
                                    SamplingParams(temperature=1.0, seed=1, max_new_tokens=400, n=2), [], long))
        short = _submit(online, tokenizer, generator, "short", "hi", temperature=0, max_new_tokens=30)
        # Cancel once windows are being chained behind each other (not before: on a loaded machine the short
        # request's arrival and stop can keep the first windows unchained, and the cancel must meet a chain).
        deadline = time.monotonic() + 30
        while (sum(map(len, long.tokens)) < 10 or generator.engine.stats["follow_on_windows"] == 0) \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        assert generator.engine.stats["follow_on_windows"] > 0
        online.cancel("long")
        assert long.done.wait(30) and long.reasons == ["abort", "abort"]
        assert 10 <= max(map(len, long.tokens)) < 400
        assert short.done.wait(30) and short.reasons[0] in ("stop", "length")
        online.cancel("unknown")  # ignored
        deadline = time.monotonic() + 10
        while online.stats()["kv_cache_usage"] > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = online.stats()
        assert stats["kv_cache_usage"] == 0.0 and stats["requests_cancelled"] == 1
    finally:
        online.close()


def test_thinking_budget_inserts_the_end_of_reasoning(served):
    generator, tokenizer = served
    end = tuple(tokenizer("</think>", add_special_tokens=False)["input_ids"])
    free = SamplingParams(temperature=1.0, seed=6, max_new_tokens=40, stop_token_ids=[299])
    unbudgeted = generator.engine.generate([_prompt_ids(tokenizer, "What is 3 plus 4?")], free, [299])[0]
    assert end[0] not in unbudgeted.generated_ids[:9 + len(end)]  # the seed's own reasoning does not end early
    online = OnlineEngine(generator.engine)
    try:
        budgeted = _submit(online, tokenizer, generator, "b", "What is 3 plus 4?", temperature=1.0, seed=6,
                           max_new_tokens=40, stop_token_ids=[299], thinking_budget=9, think_end_ids=end)
        at_zero = _submit(online, tokenizer, generator, "z", "hi", temperature=1.0, seed=5, max_new_tokens=10,
                          stop_token_ids=[299], thinking_budget=0, think_end_ids=end)
        assert budgeted.done.wait(30) and at_zero.done.wait(30)
    finally:
        online.close()
    tokens = budgeted.tokens[0]
    # the nine tokens the seed samples anyway, then </think> in place of the next ones, then the answer goes on
    assert tokens[:9] == unbudgeted.generated_ids[:9]
    assert tuple(tokens[9:9 + len(end)]) == end and len(tokens) == 40
    assert budgeted.logprobs[0][9:9 + len(end)] == [0.0] * len(end)
    assert tuple(at_zero.tokens[0][:len(end)]) == end


def test_refusals_and_a_full_queue(served):
    generator, tokenizer = served
    online = OnlineEngine(generator.engine, max_waiting=2)
    try:
        with pytest.raises(ValueError, match="empty prompt"):
            online.submit(OnlineRequest("e", [], SamplingParams(), [0], lambda out: None))
        with pytest.raises(ValueError, match="max_model_len"):
            online.submit(OnlineRequest("w", [5] * (generator.engine.max_model_len + 1), SamplingParams(), [0],
                                        lambda out: None))
        with online._lock:  # hold the loop so the queue cannot drain while it is checked
            online.submit(OnlineRequest("a", [5, 6], SamplingParams(n=2, max_new_tokens=4), [0], Collector(2)))
            with pytest.raises(QueueFull, match="waiting"):
                online.submit(OnlineRequest("b", [5, 6], SamplingParams(max_new_tokens=4), [0], Collector(1)))
    finally:
        online.close()


def test_top_logprobs_are_the_models_distribution(served, varied_tiny):
    import torch

    model, _, _ = varied_tiny
    generator, tokenizer = served
    online = OnlineEngine(generator.engine)
    try:
        collector = Collector(1)
        prompt = _prompt_ids(tokenizer, "What is 3 plus 4?")
        online.submit(OnlineRequest("t", prompt, SamplingParams(temperature=0.8, seed=2, max_new_tokens=12,
                                                                stop_token_ids=[299]), [299], collector,
                                    top_logprobs=3))
        assert collector.done.wait(30)
    finally:
        online.close()
    seq = generator.engine.generate([prompt], SamplingParams(temperature=0.8, seed=2, max_new_tokens=12,
                                                             stop_token_ids=[299]), [299])[0]
    assert collector.tokens[0] == seq.generated_ids
    with torch.no_grad():
        logits = model(torch.tensor([prompt + seq.generated_ids])).logits[0, len(prompt) - 1:-1].float()
    expected = torch.log_softmax(logits / 0.8, dim=-1).topk(3, dim=-1)
    got = collector.top[0]
    assert len(got) == len(seq.generated_ids)
    assert [[t for t, _ in row] for row in got] == expected.indices.tolist()
    torch.testing.assert_close(torch.tensor([[v for _, v in row] for row in got]), expected.values, atol=1e-4, rtol=0)
