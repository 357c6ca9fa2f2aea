"""The recipe's window check: before any stage runs, every stage that trains or samples must fit the window of its
model, or the recipe fails naming the stage and the setting.

What a stage needs (its kind's ``window_needs``): SFT ``seq_len`` (a packed row); a sampling stage (RL, eval,
probing, the curriculum's reference rollouts, the distillation harvest) ``max_new_tokens`` plus one prompt token
(:data:`~vibethinker.stages.base.PROMPT_ROOM`: prompts are unknown at load, one token is the shortest the engine
takes); the distillation student scores the harvested responses and trains at ``sft.seq_len``.

What a model holds: its ``sampling.max_model_len`` when set (which must itself fit the window), else the window of
its checkpoint (:func:`~vibethinker.model.window.config_window`: ``max_position_embeddings``, YaRN-scaled when the
config says so), widened by the stage's ``rope_scaling``. A ``@stage`` model inherits the window of the model it was
derived from (the stage kind's ``output_window``: the base checkpoint, or the tiny model's architecture in the
recipe); a model path is read when its ``config.json`` exists. A model whose window is unknown (not made yet, a
GGUF import) is not checked here; its engine still stops every sequence at the window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vibethinker.model.window import ModelWindow, checkpoint_window, factor_for
from vibethinker.stages import stage_kind
from vibethinker.stages.base import StageBase, WindowNeed


@dataclass(frozen=True)
class WindowProblem:
    """The first setting that does not fit: its stage's index, the field, and a message naming both."""

    index: int
    field: str
    message: str


class _Unfit(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def window_problem(stages: Sequence[StageBase], inputs: Mapping[str, str] | None = None) -> WindowProblem | None:
    """The first stage setting, in recipe order, that exceeds its model's window; None when all fit.

    ``inputs`` are the pipeline's ``--input FIELD=PATH`` overrides, which replace a field's value for every stage.
    """
    outputs: dict[str, ModelWindow | None] = {}
    for index, stage in enumerate(stages):
        kind = stage_kind(stage.kind)
        try:
            for need in kind.window_needs(stage):
                for label, window in _windows(stage, need.model, need.stage_rope, outputs, inputs):
                    _check_need(need, label, window)
            output = kind.output_window(stage, lambda name: next(
                (w for _, w in _windows(stage, name, True, outputs, inputs)), None))
        except _Unfit as exc:
            return WindowProblem(index, exc.field, f"stage {stage.name!r}: {exc.message}")
        outputs[stage.name] = output
    return None


def _windows(stage: StageBase, field: str, stage_rope: bool, outputs: dict[str, ModelWindow | None],
             inputs: Mapping[str, str] | None) -> list[tuple[str, ModelWindow | None]]:
    """(the model as written, its window) for each model the field names, the stage's rope_scaling applied."""
    value = stage
    for part in field.split("."):
        value = getattr(value, part, None) if value is not None else None
    if inputs and field in inputs:
        value = inputs[field]
    rope = getattr(stage, "rope_scaling", None) if stage_rope else None
    found = []
    for item in value if isinstance(value, list) else [value] if value is not None else []:
        window = _model_window(item, outputs)
        if rope is not None:
            source = f"rope_scaling of stage {stage.name!r}"
            if window is None:  # the override alone fixes the window
                window = ModelWindow(rope.window, f"{source}: {rope.describe()}",
                                     rope.original_max_position_embeddings, "yarn")
            else:
                try:
                    window = window.scaled(rope, source)
                except ValueError as exc:
                    raise _Unfit("rope_scaling", f"{exc} ({window.source})") from None
        found.append((f"{field} {item!r}", window))
    return found


def _model_window(value: str, outputs: dict[str, ModelWindow | None]) -> ModelWindow | None:
    if value.startswith("@"):  # @NAME or a file of its folder (a checkpoint): the window of NAME's model
        return outputs.get(value[1:].split("/", 1)[0])
    path = Path(value).expanduser()
    return checkpoint_window(path) or checkpoint_window(path / "model")  # a folder, or an SFT stage's folder


def _check_need(need: WindowNeed, label: str, window: ModelWindow | None) -> None:
    if window is None:
        return
    of = f"the window {window.positions} of {label} ({window.source})"
    limit_field = need.field.rsplit(".", 1)[0] + ".max_model_len"
    if need.max_model_len is not None and need.max_model_len > window.positions:
        raise _Unfit(limit_field, f"{limit_field} = {need.max_model_len} exceeds {of}; lower it or set a larger "
                                  f"rope_scaling")
    asked = f"{need.field} = {need.value}" + ("" if need.tokens == need.value else
                                              f" (+ {need.tokens - need.value} prompt token)")
    if need.max_model_len is not None and need.tokens > need.max_model_len:
        raise _Unfit(need.field, f"{asked} exceeds {limit_field} = {need.max_model_len}; raise it (up to "
                                 f"{window.positions}) or lower {need.field}")
    if need.tokens > window.positions:
        raise _Unfit(need.field, f"{asked} exceeds {of}; {_fix(need, window)}")


def _fix(need: WindowNeed, window: ModelWindow) -> str:
    if window.rope_type not in ("default", "yarn"):
        return f"lower it (the model's RoPE is {window.rope_type!r}, which takes no YaRN override)"
    factor = factor_for(need.tokens, window.pretrained)
    override = f"{{rope_type: yarn, factor: {factor}, original_max_position_embeddings: {window.pretrained}}}"
    where = "on this stage or the one that made its model" if need.stage_rope else "on the stage that made it"
    return f"set rope_scaling: {override} {where}, or lower it"


__all__ = ["WindowProblem", "window_problem"]
