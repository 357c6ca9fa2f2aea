"""Model stages: ``init_model`` (a tokenizer trained on the data and a randomly initialised tiny Qwen2) and
``import_gguf`` (a pretrained GGUF file as an HF checkpoint)."""

from __future__ import annotations

import json
import math

from vibethinker.data.records import load_problems
from vibethinker.model.checkpoint import save_pretrained_atomic
from vibethinker.model.tiny import build_tiny_model
from vibethinker.model.tokenizer import train_tokenizer
from vibethinker.pipeline import StageContext, require_exists
from vibethinker.prompts import user_message
from vibethinker.recipe import ImportGGUFStage, InitModelStage


def run_init_model_stage(stage: InitModelStage, ctx: StageContext) -> dict:
    source = require_exists(ctx.resolve("tokenizer_data", stage.tokenizer_data), "tokenizer data", stage)
    problems = load_problems(source)
    # Role names as the chat template writes them, so "assistant" becomes one token rather than seven.
    texts = [f"user\n{user_message(p)}" for p in problems]
    texts += [f"assistant\n{trace}" for p in problems for trace in p.traces]
    tokenizer = train_tokenizer(texts, vocab_size=stage.vocab_size)
    model = build_tiny_model(tokenizer, stage.architecture, seed=ctx.recipe.seed)
    save_pretrained_atomic(model, tokenizer, ctx.stage_dir / "model")
    return {"parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer)}


def run_import_gguf_stage(stage: ImportGGUFStage, ctx: StageContext) -> dict:
    from vibethinker.model.gguf_import import import_gguf, resolve_gguf

    source = resolve_gguf(stage.gguf)
    path = import_gguf(source, ctx.stage_dir / "model")
    config = json.loads((path / "config.json").read_text())
    return {"gguf": source.name, "architecture": config["architectures"][0], "vocab_size": config["vocab_size"],
            "parameters": _parameter_count(path)}


def _parameter_count(path) -> int:
    from safetensors import safe_open

    total = 0
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(shard, framework="pt") as handle:
            total += sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return total
