"""One request's state inside the engine: its tokens (prompt, then generated), log-probs, cache blocks, status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(Enum):
    WAITING = "waiting"  # queued for prefill (new, or preempted and to be recomputed)
    RUNNING = "running"  # holds cache blocks and a block-table row; decoded every step
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    prompt_index: int
    sample_index: int
    token_ids: list[int]  # prompt followed by the generated tokens
    num_prompt_tokens: int
    max_new_tokens: int
    seed: int  # base seed of this sample's noise (see sampler.row_seed)
    status: Status = Status.WAITING
    logprobs: list[float] = field(default_factory=list)
    block_ids: list[int] = field(default_factory=list)  # cache blocks, in token order
    row: int = -1  # block-table row while RUNNING
    num_cached_tokens: int = 0  # leading tokens whose K/V were already in the cache at admission
    finish_reason: str | None = None

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_generated(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def generated_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]
