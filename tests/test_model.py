"""Tokenizer round trip through AutoTokenizer, chat template, and tiny-model save/load."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from vibethinker.model import load_model, load_tokenizer
from vibethinker.prompts import render_prompt, render_response

TEXTS = [
    "<think>\n12 + 30 = 42.\n</think>\nThe answer is \\boxed{42}.",
    "Solve for x: 3x - 7 = -1, then x = 2; gcd(48, 36) = 12.",
    "def f(x):\n    return [v * 2 for v in x if v > 3]\n",
    "Unicode too: héllo wörld, ½, 🙂, tabs\tand\r\nCRLF.",
]


def test_tokenizer_round_trips_through_autotokenizer(tiny_checkpoint):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    assert type(tokenizer).__name__ == "Qwen2Tokenizer"
    reloaded = load_tokenizer(tiny_checkpoint)
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert reloaded(text, add_special_tokens=False)["input_ids"] == ids
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode(ids, skip_special_tokens=True) == text  # <think> tags survive


def test_think_tags_and_digits_are_single_tokens(tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    for tag in ("<think>", "</think>"):
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) == 1
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("12345", add_special_tokens=False)["input_ids"])
    assert tokens == list("12345")  # Qwen2's pre-tokenizer isolates every digit


def test_chat_template_prompt_is_prefix_of_training_text(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    problem = addition_problems[0]
    prompt = render_prompt(tokenizer, problem)
    assert prompt.startswith("<|im_start|>user\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "Let's think step by step" in prompt
    prompt2, response = render_response(tokenizer, problem, problem.traces[0])
    assert prompt2 == prompt
    assert response == problem.traces[0] + "<|im_end|>"
    assert tokenizer.eos_token == "<|im_end|>"


def test_tiny_model_save_load_identical(tiny_checkpoint):
    model = load_model(tiny_checkpoint, device="cpu")
    assert isinstance(model, Qwen2ForCausalLM)
    plain = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    torch.testing.assert_close(model(ids).logits, plain(ids).logits)
    assert model.config.vocab_size == len(load_tokenizer(tiny_checkpoint))
