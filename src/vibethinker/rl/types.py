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
        return self.select(list(range(start, min(stop, self.n_sequences))))

    def select(self, indices: list[int]) -> TrainingBatch:
        """The rows ``indices`` (in that order), cut to their own longest sequence."""
        width = max(self.lengths[i] for i in indices)
        index = torch.tensor(indices)
        return TrainingBatch(self.input_ids[index, :width], self.attention_mask[index, :width],
                             self.response_mask[index, :width - 1], self.advantages[index],
                             self.generator_logprobs[index, :width - 1], [self.lengths[i] for i in indices])
