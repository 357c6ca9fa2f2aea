"""Model windows: the recipe's window check (stage and field named), the YaRN override (rope_scaling) that the
trainer's load_model and the native engine both apply, and max_model_len passed through to the engine."""

from __future__ import annotations

import json
import re

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from vibethinker.generate import SamplingParams, make_generator
from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.model import load_model, save_pretrained_atomic
from vibethinker.model.window import RopeScaling, checkpoint_window, config_window, stage_model
from vibethinker.pipeline import run_recipe
from vibethinker.recipe import RecipeError, bundled_recipe_path, load_recipe

SMALL = dict(max_num_seqs=8, block_size=4, device="cpu", dtype="float32")
YARN_1024 = RopeScaling(rope_type="yarn", factor=4.0, original_max_position_embeddings=1024)


def _config_only(path, max_positions: int, rope: dict | None = None):
    """A checkpoint folder as far as the window check reads it: its config.json."""
    path.mkdir(parents=True)
    config = {"model_type": "qwen2", "max_position_embeddings": max_positions,
              "rope_parameters": rope or {"rope_type": "default", "rope_theta": 10000.0}}
    (path / "config.json").write_text(json.dumps(config))
    return path


def _recipe(tmp_path, stages: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"name: windows\nstages:\n{stages}")
    return path


def _load_error(path) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return str(info.value)


def test_sft_seq_len_beyond_the_tiny_models_window_names_stage_and_field(tmp_path):
    path = _recipe(tmp_path, """\
  - {name: data, kind: data, suite: {train_per_subdomain: 5}}
  - name: base
    kind: init_model
    tokenizer_data: "@data/train.jsonl"
    architecture: {max_position_embeddings: 256}
  - name: sft
    kind: sft
    model: "@base"
    data: "@data/train.jsonl"
    seq_len: 512
""")
    message = _load_error(path)
    assert message.startswith(f"{path}:12: field 'stages.2.seq_len': stage 'sft': seq_len = 512 exceeds the window "
                              "256 of model '@base' (architecture.max_position_embeddings of stage 'base')"), message
    assert "set rope_scaling: {rope_type: yarn, factor: 2.0, original_max_position_embeddings: 256}" in message
    path.write_text(path.read_text().replace("seq_len: 512", "seq_len: 256"))
    assert load_recipe(path).stage("sft").seq_len == 256  # a row may fill the window exactly


RL_THEN_EVAL = """\
  - name: rl_math
    kind: rl
    model: {model}
    data: x.jsonl
    max_new_tokens: {rl_tokens}
{rope}  - name: eval
    kind: eval
    model: "@rl_math"
    data: x.jsonl
    sampling: {{max_new_tokens: {eval_tokens}}}
"""


def test_rl_and_eval_max_new_tokens_beyond_the_checkpoint_window_name_stage_and_field(tmp_path):
    base = _config_only(tmp_path / "base", 1024)
    path = _recipe(tmp_path, RL_THEN_EVAL.format(model=base, rl_tokens=1024, rope="", eval_tokens=512))
    message = _load_error(path)
    # written flat, so named flat in the location; the message names the settings field and the config it read
    assert message.startswith(f"{path}:7: field 'stages.0.max_new_tokens': stage 'rl_math': sampling.max_new_tokens "
                              f"= 1024 (+ 1 prompt token) exceeds the window 1024 of model '{base}' "
                              f"(max_position_embeddings of {base / 'config.json'}); set rope_scaling: {{rope_type: "
                              f"yarn, factor: 1.125, original_max_position_embeddings: 1024}}"), message
    # the eval stage samples the RL phase's model: it inherits the checkpoint's window
    message = _load_error(_recipe(tmp_path, RL_THEN_EVAL.format(model=base, rl_tokens=1023, rope="",
                                                                 eval_tokens=2000)))
    assert "field 'stages.1.sampling.max_new_tokens': stage 'eval': sampling.max_new_tokens = 2000" in message
    assert f"of model '@rl_math' (max_position_embeddings of {base / 'config.json'})" in message


def test_rope_scaling_yarn_widens_the_window_for_the_stage_and_the_models_derived_from_it(tmp_path):
    base = _config_only(tmp_path / "base", 1024)
    rope = "    rope_scaling: {rope_type: yarn, factor: 2.0, original_max_position_embeddings: 1024}\n"
    path = _recipe(tmp_path, RL_THEN_EVAL.format(model=base, rl_tokens=1024, rope=rope, eval_tokens=2000))
    recipe = load_recipe(path)
    assert recipe.stage("rl_math").rope_scaling.window == 2048 and recipe.stage("eval").rope_scaling is None
    path.write_text(path.read_text().replace("max_new_tokens: 2000", "max_new_tokens: 2048"))
    message = _load_error(path)
    assert "stage 'eval': sampling.max_new_tokens = 2048 (+ 1 prompt token) exceeds the window 2048 of model " \
           "'@rl_math' (rope_scaling of stage 'rl_math': YaRN factor 2 x 1024)" in message
    assert "factor: 2.125, original_max_position_embeddings: 1024" in message
    # an override whose original window is not the checkpoint's is refused, naming the field
    path.write_text(path.read_text().replace("original_max_position_embeddings: 1024}", "original_max_position_"
                                                                                      "embeddings: 4096}"))
    message = _load_error(path)
    assert "field 'stages.0.rope_scaling': stage 'rl_math': rope_scaling.original_max_position_embeddings = 4096 " \
           "is not the model's pretrained window 1024" in message


def test_a_checkpoint_that_already_has_yarn_counts_its_scaled_window(tmp_path):
    yarn = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64}
    assert checkpoint_window(_config_only(tmp_path / "a", 256, yarn)).positions == 256
    # transformers 4 / Qwen's docs: rope_scaling added to a config whose max_position_embeddings stays the original
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text(json.dumps({"max_position_embeddings": 64, "rope_scaling": {
        "type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}}))
    window = checkpoint_window(tmp_path / "b")
    assert (window.positions, window.pretrained, window.rope_type) == (256, 64, "yarn")
    assert checkpoint_window(tmp_path / "missing") is None


def test_max_model_len_is_checked_against_the_window_and_the_response(tmp_path):
    base = _config_only(tmp_path / "base", 1024)
    path = _recipe(tmp_path, f"  - {{name: ev, kind: eval, model: {base}, data: x.jsonl, max_new_tokens: 500, "
                             f"max_model_len: 2048}}\n")
    assert "field 'stages.0.max_model_len': stage 'ev': sampling.max_model_len = 2048 exceeds the window 1024" \
           in _load_error(path)
    path.write_text(path.read_text().replace("max_model_len: 2048", "max_model_len: 500"))
    assert "field 'stages.0.max_new_tokens': stage 'ev': sampling.max_new_tokens = 500 (+ 1 prompt token) exceeds " \
           "sampling.max_model_len = 500" in _load_error(path)
    path.write_text(path.read_text().replace("max_model_len: 500", "max_model_len: 600"))
    sampling = load_recipe(path).stage("ev").sampling
    assert sampling.max_model_len == 600 and "max_model_len" not in vars(sampling.params())


def test_pipeline_checks_windows_with_the_input_paths_before_any_stage_runs(tmp_path):
    small, large = _config_only(tmp_path / "small", 256), _config_only(tmp_path / "large", 4096)
    recipe = load_recipe(_recipe(tmp_path, f"  - {{name: ev, kind: eval, model: {large}, data: x.jsonl, "
                                           f"max_new_tokens: 1000}}\n"))
    with pytest.raises(RecipeError, match=re.escape("stage 'ev': sampling.max_new_tokens = 1000 (+ 1 prompt token) "
                                                    f"exceeds the window 256 of model '{small}'")):
        run_recipe(recipe, tmp_path / "run", inputs={"model": str(small)})
    assert not (tmp_path / "run").exists()


def test_3b_recipe_fits_a_qwen25_coder_3b_base_with_its_yarn_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe's placeholders are relative to the working folder
    _config_only(tmp_path / "user_inputs" / "models" / "Qwen2.5-Coder-3B", 32768,
                 {"rope_type": "default", "rope_theta": 1000000.0})
    source = bundled_recipe_path("vibethinker-3b").read_text()
    recipe = load_recipe(bundled_recipe_path("vibethinker-3b"))
    assert recipe.stage("sft1").rope_scaling == RopeScaling(rope_type="yarn", factor=2.125,
                                                            original_max_position_embeddings=32768)
    unscaled = tmp_path / "unscaled.yaml"
    unscaled.write_text("\n".join(line for line in source.splitlines() if "rope_scaling: {" not in line))
    message = _load_error(unscaled)
    assert "stage 'sft1': seq_len = 65536 exceeds the window 32768" in message
    assert "max_position_embeddings of user_inputs/models/Qwen2.5-Coder-3B/config.json" in message
    # with SFT rows inside 32K, the first stage that fails is the first sampling at 64K
    unscaled.write_text(unscaled.read_text().replace("seq_len: 65536", "seq_len: 32768"))
    assert "stage 'sft1_fuse': sampling.max_new_tokens = 65536 (+ 1 prompt token) exceeds the window 32768" \
           in _load_error(unscaled)


# --- the override in the trainer's load_model and in the native engine -------------------------------------------


def _prompts(tokenizer) -> list[str]:
    questions = ["hi", "What is 3 plus 4? Think about it carefully before answering.", "def f(x): return x + 1"]
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            for q in questions]


def _assert_engine_matches_transformers(native: NativeGenerator, model, tokenizer, max_new_tokens: int = 40):
    """Greedy tokens equal those of transformers' generate, log-probs those of its forward pass."""
    prompts = _prompts(tokenizer)
    out = native.generate(prompts, SamplingParams(temperature=0, max_new_tokens=max_new_tokens))
    stops = native.stop_ids(SamplingParams())
    for c in out:
        ids = tokenizer(prompts[c.prompt_index], add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, eos_token_id=stops,
                                 pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
            ref = ref[:next((i + 1 for i, t in enumerate(ref) if t in stops), len(ref))]
            logits = model(torch.tensor([ids[0].tolist() + c.token_ids])).logits[0, ids.shape[1] - 1:-1]
        assert c.token_ids == ref
        expected = torch.log_softmax(logits.float(), dim=-1).gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        torch.testing.assert_close(torch.tensor(c.logprobs), expected, atol=1e-4, rtol=0)
    return out


def test_engine_matches_transformers_on_a_checkpoint_with_yarn_rope(varied_tiny, tmp_path):
    _, tokenizer, _ = varied_tiny
    yarn = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64}
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         initializer_range=0.3, max_position_embeddings=256, rope_parameters=yarn,
                                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    path = save_pretrained_atomic(model.eval(), tokenizer, tmp_path / "yarn")
    native = NativeGenerator(path, config=EngineConfig(**SMALL))
    assert native.engine.max_model_len == 256  # the config's scaled window
    assert torch.equal(native.engine.model.model.rotary.cos, (model.model.rotary_emb(
        torch.zeros(1), torch.arange(256)[None])[0][0]))  # the table is transformers' cos, scaling included
    out = _assert_engine_matches_transformers(native, model, tokenizer)  # positions run past the original 64
    assert max(len(tokenizer(p)["input_ids"]) for p in _prompts(tokenizer)) + max(len(c.token_ids) for c in out) > 64


def test_rope_scaling_override_is_applied_alike_by_load_model_and_the_engine(varied_tiny, tmp_path):
    plain, tokenizer, path = varied_tiny
    scaled = load_model(path, device="cpu", rope_scaling=YARN_1024)
    assert scaled.config.rope_parameters["rope_type"] == "yarn" and scaled.config.max_position_embeddings == 4096
    native = NativeGenerator(path, config=EngineConfig(**SMALL, rope_scaling=YARN_1024))
    assert native.engine.max_model_len == 4096
    torch.testing.assert_close(native.engine.model.model.rotary.cos[:128], scaled.model.rotary_emb(
        torch.zeros(1), torch.arange(128)[None])[0][0], atol=0, rtol=0)
    out = _assert_engine_matches_transformers(native, scaled, tokenizer)
    unscaled = NativeGenerator(path, config=EngineConfig(**SMALL)).generate(
        _prompts(tokenizer), SamplingParams(temperature=0, max_new_tokens=40))
    assert [c.logprobs for c in out] != [c.logprobs for c in unscaled]  # the override really changes the model
    # a model saved after loading with the override keeps it: the next stage inherits the window
    saved = save_pretrained_atomic(scaled, tokenizer, tmp_path / "trained")
    assert checkpoint_window(saved).positions == 4096
    assert NativeGenerator(saved, config=EngineConfig(**SMALL)).engine.max_model_len == 4096
    # the running stage's override reaches load_model and make_generator without an argument (the trainers)
    with stage_model(YARN_1024, max_model_len=300):
        assert load_model(path, device="cpu").config.rope_parameters == scaled.config.rope_parameters
        generator = make_generator(path, backend="native", **SMALL)
        assert generator.engine.max_model_len == 300
        live = make_generator((scaled, tokenizer), backend="native", **SMALL)  # the RL trainer's live policy
        assert live.engine.max_model_len == 300
    assert make_generator(path, backend="native", **SMALL).engine.max_model_len == 1024
    with pytest.raises(ValueError, match="differs from the live model's RoPE"):
        NativeGenerator(plain, tokenizer, config=EngineConfig(**SMALL, rope_scaling=YARN_1024))
    with pytest.raises(ValueError, match="not the model's pretrained window 1024"):
        load_model(path, device="cpu", rope_scaling=RopeScaling(rope_type="yarn", factor=2.0,
                                                                original_max_position_embeddings=512))


def test_max_model_len_of_the_sampling_settings_reaches_the_engine(varied_tiny, tmp_path, monkeypatch):
    import vibethinker.eval.runner as runner
    from vibethinker.data.records import Problem
    from vibethinker.eval.config import EvalConfig

    _, _, path = varied_tiny
    seen = {}

    def capture(model, **kw):
        seen.update(kw)
        raise RuntimeError("captured")

    monkeypatch.setattr(runner, "make_generator", capture)
    problem = Problem(id="p", domain="math", subdomain="a", difficulty=1, problem="1 + 1?", answer="2", source="t")
    with pytest.raises(RuntimeError, match="captured"):
        runner.evaluate(str(path), [problem], EvalConfig(max_new_tokens=8, max_model_len=64), tmp_path)
    assert seen["max_model_len"] == 64
    assert make_generator(path, backend="native", max_model_len=64, **SMALL).engine.max_model_len == 64


def test_window_of_a_live_config_follows_transformers_semantics():
    config = Qwen2Config(max_position_embeddings=64, rope_parameters={
        "rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 64})
    assert config_window(config).positions == 256  # vLLM's rule: original x factor


def test_an_sft_stage_trains_with_its_yarn_override_and_writes_it_for_the_next_stage(tmp_path):
    from conftest import mini_recipe

    path = tmp_path / "yarn.yaml"
    path.write_text(mini_recipe("yarn", """\
  - name: sft
    kind: sft
    model: "@base"
    data: "@data/train.jsonl"
    rope_scaling: {rope_type: yarn, factor: 2.0, original_max_position_embeddings: 1024}
    seq_len: 2048
    max_steps: 2
    packing: false
    rows_per_micro_batch: 8
  - {name: ev, kind: eval, model: "@sft", data: "@data/test.jsonl", n: 1, max_new_tokens: 8}
"""))
    long = tmp_path / "long.yaml"  # 2047 + 1 fits the 2048 positions the eval stage inherits from sft's override
    long.write_text(path.read_text().replace("max_new_tokens: 8", "max_new_tokens: 2047"))
    assert load_recipe(long).stage("ev").max_new_tokens == 2047
    run_recipe(load_recipe(path), tmp_path / "run")
    config = json.loads((tmp_path / "run" / "sft" / "model" / "config.json").read_text())
    assert config["max_position_embeddings"] == 2048
    assert {k: config["rope_parameters"][k] for k in ("rope_type", "factor", "original_max_position_embeddings")} \
        == {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 1024}
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]["ev"]["status"] == "done"


def test_probe_fuse_writes_its_override_into_the_fused_config(varied_tiny, tmp_path):
    import shutil

    from vibethinker.stages.probe_fuse import write_rope_scaling

    fused = tmp_path / "fused"
    shutil.copytree(varied_tiny[2], fused)
    for _ in range(2):  # writing it again changes nothing
        write_rope_scaling(fused, YARN_1024)
        window = checkpoint_window(fused)
        assert (window.positions, window.pretrained, window.rope_type) == (4096, 1024, "yarn")
