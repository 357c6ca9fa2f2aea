"""Where do native and transformers differ on the GPU? Greedy agreement in fp32 per engine variant.

Variants: torch code paths vs Triton kernels, with and without CUDA graphs, against transformers with the prompts
left-padded in one batch and one prompt at a time. Qwen2.5-0.5B's layout with fewer layers (random weights).
Run: ``python bench/engine_agreement.py`` (GPU; a few minutes).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import engine as bench  # noqa: E402  (the throughput benchmark's helpers)
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from vibethinker.generate.native.config import EngineConfig  # noqa: E402
from vibethinker.generate.native.engine import LLMEngine  # noqa: E402
from vibethinker.generate.types import SamplingParams  # noqa: E402


def main() -> None:
    device = torch.device("cuda")
    if "--bench-model" in sys.argv:  # exactly the throughput benchmark's Qwen2.5-0.5B model, in fp32
        model, vocab, cases = bench.build_model("qwen2.5-0.5b", device, torch.float32), 151936, ((128, 1024),)
    else:
        torch.manual_seed(0)
        config = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=6, num_attention_heads=14,
                             num_key_value_heads=2, vocab_size=32000, max_position_embeddings=4096,
                             rope_theta=1000000.0, tie_word_embeddings=True, initializer_range=0.05)
        model, vocab, cases = Qwen2ForCausalLM(config).to(device).eval(), 32000, ((16, 40), (128, 1024))
    rng = random.Random(0)
    for lengths in cases:
        prompts = [[rng.randrange(1, vocab) for _ in range(rng.randint(*lengths))] for _ in range(8)]
        padded = bench.hf_generate(model, prompts, 32, batch=len(prompts), logprobs=True)
        single = [bench.hf_generate(model, [p], 32, batch=1, logprobs=True) for p in prompts]
        single_ids, single_lp = [s[0][0] for s in single], [s[1][0] for s in single]
        print(f"prompt lengths {lengths}: transformers padded vs one at a time",
              bench.agreement(padded[0], padded[1], _as_seqs(single_ids, single_lp)))
        for graphs in (False, True):
            for triton_paths in (False, True):
                engine = LLMEngine(model.config, EngineConfig(max_num_seqs=16, max_model_len=2048, dtype="float32",
                                                              cuda_graphs=graphs), device=device)
                engine.load(bench.live_tensors(model), "fp32")
                engine.runner.use_triton = engine.sampler.use_triton = triton_paths
                if graphs and not triton_paths:
                    continue  # graphs are captured with the Triton paths only
                _, seqs = bench.run_native(engine, prompts, SamplingParams(temperature=0, max_new_tokens=32))
                print(f"  native graphs={graphs} triton={triton_paths}: vs single",
                      bench.agreement(single_ids, single_lp, seqs))
                del engine


class _Seq:
    def __init__(self, ids, logprobs):
        self.generated_ids, self.logprobs = ids, logprobs


def _as_seqs(ids, logprobs):
    return [_Seq(i, lp) for i, lp in zip(ids, logprobs)]


if __name__ == "__main__":
    main()
