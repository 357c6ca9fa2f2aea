"""Launch shapes of the one-kernel decode attention (RoPE + K/V write + paged attention, ``rope_store_decode_triton``)
on the decode batch of bench/rl_vs_trl.py: 128 sequences, 14 query / 2 KV heads of 64, bf16, 16-token cache blocks
scattered over the cache, contexts spread evenly over 16-271 tokens (a decode step in the middle of a rollout).

Tile widths x warps at Triton's default pipelining, then pipeline depths for the three fastest. Each
shape runs 24 launches, one per layer with its own cache (so, as in the model, a layer's K/V are not in L2),
captured in a CUDA graph and replayed; the figure is microseconds per launch (median of 5 timings of 20 replays).
Every shape's output is checked against the default shape's (:data:`DECODE_TILE`). Prints a table and the fastest
shape in the form ``--decode-tile BLOCK_N,WARPS,STAGES`` of bench/rl_vs_trl.py; writes
bench/results/decode_attention_tiles.json. GPU only: ``python bench/decode_attention_tiles.py``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import torch

from vibethinker.generate.native.layers.paged_decode_triton import DECODE_TILE, rope_store_decode_triton
from vibethinker.utils.files import write_json_atomic

BATCH, HEADS, KV_HEADS, DIM, BLOCK, LAYERS = 128, 14, 2, 64, 16, 24
DEFAULT_OUT = Path(__file__).parent / "results" / "decode_attention_tiles.json"


def parse_tile(text: str) -> dict:
    """``"64,4,3"`` (BLOCK_N, num_warps, num_stages; stages 0 = Triton's default) -> a DECODE_TILE dict."""
    block_n, warps, stages = (int(x) for x in text.split(","))
    return {"BLOCK_N": block_n, "num_warps": warps, "num_stages": stages or None}


def tile_text(tile: dict) -> str:
    return f"{tile['BLOCK_N']},{tile['num_warps']},{tile['num_stages'] or 0}"


def decode_inputs(device: torch.device) -> dict:
    generator = torch.Generator().manual_seed(0)
    positions = torch.linspace(16, 271, BATCH).long()  # the new token's position = its cached context length
    per_seq = -(-(int(positions.max()) + 1) // BLOCK)
    num_blocks = BATCH * per_seq
    table = torch.randperm(num_blocks, generator=generator).view(BATCH, per_seq).int()
    slots = table[torch.arange(BATCH), positions // BLOCK].long() * BLOCK + positions % BLOCK
    angles = torch.arange(2048).float()[:, None] * (1e6 ** (-torch.arange(0, DIM, 2).float() / DIM))[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    qkv = torch.randn(BATCH, (HEADS + 2 * KV_HEADS) * DIM, generator=generator).bfloat16()
    caches = torch.randn(LAYERS, 2, num_blocks * BLOCK, KV_HEADS, DIM, generator=generator).bfloat16()
    on = {"positions": positions, "slots": slots, "table": table, "cos": angles.cos(), "sin": angles.sin(),
          "qkv": qkv, "caches": caches, "rows": torch.arange(BATCH)}
    return {k: v.to(device) for k, v in on.items()}


def run_layers(inputs: dict, tile: dict) -> list[torch.Tensor]:
    qkv = inputs["qkv"]
    q = qkv[:, :HEADS * DIM].view(BATCH, HEADS, DIM)
    k = qkv[:, HEADS * DIM:(HEADS + KV_HEADS) * DIM].view(BATCH, KV_HEADS, DIM)
    v = qkv[:, (HEADS + KV_HEADS) * DIM:].view(BATCH, KV_HEADS, DIM)
    return [rope_store_decode_triton(q, k, v, inputs["cos"], inputs["sin"], inputs["positions"], inputs["slots"],
                                     cache[0], cache[1], inputs["table"], inputs["rows"], DIM ** -0.5, BLOCK, tile)
            for cache in inputs["caches"]]


def time_tile(inputs: dict, tile: dict, replays: int = 20) -> tuple[float, torch.Tensor]:
    outputs = run_layers(inputs, tile)  # compiles; the K/V writes are idempotent
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run_layers(inputs, tile)
    timings = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        torch.cuda.synchronize()
        timings.append(start.elapsed_time(end) * 1e3 / (replays * LAYERS))
    return statistics.median(timings), outputs[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--best-to", type=Path, default=None, help="Also write the fastest shape's --decode-tile text.")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("decode_attention_tiles.py needs a CUDA GPU")
    inputs = decode_inputs(torch.device("cuda"))
    default_us, reference = time_tile(inputs, DECODE_TILE)
    rows = []

    def measure(tile: dict) -> None:
        try:
            micros, out = time_tile(inputs, tile)
        except Exception as error:  # a shape the compiler refuses (registers, shared memory) is skipped
            print(f"{tile_text(tile)}: failed ({type(error).__name__}: {str(error)[:80]})")
            return
        worst = (out.float() - reference.float()).abs().max().item()
        rows.append({"tile": tile_text(tile), "us_per_launch": micros, "max_abs_diff_vs_default": worst})
        print(f"{tile_text(tile):>8}: {micros:6.2f} us/launch, max |diff| vs default {worst:.4f}", flush=True)

    # tile width x warps at Triton's default pipelining, then pipeline depths for the three fastest of those
    for block_n, warps in itertools.product((16, 32, 64, 128), (1, 2, 4, 8)):
        measure(parse_tile(f"{block_n},{warps},0"))
    for row in sorted(rows, key=lambda r: r["us_per_launch"])[:3]:
        block_n, warps, _ = row["tile"].split(",")
        for stages in (1, 2, 3, 4):
            measure(parse_tile(f"{block_n},{warps},{stages}"))
    agreeing = [r for r in rows if r["max_abs_diff_vs_default"] < 0.05]
    best = min(agreeing, key=lambda r: r["us_per_launch"])
    print(f"default {tile_text(DECODE_TILE)}: {default_us:.2f} us/launch; fastest {best['tile']}: "
          f"{best['us_per_launch']:.2f} us/launch ({default_us / best['us_per_launch']:.2f}x)")
    write_json_atomic(args.out, {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                                 "shape": dict(batch=BATCH, heads=HEADS, kv_heads=KV_HEADS, head_dim=DIM,
                                               block_size=BLOCK, layers=LAYERS, contexts="16-271"),
                                 "default": {"tile": tile_text(DECODE_TILE), "us_per_launch": default_us},
                                 "fastest": best, "tiles": rows})
    if args.best_to:
        args.best_to.write_text(best["tile"] if best["us_per_launch"] < 0.97 * default_us else tile_text(DECODE_TILE))


if __name__ == "__main__":
    main()
