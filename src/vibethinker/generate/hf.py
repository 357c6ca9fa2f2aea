"""The reference generation backend: plain ``transformers`` ``model.generate``, correct before fast.

Prompts are expanded to ``n`` sequences each, sorted by token length (less padding per batch), left-padded into
batches of at most ``batch_size`` sequences, generated, then put back in prompt/sample order.

Per-token log-probs are recorded by a logits processor instead of ``output_logits=True``: that flag keeps every
step's full-vocabulary logits (steps x batch x vocab floats, ~40 GB for 64 sequences x 4k tokens at a 150k vocabulary)
while the processor keeps one step. ``generate`` runs user processors after its own default ones and before the
sampling warpers (temperature, top-k, top-p), and the generation config built here switches every default processor
off, so the processor sees the raw logits: the values are the same as ``log_softmax(output_logits / T)``.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList, PreTrainedModel, \
    PreTrainedTokenizerBase

from vibethinker.generate.types import Completion, Generator, SamplingParams, decode_texts, resolve_stop_ids

log = logging.getLogger(__name__)

# Fields of a checkpoint's generation_config.json that would change the sampling distribution if inherited
# (``generate`` fills every field left None from the model's config); they are pinned to their neutral values.
_NEUTRAL = dict(num_beams=1, num_return_sequences=1, min_length=0, repetition_penalty=1.0,
                encoder_repetition_penalty=1.0, no_repeat_ngram_size=0, typical_p=1.0, epsilon_cutoff=0.0,
                eta_cutoff=0.0, renormalize_logits=False, remove_invalid_values=False, use_cache=True)
# Neutral values that still add a (no-op) processor, so they are only pinned when the model's config sets them.
_NEUTRAL_IF_SET = dict(min_new_tokens=0, min_p=0.0, suppress_tokens=[], begin_suppress_tokens=[], guidance_scale=1.0)
_UNSUPPORTED = ("bad_words_ids", "sequence_bias", "forced_bos_token_id", "forced_eos_token_id", "top_h",
                "exponential_decay_length_penalty", "watermarking_config")


class _TokenLogprobRecorder(LogitsProcessor):
    """Records log_softmax(raw_logits / T) at each generated token, holding one step's distribution at a time.

    At step t the sampled token is not known yet, so the step's log-probs are kept until step t+1, whose
    ``input_ids`` end with that token; the last step is gathered by :meth:`finish` from the final sequences.
    """

    def __init__(self, temperature: float):
        self.temperature = temperature
        self.pending: torch.Tensor | None = None
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.pending is not None:
            self.steps.append(self.pending.gather(1, input_ids[:, -1:]).squeeze(1))
        self.pending = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def finish(self, generated: torch.LongTensor) -> torch.Tensor:
        """(batch, steps) log-probs for ``generated`` (the new tokens only)."""
        steps = generated.shape[1]
        if len(self.steps) < steps and self.pending is not None:
            self.steps.append(self.pending.gather(1, generated[:, len(self.steps):len(self.steps) + 1]).squeeze(1))
        self.pending = None
        if steps == 0:
            return generated.new_zeros((generated.shape[0], 0), dtype=torch.float32)
        # A deferred stop check (CUDA) may run one extra step that generate undoes; drop its entry.
        return torch.stack(self.steps[:steps], dim=1).float()


class HFGenerator(Generator):
    """Generation through ``model.generate``; works on CPU and CUDA (inputs follow the model's device)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token; left padding needs one")
        model_config = model.generation_config
        for key in _UNSUPPORTED:
            if getattr(model_config, key, None) is not None:
                log.warning("the model's generation_config sets %s=%r; generate() applies it on top of SamplingParams",
                            key, getattr(model_config, key))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def stop_ids(self, sampling: SamplingParams) -> list[int]:
        return resolve_stop_ids(sampling, self.model.generation_config, self.tokenizer)

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Completion]:
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if any(not ids for ids in encoded):
            raise ValueError("empty prompt: generation needs at least one prompt token")
        jobs = [(pi, si) for pi in range(len(prompts)) for si in range(sampling.n)]
        # Longest first: an out-of-memory batch shows up at once; stable sort keeps a fixed order for seeding.
        jobs.sort(key=lambda job: -len(encoded[job[0]]))
        stop_ids = self.stop_ids(sampling)
        config = self._generation_config(sampling, stop_ids)
        results: dict[tuple[int, int], Completion] = {}
        for batch_index, start in enumerate(range(0, len(jobs), self.batch_size)):
            batch = jobs[start:start + self.batch_size]
            seed = None if sampling.seed is None else sampling.seed + batch_index
            rows = self._generate_batch([encoded[pi] for pi, _ in batch], sampling, config, stop_ids, seed)
            texts = decode_texts(self.tokenizer, [ids for ids, _, _ in rows])
            for (pi, si), (ids, logprobs, reason), text in zip(batch, rows, texts):
                results[(pi, si)] = Completion(pi, si, ids, text, logprobs, reason)
        return [results[(pi, si)] for pi in range(len(prompts)) for si in range(sampling.n)]

    def _generation_config(self, sampling: SamplingParams, stop_ids: list[int]) -> GenerationConfig:
        fields = dict(_NEUTRAL, max_new_tokens=sampling.max_new_tokens, eos_token_id=stop_ids, pad_token_id=self.pad_id,
                      do_sample=not sampling.greedy, return_dict_in_generate=True, output_logits=False,
                      output_scores=False)
        if not sampling.greedy:  # greedy ignores the warpers, so the model's sampling defaults are harmless there
            fields.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        for key, neutral in _NEUTRAL_IF_SET.items():
            if getattr(self.model.generation_config, key, None) is not None:
                fields[key] = neutral
        return GenerationConfig(**fields)

    def _generate_batch(self, prompts: list[list[int]], sampling: SamplingParams, config: GenerationConfig,
                        stop_ids: list[int], seed: int | None) -> list[tuple[list[int], list[float], str]]:
        device = self.device
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids):] = 1
        recorder = _TokenLogprobRecorder(1.0 if sampling.greedy else sampling.temperature)
        was_training = self.model.training  # RL hands in the policy mid-training: sample in eval mode, then restore
        self.model.eval()
        try:
            with _seeded(seed, device), torch.inference_mode():
                out = self.model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                                          generation_config=config, logits_processor=LogitsProcessorList([recorder]))
        finally:
            self.model.train(was_training)
        generated = out.sequences[:, width:]
        logprobs = recorder.finish(generated).cpu().tolist()
        generated = generated.cpu().tolist()
        stops = set(stop_ids)
        rows = []
        for ids, lps in zip(generated, logprobs):
            end = next((i + 1 for i, tok in enumerate(ids) if tok in stops), None)
            reason = "stop" if end is not None else "length"
            end = end if end is not None else min(len(ids), sampling.max_new_tokens)
            rows.append((ids[:end], lps[:end], reason))
        return rows


@contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Seed torch for one batch without clobbering the caller's RNG state (restored afterwards)."""
    if seed is None:
        yield
        return
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
