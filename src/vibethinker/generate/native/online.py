"""The engine as a request loop for serving: requests arrive while others decode, each with its own settings.

:meth:`LLMEngine.generate` is a closed batch: one :class:`SamplingParams` for all, the prefix cache reset at each
call (RL changes the weights in between). :class:`OnlineEngine` runs the same scheduler and step in a thread of
its own and takes requests at any time (continuous batching across requests, vLLM's ``AsyncLLMEngine``):

* a request is ``n`` samples of one prompt with its own temperature / top-p / top-k, seed, token limit, stop
  tokens and thinking budget; rows of different settings share the decode batch (:meth:`Sampler.sample` draws each
  group of equal settings together, every row's noise depending on its own seed and position only, so a request's
  tokens are those it gets alone with the same seed, up to the rounding of a different batch shape);
* tokens go out as the host reads them, after every prefill and every decode window (``on_output``, called in
  the engine's thread: the caller hands them to its own loop);
* :meth:`cancel` ends a request's samples at the next look of the scheduler: between two forward passes its blocks
  and slot are freed at once, and a decode batch that has queued windows stops chaining them
  (``LLMEngine.interrupted``), so a cancelled sample is dropped at the end of the window in flight;
* the prefix cache lives across requests (the weights do not change while serving): the ``n`` samples of a
  request prefill its prompt once, and a system prompt shared by many requests is computed once while it stays
  cached;
* a request that cannot run (empty, longer than the window, more than the cache holds) is refused when submitted,
  with a ``ValueError`` naming why, and never reaches the batch; if a forward pass itself fails, the requests in
  flight end with that error and the loop carries on with an emptied cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vibethinker.generate.native.engine import LLMEngine
from vibethinker.generate.native.sampler import row_seed
from vibethinker.generate.native.sequence import Sequence, Status
from vibethinker.generate.types import SamplingParams


class QueueFull(RuntimeError):
    """More requests wait than the engine was told to hold (a server answers 429)."""


class EngineClosed(RuntimeError):
    """The engine is shutting down and takes no new requests (a server answers 503)."""


@dataclass
class SampleOutput:
    """What one sample of a request produced since the last call: its new tokens (and their log-probs), and once it
    has ended, why (``stop``, ``length``, ``abort``, or ``error`` with ``error`` set)."""

    request_id: str
    sample_index: int
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str | None = None
    error: str | None = None
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0
    top_logprobs: list[list[tuple[int, float]]] | None = None  # per new token, when the request asked for them


@dataclass
class OnlineRequest:
    """``sampling.n`` samples of ``prompt_ids``; ``on_output`` receives :class:`SampleOutput` in the engine thread.
    ``thinking_budget``: generated tokens before ``think_end_ids`` is inserted (None: no budget)."""

    request_id: str
    prompt_ids: list[int]
    sampling: SamplingParams
    stop_ids: list[int]
    on_output: Callable[[SampleOutput], None]
    thinking_budget: int | None = None
    think_end_ids: tuple[int, ...] = ()
    top_logprobs: int = 0


class OnlineEngine:
    def __init__(self, engine: LLMEngine, max_waiting: int = 1024):
        self.engine = engine
        self.max_waiting = max_waiting
        self._lock = threading.Condition()
        self._incoming: list[tuple[OnlineRequest, list[Sequence]]] = []
        self._cancelled: set[tuple[str, int | None]] = set()  # (request id, sample index or None: all)
        # request id -> (request, its samples, tokens sent per sample: None once its end was sent)
        self._active: dict[str, tuple[OnlineRequest, list[Sequence], list[int | None]]] = {}
        self._closing = self._stopped = False
        self.counters = dict(requests=0, requests_finished=0, requests_cancelled=0, requests_failed=0,
                             prompt_tokens=0, generation_tokens=0,
                             prefix_cache_hit_tokens=0)
        if engine.runner.kv_cache is None:
            engine.runner.allocate_cache()
        engine.kv.reset()
        engine.reset_stats()
        engine.interrupted = lambda: bool(self._incoming or self._cancelled)
        self._thread = threading.Thread(target=self._loop, name="vibethinker-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------ the caller's side

    def submit(self, request: OnlineRequest) -> None:
        """Queue ``request``; raises ValueError (it cannot run), QueueFull or EngineClosed."""
        sampling = request.sampling
        if not request.prompt_ids:
            raise ValueError("empty prompt: generation needs at least one prompt token")
        self.engine._check_fits(0, len(request.prompt_ids), sampling.max_new_tokens)
        base = sampling.seed if sampling.seed is not None else int(torch.randint(0, 2 ** 62, ()).item())
        prompt_seed = row_seed(base, 0)  # as generate() seeds a one-prompt call: the same request alone
        stop_ids = frozenset(request.stop_ids)
        seqs = []
        for s in range(sampling.n):
            seq = Sequence(0, s, list(request.prompt_ids), len(request.prompt_ids), sampling.max_new_tokens,
                           row_seed(prompt_seed, s), sampling=sampling, stop_ids=stop_ids, request_id=request.request_id,
                           thinking_budget=request.thinking_budget, think_end_ids=tuple(request.think_end_ids),
                           top_logprobs=request.top_logprobs)
            if request.thinking_budget == 0:
                seq.forced, seq.thinking_done = list(request.think_end_ids), True
            seqs.append(seq)
        with self._lock:
            if self._closing:
                raise EngineClosed("the engine is shutting down")
            waiting = len(self.engine.scheduler.waiting) + sum(len(s) for _, s in self._incoming)
            if waiting + len(seqs) > self.max_waiting:
                raise QueueFull(f"{waiting} samples are waiting (the most is {self.max_waiting}); retry later")
            if request.request_id in self._active or any(r.request_id == request.request_id
                                                         for r, _ in self._incoming):
                raise ValueError(f"request id {request.request_id!r} is already in flight")
            self._incoming.append((request, seqs))
            self.counters["requests"] += 1
            self._lock.notify()

    def cancel(self, request_id: str, sample_index: int | None = None) -> None:
        """End the request's samples, or the one ``sample_index`` (finish reason ``abort``: a client gone, or a stop
        string found by the caller); unknown or finished ids are ignored."""
        with self._lock:
            self._cancelled.add((request_id, sample_index))
            self._lock.notify()

    def close(self, cancel: bool = False, timeout: float | None = None) -> None:
        """Take no more requests; finish the ones in flight (or cancel them), then stop the loop."""
        with self._lock:
            self._closing = True
            if cancel:
                self._cancelled.update((rid, None) for rid in self._active)
                self._cancelled.update((r.request_id, None) for r, _ in self._incoming)
            self._lock.notify()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive() and (self._active or self._incoming):
            if deadline is not None and time.monotonic() > deadline:
                self.close(cancel=True)
                deadline = None
            time.sleep(0.01)
        with self._lock:
            self._stopped = True
            self._lock.notify()
        self._thread.join(timeout=10)

    def stats(self) -> dict[str, float]:
        """Counters, the queue and the cache use now (for /metrics)."""
        kv, scheduler = self.engine.kv, self.engine.scheduler
        return dict(self.counters, waiting=len(scheduler.waiting) + sum(len(s) for _, s in self._incoming),
                    running=len(scheduler.running), kv_cache_usage=1 - kv.num_free_blocks / kv.num_blocks,
                    preemptions=scheduler.num_preemptions)

    # ------------------------------------------------------------------------------------------ the engine's side

    def _loop(self) -> None:
        self.engine.after_tokens = self._emit
        while True:
            with self._lock:
                while not (self._incoming or self._cancelled or self._stopped) and self.engine.scheduler.done:
                    self._lock.wait()
                if self._stopped:
                    return
                incoming, self._incoming = self._incoming, []
                cancelled, self._cancelled = self._cancelled, set()
            for request, seqs in incoming:
                self._active[request.request_id] = (request, seqs, [0] * len(seqs))
                self.counters["prompt_tokens"] += len(request.prompt_ids)
                for seq in seqs:
                    self.engine.scheduler.add(seq)
            for request_id, sample in cancelled:
                for seq in self._active.get(request_id, (None, ()))[1]:
                    seq.cancelled = seq.cancelled or sample is None or seq.sample_index == sample
            if cancelled:
                self._emit(self.engine.scheduler.drop_cancelled())
            if self.engine.scheduler.done:
                continue
            try:
                self.engine.step()
            except Exception as error:  # noqa: BLE001 - one failed forward ends the requests in it, not the server
                self._fail_all(f"{type(error).__name__}: {error}")

    def _emit(self, seqs: list[Sequence]) -> None:
        """Send each sample's tokens since the last call; retire requests whose samples have all ended."""
        for seq in seqs:
            entry = self._active.get(seq.request_id)
            if entry is None or entry[2][seq.sample_index] is None:
                continue
            request, samples, sent = entry
            i, finished = seq.sample_index, seq.status is Status.FINISHED
            new_ids = seq.generated_ids[sent[i]:]
            if not new_ids and not finished:
                continue
            if sent[i] == 0 and new_ids:
                self.counters["prefix_cache_hit_tokens"] += seq.num_cached_tokens
            request.on_output(SampleOutput(request.request_id, i, new_ids, seq.logprobs[sent[i]:],
                                           seq.finish_reason if finished else None,
                                           num_prompt_tokens=seq.num_prompt_tokens,
                                           num_cached_tokens=seq.num_cached_tokens,
                                           top_logprobs=seq.top[sent[i]:] if seq.top_logprobs else None))
            self.counters["generation_tokens"] += len(new_ids)
            sent[i] = None if finished else seq.num_generated
            if finished and all(n is None for n in sent):
                del self._active[request.request_id]
                aborted = any(sample.finish_reason == "abort" for sample in samples)
                self.counters["requests_cancelled" if aborted else "requests_finished"] += 1

    def _fail_all(self, message: str) -> None:
        scheduler = self.engine.scheduler
        for request, samples, sent_counts in self._active.values():
            for seq, sent in zip(samples, sent_counts):
                if sent is not None:
                    seq.status, seq.finish_reason = Status.FINISHED, "error"
                    request.on_output(SampleOutput(request.request_id, seq.sample_index, [], [], "error", message))
            self.counters["requests_failed"] += 1
        self._active.clear()
        scheduler.waiting.clear()
        scheduler.running.clear()
        self.engine.kv.reset()  # every block and prefix forgotten: a failed forward may have left them half-written
