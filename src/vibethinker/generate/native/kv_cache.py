"""Bookkeeping of the paged KV cache: which cache blocks hold which sequence's tokens.

Layout. The cache is ``num_blocks`` blocks of ``block_size`` token slots (per layer, for K and for V; the tensors
live in the model runner). A running sequence owns one row of the block table, ``table[row, j]`` = the block that
holds its tokens ``j * block_size ... (j + 1) * block_size - 1``. Blocks are handed out one at a time as a
sequence grows, so memory follows the real lengths (no reservation for ``max_new_tokens``). One extra block
(``scratch_block``) and one extra row (``padding_row``, all entries the scratch block) absorb the writes of the
padding entries of a CUDA-graph batch.

The table is kept on the host and mirrored on the device: :meth:`take_dirty_rows` says which rows changed since the
last forward, so only those are copied (a decode step usually changes none or a few).

Prefix sharing. A full block is identified by the hash of its tokens chained with the previous block's hash (so it
names the whole prefix). When a sequence is admitted, its leading full blocks whose hashes are known reuse those
blocks (reference counted) instead of new ones, and their tokens are not recomputed: the n samples of one prompt
prefill the prompt once. The block holding a sequence's last token is never reused, so every admitted sequence
computes at least one token (the one whose logits give its next token). A freed block keeps its hash until it is
handed out again. Hashes are registered at admission, before the forward that computes the block: a sequence
admitted in the same prefill batch can reuse the block, because each layer stores every new token's K/V before
any sequence of the batch attends. :meth:`reset` forgets everything (the weights may have changed).
"""

from __future__ import annotations

import torch

from vibethinker.generate.native.sequence import Sequence


class KVCacheManager:
    def __init__(self, num_blocks: int, block_size: int, max_seqs: int, max_blocks_per_seq: int,
                 prefix_sharing: bool = True):
        self.num_blocks, self.block_size, self.max_seqs = num_blocks, block_size, max_seqs
        self.prefix_sharing = prefix_sharing
        self.scratch_block, self.padding_row = num_blocks, max_seqs
        self.table = torch.zeros(max_seqs + 1, max_blocks_per_seq, dtype=torch.int32)
        self.table[self.padding_row] = self.scratch_block
        self.reset()

    def reset(self) -> None:
        """Forget every cached prefix (the weights may have changed) and free everything."""
        if getattr(self, "refs", None) is not None and self.num_free_blocks == self.num_blocks \
                and len(self.free_rows) == self.max_seqs:
            # Nothing held (the last generation finished): forgetting the prefixes is enough. A block's stale hash
            # is never trusted without its entry in hash_to_block.
            self.hash_to_block.clear()
            return
        self.refs = [0] * self.num_blocks
        self.block_hash: list[int | None] = [None] * self.num_blocks
        self.block_tokens: list[tuple[int, ...] | None] = [None] * self.num_blocks
        self.hash_to_block: dict[int, int] = {}
        self.free_blocks = dict.fromkeys(range(self.num_blocks))  # an ordered set: oldest freed first
        self.free_rows = list(range(self.max_seqs - 1, -1, -1))
        self.dirty_rows: set[int] = set()

    @property
    def num_free_blocks(self) -> int:
        return len(self.free_blocks)

    def blocks_for(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def _reusable(self, seq: Sequence) -> list[tuple[int, tuple[int, ...]]]:
        """(hash, tokens) of the leading full blocks that could come from the cache (all but the last token's)."""
        if not self.prefix_sharing:
            return []
        out, prev = [], None
        for j in range((len(seq) - 1) // self.block_size):
            tokens = tuple(seq.token_ids[j * self.block_size:(j + 1) * self.block_size])
            prev = hash((prev, tokens))
            out.append((prev, tokens))
        return out

    def _cached_block(self, key: int, tokens: tuple[int, ...]) -> int | None:
        block = self.hash_to_block.get(key)
        return block if block is not None and self.block_tokens[block] == tokens else None

    def cached_prefix_len(self, seq: Sequence) -> int:
        """How many leading tokens of ``seq`` admission would take from the cache (no side effects)."""
        hits = 0
        for key, tokens in self._reusable(seq):
            if self._cached_block(key, tokens) is None:
                break
            hits += 1
        return hits * self.block_size

    def can_admit(self, seq: Sequence, reserve: int) -> bool:
        """A free row, and blocks for all of ``seq`` (cache hits not counted) plus ``reserve`` left for growth."""
        return bool(self.free_rows) and self.num_free_blocks >= self.blocks_for(len(seq)) + reserve

    def admit(self, seq: Sequence) -> None:
        """Give ``seq`` a block-table row and blocks for its tokens; sets ``seq.num_cached_tokens``."""
        reusable = self._reusable(seq)
        seq.row, seq.block_ids, hitting, hits = self.free_rows.pop(), [], True, 0
        for j in range(self.blocks_for(len(seq))):
            key, tokens = reusable[j] if j < len(reusable) else (None, None)
            block = self._cached_block(key, tokens) if hitting and key is not None else None
            if block is None:
                hitting = False
                block = self._take_free_block()
                if key is not None:
                    self.block_hash[block], self.block_tokens[block] = key, tokens
                    self.hash_to_block[key] = block
            else:
                if self.refs[block] == 0:
                    del self.free_blocks[block]
                self.refs[block] += 1
                hits += 1
            seq.block_ids.append(block)
        seq.num_cached_tokens = hits * self.block_size
        self._write_row(seq)

    def can_append(self, seq: Sequence) -> bool:
        """Whether ``seq`` can get the slot for its last token (the next decode input)."""
        return len(seq) <= len(seq.block_ids) * self.block_size or self.num_free_blocks > 0

    def append_slot(self, seq: Sequence) -> None:
        if len(seq) > len(seq.block_ids) * self.block_size:
            self._grow(seq)

    def reserve(self, seqs: list[Sequence], extra_tokens: int) -> bool:
        """Blocks for ``extra_tokens`` more tokens of every sequence (a multi-step decode writes their K/V
        before the host sees them), all or none; False when the free blocks do not suffice."""
        missing = [self.blocks_for(len(seq) + extra_tokens) - len(seq.block_ids) for seq in seqs]
        if sum(max(0, n) for n in missing) > self.num_free_blocks:
            return False
        rows, columns, blocks = [], [], []  # one indexed write into the table: per-entry writes cost microseconds
        for seq, n in zip(seqs, missing):
            for _ in range(n):
                rows.append(seq.row)
                columns.append(len(seq.block_ids))
                blocks.append(self._take_free_block())
                seq.block_ids.append(blocks[-1])
        if blocks:
            self.table[rows, columns] = torch.tensor(blocks, dtype=torch.int32)
            self.dirty_rows.update(rows)
        return True

    def _grow(self, seq: Sequence) -> None:
        block = self._take_free_block()
        self.table[seq.row, len(seq.block_ids)] = block
        seq.block_ids.append(block)
        self.dirty_rows.add(seq.row)

    def release(self, seq: Sequence) -> None:
        for block in seq.block_ids:
            self.refs[block] -= 1
            if self.refs[block] == 0:
                self.free_blocks[block] = None
        seq.block_ids = []
        self.free_rows.append(seq.row)
        seq.row = -1

    def take_dirty_rows(self) -> list[int]:
        rows, self.dirty_rows = sorted(self.dirty_rows), set()
        return rows

    def _take_free_block(self) -> int:
        block = next(iter(self.free_blocks))
        del self.free_blocks[block]
        key = self.block_hash[block]
        if key is not None and self.hash_to_block.get(key) == block:
            del self.hash_to_block[key]
        self.block_hash[block] = self.block_tokens[block] = None
        self.refs[block] = 1
        return block

    def _write_row(self, seq: Sequence) -> None:
        if len(seq.block_ids) > self.table.shape[1]:
            raise ValueError(f"a sequence of {len(seq)} tokens exceeds the block table ({self.table.shape[1]} blocks)")
        self.table[seq.row, :len(seq.block_ids)] = torch.tensor(seq.block_ids, dtype=torch.int32)
        self.dirty_rows.add(seq.row)
