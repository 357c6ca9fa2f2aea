"""The engine's step loop (:class:`LLMEngine`) and its face as a generation backend (:class:`NativeGenerator`).

One step: the scheduler picks a prefill or a decode batch, the model runner computes the last-token logits, the
sampler picks tokens, the scheduler appends them and retires finished sequences (whose slots the next step refills
from the queue). A decode batch may run a window of several steps on the device (``decode_window``): the host then
appends each step's tokens in order, and a sequence's tokens after its stop are dropped; the batch's next window
may already be queued behind it (``overlap_windows``). ``generate`` loops until every sequence has finished.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoConfig, GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from vibethinker.generate.native.config import EngineConfig
from vibethinker.generate.native.kv_cache import KVCacheManager
from vibethinker.generate.native.model_runner import (
    ModelRunner,
    PendingWindow,
    blocks_per_sequence,
    graph_bucket,
    kv_cache_blocks,
)
from vibethinker.generate.native.models import DecoderLM, spec_from_config
from vibethinker.generate.native.sampler import Sampler, row_seed
from vibethinker.generate.native.scheduler import Scheduler
from vibethinker.generate.native.sequence import Sequence, Status
from vibethinker.generate.native.weights import LiveWeightCopy, checkpoint_tensors, load_weights
from vibethinker.generate.types import Completion, Generator, SamplingParams, decode_texts, resolve_stop_ids
from vibethinker.model.window import apply_rope_scaling

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class LLMEngine:
    """Token ids in, sequences out. Build it with the HF config of the model, then :meth:`load` its weights."""

    def __init__(self, hf_config, config: EngineConfig | None = None, device: torch.device | str | None = None):
        self.config = config = config or EngineConfig()
        if config.rope_scaling is not None:  # on a copy: the config may be a live model's
            hf_config = apply_rope_scaling(copy.deepcopy(hf_config), config.rope_scaling)
        spec = spec_from_config(hf_config)
        self.device = torch.device(config.device or device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = _DTYPES[config.dtype] if config.dtype else (torch.bfloat16 if self.device.type == "cuda"
                                                            else torch.float32)
        self.max_model_len = config.max_model_len or spec.max_position_embeddings
        with torch.device(self.device):
            self.model = DecoderLM(spec, self.max_model_len)
        for param in self.model.parameters():
            param.data = param.data.to(dtype)
        table_width = blocks_per_sequence(self.max_model_len, config.block_size)
        num_blocks = kv_cache_blocks(self.model, config.block_size, dtype, self.device, config.kv_cache_gib,
                                     config.kv_cache_fraction, config.max_num_seqs * table_width)
        self.kv = KVCacheManager(num_blocks, config.block_size, config.max_num_seqs, table_width,
                                 config.prefix_sharing)
        self.scheduler = Scheduler(self.kv, config.max_num_seqs, config.max_num_batched_tokens, self.max_model_len,
                                   config.admission_reserve)
        self.runner = ModelRunner(self.model, num_blocks, config.block_size, config.max_num_seqs, table_width,
                                  self.kv.table, config.cuda_graphs, config.paged_prefill_max_tokens,
                                  config.fused_decode_attention, config.prefill_chunk_tokens, config.decode_split_k)
        self.sampler = Sampler(self.runner.use_triton)
        self.stats: dict[str, float] = {}  # of the last generate call
        # Online serving (.online): True when requests arrived or were cancelled, so that a decode batch stops
        # chaining windows and the loop can admit or drop them.
        self.interrupted: Callable[[], bool] = lambda: False
        self.after_tokens: Callable[[list[Sequence]], None] | None = None  # called after tokens were appended

    def load(self, tensors, source: str) -> None:
        load_weights(self.model, tensors, source)

    def release_cache(self) -> None:
        """Give the KV cache's GPU memory back until the next :meth:`generate`, which allocates it again, with the
        same number of blocks, so scheduling and tokens are those of an engine that never released it."""
        self.runner.release_cache()

    def generate(self, prompts: list[list[int]], sampling: SamplingParams, stop_ids: list[int]) -> list[Sequence]:
        """``sampling.n`` sequences per prompt, ordered by prompt then sample."""
        base_seed = sampling.seed if sampling.seed is not None else int(torch.randint(0, 2 ** 62, ()).item())
        seqs = []
        for p, ids in enumerate(prompts):
            self._check_fits(p, len(ids), sampling.max_new_tokens)
            prompt_seed = row_seed(base_seed, p)
            seqs += [Sequence(p, s, list(ids), len(ids), sampling.max_new_tokens, row_seed(prompt_seed, s))
                     for s in range(sampling.n)]
        if self.runner.kv_cache is None:  # released for an optimiser step (release_cache)
            self.runner.allocate_cache()
        self.kv.reset()  # cached prefixes were computed with the previous weights
        self.scheduler.stop_ids, self.scheduler.num_preemptions = frozenset(stop_ids), 0
        self.reset_stats()
        for seq in seqs:
            self.scheduler.add(seq)
        while not self.scheduler.done:
            self.step(sampling)
        self.stats["preemptions"] = self.scheduler.num_preemptions
        # A prompt long enough that prompt + max_new_tokens passes max_model_len ends at the window, not at its
        # limit: counted and said, never silent (the recipe check covers max_new_tokens, not each prompt).
        cut = sum(seq.finish_reason == "length" and seq.num_generated < seq.max_new_tokens for seq in seqs)
        self.stats["window_cut"] = cut
        if cut:
            warnings.warn(f"{cut} of {len(seqs)} sequences stopped at max_model_len = {self.max_model_len} before "
                          f"max_new_tokens = {sampling.max_new_tokens}: their prompts leave less room than that",
                          stacklevel=2)
        return seqs

    def reset_stats(self) -> None:
        self.stats = dict(prefill_steps=0, paged_prefill_steps=0, decode_steps=0, decode_windows=0,
                          follow_on_windows=0, prefill_tokens=0,
                          decode_tokens=0, decode_context_tokens=0, prefill_seconds=0.0, decode_seconds=0.0)

    def step(self, sampling: SamplingParams | None = None) -> None:
        """One prefill or decode batch of the scheduler; ``sampling`` None: each sequence's own settings."""
        started = time.perf_counter()
        seqs, is_prefill = self.scheduler.schedule()
        if not seqs:  # everything waiting was cancelled or preempted itself
            return
        if sampling is None:
            sampling = [seq.sampling for seq in seqs]
        window = 1 if is_prefill else self._decode_window(seqs)
        self.runner.update_table(self.kv.table, self.kv.take_dirty_rows())
        seeds, lengths = [seq.seed for seq in seqs], [len(seq) for seq in seqs]
        if is_prefill:
            logits = self.runner.prefill(seqs)
            self.stats["prefill_steps"] += 1
            self.stats["paged_prefill_steps"] += self.runner.last_prefill_paged
            self.stats["prefill_tokens"] += sum(len(seq) - seq.num_cached_tokens for seq in seqs)
            # The noise of the token at index len(seq) depends on the sample's seed and that index only.
            top_k = max(seq.top_logprobs for seq in seqs)
            tops = [self.sampler.top_logprobs(logits, sampling, top_k)] if top_k else []
            tokens, logprobs = self.sampler(logits, sampling, seeds, lengths)
            kept = self.scheduler.postprocess(seqs, [[t] for t in tokens], [[lp] for lp in logprobs],
                                              self.config.ignore_eos)
            self._record_tops(seqs, tops, kept)
            if self.after_tokens is not None:
                self.after_tokens(seqs)
        else:
            self._decode(seqs, window, sampling, seeds, lengths)
        # The device-to-host copy of the tokens has waited for the device: the host clock times the whole step.
        self.stats["prefill_seconds" if is_prefill else "decode_seconds"] += time.perf_counter() - started

    def _decode(self, seqs: list[Sequence], window: int, sampling: SamplingParams | list[SamplingParams],
                seeds: list[int],
                lengths: list[int]) -> None:
        """Decode windows of ``seqs``: ``window`` steps on the device, then each step's tokens appended in order; a
        sequence that stopped inside a window keeps none of the later ones.

        With ``overlap_windows``, while the device runs one window the next one of the same batch is already queued
        behind it (:meth:`_follow_on_window`), so the device does not wait for the host's reading of the tokens,
        the stops and the new cache blocks in between. A follow-on window is queued before the host knows which
        sequences stopped in the window it follows; those run on (their tokens are dropped) until the host knows,
        then go to the scratch block. Each sample's noise depends on its seed and position only, so the tokens are
        those of single steps."""
        queued = deque([(self._launch_window(seqs, window, sampling, seeds, lengths, None), window)])
        launched, read, retired = window, 0, set()  # steps queued and read for this batch; stopped sequences
        while queued:
            if len(queued) == 1 and (follow := self._follow_on_window(seqs, launched - read)):
                newly = [i for i, seq in enumerate(seqs) if seq.status is not Status.RUNNING and i not in retired]
                retired.update(newly)
                self.runner.update_table(self.kv.table, self.kv.take_dirty_rows())
                positions = [length + launched for length in lengths]
                queued.append((self._launch_window(seqs, follow, sampling, seeds, positions, newly), follow))
                launched += follow
                self.stats["follow_on_windows"] += 1
            pending, steps = queued.popleft()
            tokens, logprobs = pending.result()
            read += steps
            kept = self.scheduler.postprocess(seqs, tokens.T.tolist(), logprobs.T.tolist(), self.config.ignore_eos)
            self._record_tops(seqs, pending.tops, kept)
            if self.after_tokens is not None:
                self.after_tokens(seqs)
            stats = self.stats
            stats["decode_windows"] += steps > 1
            stats["decode_steps"] += max(kept)
            stats["decode_tokens"] += sum(kept)
            # K/V read (bench/engine.py roofline): step w of a sequence of length L reads L + w cached tokens
            stats["decode_context_tokens"] += sum(k * (n - k) + k * (k - 1) // 2 for k, n in
                                                  zip(kept, (len(seq) for seq in seqs)))

    def _launch_window(self, seqs: list[Sequence], window: int, sampling: SamplingParams | list[SamplingParams],
                       seeds: list[int],
                       positions: list[int], retired: list[int] | None) -> PendingWindow:
        """Queue one window; ``positions`` are the lengths of the sequences when it starts (its noise keys)."""
        step_keys = None
        if self.sampler.use_triton:  # every step's noise keys, built at once: (window, 2, rows), positions advancing
            from vibethinker.generate.native.sampling_triton import sampling_keys

            step_keys = sampling_keys(seeds, positions, self.runner.device).repeat(window, 1, 1)
            step_keys[:, 1] += torch.arange(window, device=step_keys.device)[:, None]  # no copy from the host

        top_k = max(seq.top_logprobs for seq in seqs)
        tops: list[torch.Tensor] = []

        def sample(logits: torch.Tensor, w: int) -> tuple[torch.Tensor, torch.Tensor]:
            if top_k:
                tops.append(self.sampler.top_logprobs(logits, sampling, top_k))
            if step_keys is not None:  # the keys carry step w's positions; the positions argument goes unread
                return self.sampler.sample(logits, sampling, seeds, positions, step_keys[w])
            return self.sampler.sample(logits, sampling, seeds, [position + w for position in positions])

        pending = self.runner.launch_window(seqs, window, sample, retired)
        pending.tops = tops
        return pending

    @staticmethod
    def _record_tops(seqs: list[Sequence], tops: list[torch.Tensor], kept: list[int]) -> None:
        """Each sequence's top log-probs of the steps it kept (``tops[w]``: (2, rows, k) ids and values)."""
        if not tops:
            return
        host = torch.stack(tops).cpu()  # (steps, 2, rows, k)
        for i, (seq, k) in enumerate(zip(seqs, kept)):
            for w in range(k if seq.top_logprobs else 0):
                seq.top.append(list(zip(host[w, 0, i, :seq.top_logprobs].long().tolist(),
                                        host[w, 1, i, :seq.top_logprobs].tolist())))

    def _follow_on_window(self, seqs: list[Sequence], unread: int) -> int:
        """Steps of a window to queue behind the ``unread`` steps of this batch not yet read; 0 for none: overlap
        off, windows of one step, sequences waiting to be admitted (they get the slots of the stopped ones at the
        next schedule), a batch whose running sequences would now fit a smaller CUDA graph, no generation left, or
        cache blocks short (reserved all or none, for every sequence not known to have stopped)."""
        if not self.config.overlap_windows or self._configured_window() < 2 or self.scheduler.waiting \
                or self.interrupted():
            return 0
        running = [seq for seq in seqs if seq.status is Status.RUNNING]
        if not running or graph_bucket(len(running)) != graph_bucket(len(seqs)):
            return 0
        window = self._window_length(running, unread)
        if window < 1 or not self.kv.reserve(running, unread + window - 1):
            return 0
        return window

    def _decode_window(self, seqs: list[Sequence]) -> int:
        """Steps to chain for this decode batch: the configured window, no longer than the longest remaining
        generation, and short enough that no position passes max_model_len; 1 when the cache cannot hold the
        window's tokens (then the one-step path preempts as usual)."""
        window = self._window_length(seqs)
        if window > 1 and not self.kv.reserve(seqs, window - 1):
            window = 1
        return max(1, window)

    def _configured_window(self) -> int:
        return self.config.decode_window or (16 if self.runner.graphs else 1)

    def _window_length(self, seqs: list[Sequence], unread: int = 0) -> int:
        """The configured window, cut to the longest generation ``seqs`` have left and short enough that none
        passes max_model_len nor its thinking budget (whose forced tokens go in one-step windows), counting
        ``unread`` steps already queued (may be below 1)."""
        budget = min((room for seq in seqs if (room := seq.budget_room()) is not None), default=1 << 30)
        return min(self._configured_window(), max(seq.max_new_tokens - seq.num_generated for seq in seqs) - unread,
                   min(self.max_model_len - len(seq) + 1 for seq in seqs) - unread,
                   budget - unread if unread else max(1, budget))

    def _check_fits(self, index: int, prompt_len: int, max_new_tokens: int) -> None:
        if prompt_len == 0:
            raise ValueError("empty prompt: generation needs at least one prompt token")
        if prompt_len >= self.max_model_len:
            raise ValueError(f"prompt {index} has {prompt_len} tokens; max_model_len is {self.max_model_len}")
        longest = min(prompt_len + max_new_tokens, self.max_model_len)
        if self.kv.blocks_for(longest) > self.kv.num_blocks:
            raise ValueError(f"prompt {index}: {longest} tokens need {self.kv.blocks_for(longest)} KV-cache blocks, "
                             f"the cache has {self.kv.num_blocks}; raise kv_cache_gib or lower max_new_tokens")


class NativeGenerator(Generator):
    """The :class:`Generator` of the native engine, from a checkpoint folder or a live ``(model, tokenizer)``.

    With a live model the engine keeps its own (fused, engine-dtype) weights and copies the model's current
    parameters into them, on the device, at the start of every :meth:`generate`: RL samples with the weights of
    its latest optimiser step without saving a checkpoint.
    """

    def __init__(self, model: str | os.PathLike | PreTrainedModel, tokenizer: PreTrainedTokenizerBase | None = None,
                 config: EngineConfig | None = None):
        if isinstance(model, (str, os.PathLike)):
            from vibethinker.model import load_tokenizer

            path = Path(model)
            hf_config = AutoConfig.from_pretrained(path)
            self.engine = LLMEngine(hf_config, config)
            self.engine.load(checkpoint_tensors(path), str(path))
            self.tokenizer = tokenizer or load_tokenizer(path)
            self.generation_config = (GenerationConfig.from_pretrained(path)
                                      if (path / "generation_config.json").exists()
                                      else GenerationConfig.from_model_config(hf_config))
            self.live_model = None
        else:
            if tokenizer is None:
                raise ValueError("a live model needs its tokenizer: NativeGenerator(model, tokenizer)")
            _check_live_rope(model.config, config)
            self.engine = LLMEngine(model.config, config, device=next(model.parameters()).device)
            self.tokenizer, self.generation_config, self.live_model = tokenizer, model.generation_config, model
            self.copy_live_weights = LiveWeightCopy(self.engine.model, model)

    def stop_ids(self, sampling: SamplingParams) -> list[int]:
        return resolve_stop_ids(sampling, self.generation_config, self.tokenizer)

    def release_memory(self) -> None:
        """Free the engine's KV cache until the next generate (RL: during the optimiser step)."""
        self.engine.release_cache()

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Completion]:
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if any(not ids for ids in encoded):
            raise ValueError("empty prompt: generation needs at least one prompt token")
        if not encoded:
            return []
        if self.live_model is not None:
            self.copy_live_weights()
        seqs = self.engine.generate(encoded, sampling, self.stop_ids(sampling))
        texts = decode_texts(self.tokenizer, [seq.generated_ids for seq in seqs])
        return [Completion(seq.prompt_index, seq.sample_index, seq.generated_ids, text, seq.logprobs,
                           seq.finish_reason) for seq, text in zip(seqs, texts)]


def _check_live_rope(live_config, config: EngineConfig | None) -> None:
    """A live model's engine must rotate as the model does: an override it was not loaded with is refused."""
    if config is None or config.rope_scaling is None:
        return
    expected = apply_rope_scaling(copy.deepcopy(live_config), config.rope_scaling).rope_parameters
    live = live_config.rope_parameters or {}
    if any(live.get(key) != value for key, value in expected.items()):
        raise ValueError(f"rope_scaling {config.rope_scaling.written()} differs from the live model's RoPE "
                         f"{live_config.rope_parameters}; load the model with the same rope_scaling (load_model)")
