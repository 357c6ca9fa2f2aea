"""``<run>/report.html``: one self-contained page describing a run folder, readable offline.

Contract: a single file with inline CSS, figures embedded as base64 ``data:image/png`` URIs, no script and no
external request (no CDN, no web font). Every string taken from the run (stage names, responses, paths, answers)
is HTML-escaped. Sections appear only when their inputs exist:

- header (recipe, run dates, machine) and the stages table (kind, status, seconds, notes);
- held-out accuracy of every eval stage (overall, per domain, sub-domain, difficulty) with the change from each
  eval stage to the next, all logged metrics, a per-domain bar chart;
- what each stage did: the change in pass@1 between consecutive eval stages against the interval, with its paired
  bootstrap interval, CLR vs majority vote and fusion vs the last checkpoint (``effects.py``);
- pass@k curves computed from each eval stage's ``samples.jsonl`` (unbiased pass@k, see ``figures.py``) and
  response-length histograms (correct vs wrong stacked);
- CLR vs majority vote vs pass@1 for an eval folder holding ``clr.json`` (keys ``pass@1``, ``majority_pass@1``,
  ``clr_pass@1``, optional ``by_domain`` / ``by_subdomain`` with the same keys, ``claim_source``, ``extra_tokens``);
- training curves of every ``metrics.jsonl`` under a stage folder; the probing table, plot and fusion weights of a
  ``probe_fuse`` stage; the harvest and selection counts of a ``distill`` stage;
- one correct and one wrong response per domain of the last eval stage.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from vibethinker.report import figures
from vibethinker.report.blocks import Markup, delta_cell, escape, image, section, table
from vibethinker.report.effects import before_after, fusion_comparison, stage_effects
from vibethinker.report.markdown import BREAKDOWNS, stage_note
from vibethinker.stages import stage_kinds
from vibethinker.utils.files import read_json, write_text_atomic

CSS = """
body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 0;
       background: #f6f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid #d0d7de; } h3 { font-size: 15px; margin: 20px 0 6px; }
.meta { color: #57606a; margin: 2px 0; } .meta b { color: #1f2328; font-weight: 600; }
nav { font-size: 13px; margin: 8px 0 0; } nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
.scroll { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; } tr:nth-child(even) td { background: #fbfcfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pos { color: #1a7f37; } td.neg { color: #cf222e; } td.best { font-weight: 700; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; margin: 6px 0; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; max-height: 360px;
      overflow: auto; white-space: pre-wrap; word-break: break-word; font: 12px/1.45 ui-monospace, Menlo, monospace; }
.note { color: #57606a; font-size: 13px; } h3 .note { font-weight: normal; } .tag { font-weight: 600; } .tag.ok { color: #1a7f37; }
.tag.bad { color: #cf222e; }
"""


def header_html(run_dir: Path, manifest: dict) -> str:
    stages = manifest.get("stages", {})
    started = min((e["started_at"] for e in stages.values() if e.get("started_at")), default="–")
    finished = max((e["finished_at"] for e in stages.values() if e.get("finished_at")), default="–")
    devices = sorted({str(e["summary"]["device"]) for e in stages.values() if e.get("summary", {}).get("device")})
    written = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = (f"{platform.node()} · {platform.machine()} · {os.cpu_count()} CPUs · {platform.platform()} · "
               f"Python {sys.version.split()[0]}")
    facts = [("recipe", manifest.get("recipe", "?")), ("run", f"{started} → {finished}"), ("report written", written),
             ("machine", machine),
             ("stage devices", ", ".join(devices) or "–"), ("folder", str(run_dir))]
    lines = "".join(f"<div class=meta><b>{escape(k)}</b>: {escape(v)}</div>" for k, v in facts)
    return f"<h1>Run report: {escape(manifest.get('recipe', '?'))}</h1>{lines}"


def stages_section(stages: dict) -> tuple:
    rows = []
    for name, entry in stages.items():
        status = str(entry.get("status", "?"))
        kind = "ok" if status == "done" else "bad" if status in ("failed", "running") else ""
        note = stage_note(entry) if entry.get("status") == "done" else ""
        rows.append([name, entry.get("kind", "?"), Markup(f"<td class='tag {kind}'>{escape(status)}</td>"),
                     Markup(f"<td class=num>{float(entry.get('seconds', 0.0)):.1f}</td>"), note])
    return section("stages", "Stages", table(["stage", "kind", "status", "seconds", "notes"], rows))


def with_deltas(names: list[str], values: list) -> list:
    """Each stage's value, followed (from the second stage on) by its change from the stage before."""
    cells = []
    for index, value in enumerate(values):
        cells.append(value)
        if index:
            cells.append(delta_cell(values[index - 1], value))
    return cells


def _group_order(group: str) -> tuple:
    """Difficulties 1..5 numerically, names alphabetically."""
    return (0, int(group), "") if group.isdigit() else (1, 0, group)


def accuracy_section(evals: dict[str, dict]) -> tuple:
    names = list(evals)
    header = [""]
    for index, name in enumerate(names):
        header += [name] + ([Markup(f"<th class=num>Δ vs {escape(names[index - 1])}</th>")] if index else [])
    rows = [["overall", *with_deltas(names, [evals[n].get("pass@1") for n in names])]]
    for key, label in BREAKDOWNS:
        groups = sorted({g for n in names for g in evals[n].get(key, {})}, key=_group_order)
        rows += [[f"{label} {g}", *with_deltas(names, [evals[n].get(key, {}).get(g, {}).get("pass@1")
                                                       for n in names])] for g in groups]
    metric_keys = sorted({k for n in names for k in evals[n] if k.startswith(("pass@", "cons@"))
                          and not k.endswith("_ci")}, key=lambda k: (k.split("@")[0], int(k.split("@")[1])))
    metric_rows = [[k, *[evals[n].get(k) for n in names]] for k in
                   [*metric_keys, "mean_tokens", "cutoff_ratio", "n_problems", "n_samples"]]
    metric_rows.append(["pass@1 95% CI (bootstrap over problems)",
                        *[" – ".join(f"{v:.3f}" for v in evals[n]["pass@1_ci"]) if evals[n].get("pass@1_ci")
                          else None for n in names]])
    body = ("<p class=note>pass@1 = avg@n, the mean correctness over all samples; Δ is the change from the eval "
            "stage before.</p>" + table(header, rows) + "<h3>All metrics</h3>" + table(["metric", *names],
                                                                                          metric_rows))
    figure = figures.domain_accuracy_figure(evals)
    if figure:
        body += "<h3>pass@1 per domain</h3>" + image(figure, "pass@1 per domain and eval stage")
    return section("accuracy", "Held-out accuracy", body)


def pass_at_k_section(samples: dict[str, list[dict]]) -> tuple | None:
    curves = {name: figures.samples_pass_curve(rows) for name, rows in samples.items()}
    ks = sorted({k for curve in curves.values() for k in curve})
    if not ks:
        return None
    rows = [[f"pass@{k}", *[curves[n].get(k) for n in curves]] for k in ks]
    body = ("<p class=note>Unbiased pass@k = 1 − C(n−c, k)/C(n, k) per problem, averaged over problems, from "
            "each stage's samples.jsonl.</p>" + image(figures.pass_at_k_figure(curves), "pass@k curves")
            + table(["", *curves], rows))
    return section("passk", "pass@k curves", body)


def length_section(samples: dict[str, list[dict]]) -> tuple | None:
    figure = figures.length_histogram_figure(samples)
    if not figure:
        return None

    def mean(values: list[int]):
        return sum(values) / len(values) if values else None

    rows = [[name, len(rows), mean([r["tokens"] for r in rows if r["correct"]]),
             mean([r["tokens"] for r in rows if not r["correct"]]),
             sum(r.get("finish_reason") == "length" for r in rows) / len(rows)] for name, rows in samples.items()
            if rows]
    body = image(figure, "response length histograms") + table(
        ["stage", "samples", "mean tokens (correct)", "mean tokens (wrong)", "cut off"], rows)
    return section("lengths", "Response lengths", body)


CLR_COLUMNS = (("pass@1", "pass@1"), ("majority_pass@1", "majority vote"), ("clr_pass@1", "CLR"))


def clr_table(report: dict) -> str:
    """One eval folder's ``clr.json``: the accuracies it has, overall then per group, and CLR's gains."""
    groups = [v for key in ("by_domain", "by_subdomain") for v in report.get(key, {}).values() if isinstance(v, dict)]
    columns = [(key, label) for key, label in CLR_COLUMNS if key in report or any(key in g for g in groups)]
    present = dict(columns)
    deltas = [(base, f"CLR − {present[base]}") for base in ("majority_pass@1", "pass@1")
              if "clr_pass@1" in present and base in present]

    def row(label: str, values: dict) -> list:
        cells = [label, *[values.get(key) for key, _ in columns]]
        return cells + [delta_cell(values.get(base), values.get("clr_pass@1")) for base, _ in deltas]

    rows = [row("overall", report)]
    for key, label in (("by_domain", "domain"), ("by_subdomain", "sub-domain")):
        rows += [row(f"{label} {g}", v) for g, v in sorted(report.get(key, {}).items()) if isinstance(v, dict)]
    body = table(["", *[label for _, label in columns], *[label for _, label in deltas]], rows)
    for label, value in (("claim source", report.get("claim_source")), ("extra tokens", report.get("extra_tokens"))):
        if value is not None:
            text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else value
            body += f"<p class=note><b>{escape(label)}</b>: {escape(text)}</p>"
    return body


def clr_summary(data: dict) -> dict:
    """The summary of a ``clr.json`` written by :func:`vibethinker.eval.clr.run.run_clr` (``{"summary": ...,
    "problems": ...}``), with the claim source lifted from its config; a bare summary passes through."""
    summary = dict(data.get("summary", data))
    source = summary.get("config", {}).get("claim_source") if isinstance(summary.get("config"), dict) else None
    if source and "claim_source" not in summary:
        summary["claim_source"] = source
    return summary


def clr_section(reports: dict[str, dict]) -> tuple | None:
    if not reports:
        return None
    body = ("<p class=note>Claim-level reliability (SPEC 4): answers clustered and weighted by the reliability of "
            "their claims, against majority vote and plain pass@1.</p>")
    body += "".join(f"<h3>{escape(name)}</h3>" + clr_table(report) for name, report in reports.items())
    return section("clr", "CLR vs majority vote vs pass@1", body)


def training_section(run_dir: Path, stages: dict) -> tuple | None:
    body = ""
    for name, entry in stages.items():
        folder = run_dir / name
        for metrics in sorted(folder.rglob("metrics.jsonl")) if folder.is_dir() else []:
            label = str(metrics.parent.relative_to(run_dir))
            figure = figures.training_curves_figure(metrics, title=label)
            if figure:
                body += f"<h3>{escape(label)} <span class=note>({escape(entry.get('kind', '?'))})</span></h3>"
                body += image(figure, f"training curves of {label}")
    return section("training", "Training curves", body) if body else None


def samples_section(name: str, rows: list[dict]) -> tuple | None:
    body = ""
    for domain in sorted({r["domain"] for r in rows}):
        for verdict in (True, False):
            match = next((r for r in rows if r["domain"] == domain and r["correct"] == verdict), None)
            if match is None:
                continue
            tag = Markup("<span class='tag ok'>correct</span>" if verdict else "<span class='tag bad'>wrong</span>")
            facts = ", ".join(f"{k} {match[k]}" for k in ("subdomain", "difficulty", "tokens", "finish_reason")
                              if k in match)
            answer = str(match.get("answer"))
            answer = answer if len(answer) <= 60 else answer[:60] + "…"
            body += (f"<h3>{escape(domain)}, {tag}: <code>{escape(match['problem_id'])}</code> "
                     f"<span class=note>(answer {escape(answer)}; {escape(facts)})</span></h3>"
                     f"<pre>{escape(str(match.get('response', '')).strip())}</pre>")
    return section("samples", f"Sample responses ({name})", body) if body else None


def effects_section(effects: dict) -> tuple | None:
    """What each stage did: the change in pass@1 against the interval, CLR vs majority, fusion vs the last step."""
    if not (effects["evals"] or effects["clr"] or effects["fusion"]):
        return None
    rows = []
    for e in effects["evals"]:
        ci = e.get("delta_ci")
        rows.append([", ".join(e["stages"]) or "-", before_after(e, "pass@1", 3, "→"),
                     delta_cell(e["pass@1_before"], e["pass@1_after"]), e.get("half_width_after"),
                     f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else None,
                     Markup("<td><span class='tag ok'>yes</span></td>") if e.get("beyond_interval")
                     else Markup("<td><span class='tag bad'>no</span></td>"),
                     f"{e['pass@k']}: {before_after(e, 'pass@k', 3, '→')}" if e.get("pass@k") else None,
                     before_after(e, "mean_tokens", 0, "→")])
    body = ("<p class=note>Change in held-out pass@1 between consecutive evaluations, against the half-width of the "
            "later evaluation's 95% interval, with the paired bootstrap interval of the change (the same problems "
            "are evaluated both times).</p>"
            + table(["stages", "pass@1", "change", "half-width", "paired 95% CI of the change", "beyond interval",
                     "pass@k", "mean tokens"], rows))
    notes = []
    for name, c in effects["clr"].items():
        notes.append(f"CLR on {name}: {c['clr_pass@1']:.3f} vs majority vote {c['majority_pass@1']:.3f} "
                     f"({c['clr_minus_majority']:+.3f}) on the same draws.")
    for name, probe in effects["fusion"].items():
        key, fused, last, _ = fusion_comparison(probe)
        notes.append(f"Fusion ({name}, probing problems): fused {key} {fused:.3f} vs last checkpoint {last:.3f}.")
    body += "".join(f"<p>{escape(n)}</p>" for n in notes)
    return section("effects", "What each stage did", body)


def eval_summaries(run_dir: Path, stages: dict) -> dict[str, dict]:
    evals = {}
    for name, entry in stages.items():
        kind = stage_kinds().get(entry.get("kind"))
        if not (kind and kind.evaluates):
            continue
        summary = entry.get("summary") or {}
        if not summary and (run_dir / name / "summary.json").exists():
            summary = read_json(run_dir / name / "summary.json")
        if summary:
            evals[name] = summary
    return evals


def render_html_report(run_dir: str | os.PathLike) -> str:
    """The page of a run folder (``manifest.json`` plus what each stage wrote), as an HTML string."""
    run_dir = Path(run_dir)
    manifest = read_json(run_dir / "manifest.json")
    stages = manifest.get("stages", {})
    evals = eval_summaries(run_dir, stages)
    samples = {n: figures.load_samples(run_dir / n / "samples.jsonl") for n in evals
               if (run_dir / n / "samples.jsonl").exists()}
    clr = {n: clr_summary(read_json(run_dir / n / "clr.json")) for n in evals if (run_dir / n / "clr.json").exists()}
    parts = [stages_section(stages)]
    if evals:
        parts += [accuracy_section(evals), effects_section(stage_effects(run_dir, stages)),
                  pass_at_k_section(samples), length_section(samples), clr_section(clr)]
    parts.append(training_section(run_dir, stages))
    for name, entry in stages.items():
        kind = stage_kinds().get(entry.get("kind"))
        if kind and kind.html:
            parts.append(kind.html(run_dir, name, entry))
    if samples:
        last = list(samples)[-1]
        parts.append(samples_section(last, samples[last]))
    parts = [p for p in parts if p]
    nav = "<nav>" + "".join(f"<a href='#{escape(anchor)}'>{escape(title)}</a>" for anchor, title, _ in parts) + "</nav>"
    title = escape(f"Run report: {manifest.get('recipe', '?')}")
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{header_html(run_dir, manifest)}{nav}{''.join(p[2] for p in parts)}</main></body></html>\n")


def write_html_report(run_dir: str | os.PathLike) -> Path:
    """Write ``<run>/report.html`` (atomically) and return its path."""
    return write_text_atomic(Path(run_dir) / "report.html", render_html_report(run_dir))
