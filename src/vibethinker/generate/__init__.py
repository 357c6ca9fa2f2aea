"""Generation backends behind one interface (:class:`Generator`), so evaluation and RL can swap backends freely.

``"hf"``: ``transformers`` ``model.generate``, the reference. ``"native"``: the engine of
:mod:`vibethinker.generate.native` (paged KV cache, continuous batching, CUDA graphs on GPU).
"""

from __future__ import annotations

import os
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from vibethinker.generate.hf import HFGenerator
from vibethinker.generate.types import Completion, FinishReason, Generator, SamplingParams

BACKENDS = ("hf", "native")

ModelSource = str | os.PathLike | tuple[PreTrainedModel, PreTrainedTokenizerBase]


def make_generator(model_or_path: ModelSource, backend: str = "hf", **kw: Any) -> Generator:
    """A generator for a checkpoint folder or an already loaded ``(model, tokenizer)`` pair.

    ``device`` / ``dtype`` in ``kw`` apply when loading from a path; the rest (e.g. ``batch_size``) go to the backend.
    For ``"native"``, ``batch_size`` is the most sequences decoded at once (``EngineConfig.max_num_seqs``) and any
    other :class:`~vibethinker.generate.native.EngineConfig` field may be passed too.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}; choices: {', '.join(BACKENDS)}")
    device, dtype = kw.pop("device", None), kw.pop("dtype", None)
    if backend == "native":
        return _make_native(model_or_path, device, dtype, **kw)
    if isinstance(model_or_path, tuple):
        model, tokenizer = model_or_path
    elif isinstance(model_or_path, (str, os.PathLike)):
        from vibethinker.model import load_model, load_tokenizer

        model, tokenizer = load_model(model_or_path, device=device, dtype=dtype), load_tokenizer(model_or_path)
    else:
        raise TypeError(f"expected a checkpoint path or a (model, tokenizer) pair, got {type(model_or_path).__name__}")
    return HFGenerator(model, tokenizer, **kw)


def _make_native(model_or_path: ModelSource, device, dtype, batch_size: int | None = None, **kw: Any) -> Generator:
    from vibethinker.generate.native import EngineConfig, NativeGenerator

    if batch_size is not None:
        kw.setdefault("max_num_seqs", batch_size)
    if device is not None:
        kw["device"] = str(device)
    if dtype is not None:
        kw["dtype"] = str(dtype).removeprefix("torch.")
    config = EngineConfig(**kw)
    if isinstance(model_or_path, tuple):
        return NativeGenerator(model_or_path[0], model_or_path[1], config=config)
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"expected a checkpoint path or a (model, tokenizer) pair, got {type(model_or_path).__name__}")
    return NativeGenerator(model_or_path, config=config)


__all__ = ["BACKENDS", "Completion", "FinishReason", "Generator", "HFGenerator", "ModelSource", "SamplingParams",
           "make_generator"]
