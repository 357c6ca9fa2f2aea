"""Turns the last position's logits of each sequence into the next token and its log-prob.

Contract (src/vibethinker/generate/types.py): the reported log-prob is ``log_softmax(logits / T)`` at the chosen
token, *before* top-k / top-p truncation; greedy (``T == 0``) takes the argmax and reports ``T = 1`` log-probs.

Sampling is the Gumbel-max trick: ``argmax_i(logits_i / T + g_i)`` with ``g_i = -log(-log(u_i))`` draws from
``softmax(logits / T)``; tokens outside top-k / top-p get ``-inf`` first. Both cuts keep the tokens whose scaled
logit is at least a per-row floor (top-k: the k-th largest; top-p: the smallest logit of the nucleus, the shortest
prefix of the sorted distribution, after top-k, whose mass reaches ``top_p`` - transformers' convention), so one
floor per row expresses them.

The uniforms ``u`` of a row depend on ``(sequence seed, position of the token drawn)`` only: a sequence draws
the same noise whatever else is in the batch, and after a preemption. On CUDA a Triton kernel
(:mod:`.sampling_triton`) fuses the scaling, the log-sum-exp, Philox noise and the argmax in one pass over the
logits; elsewhere a per-row ``torch.Generator`` seeded with :func:`row_seed` supplies the noise (the two devices
draw different streams).
"""

from __future__ import annotations

import torch

from vibethinker.generate.types import SamplingParams

_MASK64 = (1 << 64) - 1


def row_seed(seed: int, position: int) -> int:
    """A 63-bit seed for the noise of one sequence at one position (splitmix64 finaliser)."""
    x = (seed * 0x9E3779B97F4A7C15 + position + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) >> 1


def logit_floors(scaled: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor | None:
    """(rows,) smallest scaled logit each row may emit under top-k then top-p; None when neither cuts."""
    floors = None
    if top_k and top_k < scaled.shape[-1]:
        floors = torch.topk(scaled, top_k, dim=-1).values[:, -1]
    if top_p < 1.0:
        kept = scaled if floors is None else scaled.masked_fill(scaled < floors[:, None], float("-inf"))
        ordered = kept.sort(dim=-1, descending=True).values
        probs = ordered.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely tokens
        last = ((mass_before < top_p).sum(dim=-1) - 1).clamp(min=0)
        last = torch.minimum(last, torch.isfinite(ordered).sum(dim=-1) - 1)  # rounding must not reach top-k's cut
        floors = ordered.gather(1, last[:, None])[:, 0]
    return floors


class Sampler:
    def __init__(self, use_triton: bool):
        self.use_triton = use_triton

    def __call__(self, logits: torch.Tensor, sampling: SamplingParams, seeds: list[int],
                 positions: list[int]) -> tuple[list[int], list[float]]:
        """logits (rows, vocab) -> (tokens, log-probs), as host lists; row i draws with ``seeds[i]`` at
        ``positions[i]`` (the index of the token drawn in its sequence)."""
        tokens, logprobs = self.sample(logits, sampling, seeds, positions)
        packed = torch.stack([tokens.double(), logprobs.double()]).cpu()  # one device->host copy
        return packed[0].long().tolist(), packed[1].tolist()

    def sample(self, logits: torch.Tensor, sampling: SamplingParams | list[SamplingParams], seeds: list[int],
               positions: list[int], keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`__call__`, but (tokens int64, log-probs fp32) stay on the device. With ``keys`` (the
        Triton kernel's seeds and positions, already on the device) nothing waits for the device, so several
        decode steps can be queued back to back. ``sampling`` may be one setting per row (online requests):
        rows of equal settings are drawn together, each row's noise still its seed's and position's."""
        if isinstance(sampling, list):
            groups: dict[tuple, list[int]] = {}
            for row, params in enumerate(sampling):
                groups.setdefault((params.temperature, params.top_k, params.top_p), []).append(row)
            if len(groups) > 1:
                return self._sample_groups(logits, sampling, groups, seeds, positions, keys)
            sampling = sampling[0]
        greedy = sampling.greedy
        temperature = 1.0 if greedy else sampling.temperature
        floors = None
        if not greedy and (0 < sampling.top_k < logits.shape[-1] or sampling.top_p < 1.0):
            # x * (1/T), as the Triton kernel computes it: a floor must compare equal to the logit it came from
            floors = logit_floors(logits.float() * (1.0 / temperature), sampling.top_k, sampling.top_p)
        if self.use_triton:
            from vibethinker.generate.native.sampling_triton import gumbel_max_triton, sampling_keys

            if keys is None:
                keys = sampling_keys(seeds, positions, logits.device)
            tokens, logprobs = gumbel_max_triton(logits, temperature, keys, floors, noise=not greedy)
        else:
            row_seeds = [row_seed(seed, position) for seed, position in zip(seeds, positions)]
            tokens, logprobs = self._torch(logits, temperature, row_seeds, floors, noise=not greedy)
        return tokens, logprobs

    @staticmethod
    def top_logprobs(logits: torch.Tensor, sampling: SamplingParams | list[SamplingParams], k: int) -> torch.Tensor:
        """(2, rows, k) on the device: the ``k`` most likely token ids (as floats) and their log-probs under each
        row's reported distribution, ``log_softmax(logits / T)`` (T = 1 when greedy), before top-k / top-p."""
        rows = sampling if isinstance(sampling, list) else [sampling] * logits.shape[0]
        inverse = torch.tensor([1.0 / (1.0 if p.greedy else p.temperature) for p in rows], device=logits.device)
        log_dist = torch.log_softmax(logits.float() * inverse[:, None], dim=-1)
        values, ids = torch.topk(log_dist, min(k, log_dist.shape[-1]), dim=-1)
        return torch.stack([ids.float(), values])

    def _sample_groups(self, logits, sampling, groups, seeds, positions, keys) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
        logprobs = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
        for rows in groups.values():
            index = torch.tensor(rows, device=logits.device)
            group_tokens, group_logprobs = self.sample(
                logits.index_select(0, index), sampling[rows[0]], [seeds[r] for r in rows],
                [positions[r] for r in rows], None if keys is None else keys.index_select(1, index))
            tokens[index], logprobs[index] = group_tokens, group_logprobs
        return tokens, logprobs

    @staticmethod
    def _torch(logits, temperature, seeds, floors, noise: bool) -> tuple[torch.Tensor, torch.Tensor]:
        scaled = logits.float() * (1.0 / temperature)
        logprobs = scaled - torch.logsumexp(scaled, dim=-1, keepdim=True)
        scores = scaled
        if noise:
            uniforms = torch.stack([torch.rand(scaled.shape[-1], generator=torch.Generator().manual_seed(seed))
                                    for seed in seeds]).to(scaled.device)
            scores = scaled - torch.log(-torch.log(uniforms.clamp(min=1e-10)))
        if floors is not None:
            scores = scores.masked_fill(scaled < floors[:, None], float("-inf"))
        tokens = scores.argmax(dim=-1)
        return tokens, logprobs.gather(1, tokens[:, None])[:, 0]
