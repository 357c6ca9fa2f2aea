"""How the sequences of one RL update are cut into forward/backward passes.

By row count (``micro_batch_size``): consecutive rows, as the rollout batch lists them. By token budget
(``micro_batch_tokens``): the rows sorted longest first, each pass taking rows while ``rows x longest <= budget``
(a row longer than the budget goes alone). A pass's activations grow with ``rows x width``, so a token budget keeps
the peak flat whether responses are 1K or 64K tokens long, where a row count has to be sized for the longest case
and wastes the GPU on short ones; sorting also keeps the padding of each pass small. The gradient is the same
either way, since every pass divides by the global counts (SPEC 5).
"""

from __future__ import annotations


def micro_batch_rows(lengths: list[int], micro_batch_size: int, micro_batch_tokens: int | None) -> list[list[int]]:
    """Row indices of each pass."""
    if micro_batch_tokens is None:
        return [list(range(start, min(start + micro_batch_size, len(lengths))))
                for start in range(0, len(lengths), micro_batch_size)]
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    passes: list[list[int]] = []
    for index in order:
        current = passes[-1] if passes else None
        # sorted longest first: the pass's width is its first row's length
        if current is None or (len(current) + 1) * lengths[current[0]] > micro_batch_tokens:
            passes.append([index])
        else:
            current.append(index)
    return passes
