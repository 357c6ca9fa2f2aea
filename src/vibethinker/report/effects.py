"""What each stage did to the held-out metrics, and whether that is more than noise.

Between two consecutive eval stages of a run (e.g. ``eval_sft`` -> ``eval_rl``) the stages that ran in between (here
``rl``) get the change in pass@1, the half-width of the later evaluation's 95% interval, and a paired bootstrap
interval of the change itself: the same held-out problems are evaluated both times, so resampling problems and
differencing their per-problem accuracies gives a much tighter interval than two separate ones would.
``beyond_interval`` says whether the change exceeds the later interval's half-width (the bar an effect must clear to
be called one). Pass@k and the mean response length ride along (self-distillation should keep pass@1 and shorten);
CLR against majority vote (SPEC 4) and fusion against the last SFT checkpoint (SPEC 2.2) are read from the stages
that measured them.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vibethinker.eval.metrics import bootstrap_ci
from vibethinker.utils.files import read_json, read_jsonl


def per_problem_accuracy(samples_path: Path) -> dict[str, float]:
    """Problem id -> fraction of its samples graded correct (avg@n), from an eval stage's ``samples.jsonl``."""
    flags: dict[str, list[bool]] = defaultdict(list)
    for _, row in read_jsonl(samples_path):
        flags[row["problem_id"]].append(bool(row["correct"]))
    return {pid: sum(f) / len(f) for pid, f in flags.items()}


def _largest_pass_at_k(summary: dict) -> tuple[str | None, float | None]:
    keys = [k for k in summary if k.startswith("pass@") and not k.endswith("_ci") and k != "pass@1"]
    if not keys:
        return None, None
    key = max(keys, key=lambda k: int(k.split("@")[1]))
    return key, summary[key]


def eval_effect(run_dir: Path, before: str, after: str, stages: dict, between: list[str]) -> dict:
    """The change from eval stage ``before`` to ``after`` (see the module docstring)."""
    first, second = stages[before]["summary"], stages[after]["summary"]
    effect = {"from": before, "to": after, "stages": between,
              "pass@1_before": first["pass@1"], "pass@1_after": second["pass@1"],
              "delta": second["pass@1"] - first["pass@1"],
              "mean_tokens_before": first.get("mean_tokens"), "mean_tokens_after": second.get("mean_tokens")}
    if second.get("pass@1_ci"):
        low, high = second["pass@1_ci"]
        effect["half_width_after"] = (high - low) / 2
        effect["beyond_interval"] = abs(effect["delta"]) > effect["half_width_after"]
    key, value = _largest_pass_at_k(second)
    if key and key in first:
        effect.update({"pass@k": key, "pass@k_before": first[key], "pass@k_after": value})
    paths = [run_dir / name / "samples.jsonl" for name in (before, after)]
    if all(p.exists() for p in paths):
        a, b = (per_problem_accuracy(p) for p in paths)
        shared = sorted(set(a) & set(b))
        if shared:
            effect["delta_ci"] = list(bootstrap_ci([b[pid] - a[pid] for pid in shared]))
            effect["paired_problems"] = len(shared)
    return effect


def is_eval_stage(entry: dict) -> bool:
    """Whether a manifest entry's kind evaluates (the registry's flag; False for a kind this version lacks)."""
    from vibethinker.stages import stage_kinds

    kind = stage_kinds().get(entry.get("kind"))
    return bool(kind and kind.evaluates)


def stage_effects(run_dir: str | Path, stages: dict, evaluates=is_eval_stage) -> dict:
    """All effects of a run: ``evals`` (consecutive eval pairs), ``clr`` (per eval stage) and ``fusion``.

    ``stages`` is the manifest's ordered stage table; ``evaluates(entry)`` tells whether an entry is an eval stage.
    """
    run_dir = Path(run_dir)
    names = [n for n, e in stages.items() if e.get("status") == "done"]
    evals = [n for n in names if evaluates(stages[n]) and "pass@1" in stages[n].get("summary", {})]
    effects: dict = {"evals": [], "clr": {}, "fusion": {}}
    for before, after in zip(evals, evals[1:]):
        between = names[names.index(before) + 1:names.index(after)]
        effects["evals"].append(eval_effect(run_dir, before, after, stages, between))
    for name in evals:
        clr_path = run_dir / name / "clr.json"
        if clr_path.exists():
            summary = read_json(clr_path).get("summary", {})
            if "clr_pass@1" in summary and "majority_pass@1" in summary:
                effects["clr"][name] = {
                    "clr_pass@1": summary["clr_pass@1"], "majority_pass@1": summary["majority_pass@1"],
                    "pass@1": summary.get("pass@1"), "clr_minus_majority": summary["clr_pass@1"]
                    - summary["majority_pass@1"], "n_problems": summary.get("n_problems")}
    for name in names:
        probe = stages[name].get("summary", {}).get("probe")
        if probe:
            effects["fusion"][name] = probe
    return effects


def fusion_comparison(probe: dict) -> tuple[str, float, float, float]:
    """(pass@K key, fused, last checkpoint, best single checkpoint) of a probe_fuse summary's ``probe``."""
    key = next(k for k in probe["fused"] if k != "pass@1")
    last, best = (probe["checkpoints"][f"step-{probe[which]:06d}"][key] for which in ("last_step", "best_step"))
    return key, probe["fused"][key], last, best


def before_after(effect: dict, name: str, digits: int, arrow: str) -> str | None:
    """``effect[name_before] -> effect[name_after]`` with ``digits`` decimals; None when either is missing."""
    first, second = effect.get(f"{name}_before"), effect.get(f"{name}_after")
    if first is None or second is None:
        return None
    return f"{first:.{digits}f} {arrow} {second:.{digits}f}"


def effects_lines(effects: dict) -> list[str]:
    """The report's "What each stage did" section."""
    lines = ["## What each stage did", "",
             "Change in held-out pass@1 between consecutive evaluations, against the later evaluation's 95% "
             "interval half-width, with the paired bootstrap interval of the change (same problems both times).", "",
             "| stages | pass@1 before -> after | change | half-width | paired 95% CI of the change | beyond "
             "interval | pass@k before -> after | mean tokens |", "|---|---|---|---|---|---|---|---|"]
    for e in effects.get("evals", []):
        ci = e.get("delta_ci")
        passk = f"{e['pass@k']}: {before_after(e, 'pass@k', 3, '->')}" if e.get("pass@k") else "-"
        tokens = before_after(e, "mean_tokens", 0, "->") or "-"
        lines.append(
            f"| {', '.join(e['stages']) or '-'} | {before_after(e, 'pass@1', 3, '->')} | "
            f"{e['delta']:+.3f} | {e.get('half_width_after', float('nan')):.3f} | "
            f"{f'[{ci[0]:+.3f}, {ci[1]:+.3f}]' if ci else '-'} | "
            f"{'yes' if e.get('beyond_interval') else 'no'} | {passk} | {tokens} |")
    lines.append("")
    for name, c in effects.get("clr", {}).items():
        lines.append(f"- CLR on `{name}`: {c['clr_pass@1']:.3f} vs majority vote {c['majority_pass@1']:.3f} "
                     f"({c['clr_minus_majority']:+.3f}) on the same draws, {c.get('n_problems')} problems.")
    for name, probe in effects.get("fusion", {}).items():
        key, fused, last, best = fusion_comparison(probe)
        lines.append(f"- Fusion (`{name}`, probing problems): fused {key} {fused:.3f} vs last "
                     f"checkpoint {last:.3f} and best single checkpoint {best:.3f} (step {probe['best_step']}).")
    return lines + [""]


__all__ = ["before_after", "effects_lines", "eval_effect", "fusion_comparison", "is_eval_stage", "per_problem_accuracy",
           "stage_effects"]
