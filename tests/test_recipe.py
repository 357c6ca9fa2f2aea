"""Recipe validation: errors name the file, the line and the field; references must point backwards."""

from __future__ import annotations

import pytest

from vibethinker.recipe import RecipeError, bundled_recipe_path, load_recipe

VALID = """\
name: demo
stages:
  - name: data
    kind: data
    suite: {train_per_subdomain: 5}
  - name: base
    kind: init_model
    tokenizer_data: "@data/train.jsonl"
  - name: sft
    kind: sft
    model: "@base"
    data: "@data/train.jsonl"
    learning_rate: 0.001
    seq_len: 1024
"""


def _load(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path, load_recipe(path)


def test_valid_recipe_and_bundled_default(tmp_path):
    _, recipe = _load(tmp_path, VALID)
    assert [s.kind for s in recipe.stages] == ["data", "init_model", "sft"]
    assert recipe.stages[2].learning_rate == 0.001 and recipe.stages[2].warmup_ratio == 0.05
    tiny = load_recipe(bundled_recipe_path("tiny"))
    assert {s.kind for s in tiny.stages} >= {"data", "init_model", "sft", "eval"}
    assert load_recipe("tiny").name == tiny.name  # a bare name finds the bundled recipe


@pytest.mark.parametrize("old, new, line, field", [
    ("learning_rate: 0.001", "learning_rate: -1", 13, "stages.2.learning_rate"),
    ("learning_rate: 0.001", "learning_rat: 0.1", 13, "stages.2.learning_rat"),
    ("kind: sft", "kind: dance", 10, "stages.2.kind"),
    ('model: "@base"', 'model: "@later"', 11, "stages.2.model"),
    ("suite: {train_per_subdomain: 5}", "train: x.jsonl\n    suite: {train_per_subdomain: 5}", 3, "stages.0"),
])
def test_invalid_recipe_names_line_and_field(tmp_path, old, new, line, field):
    path = tmp_path / "recipe.yaml"
    path.write_text(VALID.replace(old, new))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: field '{field}'"), message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(VALID + "  - name: [unclosed\n")
    with pytest.raises(RecipeError, match=r"recipe.yaml:1[56]: not valid YAML"):
        load_recipe(path)
