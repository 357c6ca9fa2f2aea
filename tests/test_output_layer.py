"""The chunked output layer gives the full-logits values and gradients, for SFT, RL and S_LP (issue 18)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vibethinker.model import load_model, load_tokenizer
from vibethinker.model.output_layer import head_logprobs, masked_token_logprobs, supports_chunked_head
from vibethinker.rl.trainer import token_logprobs
from vibethinker.sft.packing import IGNORE_INDEX, collate_rows, tokenize_problems
from vibethinker.sft.trainer import micro_batch_loss


def _grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _full_logits_loss(model, batch):
    logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    return F.cross_entropy(logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")


@pytest.fixture()
def model_and_batch(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    model = load_model(tiny_checkpoint, device="cpu", dtype=torch.float32)
    samples = tokenize_problems(tokenizer, addition_problems[:6])
    batch = collate_rows(samples, [[0, 1, 2], [3, 4], [5]], None, tokenizer.pad_token_id)
    return model, batch


def test_head_chunks_match_one_projection(model_and_batch):
    model, _ = model_and_batch
    head = model.get_output_embeddings()
    hidden = torch.randn(37, head.in_features, requires_grad=True)
    targets = torch.randint(0, head.out_features, (37,))
    whole = torch.log_softmax(head(hidden).float() / 0.7, -1).gather(-1, targets[:, None]).squeeze(-1)
    (whole * torch.linspace(-1, 1, 37)).sum().backward()
    expected_hidden, expected_weight = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None
    chunked, entropy = head_logprobs(hidden, head, targets, temperature=0.7, chunk_tokens=5, entropy=True)
    (chunked * torch.linspace(-1, 1, 37)).sum().backward()
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(hidden.grad, expected_hidden)
    torch.testing.assert_close(head.weight.grad, expected_weight)
    dist = torch.log_softmax(head(hidden).float() / 0.7, -1)
    torch.testing.assert_close(entropy, -(dist.exp() * dist).sum(-1))
    assert not entropy.requires_grad


def test_sft_loss_and_gradients_equal_the_full_logits_path(model_and_batch):
    model, batch = model_and_batch
    assert supports_chunked_head(model)
    expected = _full_logits_loss(model, batch)
    expected.backward()
    reference = _grads(model)
    model.zero_grad(set_to_none=True)
    loss, summed = micro_batch_loss(model, batch, torch.device("cpu"), normaliser=batch.n_target_tokens)
    loss.backward()
    torch.testing.assert_close(torch.tensor(summed), expected.detach(), rtol=1e-5, atol=1e-4)
    got = _grads(model)
    assert got.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(got[name] * batch.n_target_tokens, reference[name], rtol=1e-4, atol=1e-5)


def test_small_chunks_change_nothing(model_and_batch):
    model, batch = model_and_batch
    mask = batch.labels != IGNORE_INDEX
    one, _ = masked_token_logprobs(model, batch.input_ids, batch.labels.clamp_min(0), mask, batch.position_ids)
    many, _ = masked_token_logprobs(model, batch.input_ids, batch.labels.clamp_min(0), mask, batch.position_ids,
                                    chunk_tokens=3)
    torch.testing.assert_close(one, many)
    assert one.shape == (int(mask.sum()),)


def test_rl_logprobs_entropy_and_gradients_equal_the_full_logits_path(model_and_batch):
    model, batch = model_and_batch
    input_ids = batch.input_ids
    logits = model(input_ids=input_ids, use_cache=False).logits
    log_dist = torch.log_softmax(logits[:, :-1].float() / 0.6, dim=-1)
    expected = log_dist.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    weights = torch.randn(expected.shape)
    (expected * weights).sum().backward()
    reference = _grads(model)
    model.zero_grad(set_to_none=True)
    logprobs, entropy = token_logprobs(model, input_ids, 0.6)
    (logprobs * weights).sum().backward()
    torch.testing.assert_close(logprobs, expected, rtol=1e-5, atol=1e-5)
    dist = log_dist.detach()
    torch.testing.assert_close(entropy, -(dist.exp() * dist).sum(-1), rtol=1e-5, atol=1e-5)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-5)
    # with a response mask only those positions are computed, the rest are 0
    mask = torch.zeros(expected.shape, dtype=torch.bool)
    mask[:, 5:9] = True
    masked, masked_entropy = token_logprobs(model, input_ids, 0.6, mask)
    torch.testing.assert_close(masked[mask], expected[mask].detach(), rtol=1e-5, atol=1e-5)
    assert (masked[~mask] == 0).all() and (masked_entropy[~mask] == 0).all()


def test_distillation_scores_equal_the_full_logits_nll(model_and_batch, tiny_checkpoint, addition_problems):
    from vibethinker.distill.scoring import _score_batch

    model, _ = model_and_batch
    tokenizer = load_tokenizer(tiny_checkpoint)
    samples = tokenize_problems(tokenizer, addition_problems[:3])
    rows = [[0], [1], [2]]
    scores = _score_batch(model, samples, rows, tokenizer.pad_token_id)
    batch = collate_rows(samples, rows, None, tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    nll = F.cross_entropy(logits.float().transpose(1, 2), batch.labels, ignore_index=IGNORE_INDEX, reduction="none")
    expected = nll.sum(1) / (batch.labels != IGNORE_INDEX).sum(1)
    torch.testing.assert_close(torch.tensor(scores, dtype=torch.float32), expected, rtol=1e-5, atol=1e-5)


def test_no_tokens_by_vocabulary_tensor_is_kept_for_backward(model_and_batch):
    model, batch = model_and_batch
    vocab = model.config.vocab_size
    mask = batch.labels != IGNORE_INDEX
    saved = []

    def pack(tensor):  # the vocabulary-wide tensors autograd keeps
        if tensor.dim() and tensor.shape[-1] == vocab:
            saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logprobs, _ = masked_token_logprobs(model, batch.input_ids, batch.labels.clamp_min(0), mask,
                                            batch.position_ids, chunk_tokens=8)
    assert saved == []  # chunks are recomputed in the backward: nothing vocabulary-wide is kept
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
        torch.log_softmax(logits.float(), -1)
    assert max(saved) >= batch.input_ids.numel() * vocab  # the hook does see the full-logits path's tensors
