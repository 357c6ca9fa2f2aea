"""Build ``<run>/report.md`` and ``<run>/summary.json`` from the manifest and what each stage wrote."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from vibethinker.report.effects import effects_lines, stage_effects
from vibethinker.stages import StageKind, stage_kinds
from vibethinker.utils.files import read_json, read_jsonl, write_json_atomic, write_text_atomic

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
    effects = stage_effects(run_dir, stages)
    summary = {"recipe": manifest["recipe"], "stages": {n: e.get("summary", {}) for n, e in stages.items()},
               "effects": effects}
    write_json_atomic(run_dir / "summary.json", summary)

    lines = [f"# Run report: {manifest['recipe']}", "",
             f"Written {datetime.now(timezone.utc).isoformat(timespec='seconds')} on {platform.machine()} "
             f"({os.cpu_count()} CPUs), folder `{run_dir}`.", "", "## Stages", ""]
    lines += _table(["stage", "kind", "status", "seconds", "notes"], [
        [n, e.get("kind"), e.get("status"), f"{e.get('seconds', 0):.1f}", stage_note(e)] for n, e in stages.items()])
    evals = {n: e["summary"] for n, e in stages.items() if _kind(e) and _kind(e).evaluates and e.get("summary")}
    if evals:
        lines += eval_comparison(evals)
    if effects["evals"] or effects["clr"] or effects["fusion"]:
        lines += effects_lines(effects)
    for name, entry in stages.items():
        kind = _kind(entry)
        if kind and kind.markdown:
            lines += kind.markdown(run_dir, name, entry)
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
    rows = [row for _, row in read_jsonl(samples_path)]
    lines = [f"## Sample responses ({samples_path.parent.name})", ""]
    for domain in sorted({r["domain"] for r in rows}):
        for verdict in (True, False):
            match = next((r for r in rows if r["domain"] == domain and r["correct"] == verdict), None)
            if match:
                lines += [f"**{domain}, {'correct' if verdict else 'wrong'}** (`{match['problem_id']}`):", "",
                          "~~~~text", match["response"].strip(), "~~~~", ""]  # responses hold ``` fences
    return lines


def _kind(entry: dict) -> StageKind | None:
    """The registry entry of a manifest entry's kind (None for a kind this version does not know)."""
    return stage_kinds().get(entry.get("kind"))


def stage_note(entry: dict) -> str:
    """The stage table's note: the kind's own summary line."""
    kind = _kind(entry)
    return kind.note(entry.get("summary", {})) if kind else ""
