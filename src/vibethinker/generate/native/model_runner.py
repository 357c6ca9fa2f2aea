"""Turns scheduled sequences into tensors, runs the model over the paged KV cache, returns next-token logits.

KV cache: one tensor ``(2, layers, (num_blocks + 1) * block_size, kv_heads, head_dim)``; layer ``i`` reads and
writes the views ``[0, i]`` (K) and ``[1, i]`` (V), indexed by slot (see :mod:`.layers.attention`). The extra block
is the scratch block of CUDA-graph padding. The device block table mirrors the host one of
:class:`.kv_cache.KVCacheManager`, row for row.

Prefill packs the new tokens of all its sequences (no padding) and runs eagerly, in passes of at most
``prefill_chunk_tokens`` tokens (a longer prompt is split into chunks that attend over the cache so far); when no
sequence of a pass has more than ``paged_prefill_max_tokens`` new tokens (and the Triton kernels run), each new token attends as one query of the
paged decode kernel, described by its sequence's block-table row and its context length (position + 1).

Decode feeds one token per sequence: ``(input id, position, block-table row)``; the cache slot and context length
are derived on the device (``slot = table[row, pos // block_size] * block_size + pos % block_size``,
``length = pos + 1``). On CUDA the decode forward is captured once per batch size in ``graph_batch_sizes``
(1, 2, 4, 8, then every 16); a batch runs the smallest graph that holds it, its padding entries pointing at the
scratch block through the padding row. Logits come from the final hidden state of each sequence's last token only.
:meth:`ModelRunner.launch_window` chains several decode steps on the device (sampled tokens fed back as the next
inputs, positions advanced there) and queues the copy of their tokens to the host without waiting for it, so the
host synchronises once per window instead of once per token, and may queue the next window before reading one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from vibethinker.generate.native.context import ForwardContext, set_context
from vibethinker.generate.native.models.decoder import DecoderLM
from vibethinker.generate.native.sequence import Sequence
from vibethinker.generate.native.transfer import to_device


def triton_usable(device: torch.device, head_dim: int) -> bool:
    """The Triton kernels run on CUDA, for power-of-two head sizes of at least 16 (tile shapes)."""
    if device.type != "cuda" or head_dim < 16 or head_dim & (head_dim - 1):
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def kv_cache_blocks(model: DecoderLM, block_size: int, dtype: torch.dtype, device: torch.device, gib: float | None,
                    fraction: float, most_useful: int) -> int:
    """Blocks that fit the budget (``gib``, else ``fraction`` of free GPU memory, else 0.25 GiB), capped at
    ``most_useful`` (every sequence at full length)."""
    spec = model.spec
    block_bytes = 2 * spec.num_layers * block_size * spec.num_kv_heads * spec.head_dim * dtype.itemsize
    if gib is not None:
        budget = gib * 2 ** 30
    elif device.type == "cuda":
        torch.cuda.empty_cache()  # the fp32 weights the model was built with are free, but still cached
        budget = torch.cuda.mem_get_info(device)[0] * fraction
    else:
        budget = 0.25 * 2 ** 30
    return max(1, min(int(budget // block_bytes), most_useful))


class ModelRunner:
    def __init__(self, model: DecoderLM, num_blocks: int, block_size: int, max_num_seqs: int,
                 max_blocks_per_seq: int, host_table: torch.Tensor, cuda_graphs: bool,
                 paged_prefill_max_tokens: int = 0, fused_decode_attention: bool = True,
                 prefill_chunk_tokens: int | None = None, split_k: bool = True):
        self.model, self.block_size = model, block_size
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.split_k = split_k
        self.paged_prefill_max_tokens = paged_prefill_max_tokens
        self.fused_decode_attention = fused_decode_attention
        self.last_prefill_paged = False  # which attention the last prefill ran (engine stats)
        spec = model.spec
        weight = model.model.embed_tokens.weight
        self.device, self.dtype = weight.device, weight.dtype
        self.num_blocks, self.max_num_seqs = num_blocks, max_num_seqs
        self.padding_row = max_num_seqs
        # On CPU the host table is the table; on GPU a device copy kept in sync by update_table.
        self.block_table = host_table if self.device.type == "cpu" else host_table.to(self.device)
        self.use_triton = triton_usable(self.device, spec.head_dim)
        self.num_sms = (torch.cuda.get_device_properties(self.device).multi_processor_count
                        if self.device.type == "cuda" else 1)
        self.cuda_graphs = cuda_graphs and self.use_triton
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.window_inputs: torch.Tensor | None = None  # (token, position, row) x batch of the last launched window
        self.graph_batch_sizes: list[int] = []
        self.kv_cache: torch.Tensor | None = None
        self.allocate_cache()

    def allocate_cache(self) -> None:
        """The KV cache (zeros) and, on CUDA, the decode graphs, which read the cache at its address."""
        spec = self.model.spec
        self.kv_cache = torch.zeros(2, spec.num_layers, (self.num_blocks + 1) * self.block_size, spec.num_kv_heads,
                                    spec.head_dim, dtype=self.dtype, device=self.device)
        for i, attention in enumerate(self.model.attention_layers):
            attention.k_cache, attention.v_cache = self.kv_cache[0, i], self.kv_cache[1, i]
        if self.cuda_graphs:
            self._capture_graphs(min(self.max_num_seqs, 512))

    def release_cache(self) -> None:
        """Free the KV cache and the decode graphs (their memory pool) until :meth:`allocate_cache`: the GPU memory
        an optimiser step sharing the device needs. Nothing is lost: every generate call starts from an empty
        cache (its prefixes were computed with the previous weights)."""
        for attention in self.model.attention_layers:
            attention.k_cache = attention.v_cache = None
        self.kv_cache, self.window_inputs = None, None
        self.graphs.clear()
        self.graph_batch_sizes = []
        self.graph_inputs = self.graph_output = None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()

    def update_table(self, host_table: torch.Tensor, rows: list[int]) -> None:
        if rows and self.block_table is not host_table:  # queued without waiting for the device (.transfer)
            index = torch.tensor(rows)
            self.block_table[to_device(index, self.device)] = to_device(host_table[index], self.device)

    @torch.inference_mode()
    def prefill(self, seqs: list[Sequence]) -> torch.Tensor:
        """Logits (len(seqs), vocab) after each sequence's last token; computes its uncached tokens.

        With ``prefill_chunk_tokens`` a prompt with more uncached tokens than that is computed in chunks, one
        forward each (chunked prefill): every chunk writes its K/V and attends over the cache so far, so the
        activations of a 64K-token prompt are those of one chunk."""
        chunk = self.prefill_chunk_tokens or max(len(seq) for seq in seqs)
        pieces = [(seq, start, min(start + chunk, len(seq))) for seq in seqs
                  for start in range(seq.num_cached_tokens, len(seq), chunk)]
        passes, tokens = [[]], 0
        for piece in pieces:  # in order, so a sequence's chunks run in order, each in a later pass
            size = piece[2] - piece[1]
            if passes[-1] and tokens + size > chunk:
                passes.append([])
                tokens = 0
            passes[-1].append(piece)
            tokens += size
        last_hidden = {}
        for pass_pieces in passes:
            hidden = self._prefill_pass(pass_pieces)
            for (seq, _, end), row in zip(pass_pieces, hidden):
                if end == len(seq):
                    last_hidden[id(seq)] = row
        return self.model.compute_logits(torch.stack([last_hidden[id(seq)] for seq in seqs]))

    def _prefill_pass(self, pieces: list[tuple[Sequence, int, int]]) -> torch.Tensor:
        """One forward over tokens ``start:end`` of each piece's sequence (their context: tokens ``:end``); the
        final hidden state of each piece's last token."""
        ids, positions, new_slots, context_slots, spans, last, rows = [], [], [], [], [], [], []
        first = 0
        size = self.block_size
        for seq, start, end in pieces:  # plain lists, one tensor each at the end: per-sequence tensor ops cost more
            slots = [block * size + offset for block in seq.block_ids for offset in range(size)][:end]
            ids.extend(seq.token_ids[start:end])
            positions.extend(range(start, end))
            new_slots.extend(slots[start:])
            spans.append((first, end - start, end, len(context_slots)))
            rows.extend([seq.row] * (end - start))
            context_slots.extend(slots)
            first += end - start
            last.append(first - 1)
        device = self.device
        positions = torch.tensor(positions, device=device)
        paged = self.use_triton and max(new for _, new, _, _ in spans) <= self.paged_prefill_max_tokens
        self.last_prefill_paged = paged
        context = ForwardContext(is_prefill=True, slot_mapping=torch.tensor(new_slots, device=device),
                                 block_size=self.block_size, use_triton=self.use_triton)
        if paged:
            context.rows, context.context_lens, context.block_table = \
                torch.tensor(rows, device=device), positions + 1, self.block_table
        else:
            context.spans, context.context_slots = spans, torch.tensor(context_slots, device=device)
        set_context(context)
        hidden = self.model(torch.tensor(ids, device=device), positions)
        set_context(None)
        return hidden[torch.tensor(last, device=device)]

    def graph_size(self, batch: int) -> int | None:
        """The captured graph a decode batch of ``batch`` sequences runs (None: eager)."""
        return next((b for b in self.graph_batch_sizes if b >= batch), None)

    @torch.inference_mode()
    def launch_window(self, seqs: list[Sequence], steps: int,
                      sample: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]],
                      retired: list[int] | None = None) -> "PendingWindow":
        """Queue ``steps`` decode steps (one token per sequence each) back to back on the device, each step's sampled
        token the next one's input, and the copy of their tokens to the host; returns without waiting for the device.
        ``sample(logits, w)`` draws step ``w``'s tokens and log-probs (device tensors).

        ``retired is None``: the inputs come from the host (each sequence's last token and position). Otherwise the
        window continues the previous one of the same ``seqs`` from the device's own inputs (tokens fed back,
        positions advanced), the host not yet having read that window: the sequences at the indices in ``retired``
        have finished, and are sent to the scratch block (position 0 of the padding row) so their later steps write
        nothing that another sequence may own.

        Every sequence runs all the steps; the caller keeps each one's tokens up to its stop, and must have reserved
        cache blocks for every position a sequence not yet retired will write."""
        batch = len(seqs)
        size = self.graph_size(batch)
        if retired is None:
            host = [[seq.token_ids[-1] for seq in seqs], [len(seq) - 1 for seq in seqs], [seq.row for seq in seqs]]
            if size is None:
                self.window_inputs = torch.tensor(host, device=self.device)
            else:
                pad = size - batch
                self.graph_inputs[:, :size].copy_(torch.tensor([host[0] + [0] * pad, host[1] + [0] * pad,
                                                                host[2] + [self.padding_row] * pad]))
                self.window_inputs = self.graph_inputs[:, :batch]
        elif retired:
            index = to_device(retired, self.device, torch.long)
            self.window_inputs[1].index_fill_(0, index, 0)
            self.window_inputs[2].index_fill_(0, index, self.padding_row)
        inputs = self.window_inputs
        tokens = torch.empty(steps, batch, dtype=torch.float64, device=self.device)
        logprobs = torch.empty_like(tokens)
        for w in range(steps):
            if size is None:
                hidden = self._decode_forward(inputs[0], inputs[1], inputs[2])
                set_context(None)
            else:
                self.graphs[size].replay()
                hidden = self.graph_output[:batch]
            step_tokens, step_logprobs = sample(self.model.compute_logits(hidden), w)
            tokens[w], logprobs[w] = step_tokens, step_logprobs
            inputs[0].copy_(step_tokens)
            inputs[1] += 1
        return PendingWindow(torch.stack([tokens, logprobs]))

    def _decode_forward(self, ids: torch.Tensor, positions: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        size = self.block_size
        slots = self.block_table[rows, positions // size].long() * size + positions % size
        set_context(ForwardContext(is_prefill=False, slot_mapping=slots, block_size=size, context_lens=positions + 1,
                                   rows=rows, block_table=self.block_table, use_triton=self.use_triton,
                                   fused_decode_attention=self.fused_decode_attention,
                                   decode_splits=self.decode_splits(ids.shape[0])))
        return self.model(ids, positions)

    def decode_splits(self, batch: int) -> int:
        """Split-K ways of a decode batch's attention (fixed per batch size, so each CUDA graph has its own)."""
        if not (self.split_k and self.use_triton and self.fused_decode_attention):
            return 1
        from vibethinker.generate.native.layers.paged_decode_triton import decode_splits

        return decode_splits(batch, self.model.spec.num_kv_heads, self.block_table.shape[1] * self.block_size,
                             self.num_sms)

    @torch.inference_mode()
    def _capture_graphs(self, max_batch: int) -> None:
        sizes = sorted({min(graph_bucket(b), max_batch) for b in range(1, max_batch + 1)})
        self.graph_inputs = torch.zeros(3, max_batch, dtype=torch.long, device=self.device)
        self.graph_inputs[2] = self.padding_row
        self.graph_output = torch.zeros(max_batch, self.model.spec.hidden_size, dtype=self.dtype, device=self.device)
        pool = None
        for size in reversed(sizes):  # largest first: the smaller graphs reuse its memory pool
            ids, positions, rows = self.graph_inputs[:, :size]
            self.graph_output[:size] = self._decode_forward(ids, positions, rows)  # warm-up (compiles kernels)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool):
                self.graph_output[:size] = self._decode_forward(ids, positions, rows)
            pool = graph.pool() if pool is None else pool
            self.graphs[size] = graph
        torch.cuda.synchronize(self.device)
        set_context(None)
        self.graph_batch_sizes = sizes


def graph_bucket(batch: int) -> int:
    """The batch size of the decode graph a batch of ``batch`` sequences runs (before the cap on the largest):
    1, 2, 4, 8, then multiples of 16."""
    return next((b for b in (1, 2, 4, 8) if b >= batch), -(-batch // 16) * 16)


def blocks_per_sequence(max_model_len: int, block_size: int) -> int:
    return math.ceil(max_model_len / block_size)


class PendingWindow:
    """A launched decode window's tokens and log-probs, copied to (pinned) host memory behind the window's kernels:
    the host reads them with :meth:`result`, which waits for that copy only."""

    def __init__(self, packed: torch.Tensor):
        if packed.device.type == "cuda":
            self.host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
            self.host.copy_(packed, non_blocking=True)
            self.copied = torch.cuda.Event()
            self.copied.record()
        else:
            self.host, self.copied = packed, None

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Host tensors (steps, batch): token ids (long) and log-probs."""
        if self.copied is not None:
            self.copied.synchronize()
        return self.host[0].long(), self.host[1]
