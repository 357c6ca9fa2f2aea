"""Reasoning apart from the answer: ``<think> ... </think>`` in a response becomes ``reasoning_content``.

The convention of vLLM's and SGLang's reasoning parsers (DeepSeek-R1 / Qwen3 style): the text before ``</think>``
is the reasoning, the text after it the answer (``content``). Whether the response itself opens with ``<think>``
or the chat template already opened it inside the prompt (Qwen3's and DeepSeek-R1's templates end the generation
prompt with ``<think>\\n``), the split is the same: everything up to the first ``</think>`` is reasoning, a leading
``<think>`` is dropped. A response with no ``</think>`` is all reasoning when the prompt opened one or the
response began with ``<think>`` (it was cut inside its reasoning); a response that does not begin with ``<think>``
after a prompt that did not open one is all answer (a model that does not think: Qwen3's parser's rule).

:class:`ReasoningSplitter` does the same on a stream of text pieces, holding back only the characters that could
be the start of a tag cut across two pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

from vibethinker.serve.detokenize import prefix_overlap

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def prompt_opens_reasoning(prompt: str) -> bool:
    """True when the rendered prompt ends inside an open ``<think>`` (the template opened the reasoning)."""
    last_open, last_close = prompt.rfind(THINK_OPEN), prompt.rfind(THINK_CLOSE)
    return last_open > last_close


def split_reasoning(text: str, opened_in_prompt: bool = False) -> tuple[str | None, str]:
    """``(reasoning or None, answer)`` of a whole response."""
    splitter = ReasoningSplitter(opened_in_prompt)
    reasoning, answer = splitter.feed(text)
    more_reasoning, more_answer = splitter.finish()
    reasoning += more_reasoning
    answer += more_answer
    return (reasoning if splitter.saw_reasoning else None), answer


@dataclass
class ReasoningSplitter:
    """Feed text pieces in order; each call returns the ``(reasoning, answer)`` text it can already attribute."""

    opened_in_prompt: bool = False
    state: str = "start"  # start -> reasoning -> answer, or start -> answer
    pending: str = ""
    saw_reasoning: bool = False

    def __post_init__(self) -> None:
        if self.opened_in_prompt:
            self.state, self.saw_reasoning = "reasoning", True

    def feed(self, piece: str) -> tuple[str, str]:
        text, self.pending = self.pending + piece, ""
        reasoning = answer = ""
        if self.state == "start":
            stripped = text.lstrip()
            if stripped.startswith(THINK_OPEN):
                self.state, self.saw_reasoning = "reasoning", True
                text = stripped[len(THINK_OPEN):]
            elif THINK_OPEN.startswith(stripped):  # maybe the opening tag, cut: wait for more
                self.pending = text
                return "", ""
            else:
                self.state = "answer"
        if self.state == "reasoning":
            end = text.find(THINK_CLOSE)
            if end < 0:
                keep = prefix_overlap(text, THINK_CLOSE)
                self.pending = text[len(text) - keep:]
                return text[:len(text) - keep], ""
            reasoning, self.state, text = text[:end], "answer", text[end + len(THINK_CLOSE):]
        if self.state == "answer":
            answer += text
        return reasoning, answer

    def finish(self) -> tuple[str, str]:
        """What the stream's end decides: held-back text is reasoning in a reasoning block, else answer."""
        text, self.pending = self.pending, ""
        return (text, "") if self.state == "reasoning" else ("", text)

