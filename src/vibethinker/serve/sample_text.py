"""One sample's way from tokens to what a response shows: text, stop strings, reasoning apart, counts, log-probs.

Streaming and non-streaming responses run the same pipeline (a non-streaming response is the concatenation of
the pieces), so the two agree token for token and character for character.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from vibethinker.generate.native.online import SampleOutput
from vibethinker.serve.detokenize import IncrementalText, StopStrings
from vibethinker.serve.reasoning import ReasoningSplitter


@dataclass
class Piece:
    """What one engine output adds to a sample's response."""

    reasoning: str = ""
    content: str = ""
    text: str = ""  # reasoning and content as generated (tags included): the completions API's text
    tokens: list[tuple[int, float, list[tuple[int, float]] | None]] = field(default_factory=list)
    finish_reason: str | None = None


class SampleText:
    def __init__(self, tokenizer: PreTrainedTokenizerBase, stop_strings: list[str], split_reasoning: bool,
                 opened_in_prompt: bool, think_end_ids: tuple[int, ...]):
        self.text = IncrementalText(tokenizer)
        self.stops = StopStrings(stop_strings)
        self.splitter = ReasoningSplitter(opened_in_prompt) if split_reasoning else None
        self.opened_in_prompt, self.think_end_ids = opened_in_prompt, think_end_ids
        self.token_ids: list[int] = []
        self.full_text = ""  # everything shown so far, tags included
        self.finish_reason: str | None = None
        self.reasoning_tokens: int | None = None  # fixed once </think> is generated

    @property
    def stopped_by_string(self) -> bool:
        return self.stops.stopped

    def push(self, out: SampleOutput) -> Piece:
        """The response's new part; after a stop string matched, the rest of the sample is ignored."""
        piece = Piece()
        if self.finish_reason is not None:
            return piece
        released = ""
        if not self.stops.stopped:
            tops = out.top_logprobs or [None] * len(out.token_ids)
            for token, logprob, top in zip(out.token_ids, out.logprobs, tops):
                self.token_ids.append(token)
                self._count_reasoning()
                piece.tokens.append((token, logprob, top))
                released += self.stops.feed(self.text.push([token]))
                if self.stops.stopped:
                    break
        if self.stops.stopped:
            piece.finish_reason = "stop"
        elif out.finish_reason is not None:
            released += self.stops.feed(self.text.flush()) + self.stops.flush()
            piece.finish_reason = out.finish_reason  # stop, length, abort (cancelled), error
        piece.text = released
        self.full_text += released
        if self.splitter is not None:
            piece.reasoning, piece.content = self.splitter.feed(released)
            if piece.finish_reason is not None:
                more_reasoning, more_content = self.splitter.finish()
                piece.reasoning += more_reasoning
                piece.content += more_content
        else:
            piece.content = released
        if piece.finish_reason is not None:
            self.finish_reason = piece.finish_reason
        return piece

    def _count_reasoning(self) -> None:
        end = self.think_end_ids
        if self.reasoning_tokens is None and end and tuple(self.token_ids[-len(end):]) == end:
            self.reasoning_tokens = len(self.token_ids)

    def reasoning_token_count(self) -> int:
        """Tokens of reasoning, ``</think>`` included; all of them when the reasoning never closed after an opening
        (in the prompt or at the start of the response)."""
        if self.reasoning_tokens is not None:
            return self.reasoning_tokens
        opened = self.opened_in_prompt or self.full_text.lstrip().startswith("<think>")
        return len(self.token_ids) if opened else 0
