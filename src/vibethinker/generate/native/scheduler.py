"""Which sequences run in the next forward pass, and what happens to them after it.

Policy (continuous batching, prefill first):

1. Prefill. While the waiting queue's head fits (a free slot among ``max_num_seqs``, cache blocks for its tokens
   plus one growth block per running sequence, and its uncached tokens within ``max_num_batched_tokens`` - a
   single longer prompt still runs alone), admit it. If anything was admitted, the step is a prefill of those.
   Admitting as soon as a slot frees keeps the decode batch full: a finished sequence's slot is refilled from
   the queue on the next step.
2. Otherwise decode every running sequence (oldest first). A sequence whose next token needs a new cache block
   when none is free preempts the most recently admitted running sequence (its blocks are freed and it goes back
   to the front of the queue, to be recomputed from its prompt and generated tokens); if it is itself the newest,
   it preempts itself.

After the forward, :meth:`Scheduler.postprocess` appends each sampled token and ends a sequence at a stop token
(kept in its tokens) or after ``max_new_tokens`` (or at ``max_model_len``), freeing its slot and blocks.
"""

from __future__ import annotations

from collections import deque

from vibethinker.generate.native.kv_cache import KVCacheManager
from vibethinker.generate.native.sequence import Sequence, Status


class Scheduler:
    def __init__(self, kv: KVCacheManager, max_num_seqs: int, max_num_batched_tokens: int, max_model_len: int):
        self.kv = kv
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
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            new_tokens = len(seq) - self.kv.cached_prefix_len(seq)
            if (batch and tokens + new_tokens > self.max_num_batched_tokens) or \
                    not self.kv.can_admit(seq, reserve=len(self.running)):
                break
            self.waiting.popleft()
            self.kv.admit(seq)
            seq.status = Status.RUNNING
            self.running.append(seq)
            batch.append(seq)
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

    def _preempt(self, seq: Sequence) -> None:
        self.kv.release(seq)
        seq.status, seq.num_cached_tokens = Status.WAITING, 0
        self.waiting.appendleft(seq)
        self.num_preemptions += 1

    def postprocess(self, seqs: list[Sequence], tokens: list[int], logprobs: list[float], ignore_eos: bool) -> None:
        finished = False
        for seq, token, logprob in zip(seqs, tokens, logprobs):
            seq.token_ids.append(token)
            seq.logprobs.append(logprob)
            if token in self.stop_ids and not ignore_eos:
                seq.finish_reason = "stop"
            elif seq.num_generated >= seq.max_new_tokens or len(seq) >= self.max_model_len:
                seq.finish_reason = "length"
            else:
                continue
            seq.status, finished = Status.FINISHED, True
            self.kv.release(seq)
        if finished:
            self.running = deque(seq for seq in self.running if seq.status is Status.RUNNING)
