"""Prompt filtering: accuracies from n samples, 0 and 1 dropped, estimates cached per model fingerprint."""

from __future__ import annotations

import pytest

from vibethinker.data.records import Problem
from vibethinker.generate import Completion, SamplingParams
from vibethinker.model import load_tokenizer
from vibethinker.model.fingerprint import model_fingerprint
from vibethinker.rl.filtering import estimate_and_filter


class ScriptedGenerator:
    """Answers problem k correctly in the first ``right[k]`` of its n samples; counts its calls."""

    def __init__(self, tokenizer, right: dict[str, int], cut: set[str] = frozenset()):
        self.tokenizer, self.right, self.cut, self.calls = tokenizer, right, cut, 0

    def generate(self, prompts, sampling):
        self.calls += 1
        out = []
        for pi, prompt in enumerate(prompts):
            key = next(k for k in self.right if f"What is {k}?" in prompt)
            for si in range(sampling.n):
                value = eval(key) if si < self.right[key] else -1  # noqa: S307 - test arithmetic only
                reason = "length" if key in self.cut else "stop"
                out.append(Completion(pi, si, [1], f"<think>x</think> \\boxed{{{value}}}", [0.0], reason))
        return out


def _problems():
    exprs = ["1 + 1", "2 + 2", "3 + 3", "4 + 4"]
    return [Problem(id=f"p{i}", domain="math", subdomain="a", difficulty=1, problem=f"What is {e}?",
                    answer=str(eval(e)), source="t") for i, e in enumerate(exprs)]  # noqa: S307


def test_filter_drops_always_and_never_solved_and_caches(tmp_path, tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    generator = ScriptedGenerator(tokenizer, {"1 + 1": 4, "2 + 2": 0, "3 + 3": 2, "4 + 4": 1})
    sampling = SamplingParams(n=4, seed=0, max_new_tokens=8)
    cache = tmp_path / "acc.jsonl"
    result = estimate_and_filter(generator, _problems(), sampling, "fp-a", cache)
    assert [p.id for p in result.kept] == ["p2", "p3"]
    assert result.dropped_all_correct == ["p0"] and result.dropped_all_wrong == ["p1"]
    assert result.accuracy == {"p0": 1.0, "p1": 0.0, "p2": 0.5, "p3": 0.25}
    again = estimate_and_filter(generator, _problems(), sampling, "fp-a", cache)
    assert generator.calls == 1 and again.cache_hits == 4 and again.accuracy == result.accuracy
    estimate_and_filter(generator, _problems(), sampling, "fp-b", cache)  # another model: sample again
    assert generator.calls == 2


def test_cut_off_responses_count_as_wrong(tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    generator = ScriptedGenerator(tokenizer, {"1 + 1": 4, "2 + 2": 2, "3 + 3": 2, "4 + 4": 2}, cut={"1 + 1"})
    result = estimate_and_filter(generator, _problems(), SamplingParams(n=4, max_new_tokens=8), "fp")
    assert result.accuracy["p0"] == 0.0 and "p0" in result.dropped_all_wrong
    with pytest.raises(ValueError, match="n >= 2"):
        estimate_and_filter(generator, _problems(), SamplingParams(n=1, max_new_tokens=8), "fp")


def test_model_fingerprint_changes_with_weights(tmp_path, tiny_checkpoint):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_checkpoint, copy)
    assert model_fingerprint(copy) == model_fingerprint(tiny_checkpoint)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1000] ^= 0xFF  # inside the head bytes for a tiny model
    (copy / "model.safetensors").write_bytes(bytes(data))
    assert model_fingerprint(copy) != model_fingerprint(tiny_checkpoint)
    with pytest.raises(FileNotFoundError):
        model_fingerprint(tmp_path)


def test_filter_honours_require_think_false(tiny_checkpoint):
    """A chat model answering without a thinking block: with require_think the filter would fail every sample."""

    class NoThink(ScriptedGenerator):
        def generate(self, prompts, sampling):
            return [Completion(c.prompt_index, c.sample_index, c.token_ids, c.text.replace("<think>x</think> ", ""),
                               c.logprobs, c.finish_reason) for c in super().generate(prompts, sampling)]

    generator = NoThink(load_tokenizer(tiny_checkpoint), {"1 + 1": 4, "2 + 2": 0, "3 + 3": 2, "4 + 4": 1})
    sampling = SamplingParams(n=4, max_new_tokens=8)
    strict = estimate_and_filter(generator, _problems(), sampling, "fp")
    assert strict.kept == [] and len(strict.dropped_all_wrong) == 4
    relaxed = estimate_and_filter(generator, _problems(), sampling, "fp", require_think=False)
    assert [p.id for p in relaxed.kept] == ["p2", "p3"] and relaxed.dropped_all_correct == ["p0"]
