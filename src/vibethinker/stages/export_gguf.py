"""Stage ``export_gguf``: a checkpoint as one GGUF file for llama.cpp / Ollama / LM Studio (SPEC 6, the laptop)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vibethinker.stages.base import StageBase, StageContext, StageKind, require_exists


class ExportGGUFStage(StageBase):
    """Writes ``model.gguf``: weights in ``type``, hyper-parameters, tokenizer and chat template
    (model/gguf_export.py), and beside it an Ollama ``Modelfile`` (model/ollama_modelfile.py)."""

    kind: Literal["export_gguf"]
    model: str = Field(description="The checkpoint: '@stage' or a local HF checkpoint folder.")
    type: Literal["f32", "f16", "bf16", "q8_0", "q4_0"] = Field("q8_0", description=(
        "Tensor type: f32 / f16 / bf16 as they are; q8_0 / q4_0 quantise 2-D weights in blocks of 32 (norms and "
        "biases stay F32; q4_0 keeps the embedding and output matrices in Q8_0). *(our default: q8_0, "
        "llama.cpp's common near-lossless laptop choice)*"))


def run(stage: ExportGGUFStage, ctx: StageContext) -> dict:
    from vibethinker.model.gguf_export import export_gguf
    from vibethinker.model.ollama_modelfile import write_modelfile

    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    path = export_gguf(model, ctx.stage_dir / "model.gguf", stage.type)
    modelfile = write_modelfile(model, path)
    return {"type": stage.type, "file": path.name, "bytes": path.stat().st_size, "modelfile": modelfile.name}


def note(summary: dict) -> str:
    if "bytes" not in summary:
        return ""
    return f"{summary['file']} ({summary['type']}, {summary['bytes'] / 2 ** 20:.1f} MiB)"


KIND = StageKind(ExportGGUFStage, run, writes=("model.gguf", "Modelfile"), artifact="model.gguf", note=note)
