"""Checkpoint fusion (SPEC 2.2 step 4): exact weighted averages, streaming reads, refusals, atomic output, CLI."""

from __future__ import annotations

import json
import math
import shutil
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

from conftest import build_tiny_checkpoint
from vibethinker.cli import app
from vibethinker.model import (
    TinyModelConfig, build_tiny_model, fusion, load_model, load_tokenizer, save_pretrained_atomic, train_tokenizer,
)
from vibethinker.model.fusion import fuse_checkpoints, resolve_weights

# Enough distinct text that both tokenizers fill the whole 280-entry budget: then vocab sizes match and only the
# tokenizer check can tell them apart.
TEXTS = [f"What is {a} + {b}? <think>{a} + {b} = {a + b}.</think> The answer is \\boxed{{{a + b}}}."
         for a in range(1, 30) for b in range(1, 20)]
OTHER_TEXTS = [f"Subtract {a} from {b} and multiply by {a * b}: the result equals {(b - a) * a * b}. Explain why."
               for a in range(1, 40) for b in range(1, 30)]
VOCAB = 280


def _randomise(path, seed: int):
    """Give every parameter (norms and biases too) independent random values, so averages are non-trivial."""
    model, tokenizer = load_model(path, "cpu", torch.float32), load_tokenizer(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return save_pretrained_atomic(model, tokenizer, path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Three tiny checkpoints with one tokenizer (same texts) and independent random weights."""
    root = tmp_path_factory.mktemp("fusion")
    paths = []
    for i, init in enumerate((0.02, 0.05, 0.1)):
        path = build_tiny_checkpoint(root / f"m{i}", TEXTS, vocab_size=VOCAB, initializer_range=init)
        paths.append(_randomise(path, seed=i + 1))
    return paths


def _expected(paths, weights) -> dict[str, torch.Tensor]:
    states = [load_file(p / "model.safetensors") for p in paths]
    return {name: sum(w * s[name].float() for w, s in zip(weights, states)).to(states[0][name].dtype)
            for name in states[0]}


def _fused_tensors(out) -> dict[str, torch.Tensor]:
    index = out / "model.safetensors.index.json"
    if not index.exists():
        return load_file(out / "model.safetensors")
    tensors = {}
    for shard in set(json.loads(index.read_text())["weight_map"].values()):
        tensors.update(load_file(out / shard))
    return tensors


def _assert_equal_tensors(got, expected):
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        torch.testing.assert_close(got[name], expected[name], msg=name)


def test_ckpts_really_differ(ckpts):
    a, b = load_file(ckpts[0] / "model.safetensors"), load_file(ckpts[1] / "model.safetensors")
    assert all(not torch.equal(a[name], b[name]) for name in a)


@pytest.mark.parametrize("weights", [(0.5, 0.5), (0.25, 0.75)])
def test_two_way_fusion_is_the_weighted_average(ckpts, tmp_path, weights):
    out = fuse_checkpoints(ckpts[:2], list(weights), tmp_path / "fused")
    _assert_equal_tensors(_fused_tensors(out), _expected(ckpts[:2], weights))
    meta = json.loads((out / "fusion.json").read_text())
    assert meta["weights"] == list(weights) and meta["inputs"] == [str(p.resolve()) for p in ckpts[:2]]
    assert meta["created"]


def test_default_weights_are_uniform(ckpts, tmp_path):
    out = fuse_checkpoints(ckpts, None, tmp_path / "fused")
    _assert_equal_tensors(_fused_tensors(out), _expected(ckpts, [1 / 3] * 3))
    assert json.loads((out / "fusion.json").read_text())["weights"] == [1 / 3] * 3


def test_fused_model_loads_and_matches_in_memory_average(ckpts, tmp_path):
    out = fuse_checkpoints(ckpts[:2], [0.3, 0.7], tmp_path / "fused")
    models = [load_model(p, "cpu", torch.float32) for p in ckpts[:2]]
    states = [m.state_dict() for m in models]
    reference = models[0]
    reference.load_state_dict({name: 0.3 * states[0][name] + 0.7 * states[1][name] for name in states[0]})

    fused, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    fused = load_model(out, "cpu", torch.float32)
    tokenizer = load_tokenizer(out)
    assert tokenizer.get_vocab() == load_tokenizer(ckpts[0]).get_vocab()
    assert tokenizer.chat_template == load_tokenizer(ckpts[0]).chat_template
    ids = tokenizer("What is 3 + 4? <think>", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        got, want = fused(ids).logits, reference(ids).logits
    assert not torch.allclose(want, models[1](ids).logits)  # the comparison can tell the models apart
    torch.testing.assert_close(got, want)
    assert (out / "config.json").read_text() == (ckpts[0] / "config.json").read_text()
    assert (out / "generation_config.json").exists()


def test_bf16_is_accumulated_in_float32_and_stored_as_bf16(ckpts, tmp_path):
    paths = []
    for i, src in enumerate(ckpts[:2]):
        paths.append(save_pretrained_atomic(load_model(src, "cpu", torch.bfloat16), load_tokenizer(src),
                                            tmp_path / f"bf16-{i}"))
    out = fuse_checkpoints(paths, [0.5, 0.5], tmp_path / "fused")
    got = _fused_tensors(out)
    assert {t.dtype for t in got.values()} == {torch.bfloat16}
    _assert_equal_tensors(got, _expected(paths, [0.5, 0.5]))
    with pytest.raises(ValueError, match="tensors differ") as err:
        fuse_checkpoints([ckpts[0], paths[1]], None, tmp_path / "mixed")
    assert str(ckpts[0]) in str(err.value) and str(paths[1]) in str(err.value) and "BF16" in str(err.value)


def _save_sharded(src, dst):
    model = load_model(src, "cpu", torch.float32)
    model.save_pretrained(dst, max_shard_size="20KB")
    load_tokenizer(src).save_pretrained(dst)
    assert (dst / "model.safetensors.index.json").exists() and not (dst / "model.safetensors").exists()
    return dst


def test_sharded_inputs_keep_the_first_layout(ckpts, tmp_path):
    sharded = _save_sharded(ckpts[0], tmp_path / "sharded")
    out = fuse_checkpoints([sharded, ckpts[1]], [0.25, 0.75], tmp_path / "fused")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    source_index = json.loads((sharded / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == source_index["weight_map"] and len(set(index["weight_map"].values())) > 1
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in _fused_tensors(out).values())
    _assert_equal_tensors(_fused_tensors(out), _expected(ckpts[:2], [0.25, 0.75]))
    load_model(out, "cpu", torch.float32)

    single_first = fuse_checkpoints([ckpts[1], sharded], [0.75, 0.25], tmp_path / "fused2")
    assert (single_first / "model.safetensors").exists()
    assert not (single_first / "model.safetensors.index.json").exists()
    _assert_equal_tensors(_fused_tensors(single_first), _expected(ckpts[:2], [0.25, 0.75]))


class _Tracker:
    """Counts tensors handed out by safe_open that are still alive (weakref finalisers see them freed)."""

    def __init__(self):
        self.reads = self.live = self.peak = 0

    def wrap(self, real_safe_open):
        tracker = self

        class Handle:
            def __init__(self, *args, **kwargs):
                self._inner = real_safe_open(*args, **kwargs)

            def __enter__(self):
                self._inner.__enter__()
                return self

            def __exit__(self, *exc):
                return self._inner.__exit__(*exc)

            def keys(self):
                return self._inner.keys()

            def get_slice(self, name):
                return self._inner.get_slice(name)

            def get_tensor(self, name):
                tensor = self._inner.get_tensor(name)
                tracker.reads += 1
                tracker.live += 1
                tracker.peak = max(tracker.peak, tracker.live)
                weakref.finalize(tensor, tracker.release)
                return tensor

        return Handle

    def release(self):
        self.live -= 1


def test_fusion_streams_one_tensor_per_input_at_a_time(ckpts, tmp_path, monkeypatch):
    tracker = _Tracker()
    monkeypatch.setattr(fusion, "safe_open", tracker.wrap(fusion.safe_open))
    out = fuse_checkpoints(ckpts, None, tmp_path / "fused")
    names = load_file(ckpts[0] / "model.safetensors").keys()
    # Every tensor is read exactly once per input through safe_open (no whole-file loads that bypass it) ...
    assert tracker.reads == len(ckpts) * len(names) > len(ckpts)
    # ... and never more than one tensor per input is alive, far from a whole state dict.
    assert 1 <= tracker.peak <= len(ckpts) < len(names)
    _assert_equal_tensors(_fused_tensors(out), _expected(ckpts, [1 / 3] * 3))


def test_different_architecture_is_refused(ckpts, tmp_path):
    tokenizer = train_tokenizer(TEXTS, vocab_size=VOCAB)
    wide = build_tiny_model(tokenizer, TinyModelConfig(hidden_size=96, intermediate_size=128, num_hidden_layers=2,
                                                       num_attention_heads=4, num_key_value_heads=2))
    wide_path = save_pretrained_atomic(wide, tokenizer, tmp_path / "wide")
    with pytest.raises(ValueError, match="architecture differs") as err:
        fuse_checkpoints([ckpts[0], wide_path], None, tmp_path / "fused")
    message = str(err.value)
    assert str(ckpts[0]) in message and str(wide_path) in message and "hidden_size: 64 vs 96" in message
    assert not (tmp_path / "fused").exists()


def test_different_tokenizer_is_refused(ckpts, tmp_path):
    other = build_tiny_checkpoint(tmp_path / "other", OTHER_TEXTS, vocab_size=VOCAB)
    assert len(load_tokenizer(other)) == len(load_tokenizer(ckpts[0]))  # same shapes: only the tokenizer differs
    with pytest.raises(ValueError, match="tokenizer differs") as err:
        fuse_checkpoints([ckpts[0], other], None, tmp_path / "fused")
    assert str(ckpts[0]) in str(err.value) and str(other) in str(err.value) and "model.vocab" in str(err.value)
    assert not (tmp_path / "fused").exists()


def test_different_chat_template_is_refused(ckpts, tmp_path):
    edited = shutil.copytree(ckpts[1], tmp_path / "edited")
    template = edited / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|im_start|>", "<|im_start|> "))
    with pytest.raises(ValueError, match="tokenizer differs in chat template"):
        fuse_checkpoints([ckpts[0], edited], None, tmp_path / "fused")


def test_irrelevant_tokenizer_fields_are_ignored(ckpts, tmp_path):
    edited = shutil.copytree(ckpts[1], tmp_path / "edited")
    data = json.loads((edited / "tokenizer.json").read_text())
    data["truncation"] = {"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0}
    (edited / "tokenizer.json").write_text(json.dumps(data))
    fuse_checkpoints([ckpts[0], edited], None, tmp_path / "fused")


def test_resolve_weights():
    two = [Path("a"), Path("b")]
    assert resolve_weights(None, two) == [0.5, 0.5]
    assert resolve_weights([0.5, 0.5 + 5e-7], two) == [0.5, 0.5 + 5e-7]


@pytest.mark.parametrize("weights, message", [
    ([1.0], "1 given for 2 checkpoints"),
    ([0.5, 0.3, 0.2], "3 given for 2 checkpoints"),
    ([-0.5, 1.5], ">= 0"),
    ([math.nan, 1.0], ">= 0"),
    ([0.5, 0.6], "sum to"),
    ([0.5, 0.5 + 1e-5], "sum to"),
])
def test_bad_weights_are_refused(ckpts, tmp_path, weights, message):
    with pytest.raises(ValueError, match=message):
        fuse_checkpoints(ckpts[:2], weights, tmp_path / "fused")
    assert not (tmp_path / "fused").exists()


def test_bad_inputs_are_refused(ckpts, tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        fuse_checkpoints([], None, tmp_path / "fused")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        fuse_checkpoints([ckpts[0], tmp_path / "missing"], None, tmp_path / "fused")
    no_weights = shutil.copytree(ckpts[1], tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        fuse_checkpoints([ckpts[0], no_weights], None, tmp_path / "fused")
    missing_shard = _save_sharded(ckpts[1], tmp_path / "missing-shard")
    shard = max(missing_shard.glob("model-*.safetensors"))
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=shard.name):
        fuse_checkpoints([ckpts[0], missing_shard], None, tmp_path / "fused")
    with pytest.raises(ValueError, match="one of the inputs"):
        fuse_checkpoints([ckpts[0], ckpts[1]], None, ckpts[1])
    assert not (tmp_path / "fused").exists()


def test_failed_fusion_leaves_no_partial_output(ckpts, tmp_path, monkeypatch):
    def disk_full(source, out):
        assert any(out.glob("*.safetensors"))  # the failure comes after weights were written to the temp folder
        raise OSError("disk full")

    monkeypatch.setattr(fusion, "_copy_support_files", disk_full)
    with pytest.raises(OSError, match="disk full"):
        fuse_checkpoints(ckpts[:2], None, tmp_path / "fused")
    assert list(tmp_path.iterdir()) == []

    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "keep.txt").write_text("old")
    with pytest.raises(OSError, match="disk full"):
        fuse_checkpoints(ckpts[:2], None, previous)
    assert [p.name for p in tmp_path.iterdir()] == ["previous"] and (previous / "keep.txt").read_text() == "old"


def test_cli_fuse(ckpts, tmp_path):
    runner = CliRunner()
    out = tmp_path / "fused"
    result = runner.invoke(app, ["fuse", str(ckpts[0]), str(ckpts[1]), "--weights", "0.25,0.75", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    _assert_equal_tensors(_fused_tensors(out), _expected(ckpts[:2], [0.25, 0.75]))

    uniform = runner.invoke(app, ["fuse", *map(str, ckpts), "--out", str(tmp_path / "uniform")])
    assert uniform.exit_code == 0, uniform.output
    assert json.loads((tmp_path / "uniform" / "fusion.json").read_text())["weights"] == [1 / 3] * 3

    for weights in ("0.5,abc", "0.9,0.9"):
        bad = runner.invoke(app, ["fuse", str(ckpts[0]), str(ckpts[1]), "--weights", weights,
                                  "--out", str(tmp_path / "bad")])
        assert bad.exit_code == 2 and "error:" in bad.output, bad.output
    missing = runner.invoke(app, ["fuse", str(ckpts[0]), str(tmp_path / "nope"), "--out", str(tmp_path / "bad")])
    assert missing.exit_code == 2 and "error:" in missing.output and "no config.json" in missing.output
    assert not (tmp_path / "bad").exists()


def test_tensor_present_in_only_some_inputs_is_refused(ckpts, tmp_path):
    """Tied embeddings: no lm_head.weight anywhere is fine (the fixtures have none); in only one input it is not."""
    untied = shutil.copytree(ckpts[1], tmp_path / "untied")
    tensors = load_file(untied / "model.safetensors")
    assert "lm_head.weight" not in tensors
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, untied / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="only in the second: lm_head.weight") as err:
        fuse_checkpoints([ckpts[0], untied], None, tmp_path / "fused")
    assert str(ckpts[0]) in str(err.value) and str(untied) in str(err.value)
