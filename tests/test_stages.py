"""The stage registry, leaf configs, the sampling settings and the recipe's seed rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import vibethinker
from vibethinker.recipe import RecipeError, load_recipe
from vibethinker.sampling import SamplingSettings
from vibethinker.stages import stage_kinds

SRC = Path(vibethinker.__file__).parent
KINDS = {"data", "init_model", "import_gguf", "sft", "probe_fuse", "rl", "distill", "eval", "export_gguf"}


def test_registry_has_every_kind_with_its_artefact():
    kinds = stage_kinds()
    assert set(kinds) == KINDS
    assert {name: k.artifact for name, k in kinds.items()} == {
        "data": None, "init_model": "model", "import_gguf": "model", "sft": "model", "probe_fuse": "model",
        "rl": "model", "distill": "sft/model", "eval": None, "export_gguf": "model.gguf"}
    assert [name for name, k in kinds.items() if k.evaluates] == ["eval"]
    assert all(k.writes and callable(k.run) and callable(k.note) for k in kinds.values())


def test_validating_a_recipe_imports_neither_torch_nor_transformers():
    code = ("import sys, vibethinker.recipe as r\n"
            "for name in ('tiny', 'smollm2-arith', 'synthetic-h200', 'vibethinker-1.5b', 'vibethinker-3b'):\n"
            "    r.load_recipe(name)\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_no_import_circle_between_stages_pipeline_and_recipe():
    for path in (SRC / "stages").glob("*.py"):
        assert not {"vibethinker.pipeline", "vibethinker.recipe"} & _imports(path), path.name
    assert "vibethinker.pipeline" not in _imports(SRC / "recipe.py")
    # The feature packages never import the layer that drives them.
    for path in SRC.rglob("*.py"):
        if path.parent.name not in ("stages", "report") and path.name not in ("cli.py", "pipeline.py"):
            assert not {"vibethinker.pipeline", "vibethinker.recipe"} & _imports(path), path


HEAD = """\
name: kinds
seed: 7
stages:
  - {name: data, kind: data, suite: {train_per_subdomain: 5}}
  - {name: base, kind: init_model, tokenizer_data: "@data/train.jsonl", architecture: {max_position_embeddings: 32768}}
  - {name: gguf, kind: import_gguf, gguf: "x.gguf"}
"""
# The base's window holds every stage's default seq_len and max_new_tokens (the window check runs at load).
# Each kind with one setting broken; the error must name the full path and the line of that stage.
BROKEN = {
    "data": ("  - {name: d2, kind: data, suite: {train_per_subdomain: 0}}", "stages.3.suite.train_per_subdomain"),
    "init_model": ("  - {name: b2, kind: init_model}", "stages.3.tokenizer_data"),
    "import_gguf": ("  - {name: g2, kind: import_gguf, gguf: 3}", "stages.3.gguf"),
    "sft": ('  - {name: sft, kind: sft, model: "@base"}', "stages.3.data"),
    "probe_fuse": ('  - {name: fuse, kind: probe_fuse, sft: "@base"}', "stages.3.data"),
    "rl": ('  - {name: rl, kind: rl, model: "@base", data: x, temperature: -1}', "stages.3.temperature"),
    "distill": ('  - {name: dist, kind: distill, student: "@base", teachers: ["@base"]}', "stages.3.data"),
    "eval": ('  - {name: ev, kind: eval, model: "@base", data: x, sampling: {n: 0}}', "stages.3.sampling.n"),
    "export_gguf": ('  - {name: ex, kind: export_gguf, model: "@base", type: q4_k}', "stages.3.type"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_recipe_errors_name_file_line_and_full_field_path_for_every_kind(tmp_path, kind):
    line, field = BROKEN[kind]
    path = tmp_path / "kinds.yaml"
    path.write_text(HEAD + line + "\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(info.value).startswith(f"{path}:7: field '{field}':"), str(info.value)


def test_seed_rule_the_recipe_seed_fills_every_unset_stage_seed(tmp_path):
    path = tmp_path / "seeds.yaml"
    path.write_text(HEAD + """\
  - name: sft
    kind: sft
    model: "@base"
    data: x
    curriculum: {min_trace_tokens: 0, difficulty_reference: "@base"}
  - {name: sft_own, kind: sft, model: "@base", data: x, seed: 3}
  - {name: fuse, kind: probe_fuse, sft: "@sft", data: x}
  - {name: rl, kind: rl, model: "@sft", data: x}
  - {name: rl_own, kind: rl, model: "@sft", data: x, seed: 5}
  - {name: dist, kind: distill, student: "@sft", teachers: ["@rl"], data: x}
  - {name: ev, kind: eval, model: "@rl", data: x, clr: {k: 2}}
  - {name: ev_own, kind: eval, model: "@rl", data: x, sampling: {seed: 11}}
""")
    recipe = load_recipe(path)
    stage = recipe.stage
    assert stage("data").suite.seed == 7
    assert (stage("sft").seed, stage("sft").curriculum.seed, stage("sft_own").seed) == (7, 7, 3)
    assert (stage("fuse").seed, stage("rl").seed, stage("rl_own").seed) == (7, 7, 5)
    assert (stage("dist").seed, stage("dist").sft.seed) == (7, 7)
    assert (stage("ev").seed, stage("ev").clr.seed, stage("ev_own").seed) == (7, 7, 11)


def test_sampling_settings_spec3_defaults_and_flat_shorthand():
    from vibethinker.eval.config import EvalConfig
    from vibethinker.probe.config import ProbeConfig
    from vibethinker.rl.config import RLConfig

    spec3 = SamplingSettings()
    assert (spec3.temperature, spec3.top_p, spec3.top_k) == (1.0, 0.95, 0)
    assert EvalConfig().sampling.top_p == 0.95 and EvalConfig().n == 4
    assert RLConfig().top_p == 1.0 and ProbeConfig().top_p == 1.0  # SPEC 2.2 / 2.3: the untruncated distribution
    flat, nested = RLConfig(group_size=4, max_new_tokens=64), RLConfig(sampling={"n": 4, "max_new_tokens": 64})
    assert flat == nested and flat.group_size == 4 and flat.sampling_params().max_new_tokens == 64
    assert ProbeConfig().model_copy(update={"seed": 4}).sampling.seed == 4
    with pytest.raises(ValidationError, match="given twice"):
        EvalConfig(n=2, sampling={"n": 3})
    with pytest.raises(ValidationError):
        EvalConfig(top_p=0)


def test_cli_module_has_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "vibethinker.cli", "--help"], capture_output=True, text=True,
                         check=True, env={"COLUMNS": "200", "PATH": ""}).stdout
    for command in ("run", "eval", "verify", "fuse", "report", "clr", "model", "data"):
        assert f" {command} " in out, command


def test_flat_alias_errors_name_the_key_as_written(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text(HEAD + '  - {name: rl, kind: rl, model: "@base", data: x, group_size: 1}\n')
    with pytest.raises(RecipeError, match=r"alias.yaml:7: field 'stages.3.group_size'"):
        load_recipe(path)


def test_nested_flat_alias_errors_name_the_key_as_written(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text(HEAD + '  - {name: sft, kind: sft, model: "@base", data: x, curriculum: {difficulty_rollouts: 1}}\n')
    with pytest.raises(RecipeError, match=r"nested.yaml:7: field 'stages.3.curriculum.difficulty_rollouts'"):
        load_recipe(path)
