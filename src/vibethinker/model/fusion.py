"""Checkpoint fusion (SPEC 2.2 step 4): ``M_merge = sum_i w_i * M_i``, parameter by parameter.

Contract:
- Inputs are Hugging Face checkpoint folders with safetensors weights, single-file (``model.safetensors``) or
  sharded (``model.safetensors.index.json``). They must share the architecture (the shape-defining ``config.json``
  fields), the tensor names, shapes and dtypes, and the tokenizer (vocabulary, merges, added and special tokens,
  chat template). Any difference is refused with an error naming both folders and what differs.
- Weights: ``w_i >= 0`` and ``sum w_i = 1`` within 1e-6; ``None`` means uniform ``1/N`` as in the 1.5B report.
- Streaming: tensors are read lazily (memory-mapped ``safe_open``) one name at a time, one input at a time, summed
  in float32 (float64 stays float64) and cast back to the stored dtype. Peak memory is one output shard plus one
  tensor per input, never N models. Non-floating tensors are not averaged: they must be equal and are copied.
- Output is a normal HF checkpoint with the first input's sharding layout, config, generation config, tokenizer
  files and chat template, plus ``fusion.json`` (inputs, weights, date). It is written into a temporary sibling
  folder and renamed into place, so a failed fusion leaves no partial output.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vibethinker.utils.files import atomic_folder, read_json, write_json_atomic

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
WEIGHT_SUM_TOLERANCE = 1e-6

# config.json fields that fix tensor shapes or change what the same tensors compute; absent in both is equal.
ARCHITECTURE_FIELDS = (
    "model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "head_dim", "intermediate_size", "vocab_size", "tie_word_embeddings", "hidden_act", "rope_parameters",
    "rope_theta", "rope_scaling", "attention_bias", "layer_types", "num_experts", "num_local_experts",
    "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "text_config",
)
# tokenizer.json parts that decide how text maps to ids; "version", "truncation" and "padding" do not.
TOKENIZER_JSON_FIELDS = ("normalizer", "pre_tokenizer", "post_processor", "decoder", "added_tokens")
SPECIAL_TOKEN_FIELDS = (
    "bos_token", "eos_token", "pad_token", "unk_token", "extra_special_tokens", "additional_special_tokens",
    "add_bos_token", "add_eos_token",
)
# Tokenizer files without a tokenizer.json (slow tokenizers), compared byte for byte.
SLOW_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json")
COPIED_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "chat_template.jinja", "chat_template.json", *SLOW_TOKENIZER_FILES,
)
COPIED_FOLDERS = ("additional_chat_templates",)


@dataclass(frozen=True)
class WeightsLayout:
    """Where each tensor of a checkpoint lives, and its (safetensors dtype, shape), read from headers only."""

    folder: Path
    weight_map: dict[str, str]
    specs: dict[str, tuple[str, tuple[int, ...]]]
    sharded: bool

    def shard_names(self) -> list[str]:
        return list(dict.fromkeys(self.weight_map.values()))


def fuse_checkpoints(checkpoints: list[str | os.PathLike], weights: list[float] | None,
                     out_dir: str | os.PathLike) -> Path:
    """Write ``sum_i weights[i] * checkpoints[i]`` as a new HF checkpoint at ``out_dir`` and return its path."""
    folders = [Path(path) for path in checkpoints]
    if not folders:
        raise ValueError("fusion needs at least one checkpoint")
    weights = resolve_weights(weights, folders)
    out_dir = Path(out_dir)
    for folder in folders:
        if folder.resolve() == out_dir.resolve():
            raise ValueError(f"{out_dir}: the output folder is one of the inputs; choose another --out")
    layouts = [read_layout(folder) for folder in folders]
    for other in layouts[1:]:
        check_compatible(layouts[0], other)

    with atomic_folder(out_dir) as tmp:
        _write_fused_weights(layouts, weights, tmp)
        _copy_support_files(folders[0], tmp)
        write_json_atomic(tmp / "fusion.json", {
            "spec": "SPEC 2.2 step 4: M_merge = sum_i w_i * M_i",
            "inputs": [str(folder.resolve()) for folder in folders],
            "weights": weights,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
    return out_dir


def resolve_weights(weights: list[float] | None, folders: list[Path]) -> list[float]:
    """Validate the mixing weights (SPEC 2.2: w_i >= 0, sum 1); ``None`` gives the uniform 1/N."""
    if weights is None:
        return [1.0 / len(folders)] * len(folders)
    weights = [float(w) for w in weights]
    if len(weights) != len(folders):
        raise ValueError(f"weights: {len(weights)} given for {len(folders)} checkpoints; give one per checkpoint")
    for folder, weight in zip(folders, weights):
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weights: {weight} for {folder} is not a finite number >= 0 (SPEC 2.2: w_i >= 0)")
    total = math.fsum(weights)
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ValueError(f"weights: {weights} sum to {total!r}, not 1 (within {WEIGHT_SUM_TOLERANCE})")
    return weights


def read_layout(folder: Path) -> WeightsLayout:
    """Tensor locations, dtypes and shapes of a checkpoint, from the index and the safetensors headers."""
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder}: not a Hugging Face checkpoint folder (no config.json)")
    if not (folder / "tokenizer_config.json").exists():
        # The fused model is sampled from next (RL, eval), so it must carry a tokenizer and chat template.
        raise FileNotFoundError(f"{folder}: no tokenizer_config.json (fusion needs checkpoints saved with their "
                                "tokenizer)")
    index_path = folder / INDEX_FILE
    if index_path.exists():
        weight_map = read_json(index_path).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise ValueError(f"{index_path}: field 'weight_map' must be a non-empty mapping of tensor name to file")
        sharded = True
    elif (folder / SINGLE_FILE).exists():
        with _open_safetensors(folder / SINGLE_FILE) as handle:
            weight_map = {name: SINGLE_FILE for name in handle.keys()}
        sharded = False
    else:
        raise FileNotFoundError(f"{folder}: no {SINGLE_FILE} or {INDEX_FILE} (only safetensors checkpoints can be "
                                "fused)")
    specs: dict[str, tuple[str, tuple[int, ...]]] = {}
    for shard in dict.fromkeys(weight_map.values()):
        if not (folder / shard).exists():
            raise FileNotFoundError(f"{index_path}: shard {shard} is listed in 'weight_map' but missing")
        with _open_safetensors(folder / shard) as handle:
            stored = set(handle.keys())
            for name in (n for n, f in weight_map.items() if f == shard):
                if name not in stored:
                    raise ValueError(f"{index_path}: 'weight_map' puts {name} in {shard}, which does not hold it")
                tensor_slice = handle.get_slice(name)
                specs[name] = (tensor_slice.get_dtype(), tuple(tensor_slice.get_shape()))
    return WeightsLayout(folder, weight_map, specs, sharded)


def _open_safetensors(path: Path):
    try:
        return safe_open(str(path), framework="pt")
    except SafetensorError as exc:
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from exc


def check_compatible(first: WeightsLayout, other: WeightsLayout) -> None:
    """Refuse to fuse checkpoints of different architecture, tensors or tokenizer (SPEC 2.2 step 4)."""
    a, b = first.folder, other.folder
    prefix = f"cannot fuse {a} and {b}"
    config_a, config_b = read_json(a / "config.json"), read_json(b / "config.json")
    arch = [f"{key}: {config_a.get(key)!r} vs {config_b.get(key)!r}"
            for key in ARCHITECTURE_FIELDS if config_a.get(key) != config_b.get(key)]
    if arch:
        raise ValueError(f"{prefix}: architecture differs (config.json) - " + "; ".join(arch))
    tensors = _tensor_differences(first.specs, other.specs)
    if tensors:
        raise ValueError(f"{prefix}: tensors differ - " + "; ".join(tensors))
    tok_a, tok_b = tokenizer_fingerprint(a), tokenizer_fingerprint(b)
    tokenizer = [key for key in dict.fromkeys([*tok_a, *tok_b]) if tok_a.get(key) != tok_b.get(key)]
    if tokenizer:
        raise ValueError(f"{prefix}: tokenizer differs in " + ", ".join(tokenizer))


def _tensor_differences(specs_a: dict, specs_b: dict, shown: int = 5) -> list[str]:
    problems = []
    only_a, only_b = sorted(specs_a.keys() - specs_b.keys()), sorted(specs_b.keys() - specs_a.keys())
    if only_a:
        problems.append(f"only in the first: {', '.join(only_a[:shown])}" + (" ..." if len(only_a) > shown else ""))
    if only_b:
        problems.append(f"only in the second: {', '.join(only_b[:shown])}" + (" ..." if len(only_b) > shown else ""))
    mismatched = [name for name in sorted(specs_a.keys() & specs_b.keys()) if specs_a[name] != specs_b[name]]
    for name in mismatched[:shown]:
        (dtype_a, shape_a), (dtype_b, shape_b) = specs_a[name], specs_b[name]
        problems.append(f"{name}: {dtype_a} {list(shape_a)} vs {dtype_b} {list(shape_b)}")
    if len(mismatched) > shown:
        problems.append(f"... {len(mismatched) - shown} more")
    return problems


def tokenizer_fingerprint(folder: Path) -> dict[str, Any]:
    """What decides tokenisation and prompt rendering, keyed by where it comes from; paths and versions left out."""
    fingerprint: dict[str, Any] = {}
    fast = folder / "tokenizer.json"
    if fast.exists():
        data = read_json(fast)
        for key, value in (data.get("model") or {}).items():
            fingerprint[f"tokenizer.json model.{key}"] = value
        for key in TOKENIZER_JSON_FIELDS:
            fingerprint[f"tokenizer.json {key}"] = data.get(key)
    else:
        for name in SLOW_TOKENIZER_FILES:
            if (folder / name).exists():
                fingerprint[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    config_path = folder / "tokenizer_config.json"
    config = read_json(config_path) if config_path.exists() else {}
    for key in SPECIAL_TOKEN_FIELDS:
        fingerprint[f"tokenizer_config.json {key}"] = config.get(key)
    fingerprint["chat template"] = _chat_template(folder, config)
    return fingerprint


def _chat_template(folder: Path, tokenizer_config: dict) -> Any:
    """The template transformers would use: chat_template.jinja, then chat_template.json, then tokenizer_config."""
    if (folder / "chat_template.jinja").exists():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "chat_template.json").exists():
        return read_json(folder / "chat_template.json").get("chat_template")
    return tokenizer_config.get("chat_template")


def _write_fused_weights(layouts: list[WeightsLayout], weights: list[float], out: Path) -> None:
    first = layouts[0]
    total_size = 0
    with ExitStack() as stack:
        handles: list[dict[str, Any]] = [{} for _ in layouts]

        def handle(i: int, name: str):
            shard = layouts[i].weight_map[name]
            if shard not in handles[i]:
                handles[i][shard] = stack.enter_context(_open_safetensors(layouts[i].folder / shard))
            return handles[i][shard]

        for shard in first.shard_names():
            names = [name for name, file in first.weight_map.items() if file == shard]
            fused = {name: _weighted_sum(name, [handle(i, name) for i in range(len(layouts))], weights, layouts)
                     for name in names}
            total_size += sum(t.numel() * t.element_size() for t in fused.values())
            save_file(fused, str(out / shard), metadata={"format": "pt"})
            del fused  # one output shard in memory at a time
    if first.sharded:
        write_json_atomic(out / INDEX_FILE, {"metadata": {"total_size": total_size}, "weight_map": first.weight_map})


def _weighted_sum(name: str, sources: list, weights: list[float], layouts: list[WeightsLayout]) -> torch.Tensor:
    """``sum_i w_i * sources[i][name]`` with at most one input tensor materialised at a time."""
    head = sources[0].get_tensor(name)
    dtype = head.dtype
    if not (dtype.is_floating_point or dtype.is_complex):
        # Integer/bool buffers (masks, ids) have no meaningful average; fusing is only sound when they agree.
        for source, layout in zip(sources[1:], layouts[1:]):
            if not torch.equal(head, source.get_tensor(name)):
                raise ValueError(f"cannot fuse {layouts[0].folder} and {layout.folder}: non-floating tensor {name} "
                                 f"({dtype}) differs, and integer tensors cannot be averaged")
        return head.contiguous()
    accumulator_dtype = torch.promote_types(dtype, torch.float32)
    accumulator = head.to(accumulator_dtype) * weights[0]
    del head
    for source, weight in zip(sources[1:], weights[1:]):
        accumulator.add_(source.get_tensor(name).to(accumulator_dtype), alpha=weight)
    return accumulator.to(dtype).contiguous()


def _copy_support_files(source: Path, out: Path) -> None:
    for name in COPIED_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, out / name)
    for name in COPIED_FOLDERS:
        if (source / name).is_dir():
            shutil.copytree(source / name, out / name)
