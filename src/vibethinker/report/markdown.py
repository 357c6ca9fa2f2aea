"""Build ``<run>/report.md`` and ``<run>/summary.json`` from the manifest and what each stage wrote."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from vibethinker.utils.files import read_json, write_json_atomic, write_text_atomic
from vibethinker.utils.run_log import read_metrics

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
    """pass@1 of every eval stage side by side: overall, then per domain, sub-domain and difficulty."""
    names = list(evals)
    lines = ["## Held-out accuracy (pass@1 = avg@n)", ""]
    rows = [["overall", *[evals[n].get("pass@1") for n in names]]]
    for key, label in BREAKDOWNS:
        groups = sorted({g for n in names for g in evals[n].get(key, {})})
        rows += [[f"{label} {g}", *[evals[n].get(key, {}).get(g, {}).get("pass@1") for n in names]] for g in groups]
    lines += _table(["", *names], rows)
    metric_keys = sorted({k for n in names for k in evals[n] if k.startswith(("pass@", "cons@")) and not k.endswith("_ci")},
                         key=lambda k: (k.split("@")[0], int(k.split("@")[1])))
    metric_keys += ["mean_tokens", "cutoff_ratio", "n_problems", "n_samples"]
    lines += ["## All metrics", ""]
    lines += _table(["metric", *names], [[k, *[evals[n].get(k) for n in names]] for k in metric_keys])
    ci_rows = [[n, *evals[n]["pass@1_ci"]] for n in names if evals[n].get("pass@1_ci")]
    if ci_rows:
        lines += ["95% bootstrap interval of pass@1 over problems:", ""] + _table(["stage", "low", "high"], ci_rows)
    return lines


def plot_training_curve(metrics_path: Path, png_path: Path, key: str = "loss") -> bool:
    rows = [r for r in read_metrics(metrics_path) if key in r]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot([r["step"] for r in rows], [r[key] for r in rows])
    ax.set_xlabel("optimiser step")
    ax.set_ylabel(key)
    ax.set_title(f"{metrics_path.parent.name}: {key}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return True


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
        [n, e.get("kind"), e.get("status"), f"{e.get('seconds', 0):.1f}", _stage_note(e)] for n, e in stages.items()])
    evals = {n: e["summary"] for n, e in stages.items() if e.get("kind") == "eval" and e.get("summary")}
    if evals:
        lines += eval_comparison(evals)
    for name, entry in stages.items():
        metrics = run_dir / name / "metrics.jsonl"
        if entry.get("kind") == "sft" and metrics.exists() and plot_training_curve(metrics, run_dir / f"{name}_loss.png"):
            lines += [f"## Training curve: {name}", "", f"![{name} loss]({name}_loss.png)", ""]
    if evals:
        lines += sample_responses(run_dir / list(evals)[-1] / "samples.jsonl")
    report = write_text_atomic(run_dir / "report.md", "\n".join(lines))
    return report, run_dir / "summary.json"


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


def _stage_note(entry: dict) -> str:
    s = entry.get("summary", {})
    kind = entry.get("kind")
    if kind == "sft" and "steps" in s:
        return f"{s['steps']} steps, {s['samples']} samples, final loss {s['final_loss']:.3f}"
    if kind == "eval" and "pass@1" in s:
        return f"pass@1 {s['pass@1']:.3f} on {s.get('n_problems')} problems"
    if kind == "init_model" and "parameters" in s:
        return f"{s['parameters'] / 1e6:.2f}M parameters, vocab {s['vocab_size']}"
    if kind == "data":
        return ", ".join(f"{k} {v}" for k, v in s.get("sizes", {}).items())
    return ""
