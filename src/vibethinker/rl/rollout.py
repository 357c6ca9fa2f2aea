"""Rollouts of the on-policy loop (SPEC 2.3-2.5): sample G responses per prompt with the CURRENT policy object,
score each group with a reward function, zero the responses cut at the length limit, optionally shape for brevity
(Long2Short), then compute the MGPO advantages group by group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import torch

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion, Generator
from vibethinker.prompts import render_prompt
from vibethinker.rl.config import RLConfig
from vibethinker.rl.long2short import long2short_rewards
from vibethinker.rl.mgpo import mgpo_advantages
from vibethinker.rl.rewards import GroupReward, RewardFunction, apply_length_limit, verifier_reward
from vibethinker.rl.types import RolloutGroup, TrainingBatch

SCORE_WORKERS = 8


def score_group(problem: Problem, completions: Sequence[Completion], config: RLConfig,
                reward_fn: RewardFunction) -> GroupReward:
    """Rewards and correctness of one group: the reward function, then the length-limit rule (a response cut at
    the limit scores 0 and is wrong), then optional Long2Short shaping of the correct ones."""
    result = apply_length_limit(reward_fn(problem, completions), completions)
    if config.long2short:
        shaped = long2short_rewards(result.rewards, result.correct, [max(1, c.num_tokens) for c in completions])
        result = GroupReward(shaped, result.correct)
    return result


def rollout(generator: Generator, problems: list[Problem], config: RLConfig, seed: int,
            reward_fn: RewardFunction | None = None) -> list[RolloutGroup]:
    """One rollout batch: ``config.group_size`` responses per problem, scored, with MGPO advantages.

    Groups are scored in a thread pool: code verdicts wait on sandbox processes, math on worker processes.
    """
    reward_fn = reward_fn or verifier_reward(config.require_think)
    tokenizer = generator.tokenizer
    prompts = [render_prompt(tokenizer, p) for p in problems]
    completions = generator.generate(prompts, config.sampling_params(seed=seed))
    per_problem = [completions[i * config.group_size:(i + 1) * config.group_size] for i in range(len(problems))]
    with ThreadPoolExecutor(max_workers=SCORE_WORKERS) as pool:
        scores = list(pool.map(lambda args: score_group(*args, config, reward_fn), zip(problems, per_problem)))
    groups = []
    for problem, prompt, group, result in zip(problems, prompts, per_problem, scores):
        advantages, weight = mgpo_advantages(result.rewards, result.correct, config.mgpo_lambda)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        groups.append(RolloutGroup(problem.id, prompt_ids, group, result.rewards, result.correct, advantages, weight))
    return groups


def build_batch(groups: list[RolloutGroup], pad_id: int, mask_truncated: bool = False) -> TrainingBatch:
    """Right-padded prompt+response rows of every response that enters the loss.

    With ``mask_truncated`` the responses cut at the length limit are left out (they still shaped their group's
    advantages); empty responses have no token to train on and are left out too.
    """
    rows = [(g.prompt_ids, c, a) for g in groups for c, a in zip(g.completions, g.advantages)
            if c.token_ids and not (mask_truncated and c.finish_reason == "length")]
    lengths = [len(p) + len(c.token_ids) for p, c, _ in rows]
    width = max(lengths, default=2)
    # whole tensors from padded lists at once: per-row tensor writes cost more than the rest of the batch
    input_ids = torch.tensor([p + c.token_ids + [pad_id] * (width - n) for (p, c, _), n in zip(rows, lengths)],
                             dtype=torch.long).reshape(len(rows), width)
    generator_logprobs = torch.tensor([[0.0] * (len(p) - 1) + c.logprobs + [0.0] * (width - n)
                                       for (p, c, _), n in zip(rows, lengths)],
                                      dtype=torch.float32).reshape(len(rows), width - 1)
    ends = torch.tensor(lengths, dtype=torch.long)[:, None]
    starts = torch.tensor([len(p) for p, _, _ in rows], dtype=torch.long)[:, None]
    positions = torch.arange(width)
    attention_mask = (positions < ends).long()
    # response token j of a row sits at position n_prompt + j; its log-prob is predicted at position n_prompt + j - 1
    response_mask = ((positions[:-1] >= starts - 1) & (positions[:-1] < ends - 1)).float()
    advantages = torch.tensor([a for _, _, a in rows], dtype=torch.float32)
    return TrainingBatch(input_ids, attention_mask, response_mask, advantages, generator_logprobs, lengths)
