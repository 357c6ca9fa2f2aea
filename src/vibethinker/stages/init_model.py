"""Stage ``init_model``: a BPE tokenizer trained on the data and a randomly initialised tiny Qwen2, in ``model/``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vibethinker.model.config import TinyModelConfig
from vibethinker.model.window import ModelWindow
from vibethinker.stages.base import StageBase, StageContext, StageKind, require_exists


class InitModelStage(StageBase):
    """Trains a tokenizer on the training data and writes a randomly initialised tiny Qwen2 checkpoint."""

    kind: Literal["init_model"]
    tokenizer_data: str = Field(description="Problems (with traces) whose text trains the BPE tokenizer.")
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary size including the 256 byte symbols.")
    architecture: TinyModelConfig = Field(default_factory=TinyModelConfig)


def run(stage: InitModelStage, ctx: StageContext) -> dict:
    from vibethinker.data.records import load_problems
    from vibethinker.model.checkpoint import save_pretrained_atomic
    from vibethinker.model.tiny import build_tiny_model
    from vibethinker.model.tokenizer import train_tokenizer
    from vibethinker.prompts import user_message

    source = require_exists(ctx.resolve("tokenizer_data", stage.tokenizer_data), "tokenizer data", stage)
    problems = load_problems(source)
    # Role names as the chat template writes them, so "assistant" becomes one token rather than seven.
    texts = [f"user\n{user_message(p)}" for p in problems]
    texts += [f"assistant\n{trace}" for p in problems for trace in p.traces]
    tokenizer = train_tokenizer(texts, vocab_size=stage.vocab_size)
    model = build_tiny_model(tokenizer, stage.architecture, seed=ctx.seed)
    save_pretrained_atomic(model, tokenizer, ctx.stage_dir / "model")
    return {"parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer)}


def note(summary: dict) -> str:
    if "parameters" not in summary:
        return ""
    return f"{summary['parameters'] / 1e6:.2f}M parameters, vocab {summary['vocab_size']}"


def output_window(stage: InitModelStage, window_of) -> ModelWindow:
    positions = stage.architecture.max_position_embeddings
    return ModelWindow(positions, f"architecture.max_position_embeddings of stage {stage.name!r}", positions)


KIND = StageKind(InitModelStage, run, writes=("model/",), artifact="model", note=note, output_window=output_window)
