"""An Ollama ``Modelfile`` for an exported GGUF file: its chat template, default system turn, stop tokens, sampling.

Ollama formats chats with Go templates, not the Jinja template stored in the GGUF file. Translating Jinja to Go in
general is not possible, so the template is found by behaviour: the checkpoint's own Jinja template (through
transformers) renders a probe conversation, and when the result is exactly ChatML (the format of Qwen2/2.5/3 and
SmolLM2) the Modelfile carries the equivalent Go template, with the generation prompt's suffix (a reasoning
model's ``<think>\\n``) and a default system turn the Jinja template inserts by itself written as ``SYSTEM``. For any
other template the Modelfile has no ``TEMPLATE`` and says so: ``ollama create`` then matches the template stored in
the GGUF file against the ones it knows.

Sampling follows the evaluation protocol (SPEC 3: temperature 1.0, top-p 0.95, no top-k) and ``num_ctx`` is set,
since Ollama's default context (a few thousand tokens) would cut a reasoning trace short.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vibethinker.model.tokenizer import IM_END, IM_START
from vibethinker.model.window import checkpoint_window
from vibethinker.utils.files import write_text_atomic

PROBE = [{"role": "system", "content": "S-probe"}, {"role": "user", "content": "U-probe-1"},
         {"role": "assistant", "content": "A-probe"}, {"role": "user", "content": "U-probe-2"}]
CHATML_GO_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}{{ if ne .Role \"system\" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}{{ end }}<|im_start|>assistant\n")
DEFAULT_NUM_CTX = 32768  # Ollama allocates the KV cache for num_ctx: a laptop-sized cap on long windows


def _chatml(messages: list[dict]) -> str:
    return "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)


def chatml_form(tokenizer) -> tuple[str, str | None] | None:
    """(generation-prompt suffix after ``<|im_start|>assistant\\n``, default system text or None) when the
    tokenizer's chat template renders ChatML, else None."""
    render = lambda messages, gen: tokenizer.apply_chat_template(  # noqa: E731
        messages, tokenize=False, add_generation_prompt=gen)
    try:
        with_prompt, without = render(PROBE, True), render(PROBE, False)
        alone = render(PROBE[1:2], False)
    except Exception:  # a template that refuses the probe (e.g. no system role) is not ChatML
        return None
    opening = f"{IM_START}assistant\n"
    if without != _chatml(PROBE) or not with_prompt.startswith(without + opening):
        return None
    suffix = with_prompt[len(without) + len(opening):]
    if alone == _chatml(PROBE[1:2]):
        return suffix, None
    default = re.fullmatch(re.escape(f"{IM_START}system\n") + r"(.*?)" + re.escape(f"{IM_END}\n")
                           + re.escape(_chatml(PROBE[1:2])), alone, flags=re.DOTALL)
    if default is None:
        return None
    return suffix, default.group(1)


def _quote(text: str) -> str:
    if '"""' in text:
        raise ValueError(f"cannot write {text!r} in a Modelfile: it contains a triple quote")
    return f'"""{text}"""'


def modelfile_text(checkpoint: str | os.PathLike, gguf_file: str, num_ctx: int | None = None) -> str:
    """The Modelfile for ``gguf_file`` (a path as written after ``FROM``, relative to the Modelfile) exported from
    ``checkpoint``."""
    from vibethinker.model.checkpoint import load_tokenizer

    tokenizer = load_tokenizer(checkpoint)
    found = checkpoint_window(checkpoint)  # YaRN included, as the trainer and the engine count it
    window = found.positions if found is not None else DEFAULT_NUM_CTX
    if num_ctx is not None and num_ctx > window:
        raise ValueError(f"num_ctx {num_ctx} exceeds {Path(checkpoint).name}'s window of {window} positions")
    lines = [f"# Ollama Modelfile written by `vibethinker model export-gguf` from {Path(checkpoint).name}.",
             "# Use: ollama create NAME -f Modelfile, then ollama run NAME", f"FROM {gguf_file}"]
    stops = []
    form = chatml_form(tokenizer)
    if form is None:
        lines.append("# The chat template is not ChatML: no TEMPLATE here, so `ollama create` matches the template "
                     "stored in the GGUF file (tokenizer.chat_template) against the templates it knows.")
    else:
        suffix, default_system = form
        lines.append(f"TEMPLATE {_quote(CHATML_GO_TEMPLATE + suffix)}")
        if default_system is not None:
            lines.append(f"SYSTEM {_quote(default_system)}")
        stops += [IM_END, IM_START]  # a model that opens a new turn has ended its own (Ollama's Qwen files)
    if tokenizer.eos_token and tokenizer.eos_token not in stops:
        stops.append(tokenizer.eos_token)
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines += ["# SPEC 3's sampling: temperature 1.0, top-p 0.95, top-k off (0 in llama.cpp, which Ollama runs)",
              "PARAMETER temperature 1.0", "PARAMETER top_p 0.95", "PARAMETER top_k 0",
              f"PARAMETER num_ctx {num_ctx or min(window, DEFAULT_NUM_CTX)}"]
    return "\n".join(lines) + "\n"


def write_modelfile(checkpoint: str | os.PathLike, gguf: str | os.PathLike, out: str | os.PathLike | None = None,
                    num_ctx: int | None = None) -> Path:
    """Write the Modelfile (default: ``Modelfile`` beside ``gguf``), atomically; ``FROM`` names ``gguf`` relative
    to it when it can."""
    gguf = Path(gguf)
    target = Path(out) if out is not None else gguf.parent / "Modelfile"
    try:
        source = os.path.relpath(gguf.resolve(), target.resolve().parent).replace(os.sep, "/")
        source = source if source.startswith("../") else "./" + source
    except ValueError:  # another drive on Windows
        source = str(gguf.resolve())
    return write_text_atomic(target, modelfile_text(checkpoint, source, num_ctx))
