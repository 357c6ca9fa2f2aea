"""The Ollama Modelfile written beside an exported GGUF file: ChatML found by rendering the checkpoint's own template,
its default system turn and generation-prompt suffix carried over, anything else left to Ollama's own detection."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from vibethinker.model.checkpoint import load_tokenizer
from vibethinker.model.ollama_modelfile import CHATML_GO_TEMPLATE, chatml_form, write_modelfile

pytest.importorskip("gguf")

LLAMA3_TEMPLATE = ("{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
                   "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{%- endfor %}"
                   "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
                   "{%- endif %}")


def _with_template(folder, tmp_path, template: str):
    copy = tmp_path / "templated"
    shutil.copytree(folder, copy)
    tokenizer = load_tokenizer(copy)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(copy)
    return copy


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_chatml_checkpoint_gets_the_go_template_stops_and_sampling(varied_tiny, tmp_path):
    _, _, folder = varied_tiny
    assert chatml_form(load_tokenizer(folder)) == ("", None)  # our template: ChatML with no default system turn
    gguf = tmp_path / "out" / "tiny.gguf"
    result = subprocess.run([sys.executable, "-m", "vibethinker.cli", "model", "export-gguf", str(folder), "--out",
                             str(gguf), "--type", "q8_0", "--modelfile", str(tmp_path / "out" / "Modelfile"),
                             "--num-ctx", "512"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    text = (tmp_path / "out" / "Modelfile").read_text(encoding="utf-8")
    assert f'TEMPLATE """{CHATML_GO_TEMPLATE}"""' in text and "\nSYSTEM" not in text
    lines = _lines(tmp_path / "out" / "Modelfile")
    stops = {line for line in lines if line.startswith("PARAMETER stop")}
    eos = load_tokenizer(folder).eos_token
    assert "FROM ./tiny.gguf" in lines
    assert stops == {f'PARAMETER stop "{t}"' for t in ("<|im_end|>", "<|im_start|>", eos)}
    assert {"PARAMETER temperature 1.0", "PARAMETER top_p 0.95", "PARAMETER num_ctx 512"} <= set(lines)


def test_default_system_turn_and_a_generation_prompt_that_opens_reasoning(varied_tiny, tmp_path):
    _, _, folder = varied_tiny
    template = ("{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nBe exact.<|im_end|>\\n' }}"
                "{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + "
                "message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}"
                "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}")
    copy = _with_template(folder, tmp_path, template)
    assert chatml_form(load_tokenizer(copy)) == ("<think>\n", "Be exact.")
    path = write_modelfile(copy, tmp_path / "m.gguf", tmp_path / "sub" / "Modelfile")
    text = path.read_text(encoding="utf-8")
    assert f'TEMPLATE """{CHATML_GO_TEMPLATE}<think>\n"""' in text and 'SYSTEM """Be exact."""' in text
    assert "FROM ../m.gguf" in text


def test_other_templates_are_left_to_ollama(varied_tiny, tmp_path):
    _, _, folder = varied_tiny
    copy = _with_template(folder, tmp_path, LLAMA3_TEMPLATE)
    assert chatml_form(load_tokenizer(copy)) is None
    text = write_modelfile(copy, tmp_path / "m.gguf").read_text(encoding="utf-8")
    assert not any(line.startswith(("TEMPLATE", "SYSTEM")) for line in text.splitlines())
    assert 'PARAMETER stop "<|im_start|>"' not in text  # only the tokenizer's own end token
    assert "matches the template stored in the GGUF file" in text
    with pytest.raises(ValueError, match="num_ctx 99999 exceeds templated's window of"):
        write_modelfile(copy, tmp_path / "m.gguf", num_ctx=99999)
