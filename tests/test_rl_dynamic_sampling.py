"""Dynamic sampling and reward functions of the RL loop, on hand-made groups (no model)."""

from __future__ import annotations

import json

import pytest

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion
from vibethinker.report.plots import plot_metric_grid
from vibethinker.rl.dynamic_sampling import has_variance, replace_zero_variance, replacement_indices
from vibethinker.rl.rewards import GroupReward, apply_length_limit, verifier_reward
from vibethinker.rl.types import RolloutGroup


def _group(name: str, rewards: list[float]) -> RolloutGroup:
    completions = [Completion(0, i, [1], "x", [0.0], "stop") for i in range(len(rewards))]
    return RolloutGroup(name, [0], completions, rewards, [r > 0 for r in rewards], [0.0] * len(rewards), 1.0)


def _problem(i: int) -> Problem:
    return Problem(id=f"p{i}", domain="math", subdomain="addition", difficulty=1, source="test",
                   problem=f"What is {i} + 1?", answer=str(i + 1))


def test_zero_variance_groups_are_replaced_and_informative_ones_kept():
    groups = [_group("a", [1, 0]), _group("b", [0, 0]), _group("c", [1, 1]), _group("d", [0, 1])]
    calls = []

    def sample(problems, round_index):
        calls.append(([p.id for p in problems], round_index))
        # round 0: the first replacement is informative, the second is not; round 1: informative
        if round_index == 0:
            return [_group(problems[0].id, [1, 0]), _group(problems[1].id, [0, 0])]
        return [_group(problems[0].id, [0, 1])]

    out, stats = replace_zero_variance(groups, draw=lambda rnd, n: [_problem(100 * (rnd + 1) + i) for i in range(n)],
                                       sample=sample, max_rounds=3)
    assert [g.problem_id for g in out] == ["a", "p100", "p200", "d"]
    assert all(has_variance(g) for g in out)
    assert calls == [(["p100", "p101"], 0), (["p200"], 1)]
    assert (stats.zero_variance_initial, stats.zero_variance_final, stats.rounds, stats.extra_groups) == (2, 0, 2, 3)


def test_retry_cap_leaves_unfixable_groups_in_the_batch():
    groups = [_group("a", [0, 0]), _group("b", [1, 0])]
    out, stats = replace_zero_variance(groups, draw=lambda rnd, n: [_problem(rnd)] * n,
                                       sample=lambda problems, rnd: [_group("z", [1, 1]) for _ in problems],
                                       max_rounds=2)
    assert [g.problem_id for g in out] == ["a", "b"]  # never stalls, never shrinks the batch
    assert (stats.zero_variance_final, stats.rounds, stats.extra_groups) == (1, 2, 2)


def test_replacement_draws_are_a_pure_function_of_seed_step_and_round():
    first = replacement_indices(50, 6, seed=1, step=3, round_index=0)
    assert first == replacement_indices(50, 6, seed=1, step=3, round_index=0)
    assert first != replacement_indices(50, 6, seed=1, step=4, round_index=0)
    assert first != replacement_indices(50, 6, seed=1, step=3, round_index=1)
    assert all(0 <= i < 50 for i in first)


def test_length_limit_overrides_any_reward_function():
    completions = [Completion(0, 0, [1, 2], "a", [0.0, 0.0], "stop"), Completion(0, 1, [1, 2], "b", [0.0, 0.0],
                                                                                    "length")]
    out = apply_length_limit(GroupReward([1.0, 1.0], [True, True]), completions)
    assert out.rewards == [1.0, 0.0] and out.correct == [True, False]
    with pytest.raises(ValueError, match="1 rewards for 2 completions"):
        apply_length_limit(GroupReward([1.0], [True]), completions)
    with pytest.raises(ValueError, match="2 rewards but 1 correctness"):
        GroupReward([1.0, 0.0], [True])


def test_verifier_reward_grades_with_the_domain_verifier():
    problem = _problem(4)
    completions = [Completion(0, i, [1], text, [0.0], reason) for i, (text, reason) in enumerate([
        ("<think>4 + 1 = 5</think> \\boxed{5}", "stop"), ("<think>hm</think> \\boxed{6}", "stop"),
        ("\\boxed{5}", "stop"), ("<think>4 + 1 = 5</think> \\boxed{5}", "length")])]
    out = verifier_reward(require_think=True)(problem, completions)
    assert out.correct == [True, False, False, False]  # no </think>: wrong; cut: never graded
    assert out.rewards == [1.0, 0.0, 0.0, 0.0]


def test_metric_grid_plots_logged_keys_and_skips_missing(tmp_path):
    rows = [{"step": s, "reward_mean": s / 10, "entropy": float("nan") if s == 2 else 1.0} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    png = tmp_path / "curves.png"
    assert plot_metric_grid(tmp_path / "metrics.jsonl", png, ["reward_mean", "entropy", "kl"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot_metric_grid(tmp_path / "metrics.jsonl", tmp_path / "none.png", ["kl"])
    assert not (tmp_path / "none.png").exists()
