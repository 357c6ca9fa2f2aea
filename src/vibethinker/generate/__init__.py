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

BACKENDS = ("auto", "hf", "native")

ModelSource = str | os.PathLike | tuple[PreTrainedModel, PreTrainedTokenizerBase]


def make_generator(model_or_path: ModelSource, backend: str = "auto", **kw: Any) -> Generator:
    """A generator for a checkpoint folder or an already loaded ``(model, tokenizer)`` pair.

    ``"auto"`` (the default) is ``"native"`` when generation runs on a CUDA GPU and the architecture is one the
    engine knows (Qwen2, Qwen3, Llama), else ``"hf"``: transformers stays the reference and the CPU path.

    ``device`` / ``dtype`` in ``kw`` apply when loading from a path; the rest (e.g. ``batch_size``) go to the backend.
    For ``"native"``, ``batch_size`` is the most sequences decoded at once (``EngineConfig.max_num_seqs``) and any
    other :class:`~vibethinker.generate.native.EngineConfig` field may be passed too. The environment variable
    ``VIBETHINKER_KV_CACHE_GIB`` fixes the native KV cache size when several jobs share one GPU.

    ``rope_scaling`` (a :class:`~vibethinker.model.window.RopeScaling`) and ``max_model_len`` left unset take the
    running stage's (:func:`~vibethinker.model.window.stage_model`). ``rope_scaling`` applies to a model loaded from
    a path by either backend; ``max_model_len`` sizes the native engine only (transformers' generate keeps no
    fixed-length cache; the recipe's window check holds both backends to the model's window).
    """
    from vibethinker.model.window import current_stage_model

    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}; choices: {', '.join(BACKENDS)}")
    device, dtype = kw.pop("device", None), kw.pop("dtype", None)
    stage = current_stage_model()
    rope_scaling = kw.pop("rope_scaling", None) or stage.rope_scaling
    max_model_len = kw.pop("max_model_len", None) or stage.max_model_len
    if backend == "auto":
        backend = resolve_auto_backend(model_or_path, device)
    if backend == "native":
        return _make_native(model_or_path, device, dtype, rope_scaling=rope_scaling, max_model_len=max_model_len,
                            **kw)
    if isinstance(model_or_path, tuple):
        model, tokenizer = model_or_path
    elif isinstance(model_or_path, (str, os.PathLike)):
        from vibethinker.model import load_model, load_tokenizer

        model = load_model(model_or_path, device=device, dtype=dtype, rope_scaling=rope_scaling)
        tokenizer = load_tokenizer(model_or_path)
    else:
        raise TypeError(f"expected a checkpoint path or a (model, tokenizer) pair, got {type(model_or_path).__name__}")
    return HFGenerator(model, tokenizer, **kw)


def resolve_auto_backend(model_or_path: ModelSource, device=None) -> str:
    """``"native"`` for a CUDA target with a supported architecture, else ``"hf"``."""
    import torch
    from transformers import AutoConfig

    from vibethinker.generate.native.models import spec_from_config

    if isinstance(model_or_path, tuple):
        target = model_or_path[0].device
    else:
        target = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if target.type != "cuda":
        return "hf"
    try:
        spec_from_config(model_or_path[0].config if isinstance(model_or_path, tuple)
                         else AutoConfig.from_pretrained(model_or_path))
    except ValueError:
        return "hf"
    return "native"


KV_CACHE_ENV = "VIBETHINKER_KV_CACHE_GIB"


def _make_native(model_or_path: ModelSource, device, dtype, batch_size: int | None = None, **kw: Any) -> Generator:
    from vibethinker.generate.native import EngineConfig, NativeGenerator

    if batch_size is not None:
        kw.setdefault("max_num_seqs", batch_size)
    if "kv_cache_gib" not in kw and os.environ.get(KV_CACHE_ENV):
        # Several jobs sharing one GPU: a fixed cache each instead of a fraction of whatever is free at start.
        try:
            kw["kv_cache_gib"] = float(os.environ[KV_CACHE_ENV])
        except ValueError:
            raise ValueError(f"{KV_CACHE_ENV} must be a number of GiB, got {os.environ[KV_CACHE_ENV]!r}") from None
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
           "make_generator", "resolve_auto_backend"]
