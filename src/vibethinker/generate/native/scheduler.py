"""Which sequences run in the next forward pass, and what happens to them after it.

Policy (continuous batching, prefill first):

1. Prefill. While the waiting queue's head fits (a free slot among ``max_num_seqs``, cache blocks for its tokens
   plus one growth block per running sequence, and its uncached tokens within ``max_num_batched_tokens`` - a
   single longer prompt still runs alone), admit it. If anything was admitted, the step is a prefill of those.
   Admitting as soon as a slot frees keeps the decode batch full: a finished sequence's slot is refilled from
   the queue on the next step. With ``admission_reserve`` r > 0, admission also leaves free r times the blocks
   the running sequences and the candidate would still need to reach their length limits (SGLang's
   conservative new-token ratio, fixed): r = 1 never preempts sequences that run to their limit, smaller r admits
   more and bets that some stop early.
2. Otherwise decode every running sequence (oldest first). A sequence whose next token needs a new cache block
   when none is free preempts the most recently admitted running sequence (its blocks are freed and it goes back
   to the front of the queue, to be recomputed from its prompt and generated tokens); if it is itself the newest,
   it preempts itself.

After the forward (or a window of decode steps), :meth:`Scheduler.postprocess` appends each sequence's sampled
tokens and ends it at a stop token (kept in its tokens) or after ``max_new_tokens`` (or at ``max_model_len``),
freeing its slot and blocks; the tokens a window drew after that are dropped.
"""

from __future__ import annotations

import math
from collections import deque

from vibethinker.generate.native.kv_cache import KVCacheManager
from vibethinker.generate.native.sequence import Sequence, Status


class Scheduler:
    def __init__(self, kv: KVCacheManager, max_num_seqs: int, max_num_batched_tokens: int, max_model_len: int,
                 admission_reserve: float = 0.0):
        self.kv = kv
        self.admission_reserve = admission_reserve
        self.max_num_seqs, self.max_num_batched_tokens = max_num_seqs, max_num_batched_tokens
        self.max_model_len = max_model_len
        self.waiting: deque[Sequence] = deque()
        self.running: deque[Sequence] = deque()
        self.stop_ids: frozenset[int] = frozenset()
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    @property
    def done(self) -> bool:
        return not self.waiting and not self.running

    def schedule(self) -> tuple[list[Sequence], bool]:
        """(sequences, is_prefill) for the next forward pass."""
        batch, tokens = [], 0
        growth = sum(self._growth_blocks(seq) for seq in self.running) if self.admission_reserve and self.waiting \
            else 0
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            new_tokens = len(seq) - self.kv.cached_prefix_len(seq)
            candidate_growth = self._growth_blocks(seq) if self.admission_reserve else 0
            # With nothing running the head is admitted whatever its growth: nothing could free blocks for it.
            reserve = len(self.running) if not self.running else \
                max(len(self.running), math.ceil(self.admission_reserve * (growth + candidate_growth)))
            if (batch and tokens + new_tokens > self.max_num_batched_tokens) or \
                    not self.kv.can_admit(seq, reserve=reserve):
                break
            self.waiting.popleft()
            self.kv.admit(seq)
            seq.status = Status.RUNNING
            self.running.append(seq)
            batch.append(seq)
            growth += candidate_growth
            tokens += len(seq) - seq.num_cached_tokens
        if batch:
            return batch, True
        scheduled = []
        while self.running:
            seq = self.running.popleft()
            while not self.kv.can_append(seq):
                if self.running:
                    self._preempt(self.running.pop())
                else:
                    self._preempt(seq)
                    break
            else:
                self.kv.append_slot(seq)
                scheduled.append(seq)
        self.running.extend(scheduled)
        return scheduled, False

    def _growth_blocks(self, seq: Sequence) -> int:
        """Blocks ``seq`` still needs if it runs to its length limit (beyond those its tokens fill now)."""
        final = min(seq.num_prompt_tokens + seq.max_new_tokens, self.max_model_len)
        return max(0, self.kv.blocks_for(final) - self.kv.blocks_for(len(seq)))

    def drop_cancelled(self) -> list[Sequence]:
        """End the cancelled sequences between forward passes: their blocks and slots are free at once."""
        dropped = [seq for seq in (*self.waiting, *self.running) if seq.cancelled]
        if dropped:
            self.waiting = deque(seq for seq in self.waiting if not seq.cancelled)
            self.running = deque(seq for seq in self.running if not seq.cancelled)
            for seq in dropped:
                self._finish(seq, "abort")
        return dropped

    def _finish(self, seq: Sequence, reason: str) -> None:
        """End ``seq``; a running one gives its blocks and slot back."""
        if seq.status is Status.RUNNING:
            self.kv.release(seq)
        seq.finish_reason, seq.status = reason, Status.FINISHED

    def _preempt(self, seq: Sequence) -> None:
        self.kv.release(seq)
        seq.status, seq.num_cached_tokens = Status.WAITING, 0
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def postprocess(self, seqs: list[Sequence], tokens: list[list[int]], logprobs: list[list[float]],
                    ignore_eos: bool) -> list[int]:
        """Append to each running ``seqs[i]`` the tokens ``tokens[i]`` drawn for it in order (one per step of a
        decode window, or the one of a prefill) up to its first stop; returns how many each kept (0 for a sequence
        that had already finished)."""
        finished, kept = False, []
        for seq, drawn, drawn_logprobs in zip(seqs, tokens, logprobs):
            if seq.status is not Status.RUNNING:
                kept.append(0)
                continue
            if seq.cancelled:
                self._finish(seq, "abort")
                finished = True
                kept.append(0)
                continue
            if seq.forced:  # the thinking budget's end-of-reasoning tokens, one per (one-step) window
                drawn, drawn_logprobs = [seq.forced.pop(0)], [0.0]
            stop_ids = self.stop_ids if seq.stop_ids is None else seq.stop_ids
            room = min(seq.max_new_tokens - seq.num_generated, self.max_model_len - len(seq))
            stop_at = None
            if not ignore_eos and not stop_ids.isdisjoint(drawn):
                stop_at = next(j for j, token in enumerate(drawn) if token in stop_ids)
            if stop_at is not None and stop_at < room:  # a stop token on the last allowed position still stops
                take, reason = stop_at + 1, "stop"
            elif len(drawn) >= room:
                take, reason = room, "length"
            else:
                take, reason = len(drawn), None
            seq.token_ids.extend(drawn[:take])
            seq.logprobs.extend(drawn_logprobs[:take])
            seq.note_generated(take)
            kept.append(take)
            if reason is not None:
                self._finish(seq, reason)
                finished = True
        if finished:
            self.running = deque(seq for seq in self.running if seq.status is Status.RUNNING)
        return kept
