"""Pull the graded part out of a response: the text after ``</think>``, its last ``\\boxed{}``, its last code block.

Only what follows the closing ``</think>`` is ever graded (SPEC 2.5, 5): an answer written inside the reasoning
must not score, or the policy learns to hedge inside the think block.
"""

from __future__ import annotations

import re

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def final_part(response: str, require_think: bool = True) -> str | None:
    """The text after the last ``</think>``; ``None`` when the tag is required and missing."""
    cut = response.rfind(THINK_CLOSE)
    if cut < 0:
        return None if require_think else response
    return response[cut + len(THINK_CLOSE):]


def last_boxed(text: str) -> str | None:
    """Content of the last brace-matched ``\\boxed{...}`` / ``\\fbox{...}``; ``None`` if absent or unbalanced."""
    starts = [m.start() for cmd in _BOX_COMMANDS for m in re.finditer(re.escape(cmd) + r"\s*\{", text)]
    for start in sorted(starts, reverse=True):
        open_at = text.index("{", start)
        depth = 0
        for pos in range(open_at, len(text)):
            if text[pos] == "{":
                depth += 1
            elif text[pos] == "}":
                depth -= 1
                if depth == 0:
                    return text[open_at + 1:pos]
    return None


def last_code_block(text: str) -> str | None:
    """Body of the last fenced python (or untagged) code block."""
    blocks = _CODE_BLOCK.findall(text)
    return blocks[-1] if blocks else None


def extract_boxed_answer(response: str, require_think: bool = True) -> str | None:
    """The final boxed answer of a response, stripped; ``None`` when missing or empty."""
    part = final_part(response, require_think)
    if part is None:
        return None
    boxed = last_boxed(part)
    if boxed is None or not boxed.strip():
        return None
    return boxed.strip()


def extract_program(response: str, require_think: bool = True) -> str | None:
    """The program of a code response: the last fenced block after ``</think>``."""
    part = final_part(response, require_think)
    if part is None:
        return None
    program = last_code_block(part)
    return program if program and program.strip() else None
