"""Selective gradient checkpointing: the same gradients, and only the chosen layers recompute."""

import pytest
import torch

from vibethinker.model.checkpointing import enable_gradient_checkpointing
from vibethinker.model.checkpoint import load_model


def _gradients_and_layer_calls(checkpoint, checkpointed_layers="off"):
    torch.manual_seed(0)
    model = load_model(checkpoint, device="cpu", dtype=torch.float32)
    layers = model.get_decoder().layers
    assert len(layers) >= 2
    calls = [0] * len(layers)
    for index, layer in enumerate(layers):
        # the MLP inside: transformers versions differ in whether the recompute passes the layer's own hooks
        layer.mlp.register_forward_pre_hook(lambda module, args, i=index: calls.__setitem__(i, calls[i] + 1))
    recomputing = None
    if checkpointed_layers != "off":
        recomputing = enable_gradient_checkpointing(model, checkpointed_layers)
    model.train()
    ids = torch.randint(1, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1))
    model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return grads, calls, recomputing, len(layers)


def test_selective_checkpointing_keeps_gradients_and_recomputes_only_the_last_layers(tiny_checkpoint):
    plain, plain_calls, _, n_layers = _gradients_and_layer_calls(tiny_checkpoint)
    assert plain_calls == [1] * n_layers
    for setting, recompute in ((None, n_layers), (1, 1), (0, 0)):
        grads, calls, recomputing, _ = _gradients_and_layer_calls(tiny_checkpoint, setting)
        assert recomputing == recompute
        # a checkpointed layer runs its forward again in the backward; the first layers keep their activations
        assert calls == [1] * (n_layers - recompute) + [2] * recompute
        torch.testing.assert_close(grads, plain, atol=1e-6, rtol=1e-5)


def test_checkpointed_layers_beyond_the_model_is_refused(tiny_checkpoint):
    model = load_model(tiny_checkpoint, device="cpu", dtype=torch.float32)
    with pytest.raises(ValueError, match="checkpointed_layers: 99 is not between 0 and the model's"):
        enable_gradient_checkpointing(model, 99)
