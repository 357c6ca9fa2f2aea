"""Rollouts of the on-policy loop (SPEC 2.3-2.5): sample G responses per prompt with the CURRENT policy object,
score each group with a reward function, zero the responses cut at the length limit, optionally shape for brevity
(Long2Short), then compute the MGPO advantages group by group."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import torch

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion, Generator, SamplingParams
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
    sampling = SamplingParams(n=config.group_size, temperature=config.temperature, top_p=config.top_p,
                              max_new_tokens=config.max_new_tokens, seed=seed)
    completions = generator.generate(prompts, sampling)
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
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    response_mask = torch.zeros((len(rows), width - 1))
    generator_logprobs = torch.zeros((len(rows), width - 1))
    for row, (prompt_ids, completion, _) in enumerate(rows):
        n_prompt, n = len(prompt_ids), len(prompt_ids) + len(completion.token_ids)
        input_ids[row, :n] = torch.tensor(prompt_ids + completion.token_ids, dtype=torch.long)
        attention_mask[row, :n] = 1
        response_mask[row, n_prompt - 1:n - 1] = 1.0
        generator_logprobs[row, n_prompt - 1:n - 1] = torch.tensor(completion.logprobs, dtype=torch.float32)
    advantages = torch.tensor([a for _, _, a in rows], dtype=torch.float32)
    return TrainingBatch(input_ids, attention_mask, response_mask, advantages, generator_logprobs, lengths)
