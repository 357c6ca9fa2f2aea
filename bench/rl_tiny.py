"""MGPO on the tiny default model: held-out pass@1 of the RL checkpoints against the SFT starting point.

Not a speed benchmark: it measures what an RL phase does to the 1.3M-parameter model of `recipes/tiny.yaml`, so the
recipe's RL settings (learning rate, steps, domains) rest on numbers. Needs a finished default run (the SFT model and
the data). Writes ``bench/results/rl_tiny-<tag>.json``.

    OMP_NUM_THREADS=2 python bench/rl_tiny.py --run runs/tiny --model fuse --lr 1e-4 --steps 50 --domains math
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vibethinker.data.records import load_problems
from vibethinker.eval.runner import EvalConfig, evaluate
from vibethinker.rl.config import RLConfig
from vibethinker.rl.trainer import train_rl
from vibethinker.utils.files import write_json_atomic
from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers


def held_out(model: Path, test, out: Path) -> dict:
    summary = evaluate(str(model), test, EvalConfig(n=4, k=[1, 4], max_new_tokens=256, seed=0, progress=False), out)
    return {"pass@1": summary["pass@1"], "pass@4": summary["pass@4"],
            "by_subdomain": {k: v["pass@1"] for k, v in summary["by_subdomain"].items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/tiny"), help="a finished default run folder")
    parser.add_argument("--model", default="fuse", help="stage whose model/ starts RL (fuse, or sft in old runs)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--prompts-per-step", type=int, default=16)
    parser.add_argument("--domains", default="math", help="comma-separated domains, or 'all'")
    parser.add_argument("--save-every", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/rl_tiny"))
    args = parser.parse_args()
    configure_torch_threads()
    quiet_transformers()

    start = args.run / args.model / "model"
    problems = load_problems(args.run / "data" / "train.jsonl")
    if args.domains != "all":
        problems = [p for p in problems if p.domain in args.domains.split(",")]
    test = load_problems(args.run / "data" / "test.jsonl")
    tag = f"lr{args.lr:g}-steps{args.steps}-{args.domains.replace(',', '+')}"
    out = args.out / tag
    config = RLConfig(learning_rate=args.lr, max_steps=args.steps, prompts_per_step=args.prompts_per_step,
                      group_size=8, max_new_tokens=256, micro_batch_size=32, generation_batch_size=128,
                      save_every=args.save_every, seed=0)
    started = time.time()
    train_rl(start, problems, config, out)
    rl_seconds = time.time() - started
    rows = {"start": held_out(start, test, out / "eval-start")}
    for checkpoint in sorted((out / "checkpoints").glob("step-*")):
        rows[checkpoint.name] = held_out(checkpoint, test, out / f"eval-{checkpoint.name}")
    rows["final"] = held_out(out / "model", test, out / "eval-final")
    for name, row in rows.items():
        print(f"{name:>12}  pass@1 {row['pass@1']:.3f}  pass@4 {row['pass@4']:.3f}  "
              + "  ".join(f"{k} {v:.3f}" for k, v in row["by_subdomain"].items()))
    result = {"date": time.strftime("%Y-%m-%d"), "config": config.model_dump(mode="json"), "domains": args.domains,
              "rl_seconds": rl_seconds, "held_out": rows}
    write_json_atomic(Path(__file__).parent / "results" / f"rl_tiny-{tag}.json", result)


if __name__ == "__main__":
    main()
