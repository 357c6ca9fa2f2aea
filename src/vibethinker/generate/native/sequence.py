"""One request's state inside the engine: its tokens (prompt, then generated), log-probs, cache blocks, status.

A closed batch (:meth:`LLMEngine.generate`) gives every sequence the batch's sampling settings and stop tokens; the
online engine (:mod:`.online`) sets them per request (``sampling``, ``stop_ids``), may cancel a sequence, and may
end its reasoning at a thinking budget: once ``thinking_budget`` tokens are generated without ``think_end_ids``,
those ids are appended in place of the next sampled tokens (``forced``), one per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vibethinker.generate.types import SamplingParams


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
    finish_reason: str | None = None  # "stop", "length", or "abort" (cancelled)
    request_id: str | None = None  # the online request it belongs to
    sampling: SamplingParams | None = None  # None: the batch's settings
    stop_ids: frozenset[int] | None = None  # None: the scheduler's
    cancelled: bool = False  # set by the online engine; the scheduler ends the sequence at its next look
    thinking_budget: int | None = None  # generated tokens allowed before think_end_ids is forced
    think_end_ids: tuple[int, ...] = ()
    thinking_done: bool = False  # think_end_ids generated or forced
    forced: list[int] = field(default_factory=list)  # tokens to append instead of the next sampled ones
    top_logprobs: int = 0  # alternatives to report per generated token (OpenAI's top_logprobs)
    top: list[list[tuple[int, float]]] = field(default_factory=list)  # (token id, log-prob), most likely first

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_generated(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def generated_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    def budget_room(self) -> int | None:
        """Tokens this sequence may still sample before the thinking budget forces ``think_end_ids``; 0 while forced
        tokens are pending; None without a budget (or once its reasoning has ended)."""
        if self.forced:
            return 0
        if self.thinking_budget is None or self.thinking_done:
            return None
        return max(0, self.thinking_budget - self.num_generated)

    def note_generated(self, appended: int) -> None:
        """After ``appended`` tokens were added: end the reasoning if ``think_end_ids`` was written among them, else
        force it once the budget is spent."""
        if self.thinking_budget is None or self.thinking_done or self.forced or not appended:
            return
        end = self.think_end_ids
        tail = self.token_ids[max(self.num_prompt_tokens, len(self.token_ids) - appended - len(end) + 1):]
        if end and any(tuple(tail[i:i + len(end)]) == end for i in range(len(tail) - len(end) + 1)):
            self.thinking_done = True
        elif self.num_generated >= self.thinking_budget:
            self.forced, self.thinking_done = list(end), True
