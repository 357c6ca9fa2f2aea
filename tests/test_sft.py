"""SFT: response-only loss, packing without leakage, the LR schedule, accumulation, and exact resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from vibethinker.model import load_model, load_tokenizer
from vibethinker.sft import SFTConfig, train_sft
from vibethinker.sft.packing import IGNORE_INDEX, collate_rows, epoch_steps, pack_rows, tokenize_problems
from vibethinker.sft.schedule import warmup_cosine_lr
from vibethinker.sft.trainer import micro_batch_loss


def test_labels_cover_response_only(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    sample = tokenize_problems(tokenizer, addition_problems[:1])[0]
    targets = [t for t in sample.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(targets) == addition_problems[0].traces[0] + "<|im_end|>"
    first = sample.labels.index(targets[0])
    assert tokenizer.decode(sample.input_ids[:first]).endswith("<|im_start|>assistant\n")


def test_packed_rows_do_not_leak_between_samples(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    model = load_model(tiny_checkpoint, device="cpu").eval()
    samples = tokenize_problems(tokenizer, addition_problems[:2])[:3]
    seq_len = sum(len(s.input_ids) for s in samples) + 7  # trailing padding too
    batch = collate_rows(samples, [[0, 1, 2]], seq_len, tokenizer.pad_token_id)
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits[0]
        cursor = 0
        for sample in samples:
            alone = model(input_ids=torch.tensor([sample.input_ids])).logits[0]
            n = len(sample.input_ids)
            torch.testing.assert_close(packed[cursor:cursor + n], alone, atol=1e-5, rtol=1e-5)
            cursor += n
    # the last token of a sample never gets the next sample's first token as its target
    n0 = len(samples[0].input_ids)
    assert batch.labels[0, n0 - 1] == IGNORE_INDEX
    assert (batch.labels[0, cursor:] == IGNORE_INDEX).all()


def test_unpacked_rows_are_right_padded_and_unmasked(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    model = load_model(tiny_checkpoint, device="cpu").eval()
    samples = tokenize_problems(tokenizer, addition_problems[:4])[::2]
    samples[0].input_ids.extend([7, 8, 9])  # make lengths differ, so some rows carry padding
    samples[0].labels.extend([7, 8, 9])
    batch = collate_rows(samples, [[0], [1]], None, tokenizer.pad_token_id)
    assert batch.input_ids.shape[1] == max(len(samples[0].input_ids), len(samples[1].input_ids))
    assert (batch.position_ids == torch.arange(batch.input_ids.shape[1])).all()  # plain causal path
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
        for row, sample in enumerate(samples[:2]):
            alone = model(input_ids=torch.tensor([sample.input_ids])).logits[0]
            torch.testing.assert_close(logits[row, :len(sample.input_ids)], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("packing", [True, False])
def test_each_epoch_visits_every_sample_once(tiny_checkpoint, addition_problems, packing):
    samples = tokenize_problems(load_tokenizer(tiny_checkpoint), addition_problems)
    steps = epoch_steps(samples, 256, packing, 3, 2, seed=1, epoch=0)
    visited = sorted(i for step in steps for batch in step for row in batch for i in row)
    assert visited == list(range(len(samples)))
    assert all(len(step) <= 2 and all(len(batch) <= 3 for batch in step) for step in steps)
    assert steps != epoch_steps(samples, 256, packing, 3, 2, seed=1, epoch=1)  # reshuffled per epoch
    assert steps == epoch_steps(samples, 256, packing, 3, 2, seed=1, epoch=0)


def test_unpacked_steps_draw_iid_global_batches_sorted_inside(tiny_checkpoint, addition_problems):
    samples = tokenize_problems(load_tokenizer(tiny_checkpoint), addition_problems)
    lengths = [len(s.input_ids) for s in samples]
    steps = epoch_steps(samples, 256, False, 4, 3, seed=0, epoch=0)
    assert all(sum(len(batch) for batch in step) == 12 for step in steps[:-1])
    for step in steps:
        flat = [lengths[row[0]] for batch in step for row in batch]
        assert flat == sorted(flat)  # micro-batches of similar length within the step


def test_pack_rows_respects_length_and_order():
    rows = pack_rows([5, 4, 3, 6, 2], [0, 1, 2, 3, 4], seq_len=10, packing=True)
    assert rows == [[0, 1], [2, 3], [4]]
    assert pack_rows([5, 4], [1, 0], seq_len=10, packing=False) == [[1], [0]]


def test_warmup_cosine_schedule():
    lrs = [warmup_cosine_lr(s, 100, 1e-3, 1e-5, 0.05) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3 / 5)
    assert lrs[4] == pytest.approx(1e-3)  # warm-up ends at the peak
    assert lrs[-1] == pytest.approx(1e-5)  # the floor on the last update
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))  # monotone decay after warm-up
    mid = 5 + (100 - 5 - 1) / 2
    assert warmup_cosine_lr(int(mid), 100, 1e-3, 1e-5, 0.05) == pytest.approx(
        1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (int(mid) - 5) / 94)))


def test_grad_accumulation_equals_one_big_batch(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    samples = tokenize_problems(tokenizer, addition_problems[:8])
    rows = pack_rows([len(s.input_ids) for s in samples], list(range(8)), 96, True)
    assert len(rows) >= 2
    device = torch.device("cpu")

    def grads(micro_batches):
        model = load_model(tiny_checkpoint, device="cpu")
        batches = [collate_rows(samples, rows_, 96, tokenizer.pad_token_id) for rows_ in micro_batches]
        total = sum(b.n_target_tokens for b in batches)
        for b in batches:
            micro_batch_loss(model, b, device, total)[0].backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    big = grads([rows])
    accumulated = grads([[row] for row in rows])
    torch.testing.assert_close(accumulated, big, atol=1e-6, rtol=1e-4)


def _config(**kw) -> SFTConfig:
    base = dict(learning_rate=2e-3, min_learning_rate=1e-4, warmup_ratio=0.2, epochs=2, seq_len=128,
                rows_per_micro_batch=2, grad_accum_steps=2, save_every=2, seed=3)
    return SFTConfig(**{**base, **kw})


@pytest.mark.parametrize("packing", [True, False])
def test_resume_continues_the_same_run_exactly(tmp_path, tiny_checkpoint, addition_problems, packing):
    full = train_sft(tiny_checkpoint, addition_problems, _config(packing=packing), tmp_path / "full")
    partial = train_sft(tiny_checkpoint, addition_problems, _config(packing=packing), tmp_path / "split",
                        stop_after_steps=3)
    assert partial == {"finished": False, "step": 3}
    assert not (tmp_path / "split" / "model").exists()
    resumed = train_sft(tiny_checkpoint, addition_problems, _config(packing=packing), tmp_path / "split")
    assert resumed["steps"] == full["steps"] > 3
    a = load_file(tmp_path / "full" / "model" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
    rows_full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rows_split = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_split] == [r["step"] for r in rows_full]
    assert [r["loss"] for r in rows_split] == [r["loss"] for r in rows_full]
    # every checkpoint is kept for probing; only the newest carries optimiser state
    checkpoints = sorted((tmp_path / "split" / "checkpoints").glob("step-*"))
    assert [c.name for c in checkpoints][:2] == ["step-000002", "step-000003"]
    assert sum((c / "trainer_state.pt").exists() for c in checkpoints) == 1


def test_sft_lowers_the_loss(tmp_path, tiny_checkpoint, addition_problems):
    summary = train_sft(tiny_checkpoint, addition_problems, _config(epochs=6, save_every=0), tmp_path / "run")
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < 0.6 * rows[0]["loss"]
    assert summary["finished"] and summary["samples"] == 2 * len(addition_problems)
    for key in ("loss", "lr", "grad_norm", "tokens_per_s"):
        assert key in rows[0]
    assert any((tmp_path / "run" / "tensorboard").iterdir())


def test_no_usable_samples_is_a_clear_error(tmp_path, tiny_checkpoint, addition_problems):
    with pytest.raises(ValueError, match="seq_len=16"):
        train_sft(tiny_checkpoint, addition_problems, _config(seq_len=16), tmp_path / "run")


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, tiny_checkpoint, addition_problems):
    train_sft(tiny_checkpoint, addition_problems, _config(), tmp_path / "run", stop_after_steps=2)
    with pytest.raises(ValueError, match="other settings \\(learning_rate\\)"):
        train_sft(tiny_checkpoint, addition_problems, _config(learning_rate=1e-3), tmp_path / "run")
