"""SmolLM2-135M-Instruct + RL on word_arithmetic: MGPO against GRPO (``mgpo_lambda`` 2 vs 0), side by side on one GPU.

Runs the ``rl`` stage of ``recipes/smollm2-arith.yaml`` once per variant ``METHOD:LR:SEED[:START]`` (e.g.
``mgpo:5e-6:0``, or ``grpo:1e-5:0:base`` to start from the imported model instead of the recipe's short SFT),
all variants at the same time as separate processes (a 135M model leaves the H200 mostly idle, so concurrent runs
cost little; each gets a fixed KV cache through ``VIBETHINKER_KV_CACHE_GIB``). Every variant starts from the same
imported checkpoint and trains on the same prompts; the RL seed sets the prompt order and the rollouts, so
``mgpo:LR:S`` and ``grpo:LR:S`` see the same prompts in the same order. The phase validates on the held-out split
every ``eval_every`` steps (step 0 = the base model), which gives accuracy against steps.

A deadline stops every run still going (its validation rows so far are kept); ``--append`` merges new variants into
an existing results file (e.g. a second seed in a later call). Outputs: ``--out`` (JSON: per-variant validation
rows, per-step metrics, wall times) and ``--plot`` (held-out pass@1 and mean tokens against steps)::

    python bench/smollm2_rl.py --work /tmp/smolrl --variants mgpo:5e-6:0,grpo:5e-6:0 --deadline-s 480
    python bench/smollm2_rl.py --work /tmp/smolrl --report-only     # rebuild JSON + plot from the work folder
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import yaml

from vibethinker.utils.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "src" / "vibethinker" / "recipes" / "smollm2-arith.yaml"
CLI = [sys.executable, "-c", "from vibethinker.cli import app; app()"]
METHODS = {"mgpo": 2.0, "grpo": 0.0}
STARTS = ("sft", "base")  # the rl stage starts from the recipe's short SFT, or straight from the imported model
SHARED_STAGES = ("data", "base", "sft")


def parse_variant(text: str) -> dict:
    try:
        parts = text.split(":")
        method, lr, seed, start = parts + ["sft"] if len(parts) == 3 else parts
        if start not in STARTS:
            raise KeyError(start)
        return {"name": f"{method}-{start}-lr{lr}-s{seed}", "method": method, "mgpo_lambda": METHODS[method],
                "learning_rate": float(lr), "seed": int(seed), "start": start}
    except (ValueError, KeyError):
        raise SystemExit(f"--variants: expected METHOD:LR:SEED[:START] with METHOD in {sorted(METHODS)} and START "
                         f"in {STARTS}, got {text!r}")


def shrink_for_smoke(recipe: dict) -> dict:
    """A CPU-sized copy of the recipe: a handful of problems, tokens and steps, to check the plumbing."""
    sizes = {"data": {"suite": {**next(s for s in recipe["stages"] if s["name"] == "data")["suite"],
                                "train_per_subdomain": 200, "test_per_subdomain": 5}},
             "sft": {"max_problems": 8, "max_steps": 2, "seq_len": 256, "rows_per_micro_batch": 2},
             "rl": {"max_steps": 2, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 16, "eval_every": 1,
                    "eval_samples": 2, "micro_batch_size": 4, "generation_batch_size": 8}}
    for stage in recipe["stages"]:
        stage.update(sizes.get(stage["name"], {}))
    return recipe


def prepare_shared(work: Path, recipe: dict) -> Path:
    """Data + imported base model once, in ``work/shared``; every variant links to them."""
    shared = work / "shared"
    work.mkdir(parents=True, exist_ok=True)
    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    for stage in SHARED_STAGES:
        subprocess.run([*CLI, "run", str(recipe_path), "--out", str(shared), "--stage", stage], check=True)
    return shared


def variant_recipe(recipe: dict, variant: dict, max_steps: int | None) -> dict:
    out = json.loads(json.dumps(recipe))
    out["name"] = f"{recipe['name']}-{variant['name']}"
    rl = next(stage for stage in out["stages"] if stage["name"] == "rl")
    rl.update(mgpo_lambda=variant["mgpo_lambda"], learning_rate=variant["learning_rate"], seed=variant["seed"],
              model=f"@{variant['start']}")
    if max_steps:
        rl["max_steps"] = max_steps
    return out


def launch(work: Path, shared: Path, recipe: dict, variant: dict, max_steps: int | None,
           kv_gib: float) -> subprocess.Popen:
    run_dir = work / variant["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage in SHARED_STAGES:
        link = run_dir / stage
        if not link.exists():
            link.symlink_to(shared / stage)
    recipe_path = run_dir / "variant.yaml"
    recipe_path.write_text(yaml.safe_dump(variant_recipe(recipe, variant, max_steps), sort_keys=False))
    env = {**os.environ, "VIBETHINKER_KV_CACHE_GIB": str(kv_gib), "PYTHONUNBUFFERED": "1"}
    log = (run_dir / "run.log").open("w")
    return subprocess.Popen([*CLI, "run", str(recipe_path), "--out", str(run_dir), "--stage", "rl"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, str]:
    status = {}
    while procs:
        for name, proc in list(procs.items()):
            if proc.poll() is not None:
                status[name] = "finished" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
                del procs[name]
        if procs and time.time() > deadline:
            for name, proc in procs.items():
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
                status[name] = "stopped at the deadline"
            break
        time.sleep(2)
    return status


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a torn last line of a stopped run
    return rows


def collect(work: Path, variant: dict, status: str) -> dict:
    stage_dir = work / variant["name"] / "rl"
    validation = {row["step"]: row for row in read_jsonl(stage_dir / "validation.jsonl")}
    keep = ("reward_mean", "accuracy", "response_length_mean", "truncated_share", "entropy", "mgpo_weight_mean",
            "step_seconds", "generation_seconds", "training_seconds")
    metrics = [{"step": r["step"], **{k: r[k] for k in keep if k in r}} for r in read_jsonl(stage_dir / "metrics.jsonl")
               if "reward_mean" in r]
    rows = [validation[s] for s in sorted(validation)]
    start = rows[0].get("time") if rows else None
    for row in rows:
        row["elapsed_s"] = round(row["time"] - start, 1) if start and "time" in row else None
    return {**variant, "status": status, "validation": rows, "metrics": metrics}


def summarise(result: dict) -> dict:
    rows = result["validation"]
    if not rows:
        return {"steps": 0}
    first, last = rows[0], rows[-1]
    n_key = next((k for k in first if k.startswith("heldout/pass@") and k != "heldout/pass@1"), None)
    return {"steps": last["step"], "pass1_before": first["heldout/pass@1"], "pass1_after": last["heldout/pass@1"],
            "passn_key": n_key, "passn_before": first.get(n_key), "passn_after": last.get(n_key),
            "tokens_before": first["heldout/mean_tokens"], "tokens_after": last["heldout/mean_tokens"],
            "best_pass1": max(r["heldout/pass@1"] for r in rows), "elapsed_s": last.get("elapsed_s")}


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = {}
    for name, result in sorted(results.items()):
        rows = result["validation"]
        if not rows:
            continue
        key = (result.get("start"), result["learning_rate"], result["seed"])
        colour = colours.setdefault(key, f"C{len(colours)}")
        style = "-" if result["method"] == "mgpo" else "--"
        steps = [r["step"] for r in rows]
        label = (f"{result['method'].upper()} from {result.get('start', 'sft')}, lr {result['learning_rate']:g}, "
                 f"seed {result['seed']}")
        axes[0].plot(steps, [r["heldout/pass@1"] for r in rows], style, color=colour, marker="o", ms=3, label=label)
        axes[1].plot(steps, [r["heldout/mean_tokens"] for r in rows], style, color=colour, marker="o", ms=3)
    axes[0].set(xlabel="RL step", ylabel="held-out pass@1 (avg@8)", title="SmolLM2-135M, word_arithmetic")
    axes[1].set(xlabel="RL step", ylabel="mean response tokens", title="response length")
    axes[0].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def environment() -> dict:
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"date": date.today().isoformat(), "gpu": gpu, "torch": torch.__version__,
            "transformers": transformers.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="Folder for the shared data/model and the runs.")
    parser.add_argument("--variants", default="mgpo:5e-6:0,grpo:5e-6:0", help=(
        "METHOD:LR:SEED[:START], comma-separated; START is sft (default) or base."))
    parser.add_argument("--max-steps", type=int, default=None, help="Override the recipe's RL max_steps.")
    parser.add_argument("--deadline-s", type=float, default=480, help="Stop runs still going after this long.")
    parser.add_argument("--kv-cache-gib", type=float, default=8.0, help="Native KV cache per run.")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "smollm2_rl.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "results" / "smollm2_rl.png")
    parser.add_argument("--append", action="store_true", help="Merge into an existing --out file.")
    parser.add_argument("--report-only", action="store_true", help="Only collect the work folder's runs.")
    parser.add_argument("--smoke", action="store_true", help="A CPU-sized recipe, to check the plumbing.")
    args = parser.parse_args()

    recipe = yaml.safe_load(RECIPE.read_text())
    if args.smoke:
        recipe = shrink_for_smoke(recipe)
    variants = [parse_variant(v) for v in args.variants.split(",") if v]
    started = time.time()
    if args.report_only:
        status = {v["name"]: "collected" for v in variants}
    else:
        shared = prepare_shared(args.work, recipe)
        procs = {v["name"]: launch(args.work, shared, recipe, v, args.max_steps, args.kv_cache_gib) for v in variants}
        status = wait_all(procs, started + args.deadline_s)
    results = json.loads(args.out.read_text())["variants"] if args.append and args.out.exists() else {}
    for variant in variants:
        results[variant["name"]] = collect(args.work, variant, status[variant["name"]])
        results[variant["name"]]["summary"] = summarise(results[variant["name"]])
    write_json_atomic(args.out, {"bench": "smollm2_rl", "recipe": str(RECIPE.relative_to(ROOT)), **environment(),
                          "command": " ".join(sys.argv), "variants": results})
    plot(results, args.plot)
    print(f"{'variant':<24} {'status':<26} {'steps':>5} {'pass@1':>15} {'pass@8':>15} {'tokens':>11} {'s':>6}")
    for name, result in sorted(results.items()):
        s = result["summary"]
        if not s.get("steps") and not result["validation"]:
            print(f"{name:<24} {result['status']:<26} no validation rows")
            continue
        print(f"{name:<24} {result['status']:<26} {s['steps']:>5} {s['pass1_before']:.3f} -> {s['pass1_after']:.3f}"
              f" {s['passn_before'] or 0:.3f} -> {s['passn_after'] or 0:.3f} {s['tokens_before']:>4.0f} -> "
              f"{s['tokens_after']:<4.0f} {s['elapsed_s'] or 0:>6.0f}")


if __name__ == "__main__":
    main()
