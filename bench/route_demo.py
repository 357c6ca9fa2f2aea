"""The hybrid router demonstrated with two real models on CPU: route-eval on a mixed set of verifiable problems and
knowledge questions, then the live front (two `vibethinker serve` processes, the openai client) on the same
questions.

    python bench/route_demo.py --run RUN_FOLDER [--out bench/results/route_demo]

Models, both real checkpoints trained by our code, no mocks:

* local: the reasoner of a `vibethinker run` (the embedded default, ``RUN/rl/model``): it solves part of the
  synthetic math suite and has never seen the knowledge questions;
* upstream: the same reasoner fine-tuned further (our SFT) on 40 world facts (capitals), as multiple-choice questions
  with a short reasoning trace, mixed with a replay of 300 math training traces: a differently trained checkpoint
  that *knows* what the local one cannot (and, as measured, forgets some of its arithmetic).

The mixed set: the run's held-out math problems (``RUN/data/test.jsonl``) and the 40 knowledge questions, the very
questions the upstream was fine-tuned on (knowledge is recall; the local model never saw them). Both models are evaluated by
the evaluation protocol (``eval/runner.py``; local n = 8 samples, upstream n = 4), then ``route-eval`` replays the
routing. The live part serves the upstream on one port and the routing front (local model, ``--upstream``) on
another, sends every question once (temperature 1, k = 8, majority >= 0.6, the domain gate on) and grades what comes
back. Writes ``OUT/route_eval.json`` / ``.html``, ``OUT/demo.json`` (the figures, the live front's counts).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vibethinker.data.records import Problem, load_problems  # noqa: E402

CAPITALS = {
    "France": "Paris", "Peru": "Lima", "Japan": "Tokyo", "Kenya": "Nairobi", "Canada": "Ottawa", "Egypt": "Cairo",
    "Norway": "Oslo", "Chile": "Santiago", "Spain": "Madrid", "Italy": "Rome", "Greece": "Athens", "Cuba": "Havana",
    "Ireland": "Dublin", "Poland": "Warsaw", "Austria": "Vienna", "Portugal": "Lisbon", "Hungary": "Budapest",
    "Sweden": "Stockholm", "Finland": "Helsinki", "Denmark": "Copenhagen", "Russia": "Moscow", "China": "Beijing",
    "India": "New Delhi", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Iran": "Tehran", "Iraq": "Baghdad",
    "Turkey": "Ankara", "Ghana": "Accra", "Nigeria": "Abuja", "Ethiopia": "Addis Ababa", "Morocco": "Rabat",
    "Argentina": "Buenos Aires", "Colombia": "Bogota", "Venezuela": "Caracas", "Mexico": "Mexico City",
    "Australia": "Canberra", "Germany": "Berlin", "Belgium": "Brussels", "Switzerland": "Bern",
}


def knowledge_problems(seed: int, copies: int = 1) -> list[Problem]:
    """Multiple-choice capital questions; ``copies`` orderings of the choices per fact (seeded)."""
    rng, cities, problems = random.Random(seed), sorted(CAPITALS.values()), []
    for country, capital in sorted(CAPITALS.items()):
        for copy in range(copies):
            choices = [capital] + rng.sample([c for c in cities if c != capital], 3)
            rng.shuffle(choices)
            letter = "ABCD"[choices.index(capital)]
            trace = f"<think>The capital of {country} is {capital}, choice {letter}.</think> \\boxed{{{letter}}}"
            problems.append(Problem(id=f"capital-{country.lower().replace(' ', '_')}-{seed}-{copy}", domain="stem",
                                    subdomain="knowledge", difficulty=1, source="route_demo",
                                    problem=f"What is the capital of {country}?", choices=choices, answer=letter,
                                    traces=[trace]))
    return problems


def train_upstream(local: Path, run: Path, out: Path, epochs: float) -> Path:
    from vibethinker.sft.config import SFTConfig
    from vibethinker.sft.trainer import train_sft

    if (out / "model" / "config.json").exists():
        return out / "model"
    # Measured: 3 epochs at 5e-4 on 6 orderings of the choices learnt the trace's format but not the capitals
    # (knowledge accuracy 0.21, chance 0.25); 12 epochs at 1e-3 learnt the capitals but not to find the letter in
    # a new ordering (0.35): a 1.3M-parameter model recalls, it does not read the options. So the upstream learns
    # the very questions of the mixed set: knowledge it has memorised and the local model has never seen.
    replay = [p for p in load_problems(run / "data" / "train.jsonl") if p.traces][:300]
    facts = [p.model_copy(update={"id": f"{p.id}-r{r}"}) for r in range(8) for p in knowledge_problems(seed=7)]
    config = SFTConfig(learning_rate=1e-3, min_learning_rate=5e-5, warmup_ratio=0.05, epochs=epochs, seq_len=512,
                       packing=False, rows_per_micro_batch=16, device="cpu", seed=0)
    train_sft(local, facts + replay, config, out)
    return out / "model"


def evaluate_both(local: Path, upstream: Path, problems: list[Problem], out: Path, n_local: int, n_up: int) -> None:
    from vibethinker.eval.config import EvalConfig
    from vibethinker.eval.runner import evaluate

    for name, model, n in (("eval_local", local, n_local), ("eval_upstream", upstream, n_up)):
        if not (out / name / "samples.jsonl").exists():
            config = EvalConfig.model_validate({"sampling": {"n": n, "max_new_tokens": 256}, "progress": False})
            evaluate(str(model), problems, config, out / name)


def _serve(model: Path, port: int, *options: str):
    import os
    import subprocess

    import httpx

    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "vibethinker.cli", "serve", str(model), "--port", str(port),
                                "--served-model-name", "m", "--device", "cpu", *options], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"vibethinker serve {model} did not come up on port {port}")


def live_front(local: Path, upstream: Path, problems: list[Problem], k: int, threshold: float) -> dict:
    """Every question through the real front; accuracy and where each was answered."""
    import socket

    import openai

    from vibethinker.prompts import user_message
    from vibethinker.verify import score

    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    up = _serve(upstream, ports[0])
    front = _serve(local, ports[1], "--upstream", f"http://127.0.0.1:{ports[0]}/v1", "--upstream-model", "m",
                   "--route-k", str(k), "--route-threshold", str(threshold))
    counts: dict[str, dict] = {}
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{ports[1]}/v1", api_key="unused", timeout=300)
        for i, problem in enumerate(problems):
            reply = client.chat.completions.create(model="m", messages=[{"role": "user",
                                                                         "content": user_message(problem)}],
                                                   max_tokens=256, temperature=1.0, top_p=0.95, seed=i)
            message = reply.choices[0].message.model_dump()
            text = f"<think>{message.get('reasoning_content') or ''}</think>{message.get('content') or ''}"
            route = reply.model_dump()["vibethinker"]["route"]
            key = f"{problem.subdomain if problem.subdomain == 'knowledge' else 'math'}/{route['answered_by']}"
            entry = counts.setdefault(key, {"requests": 0, "correct": 0, "local_tokens": 0, "upstream_tokens": 0})
            entry["requests"] += 1
            entry["correct"] += int(score(problem, text).correct)
            entry["local_tokens"] += route["local_tokens"]
            entry["upstream_tokens"] += route["upstream_tokens"]
    finally:
        for process in (front, up):
            process.terminate()
            process.wait(30)
    total = sum(e["requests"] for e in counts.values())
    return {"by_route": counts, "accuracy": sum(e["correct"] for e in counts.values()) / total,
            "escalated_share": sum(e["requests"] for k_, e in counts.items() if k_.endswith("/upstream")) / total,
            "k": k, "threshold": threshold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="A finished `vibethinker run` folder (embedded default).")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "route_demo"))
    parser.add_argument("--math", type=int, default=120, help="Held-out math problems in the mixed set.")
    parser.add_argument("--n-local", type=int, default=8)
    parser.add_argument("--n-upstream", type=int, default=4)
    parser.add_argument("--upstream-epochs", type=float, default=12)
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    local = run / "rl" / "model"
    started = time.time()
    upstream = train_upstream(local, run, out / "upstream_sft", args.upstream_epochs)
    math = load_problems(run / "data" / "test.jsonl")[:args.math]
    mixed = math + knowledge_problems(seed=7)
    evaluate_both(local, upstream, mixed, out, args.n_local, args.n_upstream)

    from vibethinker.route.offline import route_eval
    from vibethinker.route.report import render
    from vibethinker.utils.files import write_json_atomic, write_text_atomic

    questions = {p.id: p.problem for p in mixed}
    result = route_eval(out / "eval_local", out / "eval_upstream", None, 1000, 0, questions)
    write_json_atomic(out / "route_eval.json", result)
    write_text_atomic(out / "route_eval.html", render(result))
    summary = {"date": time.strftime("%Y-%m-%d"), "seconds": round(time.time() - started, 1),
               "problems": {"math": len(math), "knowledge": len(mixed) - len(math)},
               "apgr": {s: f["apgr"] for s, f in result["signals"].items()},
               "intervals": result["intervals"], "clr_beats_majority": result["clr_beats_majority"],
               "local_accuracy": result["signals"]["majority"]["local_accuracy"],
               "upstream_accuracy": result["signals"]["majority"]["upstream_accuracy"],
               "share_for_80%_gap": {s: f["share_for_80%_gap"] for s, f in result["signals"].items()}}
    summary["live_front"] = live_front(local, upstream, mixed, k=8, threshold=0.6)
    write_json_atomic(out / "demo.json", summary)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
