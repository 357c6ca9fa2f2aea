"""Shared fixtures: a tiny tokenizer + model built from a few hand-made problems (CPU, seconds)."""

from __future__ import annotations

import os
import random

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from vibethinker.data.records import Problem  # noqa: E402
from vibethinker.utils.runtime import quiet_transformers  # noqa: E402

quiet_transformers()


def make_addition_problems(count: int = 40, seed: int = 0) -> list[Problem]:
    rng = random.Random(seed)
    problems = []
    for i in range(count):
        a, b = rng.randint(1, 30), rng.randint(1, 30)
        problems.append(Problem(
            id=f"add-{i}", domain="math", subdomain="addition", difficulty=1 + i % 5,
            problem=f"What is {a} + {b}?", answer=str(a + b), source="test",
            traces=[f"<think>\n{a} + {b} = {a + b}.\n</think>\nThe answer is \\boxed{{{a + b}}}.",
                    f"<think>\n{b} + {a} = {a + b}.\n</think>\nThe answer is \\boxed{{{a + b}}}."],
        ))
    return problems


MINI_DATA_AND_BASE = """\
  - name: data
    kind: data
    suite: {train_per_subdomain: 12, probe_per_subdomain: 5, test_per_subdomain: 5}
  - name: base
    kind: init_model
    tokenizer_data: "@data/train.jsonl"
    vocab_size: 400
    architecture: {hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2,
                   num_key_value_heads: 1}
"""


def mini_recipe(name: str, stages: str) -> str:
    """A seconds-long recipe: the embedded suite at 5 problems per test cell and a 1-layer model, then ``stages``."""
    return f"name: {name}\nseed: 1\nstages:\n{MINI_DATA_AND_BASE}{stages}"


def make_easy_problems(count: int = 40, seed: int = 0) -> list[Problem]:
    """Sums of two numbers in 1..4: a 2-layer model learns them in seconds, yet still errs when sampling."""
    rng = random.Random(seed)
    problems = []
    for i in range(count):
        a, b = rng.randint(1, 4), rng.randint(1, 4)
        problems.append(Problem(id=f"easy-{i}", domain="math", subdomain="addition", difficulty=1,
                                problem=f"What is {a} + {b}?", answer=str(a + b), source="test",
                                traces=[f"<think>\n{a} + {b} = {a + b}.\n</think>\nThe answer is \\boxed{{{a + b}}}."]))
    return problems


def train_warm_model(root, problems: list[Problem], epochs: float, save_every: int = 0):
    """A tiny model (tokenizer trained on ``problems``) SFT-trained on their traces at 3e-3: the quick way to a
    model that solves some problems some of the time. Returns the SFT folder (``model/``, ``checkpoints/``)."""
    from vibethinker.prompts import user_message
    from vibethinker.sft import SFTConfig, train_sft

    texts = [user_message(p) for p in problems] + [t for p in problems for t in p.traces]
    base = build_tiny_checkpoint(root / "base", texts)
    train_sft(base, problems, SFTConfig(learning_rate=3e-3, min_learning_rate=1e-4, warmup_ratio=0.1, epochs=epochs,
                                        seq_len=128, rows_per_micro_batch=8, packing=False, save_every=save_every,
                                        seed=0, device="cpu"), root / "sft")
    return root / "sft"


@pytest.fixture(scope="session")
def addition_problems() -> list[Problem]:
    return make_addition_problems()


def build_tiny_checkpoint(path, texts: list[str], vocab_size: int = 320, initializer_range: float = 0.02):
    """Train a tokenizer on ``texts``, build a 2-layer random Qwen2 for it, save both to ``path``."""
    from vibethinker.model import TinyModelConfig, build_tiny_model, save_pretrained_atomic, train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    model = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                                        num_attention_heads=4, num_key_value_heads=2,
                                                        initializer_range=initializer_range))
    return save_pretrained_atomic(model, tokenizer, path)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, addition_problems) -> str:
    """A saved random tiny Qwen2 checkpoint with a tokenizer trained on the addition problems."""
    from vibethinker.prompts import user_message

    texts = [user_message(p) for p in addition_problems] + [t for p in addition_problems for t in p.traces]
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", texts))


@pytest.fixture(scope="module")
def varied_tiny(tmp_path_factory):
    """(model, tokenizer, path): a 2-layer Qwen2 whose large init range makes greedy outputs varied, not one token."""
    from vibethinker.model import load_model, load_tokenizer

    texts = [f"What is {i} plus {i * 7 % 13}? The answer is {i + i * 7 % 13}. def f(x): return x + {i}"
             for i in range(300)]
    path = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=300,
                                 initializer_range=0.3)
    return load_model(path, device="cpu"), load_tokenizer(path), path
