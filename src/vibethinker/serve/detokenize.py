"""Text out of a token stream: incremental detokenisation and stop strings.

Decoding each new token alone breaks multi-byte characters (a byte-level BPE token may hold half of one) and drops
the spaces some tokenizers attach to the next word. :class:`IncrementalText` uses the offsets method of TGI and
vLLM: decode the tokens since a prefix offset with and without the new ones, and emit the difference once it no
longer ends in a replacement character. :class:`StopStrings` finds OpenAI's ``stop`` strings in the text so far:
the text is cut before the first match (the stop string itself is not returned) and the characters that could be
the start of a stop string are held back until the next piece decides.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


class IncrementalText:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, skip_special_tokens: bool = True):
        self.tokenizer, self.skip = tokenizer, skip_special_tokens
        self.ids: list[int] = []
        self.prefix_offset = self.read_offset = 0

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip)

    def push(self, token_ids: list[int]) -> str:
        """The text the new tokens complete (may be empty while a character is incomplete)."""
        self.ids += token_ids
        before = self._decode(self.ids[self.prefix_offset:self.read_offset])
        after = self._decode(self.ids[self.prefix_offset:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """At the end: whatever is still held, incomplete characters included."""
        before = self._decode(self.ids[self.prefix_offset:self.read_offset])
        after = self._decode(self.ids[self.prefix_offset:])
        self.prefix_offset = self.read_offset = len(self.ids)
        return after[len(before):] if len(after) > len(before) else ""


class StopStrings:
    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text that can be released; sets ``stopped`` when a stop string was found (the text before it is
        returned, nothing after)."""
        if self.stopped:
            return ""
        text = self.held + piece
        if not self.stops:
            self.held = ""
            return text
        hits = [i for i in (text.find(stop) for stop in self.stops) if i >= 0]
        if hits:
            self.stopped, self.held = True, ""
            return text[:min(hits)]
        keep = max((prefix_overlap(text, stop) for stop in self.stops), default=0)
        self.held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        text, self.held = ("" if self.stopped else self.held), ""
        return text


def prefix_overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if stop.startswith(text[-size:]):
            return size
    return 0
