"""What every stage kind shares: the settings base class, the context a stage runs in, its registry entry.

A stage kind is one module of :mod:`vibethinker.stages` defining ``KIND = StageKind(...)``: its typed settings
model (a pydantic model with ``kind: Literal[...]``), its ``run(settings, ctx) -> summary`` function, the main
artefact that ``@NAME`` refers to, its report hooks, and what the window check (:mod:`vibethinker.window_check`)
needs to know: the windows the stage asks of its models and the window of the model it writes. Settings modules
import only leaf configs (pydantic), so validating a recipe loads neither torch nor transformers; ``run`` imports
the heavy code it drives.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.model.window import ModelWindow, RopeScaling

# Positions a sampling stage needs beyond max_new_tokens: one prompt token, the shortest prompt the engine accepts.
# Prompts are not known at load; a longer one ends its response at the window (finish_reason 'length').
PROMPT_ROOM = 1


class RecipeError(ValueError):
    """An invalid recipe or stage input; the message names the file, the line and the field, or the stage."""


class StageBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Folder name under the run directory.")


class ProblemSelection(BaseModel):
    """Which problems of a data file a stage uses, so one mixed file can feed per-domain phases."""

    domains: list[str] | None = Field(None, description=(
        "Keep only problems of these domains (math, code, stem, instruct), e.g. one RL phase per domain (SPEC 2)."))
    subdomains: list[str] | None = Field(None, description="Keep only problems of these sub-domains.")
    max_problems: int | None = Field(None, gt=0, description=(
        "Keep N problems after the domain filters: a sample seeded by the recipe seed, in file order, so every "
        "sub-domain is represented *(our default: all)*."))


class RopeOverride(BaseModel):
    """The YaRN override of a stage that loads a model to train or sample it."""

    rope_scaling: RopeScaling | None = Field(None, description=(
        "YaRN override of the stage's model, spelled like transformers' rope_parameters, e.g. {rope_type: yarn, "
        "factor: 2.0, original_max_position_embeddings: 32768}: written into the model's HF config before the "
        "trainer (load_model) and the native engine build it, so both rotate alike, and kept in the config.json "
        "of every model the stage writes, so later stages inherit it. The window check then counts "
        "original_max_position_embeddings * factor positions. Auxiliary models (the curriculum reference, the "
        "judge) keep their own RoPE. None: the checkpoint's RoPE *(our default)*."))


@dataclass(frozen=True)
class WindowNeed:
    """Positions a stage asks of a model, checked at recipe load against that model's window."""

    field: str  # the setting that asks, as the stage's settings name it: "seq_len", "sampling.max_new_tokens"
    value: int  # the setting's value
    tokens: int  # positions it needs: seq_len, or max_new_tokens + PROMPT_ROOM
    model: str = "model"  # the field naming the model (a list field: each of its models)
    max_model_len: int | None = None  # the engine length the stage sets for this sampling
    stage_rope: bool = True  # the stage's rope_scaling applies to this model (not to the curriculum reference)


def sampling_need(sampling, prefix: str = "sampling", model: str = "model", stage_rope: bool = True,
                  engine: bool = True) -> WindowNeed:
    """A sampling's need: max_new_tokens plus one prompt token; ``engine=False`` for a model that only scores
    such responses (no engine, so no max_model_len)."""
    return WindowNeed(f"{prefix}.max_new_tokens", sampling.max_new_tokens, sampling.max_new_tokens + PROMPT_ROOM,
                      model, sampling.max_model_len if engine else None, stage_rope)


WindowOf = Callable[[str], ModelWindow | None]


def inherits(field_name: str) -> Callable[[Any, WindowOf], ModelWindow | None]:
    """The ``output_window`` of a stage whose written model has the window of its ``field_name`` model, the
    stage's rope_scaling applied (it trains or fuses that model and saves its config)."""
    return lambda settings, window_of: window_of(field_name)


Resolver = Callable[[str, str, bool], Path]


@dataclass
class StageContext:
    """What a stage's ``run`` gets: its folder, the recipe's seed and a resolver for ``@`` references.

    ``resolve(field, value)`` turns a settings value into a path: ``@NAME`` is that stage's main artefact,
    ``@NAME/PATH`` a file in its folder, anything else a path; an ``--input FIELD=PATH`` given for ``field`` wins.
    ``folder=True`` asks for a stage's folder instead of its main artefact (probing reads an SFT stage's
    ``checkpoints/``).
    """

    seed: int
    stage_dir: Path
    resolver: Resolver

    def resolve(self, field_name: str, value: str, folder: bool = False) -> Path:
        return self.resolver(field_name, value, folder)


@dataclass(frozen=True)
class StageKind:
    """One stage kind of the registry; see the module docstring."""

    settings: type[StageBase]
    run: Callable[[Any, StageContext], dict]
    writes: tuple[str, ...]  # what the stage folder holds afterwards (documentation)
    artifact: str | None = None  # the main artefact inside the folder that ``@NAME`` refers to; None: the folder
    evaluates: bool = False  # its summary has the eval metrics the report compares across stages
    note: Callable[[dict], str] = lambda summary: ""  # one line of the report's stage table
    markdown: Callable[[Path, str, dict], list[str]] | None = None  # report.md lines (run_dir, name, entry)
    html: Callable[[Path, str, dict], tuple[str, str, str] | None] | None = None  # report.html section
    window_needs: Callable[[Any], list[WindowNeed]] = lambda settings: []  # what it trains or samples at
    # the window of the model it writes, given ``window_of(field)`` of its input models; None: unknown or no model
    output_window: Callable[[Any, WindowOf], ModelWindow | None] = lambda settings, window_of: None

    @property
    def name(self) -> str:
        return self.settings.model_fields["kind"].annotation.__args__[0]


def require_exists(path: Path, what: str, stage: StageBase) -> Path:
    if not path.exists():
        raise RecipeError(f"stage {stage.name!r}: {what} {path} does not exist (run the stage that makes it first, "
                          f"or pass a path with --input)")
    return path


def load_stage_problems(stage: StageBase, ctx: StageContext, field_name: str = "data") -> list:
    """The problems of a stage's data file, narrowed by its ``domains`` / ``subdomains`` / ``max_problems``."""
    from vibethinker.data.records import load_problems

    path = require_exists(ctx.resolve(field_name, getattr(stage, field_name)), field_name, stage)
    problems = load_problems(path)
    domains, subdomains = getattr(stage, "domains", None), getattr(stage, "subdomains", None)
    if domains:
        problems = [p for p in problems if p.domain in domains]
    if subdomains:
        problems = [p for p in problems if p.subdomain in subdomains]
    limit = getattr(stage, "max_problems", None)
    if limit and limit < len(problems):  # files are often sorted by source or sub-domain: sample, keep the order
        chosen = sorted(random.Random(ctx.seed).sample(range(len(problems)), limit))
        problems = [problems[i] for i in chosen]
    if not problems:
        raise RecipeError(f"stage {stage.name!r}: no problem of {path} matches domains={domains} "
                          f"subdomains={subdomains}")
    return problems


def config_of(settings: BaseModel, config_class: type[BaseModel]) -> BaseModel:
    """The library config held by a stage's settings (a stage model inherits its config's fields)."""
    return config_class.model_validate({name: getattr(settings, name) for name in config_class.model_fields})
