"""Serving throughput and latency: `vibethinker serve` against `transformers serve`, same model, same load, one run.

Run on a GPU: ``python bench/serve.py [--levels 1,8,64,256]``; on CPU ``OMP_NUM_THREADS=1 python bench/serve.py
--smoke`` (the tiny shape, levels 1 and 4). Writes ``$OUT/serve.json`` when OUT is set, else
``bench/results/serve.json``.

Model: the Qwen2.5-0.5B decoder (24 layers, hidden 896) with random weights, bf16 on GPU, and a BPE tokenizer of
our own with a chat template (vocabulary 8,192: the output layer is smaller than Qwen's, the body is the same);
saved as an HF checkpoint that both servers load. Load: ``c`` concurrent clients, each sending streaming chat
requests one after the other (a short random user message, ``max_tokens`` new tokens, temperature 1; on random weights the
end-of-sequence token comes rarely, for both servers alike) until the level's request count is done. Per level and server: output tokens/s over the
level's wall time, requests/s, and percentiles of the time to first token (first streamed text) and of the
inter-token latency (gap between streamed pieces divided by the tokens they carried). Tokens are counted from
``usage`` (``stream_options.include_usage``) where the server reports it, else by re-tokenising the text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHAPES = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
}
WORDS = "what is the sum of two numbers find all real x such that prove the value of a prime integer".split()


def build_checkpoint(path: Path, shape: str, vocab: int) -> Path:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vibethinker.model import save_pretrained_atomic, train_tokenizer

    if (path / "config.json").exists():
        return path
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(30)) + f" {rng.randint(0, 10 ** 6)}" for _ in range(3000)]
    tokenizer = train_tokenizer(texts, vocab_size=vocab)
    config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=4096, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6},
                         bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         **SHAPES[shape])
    model = Qwen2ForCausalLM(config)
    save_pretrained_atomic(model, tokenizer, path)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], url: str, log: Path, timeout: float = 300) -> subprocess.Popen:
    handle = log.open("w")
    # transformers serve's /v1/models scans the Hub cache and fails (500) where that folder does not exist
    cache = log.parent / "hf_hub_cache"
    cache.mkdir(exist_ok=True)
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                               env=dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_CACHE=str(cache)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0:3]} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"{command[0:3]} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def transformers_serve_command(model: Path, port: int, device: str) -> list[str]:
    """``transformers serve`` with the model preloaded and continuous batching, as this version spells them."""
    cli = [sys.executable, "-m", "transformers.cli.transformers"]
    probe = subprocess.run(cli + ["serve", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        cli = ["transformers"]
        probe = subprocess.run(cli + ["serve", "--help"], capture_output=True, text=True)
    text = probe.stdout + probe.stderr
    command = cli + ["serve", "--port", str(port), "--host", "127.0.0.1"]
    command += ["--force-model", str(model)] if "--force-model" in text else [str(model)]
    if "--continuous-batching" in text:
        command.append("--continuous-batching")
    if "--device" in text:
        command += ["--device", device]
    return command


async def one_request(client: httpx.AsyncClient, url: str, model: str, max_tokens: int, rng: random.Random,
                      tokenizer) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(12))}],
            "max_tokens": max_tokens, "temperature": 1.0, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    first = None
    gaps, text, usage_tokens, last, pieces = [], "", None, None, 0
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return {"ok": False, "status": response.status_code, "body": (await response.aread()).decode()[:300]}
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            payload = json.loads(line[6:])
            if payload.get("usage"):
                usage_tokens = payload["usage"].get("completion_tokens")
            for choice in payload.get("choices", []):
                delta = choice.get("delta", {})
                piece = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
                if piece:
                    now = time.perf_counter()
                    first = first if first is not None else now - started
                    if last is not None:
                        gaps.append(now - last)
                    last, text, pieces = now, text + piece, pieces + 1
    tokens = usage_tokens if usage_tokens else len(tokenizer(text, add_special_tokens=False)["input_ids"])
    per_token = [g * pieces / max(tokens, 1) for g in gaps]  # a piece may hold several tokens
    return {"ok": True, "ttft": first, "itl": per_token, "tokens": tokens, "seconds": time.perf_counter() - started}


async def run_level(url: str, model: str, concurrency: int, requests: int, max_tokens: int, tokenizer,
                    deadline_s: float) -> dict:
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    results, remaining = [], list(range(requests))
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        async def worker(seed: int):
            rng = random.Random(seed)
            while remaining and time.perf_counter() - started < deadline_s:
                remaining.pop()
                results.append(await one_request(client, url, model, max_tokens, rng, tokenizer))

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - started
    ok = [r for r in results if r["ok"]]
    ttft = sorted(r["ttft"] for r in ok if r["ttft"] is not None)
    itl = sorted(g for r in ok for g in r["itl"])
    pct = lambda xs, q: round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2) if xs else None  # noqa: E731
    return {"concurrency": concurrency, "requests": len(results), "failed": len(results) - len(ok),
            "errors": [r for r in results if not r["ok"]][:3], "seconds": round(wall, 2),
            "output_tokens": sum(r["tokens"] for r in ok),
            "tokens_per_s": round(sum(r["tokens"] for r in ok) / wall, 1), "requests_per_s": round(len(ok) / wall, 3),
            "ttft_ms_p50": pct(ttft, 0.5), "ttft_ms_p90": pct(ttft, 0.9), "ttft_ms_p99": pct(ttft, 0.99),
            "itl_ms_p50": pct(itl, 0.5), "itl_ms_p90": pct(itl, 0.9), "itl_ms_p99": pct(itl, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,8,64,256")
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--level-deadline-s", type=float, default=60.0, help="stop a level's new requests after")
    parser.add_argument("--servers", default="vibethinker,transformers")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--work", default="/tmp/bench_serve")
    args = parser.parse_args()
    import torch

    from vibethinker.model import load_tokenizer

    on_gpu = torch.cuda.is_available() and not args.smoke
    shape = "qwen2.5-0.5b" if on_gpu else "tiny"
    if args.smoke:
        args.levels, args.max_tokens = "1,4", 16
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model = build_checkpoint(work / f"model-{shape}", shape, 8192 if on_gpu else 512)
    tokenizer = load_tokenizer(model)
    device = "cuda" if on_gpu else "cpu"
    levels = [int(x) for x in args.levels.split(",")]
    rows = []
    for server in args.servers.split(","):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if server == "vibethinker":
            command = [sys.executable, "-m", "vibethinker.cli", "serve", str(model), "--port", str(port),
                       "--served-model-name", str(model), "--device", device, "--max-num-seqs", "256"]
        else:
            command = transformers_serve_command(model, port, device)
        try:
            process = start(command, url, work / f"{server}.log")
        except RuntimeError as error:
            rows.append({"server": server, "error": str(error)[-2000:]})
            print(json.dumps(rows[-1]), flush=True)
            continue
        try:
            asyncio.run(run_level(url, str(model), 1, 2, 8, tokenizer, 60))  # warm-up (graphs, compilation)
            for concurrency in levels:
                row = asyncio.run(run_level(url, str(model), concurrency, concurrency * args.requests_per_client,
                                            args.max_tokens, tokenizer, args.level_deadline_s))
                rows.append({"server": server, "model_shape": shape, "max_tokens": args.max_tokens, **row})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    gpu = torch.cuda.get_device_name() if on_gpu else "cpu"
    ratios = {}
    for concurrency in levels:
        ours = next((r for r in rows if r.get("server") == "vibethinker" and r.get("concurrency") == concurrency), None)
        theirs = next((r for r in rows if r.get("server") == "transformers" and r.get("concurrency") == concurrency),
                      None)
        if ours and theirs and theirs["tokens_per_s"]:
            ratios[str(concurrency)] = round(ours["tokens_per_s"] / theirs["tokens_per_s"], 2)
    payload = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "gpu": gpu,
               "torch": torch.__version__, "rows": rows, "throughput_ratio_vs_transformers": ratios}
    name = "serve_smoke.json" if args.smoke else "serve.json"
    target = Path(os.environ["OUT"]) / name if os.environ.get("OUT") else ROOT / "bench" / "results" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(target)
    print(f"\n{'server':13} {'conc':>5} {'tok/s':>9} {'TTFT p50':>9} {'ITL p50':>8} {'failed':>6}")
    for row in rows:
        if "error" in row:
            print(f"{row['server']:13} failed to start")
            continue
        print(f"{row['server']:13} {row['concurrency']:>5} {row['tokens_per_s']:>9} {row['ttft_ms_p50']!s:>9} "
              f"{row['itl_ms_p50']!s:>8} {row['failed']:>6}")
    print("throughput ratio (ours / transformers serve):", ratios)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
