"""Math verifier agreement: our verifier vs plain math-verify on labelled equivalence cases, and our throughput.

Run: OMP_NUM_THREADS=2 python bench/verifier_agreement.py [CASES.jsonl ...] [--show] [--baseline-rev REV]

Each CASES file holds one JSON object per line with ``pred``, ``gold`` (strings) and ``equal`` (the verdict the
case's author expects); ``source`` or ``kind`` (optional) groups the figures. Defaults: the peers' own test cases
(bench/data/peer_equivalence.jsonl, see bench/data/README.md) and our red-team file (tests/data/math_redteam.jsonl).

* Ours: ``MathChecker.check_many`` with the default ``MathPolicy`` (verify/math.py lists its rules).
* Plain math-verify: ``verify(parse(gold), parse(pred))`` with math-verify's default extraction and comparison,
  each side given as ``$...$`` (falling back to the raw string when that extracts nothing), as a user of the
  library would call it.

For each verifier: agreement with the expected verdicts, the false-accept rate (accepted among the cases that must
be refused: the reward-hacking number) and the false-refusal rate, per file and per source; ``--show`` lists each
case where a verifier disagrees with the expected verdict.

Throughput: the judge workload of bench/judge.py (every gold of shared/data/bench against ``\\boxed{gold}`` and
against a perturbed answer, through ``verify_math_many``) for this tree and for ``--baseline-rev`` (default: the
commit before the verifier rework), the latter from a temporary ``git worktree`` run in a subprocess; the ratio is
printed. Writes bench/results/verifier_agreement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DATA = ROOT.parent / "shared" / "data" / "bench"
DEFAULT_CASES = [ROOT / "bench" / "data" / "peer_equivalence.jsonl", ROOT / "tests" / "data" / "math_redteam.jsonl"]
BASELINE_REV = "83cac25"  # the last commit before the verifier rework (issue 17)
ROUNDS = 3


def load_cases(path: Path) -> list[dict]:
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        for field, kind in (("pred", str), ("gold", str), ("equal", bool)):
            if not isinstance(row.get(field), kind):
                raise SystemExit(f"{path}:{number}: field {field!r} must be a {kind.__name__}")
        row["group"] = str(row.get("source", row.get("kind", "-"))).split(":")[0]
        cases.append(row)
    return cases


def math_verify_verdict(pred: str, gold: str) -> bool:
    from math_verify import parse, verify

    def read(text: str) -> list:
        return parse(f"${text}$") or parse(text)

    try:
        return bool(verify(read(gold), read(pred)))
    except Exception:  # noqa: BLE001 - a crash of the library on odd input counts as a refusal
        return False


def rates(verdicts: list[bool], cases: list[dict]) -> dict:
    must_refuse = [v for v, c in zip(verdicts, cases, strict=True) if not c["equal"]]
    must_accept = [v for v, c in zip(verdicts, cases, strict=True) if c["equal"]]
    return {
        "agreement": round(sum(v == c["equal"] for v, c in zip(verdicts, cases, strict=True)) / len(cases), 4),
        "false_accepts": sum(must_refuse), "false_accept_rate": round(sum(must_refuse) / max(1, len(must_refuse)), 4),
        "false_refusals": must_accept.count(False),
        "false_refusal_rate": round(must_accept.count(False) / max(1, len(must_accept)), 4),
    }


def agreement(path: Path, checker, show: bool) -> dict:
    cases = load_cases(path)
    ours = checker.check_many([(c["pred"], c["gold"]) for c in cases])
    theirs = [math_verify_verdict(c["pred"], c["gold"]) for c in cases]
    figures = {"cases": len(cases), "must_accept": sum(c["equal"] for c in cases),
               "ours": rates(ours, cases), "math_verify": rates(theirs, cases), "groups": {}}
    groups = defaultdict(list)
    for index, case in enumerate(cases):
        groups[case["group"]].append(index)
    for group, indices in sorted(groups.items()):
        subset = [cases[i] for i in indices]
        figures["groups"][group] = {"cases": len(indices), "ours": rates([ours[i] for i in indices], subset),
                                    "math_verify": rates([theirs[i] for i in indices], subset)}
    figures["differences"] = [
        {"pred": c["pred"], "gold": c["gold"], "equal": c["equal"], "ours": o, "math_verify": t, "group": c["group"]}
        for c, o, t in zip(cases, ours, theirs, strict=True) if o != c["equal"] or t != c["equal"]]
    print(f"\n{display_name(path)}: {len(cases)} cases "
          f"({figures['must_accept']} equal)")
    print(f"  {'group':40s} {'n':>4s}  {'ours agree':>10s} {'FA':>3s} {'FR':>3s}  {'m-v agree':>9s} {'FA':>3s} {'FR':>3s}")
    rows = [(g, v) for g, v in figures["groups"].items()] + [("ALL", figures)]
    for group, row in rows:
        o, t = row["ours"], row["math_verify"]
        print(f"  {group[:40]:40s} {row['cases']:4d}  {o['agreement']:10.3f} {o['false_accepts']:3d} "
              f"{o['false_refusals']:3d}  {t['agreement']:9.3f} {t['false_accepts']:3d} {t['false_refusals']:3d}")
    if show:
        for d in figures["differences"]:
            print(f"    expected={d['equal']!s:5s} ours={d['ours']!s:5s} math-verify={d['math_verify']!s:5s} "
                  f"[{d['group']}] pred={d['pred']!r} gold={d['gold']!r}")
    return figures


# -------------------------------------------------------------------------------------------- throughput

def display_name(path: Path) -> str:
    """The path relative to the repository where it lies inside it (the results key), else as given."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def perturbed(gold: str) -> str:
    """A wrong answer close to the gold (the last digit changed, else a ``+1``), as bench/judge.py does."""
    for index in range(len(gold) - 1, -1, -1):
        if gold[index].isdigit():
            return gold[:index] + str((int(gold[index]) + 1) % 10) + gold[index + 1:]
    return gold + "+1"


def throughput() -> dict:
    """checks/s of ``verify_math_many`` on the judge workload, best of ROUNDS (the workers are started first)."""
    import vibethinker
    from vibethinker.verify.math import MathChecker, verify_math_many

    golds = []
    for path in sorted(BENCH_DATA.glob("*.jsonl")):
        golds += [str(json.loads(line)["answer"]) for line in path.read_text().splitlines() if line.strip()]
    items = [(f"<think>work</think> The answer is \\boxed{{{p}}}.", g)
             for p, g in [(g, g) for g in golds] + [(perturbed(g), g) for g in golds]]
    best = None
    with MathChecker() as checker:
        checker.check_many([("1", "1"), ("x+1", "1+x")])
        for _ in range(ROUNDS):
            start = time.perf_counter()
            verdicts = verify_math_many(items, checker=checker)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        workers = checker.n_workers
    return {"source": str(Path(vibethinker.__file__).parents[1]), "checks": len(items), "workers": workers,
            "checks_per_s": round(len(items) / best, 1), "gold_correct": sum(v.correct for v in verdicts[:len(golds)]),
            "perturbed_accepted": sum(v.correct for v in verdicts[len(golds):])}


def baseline_throughput(rev: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
        try:
            env = dict(os.environ, PYTHONPATH=str(tree / "src"))
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--throughput-only"], env=env,
                                 check=True, capture_output=True, text=True).stdout
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)
    figures = json.loads(out.strip().splitlines()[-1])
    if not figures["source"].startswith(str(tree)):
        raise SystemExit(f"the baseline run imported vibethinker from {figures['source']}, not the worktree")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--show", action="store_true", help="list every case a verifier gets wrong")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision timed as the baseline")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--throughput-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.throughput_only:
        print(json.dumps(throughput()))
        return

    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeout warnings, once per call
    from vibethinker.verify.math import MathChecker

    result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
                    "machine": platform.machine(), "python": platform.python_version(),
                    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "files": {}}
    with MathChecker() as checker:
        for path in args.cases:
            result["files"][display_name(path)] = agreement(path.resolve(), checker, args.show)
    if not args.no_throughput:
        ours = throughput()
        base = baseline_throughput(args.baseline_rev)
        result["throughput"] = {"ours": ours, "baseline": base | {"rev": args.baseline_rev},
                                "ratio": round(ours["checks_per_s"] / base["checks_per_s"], 3)}
        print(f"\nthroughput (verify_math_many, {ours['checks']} checks, {ours['workers']} workers, best of {ROUNDS}):"
              f" ours {ours['checks_per_s']} checks/s, baseline {args.baseline_rev} {base['checks_per_s']} checks/s,"
              f" ratio {result['throughput']['ratio']}")
        print(f"  perturbed answers accepted: ours {ours['perturbed_accepted']}, baseline {base['perturbed_accepted']};"
              f" boxed golds correct: ours {ours['gold_correct']}, baseline {base['gold_correct']}")
    out = ROOT / "bench" / "results" / "verifier_agreement.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
