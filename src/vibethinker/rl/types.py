"""Data passed between the rollout and the update of the on-policy RL loop (SPEC 2.3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vibethinker.generate.types import Completion


@dataclass
class RolloutGroup:
    """The G responses to one prompt with their scores and MGPO advantages."""

    problem_id: str
    prompt_ids: list[int]  # prompt token ids, exactly as the generator encoded them
    completions: list[Completion]
    rewards: list[float]  # after the length-limit rule and optional Long2Short shaping
    correct: list[bool]  # binary correctness (False for a response cut at the length limit)
    advantages: list[float]  # A'_i = w(q) * A_i
    weight: float  # w(q)

    @property
    def truncated(self) -> list[bool]:
        return [c.finish_reason == "length" for c in self.completions]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)


@dataclass
class TrainingBatch:
    """The sequences of one rollout batch that enter the loss, right-padded.

    Position t of the [B, T-1] tensors holds the prediction of ``input_ids[:, t + 1]``; ``response_mask`` marks the
    response tokens (stop token included), so prompt and padding never enter the loss.
    """

    input_ids: torch.Tensor  # [B, T] long
    attention_mask: torch.Tensor  # [B, T] long
    response_mask: torch.Tensor  # [B, T-1] float
    advantages: torch.Tensor  # [B] float
    generator_logprobs: torch.Tensor  # [B, T-1] float, 0 outside the response
    lengths: list[int]  # prompt + response tokens per row

    @property
    def n_sequences(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_response_tokens(self) -> int:
        return int(self.response_mask.sum())

    def rows(self, start: int, stop: int) -> TrainingBatch:
        """Rows start:stop, cut to their own longest sequence (less padding per micro-batch)."""
        width = max(self.lengths[start:stop])
        return TrainingBatch(self.input_ids[start:stop, :width], self.attention_mask[start:stop, :width],
                             self.response_mask[start:stop, :width - 1], self.advantages[start:stop],
                             self.generator_logprobs[start:stop, :width - 1], self.lengths[start:stop])
