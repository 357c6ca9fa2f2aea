"""Packed SFT rows through a varlen kernel (FlexAttention) equal the dense-mask path, with no cross-attention."""

from __future__ import annotations

import torch

from vibethinker.model import load_model, load_tokenizer
from vibethinker.model.attention_backend import attention_backend, compile_decoder_layers, use_attention_backend
from vibethinker.sft.packing import collate_rows, tokenize_problems
from vibethinker.sft.trainer import micro_batch_loss


def test_auto_choice_follows_layout_and_device():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert attention_backend("auto", packed=False, device=cuda) == "sdpa"
    assert attention_backend("auto", packed=True, device=cpu) == "sdpa"
    assert attention_backend("auto", packed=True, device=cuda) in ("flex_attention", "flash_attention_2")
    assert attention_backend("sdpa", packed=True, device=cuda) == "sdpa"


def test_flex_attention_packs_without_cross_attention(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    model = load_model(tiny_checkpoint, device="cpu")
    samples = tokenize_problems(tokenizer, addition_problems[:3])[:3]
    seq_len = sum(len(s.input_ids) for s in samples) + 5
    batch = collate_rows(samples, [[0, 1, 2]], seq_len, tokenizer.pad_token_id)
    with torch.no_grad():
        dense = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits[0]
    dense_loss, _ = micro_batch_loss(model, batch, torch.device("cpu"), batch.n_target_tokens)

    assert use_attention_backend(model, "flex_attention", packed=True) == "flex_attention"
    with torch.no_grad():
        flex = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits[0]
        cursor = 0
        for sample in samples:  # each document alone, as its own sequence
            n = len(sample.input_ids)
            alone = model(input_ids=torch.tensor([sample.input_ids]), use_cache=False).logits[0]
            torch.testing.assert_close(flex[cursor:cursor + n], alone, atol=1e-5, rtol=1e-5)
            cursor += n
    torch.testing.assert_close(flex, dense, atol=1e-5, rtol=1e-5)
    # FlexAttention has no CPU backward: the gradients are compared on the GPU by bench/long_context.py
    with torch.no_grad():
        flex_loss, _ = micro_batch_loss(model, batch, torch.device("cpu"), batch.n_target_tokens)
    torch.testing.assert_close(flex_loss, dense_loss.detach(), atol=1e-6, rtol=1e-5)


def test_compiled_decoder_layers_give_the_eager_loss_and_gradients(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    model = load_model(tiny_checkpoint, device="cpu")
    samples = tokenize_problems(tokenizer, addition_problems[:2])[:2]
    batch = collate_rows(samples, [[0, 1]], None, tokenizer.pad_token_id)

    def loss_and_grad():
        loss, _ = micro_batch_loss(model, batch, torch.device("cpu"), batch.n_target_tokens)
        loss.backward()
        grad = model.model.layers[1].mlp.up_proj.weight.grad.clone()
        model.zero_grad(set_to_none=True)
        return loss.detach(), grad

    eager_loss, eager_grad = loss_and_grad()
    compile_decoder_layers(model)
    assert all(layer._compiled_call_impl is not None for layer in model.model.layers)
    compiled_loss, compiled_grad = loss_and_grad()
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(compiled_grad, eager_grad, atol=1e-5, rtol=1e-4)


def test_fused_kernels_apply_only_where_they_run(tiny_checkpoint):
    import importlib.util

    import pytest

    from vibethinker.model.fused_kernels import apply_fused_kernels

    model = load_model(tiny_checkpoint, device="cpu")
    before = type(model.model.norm).forward
    assert apply_fused_kernels(model, "auto") is False and apply_fused_kernels(model, "off") is False
    assert type(model.model.norm).forward is before  # nothing patched on CPU
    expected = "runs on CUDA only" if importlib.util.find_spec("liger_kernel") else "needs the liger-kernel package"
    with pytest.raises(ValueError, match=expected):
        apply_fused_kernels(model, "liger")
