"""Load any local HF checkpoint (the tiny model or a real one) and save checkpoints atomically."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from vibethinker.model.window import RopeScaling, apply_rope_scaling, current_stage_model
from vibethinker.utils.files import atomic_folder, replace_dir  # noqa: F401 - replace_dir: kept importable from here


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """fp32 on CPU (bf16 matmuls are slow there), bf16 on GPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _check_dir(path: str | os.PathLike, marker: str = "config.json") -> Path:
    path = Path(path)
    if not (path / marker).exists():
        raise FileNotFoundError(f"{path}: not a Hugging Face checkpoint folder (no {marker})")
    return path


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(_check_dir(path, "tokenizer_config.json"))
    if tokenizer.chat_template is None:
        raise ValueError(f"{path}: the tokenizer has no chat template; prompts are always rendered through one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str | os.PathLike, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None, rope_scaling: RopeScaling | None = None) -> PreTrainedModel:
    """The checkpoint at ``path``; ``rope_scaling`` (default: the running stage's, see
    :func:`~vibethinker.model.window.stage_model`) is written into its config before the model is built, so its
    rotary embedding is YaRN's and a checkpoint saved from it keeps the override in ``config.json``."""
    device = torch.device(device) if device is not None else default_device()
    rope_scaling = rope_scaling or current_stage_model().rope_scaling
    config = AutoConfig.from_pretrained(_check_dir(path))
    if rope_scaling is not None:
        apply_rope_scaling(config, rope_scaling)
    model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype or default_dtype(device),
                                                 attn_implementation="sdpa")
    return model.to(device)


def save_pretrained_atomic(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None,
                           out_dir: str | os.PathLike, extra_files: dict[str, bytes] | None = None) -> Path:
    """Write model (+ tokenizer) into a temporary sibling folder, then swap it in with a rename.

    A crash at any point leaves either the previous checkpoint or none, never a half-written one.
    """
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        for name, payload in (extra_files or {}).items():
            (tmp / name).write_bytes(payload)
    return out_dir
