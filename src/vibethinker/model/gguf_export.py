"""Write an HF checkpoint as a GGUF file for llama.cpp, Ollama and LM Studio: weights, hyper-parameters, tokenizer
and chat template, tensor by tensor.

llama.cpp's own converter (``convert_hf_to_gguf.py``) identifies a tokenizer by hashing how it splits a test
string and refuses the ones it does not know, which includes ours; this writer reads the tokenizer's own
definition instead (``tokenizer.json``: a byte-level BPE, its vocabulary, merges, special and added tokens, and
its pre-tokenizer, mapped to the llama.cpp pre-tokenizer of the same regex) and refuses, naming the reason, what it
cannot express.

Layout, as llama.cpp reads it (``gguf`` package constants): ``token_embd``, ``blk.N.{attn_norm, attn_q, attn_k,
attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}`` (+ q/k/v biases for Qwen2, ``attn_q_norm`` /
``attn_k_norm`` for Qwen3), ``output_norm``, ``output`` unless the embeddings are tied. Llama's rotary layout
differs from HF's (interleaved pairs instead of halves), so its q/k rows are permuted as llama.cpp's converter does;
Qwen2 and Qwen3 use the halves layout (NEOX) and are written as they are.

Types: ``f32``, ``f16``, ``bf16``; ``q8_0`` and ``q4_0`` quantise every 2-D weight in blocks of 32 (pure Python,
``gguf.quants``), keep norms and biases in F32, and, for ``q4_0``, keep the embedding and output matrices in Q8_0
(llama-quantize keeps them at higher precision too). A matrix whose rows are not a multiple of 32 falls back to F16.

Memory: one tensor at a time is read (safetensors, memory-mapped), converted and written after the header.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

GGUFType = Literal["f32", "f16", "bf16", "q8_0", "q4_0"]
ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
# pre-tokenizer regexes (tokenizer.json) -> llama.cpp's name for the same split
_QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
                r"|\s+(?!\S)|\s+")
_LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


class ExportError(ValueError):
    """The checkpoint cannot be written as GGUF (the message names what and why)."""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    """llama.cpp's pre-tokenizer for the split ``tokenizer.json`` describes, or ExportError."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = _flatten(pre)
    kinds = [p.get("type") for p in parts]
    regexes = [p.get("pattern", {}).get("Regex") for p in parts if p.get("type") == "Split"]
    if kinds == ["Split", "ByteLevel"] and regexes == [_QWEN2_REGEX]:
        return "qwen2"
    if kinds == ["Split", "ByteLevel"] and regexes == [_LLAMA3_REGEX]:
        return "llama-bpe"
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits") and parts[1].get("use_regex", True):
        return "smollm"
    raise ExportError(f"tokenizer: pre-tokenizer {json.dumps(pre)[:200]} has no llama.cpp equivalent this exporter "
                      "knows (qwen2, llama-bpe, gpt-2, smollm)")


def tokenizer_fields(folder: Path) -> dict:
    """Tokens (by id), token types, merges, special ids and chat template of a byte-level BPE tokenizer."""
    if not (folder / "tokenizer.json").exists():
        raise ExportError(f"{folder}: no tokenizer.json (a fast tokenizer is needed to export the vocabulary)")
    data = _read_json(folder / "tokenizer.json")
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise ExportError(f"{folder}: tokenizer kind {model.get('type')!r} is not supported (byte-level BPE only)")
    if not any(p.get("type") == "ByteLevel" for p in _flatten(data.get("pre_tokenizer") or {})):
        raise ExportError(f"{folder}: a BPE tokenizer without byte-level pre-tokenisation is not supported")
    vocab = dict(model["vocab"])
    added = {t["id"]: t for t in data.get("added_tokens", [])}
    for token in added.values():
        vocab.setdefault(token["content"], token["id"])
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [5] * size  # UNUSED until filled
    for text, index in vocab.items():
        tokens[index], types[index] = text, 1  # NORMAL
    for index, token in added.items():
        types[index] = 3 if token.get("special") else 4  # CONTROL / USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    config = _read_json(folder / "tokenizer_config.json")
    generation = _read_json(folder / "generation_config.json")
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text() if template_file.exists() else config.get("chat_template")

    def token_id(name: str) -> int | None:
        value = config.get(name)
        if isinstance(value, dict):
            value = value.get("content")
        return vocab.get(value) if isinstance(value, str) else None

    eos = token_id("eos_token")
    if eos is None:
        generated = generation.get("eos_token_id")
        eos = generated[0] if isinstance(generated, list) and generated else generated
    return dict(tokens=tokens, types=types, merges=merges, pre=pre_tokenizer_name(data), bos=token_id("bos_token"),
                eos=eos, pad=token_id("pad_token"), template=template)


def _flatten(pre: dict) -> list[dict]:
    return pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]


def _permute_rope(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotary halves layout -> llama.cpp's interleaved pairs (llama.cpp's converter's ``permute``)."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _tensor_name(hf_name: str) -> str | None:
    """GGUF name of an HF parameter (None: not written, e.g. rotary caches)."""
    name = hf_name.removeprefix("model.")
    fixed = {"embed_tokens.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    if name in fixed:
        return fixed[name]
    parts = name.split(".")
    if parts[0] != "layers":
        return None
    layer, rest = parts[1], ".".join(parts[2:])
    mapping = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
               "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
               "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate",
               "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    module, _, kind = rest.rpartition(".")
    if module not in mapping:
        return None
    return f"blk.{layer}.{mapping[module]}.{kind}"


def _ggml_type(name: str, shape: list[int], kind: GGUFType):
    from gguf import GGMLQuantizationType as Q

    if len(shape) < 2 or kind == "f32":
        return Q.F32
    if kind in ("f16", "bf16"):
        return Q.F16 if kind == "f16" else Q.BF16
    if shape[-1] % 32:
        return Q.F16
    if kind == "q4_0" and name in ("token_embd.weight", "output.weight"):
        return Q.Q8_0
    return Q.Q8_0 if kind == "q8_0" else Q.Q4_0


def _encode(array: np.ndarray, qtype) -> np.ndarray:
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import quantize

    if qtype == Q.F32:
        return array.astype(np.float32)
    if qtype == Q.F16:
        return array.astype(np.float16)
    return quantize(array.astype(np.float32), qtype)


def export_gguf(checkpoint: str | os.PathLike, out: str | os.PathLike, kind: GGUFType = "f16") -> Path:
    """Write ``checkpoint`` (an HF folder with safetensors) as the GGUF file ``out`` (atomically) and return it."""
    from gguf import GGUFWriter, LlamaFileType, RopeScalingType
    from safetensors import safe_open

    folder, out = Path(checkpoint), Path(out)
    if kind not in ("f32", "f16", "bf16", "q8_0", "q4_0"):
        raise ExportError(f"--type {kind!r}: choose one of f32, f16, bf16, q8_0, q4_0")
    config = _read_json(folder / "config.json")
    if not config:
        raise ExportError(f"{folder}: not a checkpoint folder (no config.json)")
    model_type = config.get("model_type")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise ExportError(f"{folder}: architecture {model_type!r} is not supported (llama, qwen2, qwen3)")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{folder}: no .safetensors weights")
    tokenizer = tokenizer_fields(folder)
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // heads
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    writer = GGUFWriter(tmp, arch)
    writer.add_name(folder.name)
    writer.add_file_type({"f32": LlamaFileType.ALL_F32, "f16": LlamaFileType.MOSTLY_F16,
                          "bf16": LlamaFileType.MOSTLY_BF16, "q8_0": LlamaFileType.MOSTLY_Q8_0,
                          "q4_0": LlamaFileType.MOSTLY_Q4_0}[kind])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
    writer.add_rope_freq_base(float(theta))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != hidden // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config["vocab_size"])
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "yarn":
        writer.add_rope_scaling_type(RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(rope.get("original_max_position_embeddings")
                                                 or config["max_position_embeddings"] / rope["factor"]))
    elif rope_type == "linear":
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type not in ("default", None):
        raise ExportError(f"{folder}: rope scaling {rope_type!r} is not supported (default, linear, yarn)")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(tokenizer["pre"])
    writer.add_token_list(tokenizer["tokens"])
    writer.add_token_types(tokenizer["types"])
    writer.add_token_merges(tokenizer["merges"])
    for name, value in (("bos", tokenizer["bos"]), ("eos", tokenizer["eos"]), ("pad", tokenizer["pad"])):
        if value is not None:
            getattr(writer, f"add_{name}_token_id")(int(value))
    writer.add_add_bos_token(tokenizer["bos"] is not None and model_type == "llama")
    if tokenizer["template"]:
        writer.add_chat_template(tokenizer["template"])

    tied = config.get("tie_word_embeddings", False)
    plan = []  # (file, framework, hf name, gguf name, ggml type, shape): the header is written before any data
    for file in files:
        framework = "numpy" if _numpy_loadable(file) else "pt"
        with safe_open(file, framework) as handle:
            for hf_name in handle.keys():
                name = _tensor_name(hf_name)
                if name is None or (name == "output.weight" and tied):
                    continue
                shape = list(handle.get_slice(hf_name).get_shape())
                plan.append((file, framework, hf_name, name, _ggml_type(name, shape, kind), shape))
    for _, _, _, name, qtype, shape in plan:  # one encoded row gives the byte layout of the tensor
        encoded = _encode(np.zeros([1] * (len(shape) - 1) + [shape[-1]], dtype=np.float32), qtype)
        byte_shape = list(shape[:-1]) + [encoded.shape[-1]]
        nbytes = int(np.prod(byte_shape)) * encoded.dtype.itemsize
        writer.add_tensor_info(name, byte_shape, encoded.dtype, nbytes, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for file, framework, hf_name, name, qtype, shape in plan:
        array = _load(file, framework, hf_name)
        if model_type == "llama" and name.endswith(("attn_q.weight", "attn_q.bias")):
            array = _permute_rope(array, heads)
        elif model_type == "llama" and name.endswith(("attn_k.weight", "attn_k.bias")):
            array = _permute_rope(array, kv_heads)
        writer.write_tensor_data(_encode(array, qtype))
        del array
    writer.close()
    os.replace(tmp, out)
    return out


def _numpy_loadable(file: Path) -> bool:
    """bf16 tensors cannot be read as numpy arrays: those files are read through torch."""
    with file.open("rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    return all(v.get("dtype") != "BF16" for k, v in header.items() if k != "__metadata__")


def _load(file: Path, framework: str, name: str) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(file, framework) as handle:
        tensor = handle.get_tensor(name)
    return tensor.astype(np.float32) if framework == "numpy" else tensor.float().numpy()
