"""MGPO weights and advantages, Long2Short shaping, and the clipped policy loss with its aggregation modes."""

from __future__ import annotations

import math

import pytest
import torch

from vibethinker.rl.long2short import long2short_rewards
from vibethinker.rl.loss import kl_penalty, policy_loss
from vibethinker.rl.mgpo import bernoulli_kl_from_half, group_advantages, mgpo_advantages, mgpo_weight


@pytest.mark.parametrize("p, weights", [(1 / 8, (0.729, 0.531, 0.282)), (3 / 8, (0.969, 0.939, 0.881))])
def test_mgpo_weights_match_spec_reference_values(p, weights):
    for lam, expected in zip((1.0, 2.0, 4.0), weights):
        assert mgpo_weight(p, lam) == pytest.approx(expected, abs=5e-4)


def test_mgpo_weight_edges():
    assert mgpo_weight(0.5, 4.0) == 1.0
    assert bernoulli_kl_from_half(0.0) == pytest.approx(math.log(2)) == bernoulli_kl_from_half(1.0)
    assert mgpo_weight(0.0, 1.0) == pytest.approx(0.5)  # exp(-ln 2)
    with pytest.raises(ValueError):
        mgpo_weight(0.5, -1.0)
    with pytest.raises(ValueError):
        bernoulli_kl_from_half(1.5)


def test_lambda_zero_is_plain_grpo_exactly():
    rewards = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    advantages, weight = mgpo_advantages(rewards, [r == 1.0 for r in rewards], 0.0)
    assert weight == 1.0 and advantages == group_advantages(rewards)
    mean, std = 0.25, math.sqrt(0.25 * 0.75)
    assert advantages[0] == pytest.approx((1 - mean) / (std + 1e-6))


def test_weight_scales_the_normalised_advantage_not_the_rewards():
    rewards = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    correct = [r == 1.0 for r in rewards]
    advantages, weight = mgpo_advantages(rewards, correct, 2.0)
    assert weight == pytest.approx(0.531, abs=5e-4)
    assert advantages == pytest.approx([weight * a for a in group_advantages(rewards)])
    # a constant factor on the rewards cancels in the normalisation; the weight does not
    scaled, _ = mgpo_advantages([3 * r for r in rewards], correct, 2.0)
    assert scaled == pytest.approx(advantages, abs=1e-5)
    assert group_advantages([0.0, 0.0, 0.0]) == [0.0, 0.0, 0.0]


def test_accuracy_comes_from_binary_correctness_even_with_shaped_rewards():
    shaped = [1.1, 0.9, 0.0, 0.0]
    _, weight = mgpo_advantages(shaped, [True, True, False, False], 2.0)
    assert weight == 1.0  # p = 0.5, whatever the shaped rewards are


def test_long2short_is_zero_sum_within_bounds_and_leaves_wrong_alone():
    rewards = [1.0, 1.0, 0.0, 1.0, 0.0]
    correct = [True, True, False, True, False]
    lengths = [100, 400, 50, 200, 999]
    shaped = long2short_rewards(rewards, correct, lengths)
    assert sum(shaped) == pytest.approx(sum(rewards))
    assert shaped[2] == 0.0 and shaped[4] == 0.0
    assert all(0.8 - 1e-12 <= shaped[i] <= 1.2 + 1e-12 for i in (0, 1, 3))
    assert shaped[0] == pytest.approx(1.2)  # the shortest correct response gets the full bonus
    assert shaped[0] > shaped[3] > shaped[1]
    s = [1 / 100, 1 / 400, 1 / 200]
    mean = sum(s) / 3
    assert shaped[3] == pytest.approx(1 + 0.2 * (s[2] - mean) / max(abs(x - mean) for x in s))


def test_long2short_no_change_cases():
    assert long2short_rewards([1.0, 0.0], [True, False], [10, 20]) == [1.0, 0.0]
    assert long2short_rewards([1.0, 1.0], [True, True], [30, 30]) == [1.0, 1.0]
    with pytest.raises(ValueError):
        long2short_rewards([1.0], [True], [0])


def _example():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    logprobs = torch.zeros(2, 3, requires_grad=True)
    return logprobs, torch.zeros(2, 3), torch.tensor([1.0, -2.0]), mask


@pytest.mark.parametrize("mode, expected", [
    ("token-mean", (-2 + 6) / 5),                # every response token weighs 1/5
    ("seq-mean-token-mean", (-1 + 2) / 2),       # per-sequence means -1 and 2
    ("seq-mean-token-sum-norm", (-2 / 4 + 6 / 4) / 2),  # sums over L_max = 4
])
def test_each_aggregation_mode_against_a_hand_computed_example(mode, expected):
    logprobs, old, advantages, mask = _example()
    out = policy_loss(logprobs, old, advantages, mask, aggregation=mode, max_response_tokens=4)
    assert float(out.loss.detach()) == pytest.approx(expected)
    assert out.clip_fraction == 0.0 and out.ratio_mean == pytest.approx(1.0)


def test_clipping_is_asymmetric_and_one_sided():
    mask = torch.ones(3, 1)
    old = torch.zeros(3, 1)
    logprobs = torch.log(torch.tensor([[1.5], [0.5], [0.5]]))
    advantages = torch.tensor([1.0, 1.0, -1.0])
    out = policy_loss(logprobs, old, advantages, mask, clip_low=0.2, clip_high=0.28, aggregation="token-mean")
    # -min(1.5, 1.28) = -1.28 (clipped); -min(0.5, 0.8) = -0.5 (not clipped); -min(-0.5, -0.8) = 0.8 (clipped)
    assert float(out.loss.detach()) == pytest.approx((-1.28 - 0.5 + 0.8) / 3)
    assert out.clip_fraction == pytest.approx(2 / 3)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_accumulated_micro_batches_equal_one_big_batch(mode):
    torch.manual_seed(0)
    logprobs = torch.randn(6, 5, requires_grad=True)
    old = logprobs.detach() + 0.1 * torch.randn(6, 5)
    ref = logprobs.detach() + 0.1 * torch.randn(6, 5)
    advantages = torch.randn(6)
    mask = (torch.rand(6, 5) > 0.3).float()
    mask[:, 0] = 1.0
    kw = dict(aggregation=mode, max_response_tokens=5, ref_logprobs=ref, kl_coef=0.1, kl_estimator="k3")
    big = policy_loss(logprobs, old, advantages, mask, **kw).loss
    big.backward()
    grad_big = logprobs.grad.clone()
    logprobs.grad = None
    total = 0.0
    for rows in (slice(0, 2), slice(2, 6)):
        part = policy_loss(logprobs[rows], old[rows], advantages[rows], mask[rows], global_tokens=float(mask.sum()),
                           global_sequences=6.0, **{**kw, "ref_logprobs": ref[rows]}).loss
        part.backward()
        total += float(part.detach())
    assert total == pytest.approx(float(big.detach()), rel=1e-6)
    torch.testing.assert_close(logprobs.grad, grad_big)


def test_kl_estimators():
    logp, ref = torch.tensor([0.0, -1.0]), torch.tensor([-0.5, -1.0])
    r = ref - logp
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), -r)
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), 0.5 * r ** 2)
    torch.testing.assert_close(kl_penalty(logp, ref, "k3"), torch.exp(r) - r - 1)
    assert float(kl_penalty(logp, ref, "k3")[1]) == 0.0
    with pytest.raises(ValueError, match="k1, k2 or k3"):
        kl_penalty(logp, ref, "k4")
    with pytest.raises(ValueError, match="token-mean"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), aggregation="sum")
