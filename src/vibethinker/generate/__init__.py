"""Generation backends behind one interface (:class:`Generator`), so evaluation and RL can swap backends freely.

Only ``"hf"`` (``transformers`` ``model.generate``) exists now; a faster ``"native"`` backend will plug in here.
"""

from __future__ import annotations

import os
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from vibethinker.generate.hf import HFGenerator
from vibethinker.generate.types import Completion, FinishReason, Generator, SamplingParams

BACKENDS = ("hf",)

ModelSource = str | os.PathLike | tuple[PreTrainedModel, PreTrainedTokenizerBase]


def make_generator(model_or_path: ModelSource, backend: str = "hf", **kw: Any) -> Generator:
    """A generator for a checkpoint folder or an already loaded ``(model, tokenizer)`` pair.

    ``device`` / ``dtype`` in ``kw`` apply when loading from a path; the rest (e.g. ``batch_size``) go to the backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}; choices: {', '.join(BACKENDS)}")
    device, dtype = kw.pop("device", None), kw.pop("dtype", None)
    if isinstance(model_or_path, tuple):
        model, tokenizer = model_or_path
    elif isinstance(model_or_path, (str, os.PathLike)):
        from vibethinker.model import load_model, load_tokenizer

        model, tokenizer = load_model(model_or_path, device=device, dtype=dtype), load_tokenizer(model_or_path)
    else:
        raise TypeError(f"expected a checkpoint path or a (model, tokenizer) pair, got {type(model_or_path).__name__}")
    return HFGenerator(model, tokenizer, **kw)


__all__ = ["BACKENDS", "Completion", "FinishReason", "Generator", "HFGenerator", "ModelSource", "SamplingParams",
           "make_generator"]
