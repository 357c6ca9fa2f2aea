"""A byte-level BPE tokenizer trained on the suite, built exactly like Qwen2's so it reloads as ``Qwen2Tokenizer``.

Qwen2's tokenizer is NFC normalisation, a regex split that isolates every digit (good for arithmetic), then
byte-level mapping. Training with the same pieces means ``AutoTokenizer.from_pretrained`` on the saved folder
rebuilds an identical tokenizer, so the tiny model and a real Qwen2.5 checkpoint go through the same code path.
``<think>`` and ``</think>`` are added as non-special tokens: they survive ``skip_special_tokens=True`` decoding.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerBase
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

END_OF_TEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
THINK_TOKENS = ("<think>", "</think>")

# ChatML, as Qwen2.5 uses, minus its default system prompt: SPEC 3 evaluates with no system message.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _qwen2_pipeline(model: BPE) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerBase:
    """Train BPE merges on ``texts`` and return a ``Qwen2Tokenizer`` with the chat template set.

    The vocabulary starts from all 256 byte symbols, so any text (not only the suite's) can be encoded.
    """
    bpe = _qwen2_pipeline(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
                              byte_fallback=False))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
        special_tokens=[END_OF_TEXT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    model = bpe.model
    vocab = bpe.get_vocab(with_added_tokens=False)
    vocab[END_OF_TEXT] = bpe.token_to_id(END_OF_TEXT)
    merges = _merges_of(bpe)
    del model
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token=IM_END, pad_token=END_OF_TEXT,
                               unk_token=None, bos_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END]})
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _merges_of(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    import json

    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
