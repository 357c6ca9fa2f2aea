"""Code-judge and math-check throughput on CPU: our sandboxed judge vs a fresh-``python``-per-test baseline.

Run: OMP_NUM_THREADS=2 python bench/judge.py

Programs: every ``correct_solution`` of shared/data/code/leetcode_functional.jsonl (tests from ``lcb_input_output``)
plus the ``correct_solution`` and ``wrong_solution`` of lcb_v1_sandboxfusion.jsonl (stdin and functional).

* Baseline (the common peer approach): for each TEST, write the LiveCodeBench import header + program + a one-test
  harness to a temp file and ``subprocess.run([sys.executable, file], input=..., timeout=...)``; the parent compares
  the output with the LiveCodeBench rules; a program's tests run in order and stop at the first failure (as
  LiveCodeBench does). No isolation beyond a separate process. Programs are judged on a thread pool of 2.
* Ours: ``judge_program`` (namespaces, throw-away uid, rlimits, one sandboxed child per program, forked by the
  sandbox zygote that has the header modules imported; ``VT_SANDBOX_ZYGOTE=0`` measures the launcher path) on a
  thread pool of 2.

Both must agree on every verdict (pass/fail and first failing test); the script exits non-zero otherwise.
Then math checks/s: ``verify_math_many`` and ``MathChecker.check_many`` over the 590 benchmark golds (gold vs
``\\boxed{gold}`` and vs a perturbed answer), and the rate of single ``MathChecker.check`` calls.
Writes bench/results/judge.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORKERS = 2
ROUNDS = 3  # each approach judges the whole program set this many times; the best round is reported
TIME_LIMIT_S = 6.0


# ----------------------------------------------------------------------------------------------- programs

def load_programs() -> list[dict]:
    from vibethinker.verify.code import tests_from_lcb

    def rows(name):
        return [json.loads(line) for line in (DATA / "code" / name).read_text().splitlines() if line.strip()]

    programs = []
    for row in rows("leetcode_functional.jsonl"):
        programs.append({"id": row["id"] + ":correct", "program": row["correct_solution"],
                         "tests": tests_from_lcb(row["lcb_input_output"])})
    for row in rows("lcb_v1_sandboxfusion.jsonl"):
        for kind in ("correct", "wrong"):
            programs.append({"id": f"{row['id']}:{kind}", "program": row[f"{kind}_solution"],
                             "tests": tests_from_lcb(row["lcb_input_output"])})
    return programs


# ----------------------------------------------------------------------------------------------- baseline

FUNCTIONAL_TAIL = """
import json as _json, sys as _sys
_args = [_json.loads(_l) for _l in _sys.stdin.read().split("\\n")]
_fn = getattr(Solution(), {fn!r}) if "Solution" in globals() else globals()[{fn!r}]
_res = _fn(*_args)
if isinstance(_res, tuple):
    _res = list(_res)
_sys.stdout.write("\\n@@RESULT@@" + _json.dumps(_res))
"""


def lcb_stdout_equal(got: str, expected: str) -> bool:
    """LiveCodeBench's stdin rule, written independently of the judge: stripped lines, else Decimal tokens."""
    a = [line.strip() for line in got.strip().split("\n")]
    b = [line.strip() for line in expected.strip().split("\n")]
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        try:
            tx, ty = [Decimal(t) for t in x.split()], [Decimal(t) for t in y.split()]
        except InvalidOperation:
            return False
        if tx != ty:
            return False
    return True


def baseline_one_test(header: str, program: str, test: dict, tmpdir: str) -> tuple[bool, str]:
    source = header + "\n" + program
    if test["type"] == "functional":
        source += "\n" + FUNCTIONAL_TAIL.format(fn=test["fn_name"])
    fd, path = tempfile.mkstemp(suffix=".py", dir=tmpdir)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        try:
            proc = subprocess.run([sys.executable, path], input=test["input"], capture_output=True, text=True,
                                  timeout=TIME_LIMIT_S, cwd=tmpdir)
        except subprocess.TimeoutExpired:
            return False, "time_limit"
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        return False, "syntax_error" if "SyntaxError" in proc.stderr else "runtime_error"
    if test["type"] == "stdin":
        return lcb_stdout_equal(proc.stdout, test["output"]), "wrong_answer"
    marker = proc.stdout.rfind("\n@@RESULT@@")
    if marker < 0:
        return False, "runtime_error"
    try:
        got = json.loads(proc.stdout[marker + len("\n@@RESULT@@"):])
    except ValueError:
        return False, "wrong_answer"
    return got == json.loads(test["output"]), "wrong_answer"


def baseline_judge(item: dict, header: str, tmpdir: str) -> tuple[bool, int | None, int]:
    """(passed, first failing test, tests run)."""
    for index, test in enumerate(item["tests"]):
        ok, _ = baseline_one_test(header, item["program"], test, tmpdir)
        if not ok:
            return False, index, index + 1
    return True, None, len(item["tests"])


# ----------------------------------------------------------------------------------------------- rounds

def run_baseline(programs, header):
    with tempfile.TemporaryDirectory(prefix="vt-bench-") as tmpdir, ThreadPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        out = list(pool.map(lambda p: baseline_judge(p, header, tmpdir), programs))
        elapsed = time.perf_counter() - start
    return elapsed, [(ok, idx) for ok, idx, _ in out], sum(n for _, _, n in out)


def run_ours(programs):
    from vibethinker.verify.code import judge_program

    with ThreadPoolExecutor(WORKERS) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda p: judge_program(p["program"], p["tests"], time_limit_s=TIME_LIMIT_S),
                                programs))
        elapsed = time.perf_counter() - start
    verdicts = [(r.passed, r.failed_test_index) for r in results]
    # tests run: all of a passing program's, up to and including the first failure otherwise
    tests_run = sum(len(p["tests"]) if r.passed else (r.failed_test_index or 0) + 1 for p, r in zip(programs, results))
    return elapsed, verdicts, tests_run, [r.verdict for r in results]


def bench_code() -> dict:
    from vibethinker.verify.code import isolation
    from vibethinker.verify.code.judge import LCB_HEADER

    programs = load_programs()
    n_tests = sum(len(p["tests"]) for p in programs)
    print(f"code: {len(programs)} programs, {n_tests} tests, isolation mode {isolation()['mode']}")
    # warm both paths once (page cache, isolation probe) outside the timed rounds
    run_ours(programs[:2])
    run_baseline(programs[:2], LCB_HEADER)
    base_times, our_times = [], []
    base_verdicts = our_verdicts = None
    for r in range(ROUNDS):
        t, base_verdicts, base_tests = run_baseline(programs, LCB_HEADER)
        base_times.append(t)
        t, our_verdicts, our_tests, our_names = run_ours(programs)
        our_times.append(t)
        print(f"  round {r + 1}: baseline {base_times[-1]:.2f} s, ours {our_times[-1]:.2f} s")
    disagreements = [(p["id"], b, o) for p, b, o in zip(programs, base_verdicts, our_verdicts) if b != o]
    for pid, b, o in disagreements:
        print(f"DISAGREEMENT {pid}: baseline (passed, failed test) = {b}, ours = {o}")
    accepted = sum(ok for ok, _ in our_verdicts)
    tb, to = min(base_times), min(our_times)
    figures = {
        "programs": len(programs), "tests": n_tests, "accepted": accepted, "rejected": len(programs) - accepted,
        "isolation_mode": isolation()["mode"], "workers": WORKERS, "rounds": ROUNDS,
        "baseline_interpreter": sys.executable, "sandbox_interpreter": isolation()["interpreter"],
        "baseline_tests_run": base_tests, "ours_tests_run": our_tests,
        "baseline_s": round(tb, 3), "ours_s": round(to, 3),
        "baseline_s_rounds": [round(t, 3) for t in base_times], "ours_s_rounds": [round(t, 3) for t in our_times],
        "baseline_judgements_per_s": round(len(programs) / tb, 2),
        "ours_judgements_per_s": round(len(programs) / to, 2),
        "baseline_tests_per_s": round(base_tests / tb, 2), "ours_tests_per_s": round(our_tests / to, 2),
        "ratio_ours_over_baseline": round(tb / to, 2),
        "verdicts_agree": not disagreements, "disagreements": len(disagreements),
        "our_verdict_counts": {v: our_names.count(v) for v in sorted(set(our_names))},
    }
    print(f"  baseline: {figures['baseline_judgements_per_s']} judgements/s, {figures['baseline_tests_per_s']} "
          f"tests/s (best of {ROUNDS})")
    print(f"  ours:     {figures['ours_judgements_per_s']} judgements/s, {figures['ours_tests_per_s']} tests/s")
    print(f"  ratio ours/baseline: {figures['ratio_ours_over_baseline']}x; verdicts agree: {not disagreements} "
          f"({accepted} accepted, {len(programs) - accepted} rejected)")
    return figures


# ----------------------------------------------------------------------------------------------- math

def perturb(gold: str) -> str:
    return gold + "+1"


def bench_math() -> dict:
    from vibethinker.verify.math import MathChecker, verify_math_many

    golds = []
    for path in sorted((DATA / "bench").glob("*.jsonl")):
        golds += [str(json.loads(line)["answer"]) for line in path.read_text().splitlines() if line.strip()]
    pairs = [(g, g) for g in golds] + [(perturb(g), g) for g in golds]
    items = [(f"<think>work</think> The answer is \\boxed{{{p}}}.", g) for p, g in pairs]
    figures: dict = {"golds": len(golds), "checks": len(pairs)}
    with MathChecker() as checker:
        figures["math_workers"] = checker.n_workers
        start = time.perf_counter()
        checker.check_many([("1", "1"), ("x+1", "1+x")])  # start the workers (imports sympy / math-verify)
        figures["worker_startup_s"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        verdicts = verify_math_many(items, checker=checker)
        t = time.perf_counter() - start
        ok_gold = sum(v.correct for v in verdicts[:len(golds)])
        ok_pert = sum(v.correct for v in verdicts[len(golds):])
        figures.update(verify_math_many_s=round(t, 3), verify_math_many_checks_per_s=round(len(items) / t, 1),
                       gold_vs_boxed_gold_correct=ok_gold, gold_vs_perturbed_correct=ok_pert)
        start = time.perf_counter()
        checked = checker.check_many(pairs)
        t = time.perf_counter() - start
        figures.update(check_many_s=round(t, 3), check_many_checks_per_s=round(len(pairs) / t, 1))
        assert checked == [v.correct for v in verdicts]
        # single checks (one call each, one worker busy at a time): non-trivial pairs only, so a worker is asked
        from vibethinker.verify.math import precheck
        hard = [(p, g) for p, g in pairs if precheck(p, g)[0] is None][:200]
        start = time.perf_counter()
        for p, g in hard:
            checker.check(p, g)
        t = time.perf_counter() - start
        figures.update(single_checks=len(hard), single_check_per_s=round(len(hard) / t, 1),
                       share_decided_without_worker=round(1 - sum(precheck(p, g)[0] is None for p, g in pairs)
                                                          / len(pairs), 3))
    print(f"math: {len(golds)} golds, {len(pairs)} checks on {figures['math_workers']} workers "
          f"(start-up {figures['worker_startup_s']} s)")
    print(f"  verify_math_many: {figures['verify_math_many_checks_per_s']} checks/s ({ok_gold}/{len(golds)} boxed "
          f"golds correct, {ok_pert}/{len(golds)} perturbed accepted)")
    print(f"  MathChecker.check_many: {figures['check_many_checks_per_s']} checks/s; single check: "
          f"{figures['single_check_per_s']} checks/s ({len(hard)} worker-decided pairs); "
          f"{figures['share_decided_without_worker']:.1%} of pairs decided without a worker")
    return figures


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("math-verify", "sympy", "vibethinker"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def main() -> int:
    code = bench_code()
    maths = bench_math()
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "processor": platform.processor() or platform.uname().machine, "cpus": os.cpu_count(),
              "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "versions": versions(),
              "code": code, "math": maths}
    out = ROOT / "bench" / "results" / "judge.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not code["verdicts_agree"]:
        print("FAIL: the baseline and our judge disagree on some verdicts", file=sys.stderr)
        return 1
    if code["ratio_ours_over_baseline"] < 5:
        print(f"note: ratio {code['ratio_ours_over_baseline']}x is below the 5x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
