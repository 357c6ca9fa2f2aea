"""Recipes: an ordered list of stages in YAML, validated by pydantic, with errors that name the file and line.

A recipe::

    name: tiny
    seed: 0
    stages:
      - {name: data, kind: data, suite: {train_per_subdomain: 300}}
      - {name: base, kind: init_model, tokenizer_data: "@data/train.jsonl"}
      - {name: sft, kind: sft, model: "@base", data: "@data/train.jsonl", learning_rate: 3e-3}
      - {name: eval_sft, kind: eval, model: "@sft", data: "@data/test.jsonl", n: 4}

Values starting with ``@`` refer to an earlier stage: ``@NAME`` is its main artefact (a data stage's folder, a
model stage's ``model/`` checkpoint, an eval stage's folder) and ``@NAME/PATH`` a file inside its folder. Anything
else is a path on disk, so every stage can also run on its own data and any local HF checkpoint.

The stage kinds and their settings come from the registry (:mod:`vibethinker.stages`, one module per kind).
Seeds: the recipe's ``seed`` fills every stage seed the recipe leaves unset (:func:`fill_seeds`), so one number
reproduces a whole run; a seed written in a stage wins for that stage.

Windows: a stage whose ``seq_len`` or ``max_new_tokens`` does not fit its model's window (or its
``sampling.max_model_len``) fails validation, naming the stage and the field (:mod:`vibethinker.window_check`);
a stage's ``rope_scaling`` (YaRN) widens the window of the model it loads and of the models derived from it.
"""

from __future__ import annotations

import os
import typing
from importlib import resources
from pathlib import Path
from typing import Annotated, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vibethinker.stages import stage_kinds
from vibethinker.stages.base import RecipeError, StageBase
from vibethinker.window_check import window_problem

Stage = Annotated[Union[tuple(kind.settings for kind in stage_kinds().values())], Field(discriminator="kind")]


def fill_seeds(settings: BaseModel, seed: int) -> None:
    """The recipe's seed rule: every ``seed`` the recipe leaves unset, at any depth of a stage's settings (the
    stage's own, ``sampling.seed``, ``suite.seed``, ``sft.seed``, ``clr.seed`` ...), takes the recipe's ``seed``."""
    if "seed" in type(settings).model_fields and "seed" not in settings.model_fields_set:
        settings.seed = seed
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            fill_seeds(value, seed)


def _string_values(value, path: str = ""):
    """(dotted field path, string) for every string inside a stage, nested settings and lists included."""
    if isinstance(value, BaseModel):
        for name, item in value:
            yield from _string_values(item, f"{path}.{name}" if path else name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _string_values(item, f"{path}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _string_values(item, f"{path}.{key}")
    elif isinstance(value, str):
        yield path, value


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, description="The run's seed: every stage seed left unset takes it (see fill_seeds).")
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> "Recipe":
        seen: list[str] = []
        for index, stage in enumerate(self.stages):
            if stage.name in seen:
                raise ValueError(f"stages.{index}: duplicate stage name {stage.name!r}")
            for field, item in _string_values(stage):
                if item.startswith("@"):
                    target = item[1:].split("/", 1)[0]
                    if target not in seen:
                        raise ValueError(f"stages.{index}.{field}: {item!r} refers to {target!r}, which is not "
                                         f"an earlier stage (earlier: {seen or 'none'})")
            seen.append(stage.name)
            fill_seeds(stage, self.seed)
        return self

    @model_validator(mode="after")
    def _windows(self) -> "Recipe":
        problem = window_problem(self.stages)
        if problem is not None:  # located like the reference errors: load_recipe names the file, line and field
            raise ValueError(f"stages.{problem.index}.{problem.field}: {problem.message}")
        return self

    def stage(self, name: str) -> StageBase:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise RecipeError(f"recipe {self.name!r} has no stage {name!r} (stages: {[s.name for s in self.stages]})")


def bundled_recipe_path(name: str) -> Path:
    """Path of a recipe shipped in the package (``vibethinker/recipes/NAME.yaml``)."""
    path = Path(str(resources.files("vibethinker") / "recipes" / f"{name}.yaml"))
    if not path.exists():
        raise RecipeError(f"no bundled recipe {name!r}")
    return path


def load_recipe(path: str | os.PathLike) -> Recipe:
    path = Path(path)
    if not path.exists() and path.suffix not in (".yaml", ".yml"):  # 'vibethinker-1.5b' has suffix '.5b'
        path = bundled_recipe_path(str(path))
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise RecipeError(f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        if len(loc) > 2 and loc[0] == "stages" and loc[2] in stage_kinds():  # the union's tag, not a field
            del loc[2]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("kind")
        if loc == [] and "stages." in message:  # errors raised by the cross-stage check carry their own location
            loc = message.split(":", 1)[0].split(".")
            loc = [int(p) if p.isdigit() else p for p in loc]
            message = message.split(":", 1)[1].strip()
        loc = _as_written(data, loc)
        field = ".".join(str(p) for p in loc) or "<recipe>"
        raise RecipeError(f"{path}:{_line_of(text, loc)}: field '{field}': {message}") from None


def _as_written(data, loc: list) -> list:
    """``loc`` as the recipe spells it: a sampling field the recipe wrote flat (``n: 2`` or RL's ``group_size: 2``
    for ``sampling.n``) is named by that key, so the error names the field the user can find."""
    written, node, model = [], data, Recipe
    for index, part in enumerate(loc):
        following = loc[index + 1] if index + 1 < len(loc) else None
        if part == "sampling" and isinstance(node, dict) and part not in node and following is not None:
            flat = {target: key for key, target in getattr(model, "_flat_keys", lambda _: {})(node).items()}
            return [*written, flat.get(following, following), *loc[index + 2:]]
        written.append(part)
        model = _settings_class(model, node, part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return written


def _settings_class(model: type[BaseModel] | None, node, part) -> type[BaseModel] | None:
    """The settings class of ``node[part]``: a stage's class by its kind, else the field's model class, if any."""
    if isinstance(part, int):  # an item of ``stages``
        item = node[part] if isinstance(node, list) and part < len(node) else None
        kind = stage_kinds().get(item.get("kind")) if isinstance(item, dict) else None
        return kind.settings if kind else None
    info = model.model_fields.get(part) if model is not None else None
    if info is None:
        return None
    candidates = [info.annotation, *typing.get_args(info.annotation)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _line_of(text: str, loc: list) -> int:
    """1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    node = yaml.compose(text)
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == str(part)]
            if not match:
                break
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line
