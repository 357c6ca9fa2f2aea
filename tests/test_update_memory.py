"""Memory of the RL update (issue 18): the engine's KV cache released and restored with identical tokens, and
AdamW for bf16 weights with fp32 moments and compensated updates."""

from __future__ import annotations

import pytest
import torch

from vibethinker.generate import SamplingParams
from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.utils.bf16_adamw import CompensatedAdamW


def test_released_cache_is_restored_with_identical_tokens(varied_tiny):
    model, tokenizer, _ = varied_tiny
    generator = NativeGenerator(model, tokenizer, config=EngineConfig(max_num_seqs=4, block_size=4, device="cpu",
                                                                      dtype="float32"))
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True) for q in ("hi", "What is 3 plus 4?")]
    sampling = SamplingParams(n=3, temperature=1.0, max_new_tokens=24, seed=7)
    before = generator.generate(prompts, sampling)
    runner = generator.engine.runner
    blocks = runner.num_blocks
    generator.release_memory()
    assert runner.kv_cache is None and all(a.k_cache is None for a in generator.engine.model.attention_layers)
    after = generator.generate(prompts, sampling)
    assert runner.kv_cache is not None and runner.num_blocks == blocks
    assert [c.token_ids for c in after] == [c.token_ids for c in before]
    assert [c.logprobs for c in after] == [c.logprobs for c in before]


def _train(optimizer_cls, dtype, steps=30, **kw):
    torch.manual_seed(0)
    param = torch.nn.Parameter(torch.randn(64, 32).to(dtype))
    optimizer = optimizer_cls([param], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1, **kw)
    target = torch.randn(64, 32)
    for _ in range(steps):
        loss = ((param.float() - target) ** 2).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return param, optimizer


def test_fp32_parameters_step_exactly_as_torch_adamw():
    ours, _ = _train(CompensatedAdamW, torch.float32)
    reference, _ = _train(torch.optim.AdamW, torch.float32)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-5)


def test_bf16_weights_keep_updates_below_their_precision():
    # w = 1 has a bf16 spacing of 2^-7; 200 updates of 1e-4 each round away one by one without compensation
    weight = torch.ones(8, dtype=torch.bfloat16)

    def run(optimizer_cls):
        param = torch.nn.Parameter(weight.clone())
        optimizer = optimizer_cls([param], lr=1e-4)
        for _ in range(200):
            param.grad = torch.ones_like(param)  # Adam's step is lr * sign(g) for a constant gradient
            optimizer.step()
        return param.float()

    plain, ours = run(torch.optim.AdamW), run(CompensatedAdamW)
    assert torch.all(plain == 1.0)
    assert torch.allclose(ours, torch.full((8,), 1 - 200 * 1e-4), atol=2 ** -8)


def test_state_is_fp32_and_resumes_exactly():
    param, optimizer = _train(CompensatedAdamW, torch.bfloat16, steps=5)
    state = optimizer.state[param]
    assert state["exp_avg"].dtype == torch.float32 and state["compensation"].dtype == torch.bfloat16
    saved = {k: v.clone() for k, v in optimizer.state_dict()["state"][0].items()}
    resumed = CompensatedAdamW([torch.nn.Parameter(param.detach().clone())], lr=1e-2, betas=(0.9, 0.95),
                               weight_decay=0.1)
    resumed.load_state_dict(optimizer.state_dict())
    for key, value in saved.items():
        assert torch.equal(resumed.state_dict()["state"][0][key], value), key
    assert resumed.state_dict()["state"][0]["exp_avg"].dtype == torch.float32


@pytest.mark.parametrize("fp32_state", [True, False])
def test_training_run_picks_the_optimizer(tmp_path, tiny_checkpoint, fp32_state):
    from vibethinker.rl.config import RLConfig
    from vibethinker.utils.training_loop import TrainingRun

    config = RLConfig(device="cpu", dtype="bfloat16", fp32_optimizer_state=fp32_state, max_steps=1)
    run = TrainingRun(tiny_checkpoint, config, tmp_path / "run", dtype=torch.bfloat16)
    run.begin(1)
    assert isinstance(run.optimizer, CompensatedAdamW) is fp32_state
