"""A model's window (the positions its RoPE covers) and the YaRN override that widens it; a leaf module (pydantic
and the standard library only), so a recipe's window check runs without torch.

Window of a checkpoint (:func:`config_window`): ``max_position_embeddings`` of its ``config.json``; with YaRN rope
parameters ``original_max_position_embeddings * factor`` (vLLM's rule, and what transformers 5 expects
``max_position_embeddings`` to say). Other scaled RoPE types (linear, llama3) keep ``max_position_embeddings``.

:class:`RopeScaling` is a stage's YaRN override (Peng et al. 2023, "YaRN: Efficient Context Window Extension of Large
Language Models"), spelled like transformers' ``rope_parameters``. :func:`apply_rope_scaling` writes it into an HF
config before a model or the native engine is built from it, so training and sampling rotate by the same
frequencies: both compute them with transformers' ``ROPE_INIT_FUNCTIONS["yarn"]``.

The running stage's override and engine length (:func:`stage_model`) reach code that has no field for them (the
SFT and RL trainers load their model with :func:`~vibethinker.model.checkpoint.load_model`, RL samples through
:func:`~vibethinker.generate.make_generator`): both read :func:`current_stage_model` when their caller passes none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

YARN_KEYS = ("factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor")


class RopeScaling(BaseModel):
    """YaRN RoPE scaling, as transformers' ``rope_parameters`` spell it (``rope_theta`` stays the model's)."""

    model_config = ConfigDict(extra="forbid")

    rope_type: Literal["yarn"] = Field(description=(
        "'yarn' (the one type supported: static YaRN, which a fixed RoPE table and the trainer both express)."))
    factor: float = Field(ge=1, description=(
        "Context extension: the window becomes original_max_position_embeddings * factor. Qwen's docs: the target "
        "length over 32,768, e.g. 2.0 for 65,536 tokens."))
    original_max_position_embeddings: int = Field(gt=0, description=(
        "The window the model was pretrained with (its max_position_embeddings; 32,768 for Qwen2.5-Coder-3B); "
        "must equal the checkpoint's."))
    beta_fast: float | None = Field(None, gt=0, description=(
        "Dimensions turning more than this often over the original window keep their frequency (the paper's "
        "beta); None: 32."))
    beta_slow: float | None = Field(None, gt=0, description=(
        "Dimensions turning less than this often are fully interpolated, divided by factor (the paper's alpha); "
        "None: 1."))
    attention_factor: float | None = Field(None, gt=0, description=(
        "Multiplier of cos/sin (attention temperature); None: YaRN's 0.1 * ln(factor) + 1."))

    @property
    def window(self) -> int:
        return int(self.original_max_position_embeddings * self.factor)

    def hf_parameters(self, rope_theta: float) -> dict[str, Any]:
        """The ``rope_parameters`` dict transformers reads."""
        params = {"rope_type": "yarn", "rope_theta": rope_theta}
        return params | self.model_dump(include=set(YARN_KEYS), exclude_none=True)

    def describe(self) -> str:
        return f"YaRN factor {self.factor:g} x {self.original_max_position_embeddings}"

    def written(self) -> str:
        """The override as a recipe writes it (for error messages)."""
        fields = ", ".join(f"{k}: {v}" for k, v in self.model_dump(exclude_none=True).items())
        return f"{{{fields}}}"


@dataclass(frozen=True)
class ModelWindow:
    """The positions a model covers, where that number comes from, and the RoPE behind it."""

    positions: int
    source: str  # for messages: "max_position_embeddings of PATH/config.json", "rope_scaling of stage 'sft1'"
    pretrained: int  # the window before any RoPE scaling (what a YaRN override's original must equal)
    rope_type: str = "default"

    def scaled(self, rope: RopeScaling, source: str) -> ModelWindow:
        """The window under the YaRN override ``rope``; refuses an override that does not fit this model."""
        check_override(rope, self.rope_type, self.pretrained)
        return ModelWindow(rope.window, f"{source}: {rope.describe()}", self.pretrained, "yarn")


def check_override(rope: RopeScaling, rope_type: str, pretrained: int) -> None:
    """A YaRN override replaces plain RoPE or another YaRN of the same pretrained window, nothing else."""
    if rope_type not in ("default", "yarn"):
        raise ValueError(f"the model's RoPE is {rope_type!r}; a YaRN override applies to plain RoPE or YaRN only")
    if rope.original_max_position_embeddings != pretrained:
        raise ValueError(f"rope_scaling.original_max_position_embeddings = {rope.original_max_position_embeddings} "
                         f"is not the model's pretrained window {pretrained}")


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def config_window(config: Any, source: str = "the config") -> ModelWindow:
    """The window of an HF config (a ``PretrainedConfig`` or the dict of a ``config.json``)."""
    max_positions = int(_get(config, "max_position_embeddings"))
    params = _get(config, "rope_parameters") or _get(config, "rope_scaling") or {}  # rope_scaling: transformers 4
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type != "yarn":
        return ModelWindow(max_positions, f"max_position_embeddings of {source}", max_positions, rope_type)
    original = params.get("original_max_position_embeddings") or max_positions
    factor = params.get("factor") or max_positions / original
    return ModelWindow(int(original * factor), f"YaRN rope parameters of {source}: factor {factor:g} x {original}",
                       int(original), "yarn")


def checkpoint_window(path: str | Path) -> ModelWindow | None:
    """The window of the checkpoint folder ``path``; None when it has no ``config.json`` (not made yet)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text(encoding="utf-8"))
    if not data.get("max_position_embeddings"):  # e.g. a multimodal config nesting it: not checked
        return None
    return config_window(data, str(config))


def factor_for(positions: int, pretrained: int) -> float:
    """The smallest YaRN factor, in eighths, whose window holds ``positions``."""
    return max(1.0, math.ceil(positions / pretrained * 8) / 8)


def apply_rope_scaling(hf_config: Any, rope: RopeScaling) -> Any:
    """Write ``rope`` into ``hf_config`` (in place, returned): ``rope_parameters`` as transformers 5 reads them, and
    ``max_position_embeddings`` set to the scaled window (transformers' meaning of it under YaRN). Applying the
    same override to a config that already carries it changes nothing."""
    params = dict(_get(hf_config, "rope_parameters") or _get(hf_config, "rope_scaling") or {})
    window = config_window(hf_config)
    check_override(rope, window.rope_type, window.pretrained)
    theta = params.get("rope_theta", _get(hf_config, "rope_theta") or 10000.0)
    kept = {k: v for k, v in params.items() if k == "partial_rotary_factor"}
    hf_config.rope_parameters = rope.hf_parameters(theta) | kept
    hf_config.max_position_embeddings = rope.window
    return hf_config


@dataclass(frozen=True)
class StageModel:
    """How the running stage loads and samples its model (see the module docstring)."""

    rope_scaling: RopeScaling | None = None
    max_model_len: int | None = None


_STAGE_MODEL: ContextVar[StageModel] = ContextVar("stage_model", default=StageModel())


@contextmanager
def stage_model(rope_scaling: RopeScaling | None = None, max_model_len: int | None = None) -> Iterator[None]:
    """Inside the block, models loaded without an explicit override get ``rope_scaling`` and native engines built
    without an explicit length get ``max_model_len``."""
    token = _STAGE_MODEL.set(StageModel(rope_scaling, max_model_len))
    try:
        yield
    finally:
        _STAGE_MODEL.reset(token)


def current_stage_model() -> StageModel:
    return _STAGE_MODEL.get()
