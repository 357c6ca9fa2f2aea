"""On-policy MGPO trainer: overlong masking, micro-batch accumulation, exact resume, and a rising reward."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_easy_problems, train_warm_model
from safetensors.torch import load_file

from vibethinker.data.records import Problem
from vibethinker.eval.runner import EvalConfig, evaluate
from vibethinker.generate import make_generator
from vibethinker.model import load_model, load_tokenizer
from vibethinker.rl.config import RLConfig
from vibethinker.rl.rewards import GroupReward
from vibethinker.rl.rollout import build_batch, rollout
from vibethinker.rl.micro_batches import micro_batch_rows
from vibethinker.rl.trainer import accumulate_gradients, step_problems, token_logprobs, train_rl


@pytest.fixture(scope="module")
def easy_problems() -> list[Problem]:
    return make_easy_problems()


@pytest.fixture(scope="module")
def warm_checkpoint(tmp_path_factory, easy_problems) -> str:
    """A tiny model briefly fine-tuned so that it answers right some of the time (the RL starting point)."""
    return str(train_warm_model(tmp_path_factory.mktemp("rl-warm"), easy_problems, epochs=25) / "model")


def _config(**kw) -> RLConfig:
    base = dict(group_size=8, prompts_per_step=4, learning_rate=1e-3, max_new_tokens=40, max_steps=4,
                micro_batch_size=16, save_every=1, seed=5, device="cpu")
    return RLConfig(**{**base, **kw})


def _rollouts(checkpoint, problems, config):
    model = load_model(checkpoint, device="cpu", dtype=torch.float32)
    tokenizer = load_tokenizer(checkpoint)
    return rollout(make_generator((model, tokenizer)), problems, config, seed=11), tokenizer


def test_step_problems_cover_each_epoch_once():
    indices = [i for step in range(5) for i in step_problems(10, 4, seed=3, step=step)]
    assert sorted(indices[:10]) == list(range(10)) and sorted(indices[10:20]) == list(range(10))
    assert indices[:10] != indices[10:20]
    assert step_problems(10, 4, seed=3, step=2) == indices[8:12]


def test_truncated_responses_score_zero_and_mask_truncated_drops_them(warm_checkpoint, easy_problems):
    config = _config(max_new_tokens=18, group_size=4)
    groups, tokenizer = _rollouts(warm_checkpoint, easy_problems[:4], config)
    cut = [(g, i) for g in groups for i, t in enumerate(g.truncated) if t]
    kept = sum(len(g.completions) for g in groups) - len(cut)
    assert cut and kept, "the length limit should cut some responses and not others"
    assert all(g.rewards[i] == 0.0 and not g.correct[i] for g, i in cut)
    masked = build_batch(groups, tokenizer.pad_token_id, mask_truncated=True)
    unmasked = build_batch(groups, tokenizer.pad_token_id, mask_truncated=False)
    assert masked.n_sequences == kept and unmasked.n_sequences == kept + len(cut)
    kept_tokens = sum(c.num_tokens for g in groups for c, t in zip(g.completions, g.truncated) if not t)
    assert masked.n_response_tokens == kept_tokens
    rows = [c for g in groups for c in g.completions if c.finish_reason != "length"]
    for row, completion in enumerate(rows):  # the masked positions hold exactly the completion's tokens
        positions = masked.response_mask[row].nonzero().squeeze(1)
        assert masked.input_ids[row, positions + 1].tolist() == completion.token_ids
        assert masked.generator_logprobs[row, positions].tolist() == pytest.approx(completion.logprobs)


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean"])
def test_micro_batch_accumulation_equals_one_big_batch(warm_checkpoint, easy_problems, aggregation):
    config = _config(loss_aggregation=aggregation, kl_coef=0.1)
    groups, tokenizer = _rollouts(warm_checkpoint, easy_problems[:4], config)
    batch = build_batch(groups, tokenizer.pad_token_id)
    assert any(a != 0 for g in groups for a in g.advantages)
    ref = load_model(warm_checkpoint, device="cpu", dtype=torch.float32).eval()

    def grads(micro_batch_size):
        model = load_model(warm_checkpoint, device="cpu", dtype=torch.float32)
        stats = accumulate_gradients(model, batch, config.model_copy(update={"micro_batch_size": micro_batch_size}),
                                     torch.device("cpu"), ref)
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]), stats

    big, big_stats = grads(batch.n_sequences)
    small, small_stats = grads(3)
    assert big.abs().sum() > 0
    torch.testing.assert_close(small, big, atol=1e-6, rtol=1e-4)
    assert small_stats.loss == pytest.approx(big_stats.loss, abs=1e-6)
    assert big_stats.ratio_mean == pytest.approx(1.0) and big_stats.clip_fraction == 0.0  # strictly on-policy
    assert big_stats.logprob_gap < 1e-4  # the rollout engine and the trainer see the same distribution


def test_token_budget_and_gradient_checkpointing_give_the_one_big_batch_gradient(warm_checkpoint, easy_problems):
    config = _config()
    groups, tokenizer = _rollouts(warm_checkpoint, easy_problems[:4], config)
    batch = build_batch(groups, tokenizer.pad_token_id)

    def grads(checkpointing=False, **update):
        model = load_model(warm_checkpoint, device="cpu", dtype=torch.float32)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        accumulate_gradients(model, batch, config.model_copy(update=update), torch.device("cpu"))
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    big = grads(micro_batch_size=batch.n_sequences)
    budget = 2 * max(batch.lengths) + 1  # at most two of the longest rows a pass, more of the short ones
    passes = micro_batch_rows(batch.lengths, config.micro_batch_size, budget)
    assert sorted(i for p in passes for i in p) == list(range(batch.n_sequences))
    assert all(len(p) * max(batch.lengths[i] for i in p) <= budget for p in passes)
    assert 1 < len(passes) < batch.n_sequences
    torch.testing.assert_close(grads(micro_batch_tokens=budget), big, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(grads(checkpointing=True, micro_batch_size=5), big, atol=1e-6, rtol=1e-4)


def test_micro_batch_rows_by_count_and_by_budget():
    assert micro_batch_rows([5, 9, 3, 7, 2], 2, None) == [[0, 1], [2, 3], [4]]
    assert micro_batch_rows([5, 9, 3, 7, 2], 2, 18) == [[1, 3], [0, 2, 4]]
    assert micro_batch_rows([50, 9], 2, 20) == [[0], [1]]  # a row over the budget goes alone


@pytest.mark.parametrize("dynamic_sampling", [False, True])
def test_resume_equals_uninterrupted_run(tmp_path, warm_checkpoint, easy_problems, dynamic_sampling):
    config = _config(dynamic_sampling=dynamic_sampling)
    full = train_rl(warm_checkpoint, easy_problems, config, tmp_path / "full")
    partial = train_rl(warm_checkpoint, easy_problems, config, tmp_path / "split", stop_after_steps=2)
    assert partial == {"finished": False, "step": 2}
    assert not (tmp_path / "split" / "model").exists()
    resumed = train_rl(warm_checkpoint, easy_problems, config, tmp_path / "split")
    assert resumed["finished"] and resumed["steps"] == full["steps"] == 4
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model" / "model.safetensors")
    start = load_file(f"{warm_checkpoint}/model.safetensors")
    assert any(not torch.equal(a[name], start[name]) for name in a)  # the run did update the weights
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
    rows_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rows_split = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_split] == [r["step"] for r in rows_full] == [1, 2, 3, 4]
    assert [r["reward_mean"] for r in rows_split] == [r["reward_mean"] for r in rows_full]
    for key in ("reward_mean", "accuracy", "mgpo_weight_mean", "mgpo_weight_min", "mgpo_weight_max",
                "advantage_mean", "advantage_std", "entropy", "response_length_mean", "response_length_max",
                "truncated_share", "kl", "clip_fraction", "logprob_gap", "generation_tokens_per_s",
                "training_tokens_per_s"):
        assert key in rows_full[0]
    checkpoints = sorted((tmp_path / "split" / "checkpoints").glob("step-*"))
    assert sum((c / "trainer_state.pt").exists() for c in checkpoints) == 1
    assert (tmp_path / "full" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    if dynamic_sampling:
        assert sum(r["dynamic_sampling_extra_groups"] for r in rows_full) > 0
        assert [r["zero_variance_final"] for r in rows_split] == [r["zero_variance_final"] for r in rows_full]


def test_reward_function_sees_the_group_and_dynamic_sampling_replaces_flat_groups(tmp_path, warm_checkpoint,
                                                                                  easy_problems):
    seen = []

    def odd_only(problem, completions):  # even-numbered problems: every response rewarded alike (no signal)
        seen.append(len(completions))
        flat = int(problem.id.split("-")[1]) % 2 == 0
        return GroupReward([1.0 if flat or c.num_tokens % 2 else 0.0 for c in completions],
                           [flat or bool(c.num_tokens % 2) for c in completions])

    config = _config(max_steps=3, save_every=0, dynamic_sampling=True, dynamic_sampling_max_rounds=4)
    train_rl(warm_checkpoint, easy_problems, config, tmp_path / "run", reward_fn=odd_only)
    assert set(seen) == {config.group_size}
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["zero_variance_initial"] for r in rows) > 0
    assert all(r["zero_variance_final"] < r["zero_variance_initial"] or r["zero_variance_initial"] == 0
               for r in rows)
    assert all(r["dynamic_sampling_rounds"] <= 4 for r in rows)


def _sampled_accuracy(checkpoint, problems, out_dir) -> float:
    config = EvalConfig(n=8, k=[1], temperature=1.0, top_p=1.0, max_new_tokens=40, seed=123, progress=False)
    return evaluate(checkpoint, problems, config, out_dir)["pass@1"]


def test_mgpo_raises_the_mean_reward_on_an_easy_task(tmp_path, warm_checkpoint, easy_problems):
    """Seeded: 60 steps of 16 prompts x 8 samples lift the sampled accuracy (= mean binary reward) on the easy
    sums by at least 0.08. Measured on 2 CPU cores: 0.234 -> 0.341 (seeds 0 and 1) and 0.450 (seed 2), about 35 s;
    after 40 steps the gain ranged from +0.06 to +0.19 over the seeds, hence the longer run."""
    before = _sampled_accuracy(warm_checkpoint, easy_problems, tmp_path / "before")
    config = _config(prompts_per_step=16, learning_rate=6e-4, max_steps=60, micro_batch_size=64, save_every=0,
                     seed=0)
    summary = train_rl(warm_checkpoint, easy_problems, config, tmp_path / "rl")
    after = _sampled_accuracy(tmp_path / "rl" / "model", easy_problems, tmp_path / "after")
    assert after - before >= 0.08, (before, after)
    assert summary["last_reward_mean"] > summary["first_reward_mean"]


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, warm_checkpoint, easy_problems):
    train_rl(warm_checkpoint, easy_problems, _config(max_steps=2), tmp_path / "run", stop_after_steps=1)
    with pytest.raises(ValueError, match="other settings \\(mgpo_lambda\\)"):
        train_rl(warm_checkpoint, easy_problems, _config(max_steps=2, mgpo_lambda=1.0), tmp_path / "run")


def test_rl_with_the_native_engine_shares_the_trainer_weights(tmp_path, warm_checkpoint, easy_problems):
    """The native engine as the rollout backend: it sees every optimiser step (the log-probs it reports match the
    trainer's forward pass, step after step) and the phase trains like with transformers."""
    config = _config(max_steps=3, save_every=0, generation_backend="native")
    summary = train_rl(warm_checkpoint, easy_problems, config, tmp_path / "native")
    rows = [json.loads(x) for x in (tmp_path / "native" / "metrics.jsonl").read_text().splitlines()]
    assert summary["finished"] and [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["logprob_gap"] < 1e-4 for r in rows)  # stale weights in the engine would show up here
    assert rows[0]["grad_norm"] > 0  # the first step did update the weights the later rollouts must see


def test_auto_backend_is_transformers_on_cpu(warm_checkpoint):
    from vibethinker.generate import HFGenerator, resolve_auto_backend

    assert resolve_auto_backend(warm_checkpoint, device="cpu") == "hf"
    assert isinstance(make_generator(warm_checkpoint, device="cpu"), HFGenerator)


def test_torch_compile_trains_the_same_weights(tmp_path, warm_checkpoint, easy_problems):
    """``torch_compile``: the forward/backward runs as compiled graphs (the two micro-batches differ in width, so the
    second recompiles for dynamic widths) and the optimiser step lands on the eager run's weights; the saved
    checkpoint is the plain model's."""
    from torch._dynamo.utils import counters

    config = _config(max_steps=1, save_every=0, micro_batch_size=16)
    train_rl(warm_checkpoint, easy_problems, config, tmp_path / "eager")
    counters.clear()
    train_rl(warm_checkpoint, easy_problems, config.model_copy(update={"torch_compile": True}), tmp_path / "compiled")
    assert counters["stats"]["unique_graphs"] > 0
    eager = load_file(tmp_path / "eager" / "model" / "model.safetensors")
    compiled = load_file(tmp_path / "compiled" / "model" / "model.safetensors")
    assert eager.keys() == compiled.keys()
    start = load_file(f"{warm_checkpoint}/model.safetensors")
    assert any(not torch.equal(start[k], eager[k]) for k in eager)  # the step did move the weights
    # Adam's first step is lr * g / (|g| + eps) = +-1e-3 per weight; where g is near eps, reordered float sums of
    # the compiled kernels move it by up to about 1e-5; a wrong gradient would flip whole steps
    for name in eager:
        torch.testing.assert_close(compiled[name] - start[name], eager[name] - start[name], atol=1e-4, rtol=0)


def test_right_padded_rows_need_no_padding_mask(warm_checkpoint, easy_problems):
    """The trainer's forward leaves the padding mask out: on right-padded rows of different lengths every response
    token gets the log-prob of a forward with the mask (and of the row alone, unpadded)."""
    config = _config(max_new_tokens=18, group_size=4)
    groups, tokenizer = _rollouts(warm_checkpoint, easy_problems[:4], config)
    batch = build_batch(groups, tokenizer.pad_token_id)
    assert len(set(batch.lengths)) > 1
    model = load_model(warm_checkpoint, device="cpu", dtype=torch.float32).eval()
    with torch.no_grad():
        unmasked, _ = token_logprobs(model, batch.input_ids, 1.0)
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
        masked = torch.log_softmax(logits, -1).gather(-1, batch.input_ids[:, 1:, None])[..., 0]
        shortest = batch.lengths.index(min(batch.lengths))
        alone, _ = token_logprobs(model, batch.input_ids[shortest:shortest + 1, :min(batch.lengths)], 1.0)
    response = batch.response_mask.bool()
    torch.testing.assert_close(unmasked[response], masked[response], atol=1e-5, rtol=0)
    width = min(batch.lengths) - 1
    torch.testing.assert_close(unmasked[shortest, :width][response[shortest, :width]],
                               alone[0][response[shortest, :width]], atol=1e-5, rtol=0)
