"""Build ``<run>/report.md`` and ``<run>/summary.json`` from the manifest and what each stage wrote."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from vibethinker.report.plots import plot_training_curve
from vibethinker.utils.files import read_json, write_json_atomic, write_text_atomic

BREAKDOWNS = (("by_domain", "domain"), ("by_subdomain", "sub-domain"), ("by_difficulty", "difficulty"))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def eval_comparison(evals: dict[str, dict]) -> list[str]:
    """pass@1 of every eval stage side by side: overall, then per domain, sub-domain and difficulty; with two or
    more stages, a last column with the change from the second-to-last stage to the last (e.g. before/after RL)."""
    names = list(evals)
    lines = ["## Held-out accuracy (pass@1 = avg@n)", ""]
    rows = [["overall", *[evals[n].get("pass@1") for n in names]]]
    for key, label in BREAKDOWNS:
        groups = sorted({g for n in names for g in evals[n].get(key, {})})
        rows += [[f"{label} {g}", *[evals[n].get(key, {}).get(g, {}).get("pass@1") for n in names]] for g in groups]
    header = ["", *names]
    if len(names) >= 2:
        header.append(f"{names[-1]} - {names[-2]}")
        rows = [[*row, _delta(row[-2], row[-1])] for row in rows]
    lines += _table(header, rows)
    metric_keys = sorted({k for n in names for k in evals[n] if k.startswith(("pass@", "cons@")) and not k.endswith("_ci")},
                         key=lambda k: (k.split("@")[0], int(k.split("@")[1])))
    metric_keys += ["mean_tokens", "cutoff_ratio", "n_problems", "n_samples"]
    lines += ["## All metrics", ""]
    lines += _table(["metric", *names], [[k, *[evals[n].get(k) for n in names]] for k in metric_keys])
    ci_rows = [[n, *evals[n]["pass@1_ci"]] for n in names if evals[n].get("pass@1_ci")]
    if ci_rows:
        lines += ["95% bootstrap interval of pass@1 over problems:", ""] + _table(["stage", "low", "high"], ci_rows)
    return lines


def _delta(before, after) -> str:
    if before is None or after is None:
        return "-"
    return f"{after - before:+.3f}"


def write_run_report(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / "manifest.json")
    stages = manifest["stages"]
    summary = {"recipe": manifest["recipe"], "stages": {n: e.get("summary", {}) for n, e in stages.items()}}
    write_json_atomic(run_dir / "summary.json", summary)

    lines = [f"# Run report: {manifest['recipe']}", "",
             f"Written {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {platform.machine()} "
             f"({os.cpu_count()} CPUs), folder `{run_dir}`.", "", "## Stages", ""]
    lines += _table(["stage", "kind", "status", "seconds", "notes"], [
        [n, e.get("kind"), e.get("status"), f"{e.get('seconds', 0):.1f}", stage_note(e)] for n, e in stages.items()])
    evals = {n: e["summary"] for n, e in stages.items() if e.get("kind") == "eval" and e.get("summary")}
    if evals:
        lines += eval_comparison(evals)
    for name, entry in stages.items():
        metrics = run_dir / name / "metrics.jsonl"
        if entry.get("kind") == "sft" and metrics.exists() and plot_training_curve(metrics, run_dir / f"{name}_loss.png"):
            lines += [f"## Training curve: {name}", "", f"![{name} loss]({name}_loss.png)", ""]
        if entry.get("kind") == "rl" and (run_dir / name / "curves.png").exists():
            lines += [f"## RL curves: {name}", "", f"![{name} curves]({name}/curves.png)", ""]
        if entry.get("kind") == "probe_fuse" and (run_dir / name / "probing.md").exists():
            lines += [f"## Diversity probing: {name}", "", (run_dir / name / "probing.md").read_text().strip(), "",
                      f"![{name} probing]({name}/probing.png)", ""]
    for name in evals:
        if (run_dir / name / "clr.json").exists():
            lines += clr_lines(name, read_json(run_dir / name / "clr.json").get("summary", {}))
    if evals:
        lines += sample_responses(run_dir / list(evals)[-1] / "samples.jsonl")
    report = write_text_atomic(run_dir / "report.md", "\n".join(lines))
    return report, run_dir / "summary.json"


def clr_lines(name: str, summary: dict) -> list[str]:
    """CLR (SPEC 4) next to majority vote and plain pass@1 on the same draws, overall and per sub-domain."""
    columns = ("pass@1", "majority_pass@1", "clr_pass@1")
    rows = [["overall", *[summary.get(c) for c in columns]]]
    rows += [[f"sub-domain {g}", *[v.get(c) for c in columns]] for g, v in sorted(summary.get("by_subdomain", {}).items())]
    source = summary.get("config", {}).get("claim_source", "?")
    k = summary.get("config", {}).get("k")
    lines = [f"## CLR vs majority vote: {name}", "",
             f"Claim source: {source}; K = {k} responses per repetition (capped at the samples available), "
             f"M = {summary.get('config', {}).get('m')} claims, R = {summary.get('config', {}).get('repetitions')} "
             f"repetitions; {summary.get('n_problems')} answer-verifiable problems.", ""]
    lines += _table(["", "pass@1", "majority vote", "CLR"], rows)
    lines += [f"- {note}" for note in summary.get("notes", [])] + [""]
    return lines


def sample_responses(samples_path: Path) -> list[str]:
    """One correct and one wrong response per domain of an eval stage, so a reader sees what the numbers mean."""
    if not samples_path.exists():
        return []
    rows = [json.loads(line) for line in samples_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = [f"## Sample responses ({samples_path.parent.name})", ""]
    for domain in sorted({r["domain"] for r in rows}):
        for verdict in (True, False):
            match = next((r for r in rows if r["domain"] == domain and r["correct"] == verdict), None)
            if match:
                lines += [f"**{domain}, {'correct' if verdict else 'wrong'}** (`{match['problem_id']}`):", "",
                          "~~~~text", match["response"].strip(), "~~~~", ""]  # responses hold ``` fences
    return lines


def stage_note(entry: dict) -> str:
    s = entry.get("summary", {})
    kind = entry.get("kind")
    if kind == "sft" and "steps" in s:
        kept = s.get("curriculum")
        curriculum = f"; curriculum kept {kept['problems_kept']}/{kept['problems_in']} problems" if kept else ""
        return f"{s['steps']} steps, {s['samples']} samples, final loss {s['final_loss']:.3f}{curriculum}"
    if kind == "probe_fuse" and "specialists" in s:
        picks = ", ".join(f"{sub}: step {v['step']}" for sub, v in s["specialists"].items())
        return f"{s['checkpoints_probed']} checkpoints, pass@{s['k']} specialists {picks}"
    if kind == "distill" and "kept" in s:
        return f"{s['kept']} of {s['harvested']} verified traces kept for {s['problems']} problems"
    if kind == "eval" and "pass@1" in s:
        return f"pass@1 {s['pass@1']:.3f} on {s.get('n_problems')} problems"
    if kind == "rl" and "steps" in s:
        kept = f", {s['filtering']['kept']} prompts kept by filtering" if s.get("filtering") else ""
        return (f"{s['steps']} steps x {s['rollouts_per_step']} rollouts, reward {s['first_reward_mean']:.3f} -> "
                f"{s['last_reward_mean']:.3f}{kept}")
    if kind == "init_model" and "parameters" in s:
        return f"{s['parameters'] / 1e6:.2f}M parameters, vocab {s['vocab_size']}"
    if kind == "data":
        return ", ".join(f"{k} {v}" for k, v in s.get("sizes", {}).items())
    return ""
