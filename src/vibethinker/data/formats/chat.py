"""Text surgery shared by the converters: chat turns, instructions we re-add ourselves, and the trace form.

Our prompts (:mod:`vibethinker.prompts`) add the task instruction at render time, so a problem must hold the bare
question. Public rows often carry an instruction already (a system message, a "think step by step ... \\boxed{}"
suffix, LiveCodeBench's "You are an expert Python programmer ... ### Question:" wrapper): it is removed here and the
original is kept in ``meta`` by the caller.

Trace form (SFT, ``Problem.traces``): ``"<think>\\n{reasoning}\\n</think>\\n{final}"``. A response that already has
``<think>...</think>`` keeps its reasoning and its final part; a response without think tags is a plain written
solution, kept whole as the final part after an empty ``"<think>\\n</think>\\n"``, so every trace still ends with a
final answer and passes ``require_think`` grading. A response whose reasoning never closes (``<think>`` without
``</think>``) or that has nothing after ``</think>`` has no final answer and yields ``None``.
"""

from __future__ import annotations

import re

from vibethinker.data.formats.base import RowContext

# Instruction fragments seen in public RL/SFT sets (verl's MATH/GSM8K/DeepScaleR preprocessing, DAPO, Qwen-Math).
INSTRUCTION_SUFFIXES = (
    "Let's think step by step and output the final answer within \\boxed{}.",
    "Let's think step by step and output the final answer after \"####\".",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "Remember to put your answer on its own line after \"Answer:\".",
)
INSTRUCTION_PREFIXES = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.",
    "Please solve the programming task below using a self-contained code snippet in a markdown code block.",
)
_LCB_QUESTION = re.compile(r"### Question:\s*\n(?P<q>.*?)\n\s*### Format:", re.S)
_LCB_STARTER = re.compile(r"### Format:.*?```python\n(?P<code>.*?)```", re.S)
_COMPLETE_CODE = re.compile(r"\n\s*Please complete the following python code precisely:\s*```python\n.*?```\s*$",
                            re.S)


def _contents(messages: list, ctx: RowContext, name: str, role: str) -> list[str]:
    """The text of every ``role`` message, after checking that each message is {role, content} with text."""
    contents = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            ctx.fail(f"{name}[{position}]", "expected a message object {role, content} with text content")
        if message.get("role") == role:
            contents.append(message["content"])
    return contents


def user_turn(messages: list, ctx: RowContext, name: str) -> str:
    """The content of the one user message; system messages are dropped (we add our own instruction)."""
    users = _contents(messages, ctx, name, "user")
    if len(users) != 1:
        ctx.fail(name, f"expected exactly one user message, found {len(users)}")
    return users[0]


def assistant_turns(messages: list, ctx: RowContext, name: str) -> list[str]:
    return _contents(messages, ctx, name, "assistant")


def strip_instructions(text: str) -> str:
    """The bare question: known instruction prefixes/suffixes and the LiveCodeBench wrapper removed."""
    match = _LCB_QUESTION.search(text)
    if match:
        text = match.group("q")
    text = _COMPLETE_CODE.sub("", text)
    changed = True
    while changed:
        changed = False
        text = text.strip()
        for prefix in INSTRUCTION_PREFIXES:
            if text.startswith(prefix):
                text, changed = text[len(prefix):], True
        for suffix in INSTRUCTION_SUFFIXES:
            if text.endswith(suffix):
                text, changed = text[:-len(suffix)], True
    return text


def to_trace(response: str) -> str | None:
    """The trace form of one response (see the module docstring), or ``None`` when it has no final answer."""
    text = response.strip()
    if "<think>" not in text and "</think>" not in text:
        return f"<think>\n</think>\n{text}" if text else None
    head, closed, final = text.rpartition("</think>")
    if not closed or not final.strip():
        return None
    reasoning = head.split("<think>", 1)[1] if "<think>" in head else head
    return f"<think>\n{reasoning.strip()}\n</think>\n{final.strip()}"


def wrapped_starter_code(text: str) -> str | None:
    """The starter code inside a LiveCodeBench prompt's ``### Format:`` block (``None`` for the stdin placeholder)."""
    match = _LCB_STARTER.search(text)
    if not match or match.group("code").strip() in ("", "# YOUR CODE HERE"):
        return None
    return match.group("code").rstrip() + "\n"
