"""The shared training skeleton: which settings may change on resume comes from field metadata, and a run resumed
with a changed resumable setting still continues exactly."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import BaseModel, Field
from safetensors.torch import load_file

from vibethinker.rl.config import RLConfig
from vibethinker.sft import SFTConfig, train_sft
from vibethinker.utils.fields import resumable, resumable_fields
from vibethinker.utils.train_state import STATE_FILE, changed_settings, load_resume_state


class Inner(BaseModel):
    width: int = 2
    chunk: int = resumable(8)


class Settings(BaseModel):
    rate: float = 1.0
    log_every: int = resumable(1)
    inner: Inner = Field(default_factory=Inner)


def _checkpoint(tmp_path, config: BaseModel):
    torch.save({"config": config.model_dump(mode="json"), "step": 3}, tmp_path / STATE_FILE)
    return tmp_path


def test_resumable_fields_come_from_the_configs_metadata():
    # The sets the trainers used to keep by hand, now declared on the fields themselves.
    # (the attention kernel and releasing the engine's cache change memory and speed, not the run's results)
    assert resumable_fields(SFTConfig) == {"save_every", "log_every", "device", "attention", "torch_compile",
                                           "fused_kernels"}
    assert resumable_fields(RLConfig) == {"save_every", "log_every", "device", "generation_batch_size",
                                          "generation_backend", "eval_every", "eval_samples", "torch_compile",
                                          "release_kv_cache", "fused_kernels"}


def test_resume_accepts_resumable_changes_and_names_the_others(tmp_path):
    checkpoint = _checkpoint(tmp_path, Settings())
    assert load_resume_state(checkpoint, Settings(log_every=5, inner=Inner(chunk=1)))["step"] == 3
    assert changed_settings(Settings().model_dump(mode="json"), Settings(rate=2.0, inner=Inner(width=3))) == [
        "inner.width", "rate"]
    with pytest.raises(ValueError, match=r"other settings \(inner\.width, rate\)"):
        load_resume_state(checkpoint, Settings(rate=2.0, inner=Inner(width=3), log_every=4))


def test_a_saved_setting_the_config_lacks_counts_as_changed(tmp_path):
    saved = {**Settings().model_dump(mode="json"), "dropped": 1}
    assert changed_settings(saved, Settings()) == ["dropped"]
    assert changed_settings({k: v for k, v in saved.items() if k != "rate"}, Settings()) == ["dropped", "rate"]


def test_rl_sampling_settings_are_not_resumable(tmp_path):
    base = RLConfig(group_size=4, max_new_tokens=40, seed=5)
    checkpoint = _checkpoint(tmp_path, base)
    load_resume_state(checkpoint, base.model_copy(update={"eval_every": 3, "generation_batch_size": 7}))
    with pytest.raises(ValueError, match=r"other settings \(sampling\.n, sampling\.temperature\)"):
        load_resume_state(checkpoint, RLConfig(group_size=8, max_new_tokens=40, seed=5, temperature=0.5))


def test_resume_with_a_changed_resumable_setting_continues_exactly(tmp_path, tiny_checkpoint, addition_problems):
    config = SFTConfig(learning_rate=2e-3, min_learning_rate=1e-4, warmup_ratio=0.2, epochs=2, seq_len=128,
                       rows_per_micro_batch=2, grad_accum_steps=2, save_every=2, seed=3, device="cpu")
    full = train_sft(tiny_checkpoint, addition_problems, config, tmp_path / "full")
    train_sft(tiny_checkpoint, addition_problems, config, tmp_path / "split", stop_after_steps=3)
    resumed = train_sft(tiny_checkpoint, addition_problems, config.model_copy(update={"save_every": 0}),
                        tmp_path / "split")
    assert resumed["steps"] == full["steps"] and resumed["final_loss"] == full["final_loss"]
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model" / "model.safetensors")
    assert all(torch.equal(a[name], b[name]) for name in a)
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, full["steps"] + 1))
