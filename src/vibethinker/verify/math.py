"""Math answer verification: the last ``\\boxed{}`` after ``</think>`` against a gold answer (SPEC 2.5, 5).

Equivalence is decided by math-verify (gold parsed as gold and passed FIRST; the library is not symmetric), run
in worker processes with a wall-clock limit per check (math-verify's own timeouts use ``signal.alarm`` and only
work on a main thread). A stuck worker is killed and replaced, the check reports ``timeout``.

Before a worker is asked, string rules (``verify/math_rules.py``) run in the calling process, in this order:

1. ``$`` and spaces around the answer are dropped; a stray trailing ``\\`` or ``}`` is dropped (policy
   ``repair_trailing``).
2. **Malformed LaTeX is wrong, never coerced**: braces that open without closing, a dangling backslash at the end
   (``\\ `` inside is LaTeX's control space), ``\\frac`` / ``\\sqrt`` with missing or empty arguments,
   ``\\frac(1)(2)``, ``\\left`` without ``\\right``, a trailing ``^`` or ``_``.
3. Rewrites math-verify misreads: a top-level ``and`` / ``or`` between items is a list separator (``1 and -2``,
   ``(11,7) or (7,11)``; not inside brackets or a ``\\text{}`` phrase); ``\\sqrt(5)`` is ``\\sqrt{5}``
   (math-verify reads ``3\\sqrt(5)`` as 3); multiplier words scale (``5\\text{ million}`` is
   ``5\\times 10^{6}``); inside a trigonometric answer ``30^\\circ`` is ``\\frac{30\\pi}{180}``.
4. **Units** (policy ``units``): split off both sides (``\\text``, ``\\mbox``, ``\\textbf`` ..., ``^\\circ``,
   ``\\$``, ``\\%``, a trailing unit word, ``square units``); two different units are wrong (``5\\text{ m}`` for
   ``5\\text{ cm}``); a bare number still matches a gold with a unit; a single letter after a number is a
   variable, not a unit (``2c`` is not ``2``). Two different number bases (``4210_{5}`` vs ``4210_{6}``) are wrong.
5. **Term lists**: a sequence with an ellipsis or a ratio chain (also named: ``a:b:c = 1:2:3``) is checked term by
   term (``verify/math_sequences.py``); a list on one side only is wrong.
6. Decimal commas (``2,75`` against a single number; policy ``decimal_comma``; ``32, 349`` with a space is a
   list, never 32349), then the **numeric fast path**: plain integers, fractions, mixed numbers (``2 1/4``),
   decimals and scientific literals compare directly: exactly when both are exact, by the rounding rule when a
   decimal meets an exact value (policy ``rounded_decimals``: ``0.667`` is ``\\frac{2}{3}`` with at least
   ``min_significant_digits`` = 3 significant digits; ``0.666``, truncated, too under ``truncated_decimals``;
   ``0.67``, ``0.6670`` and ``0.665`` are not), else to a relative 1e-9.
7. Answers defining a function compare by what they define (``g(x) = x^2-1`` equals ``y = x^2-1``); a column
   vector equals the tuple (or bracketed list) of its entries; a braced set never equals a parenthesised tuple or
   interval.

Then the worker (``verify/math_workers.py``) runs math-verify with our numeric rule: exact values compare exactly
(``\\frac{1}{3000!}`` is not ``\\frac{1}{2998!}``, ``\\infty`` is not ``10^{400}``), a decimal against an exact
value by the rounding rule, two decimals to a relative 1e-9 (math-verify rounds to 6 decimals, so
``1e-7 == 2e-7`` there), and ``i`` is the imaginary unit (``i(3-i)`` equals ``1+3i``).

Kept from math-verify: equations compare as equations (``2x + 1 = y`` equals ``y = 2x + 1``; ``x = 2`` is accepted
for gold ``2``); ``50\\%`` accepts ``50`` and ``0.5`` (policy ``percent_either_way``); a bare list ``1, 2`` matches a
set or a tuple, in any order; ``2\\frac{1}{4}`` is the mixed number 9/4; a number in a base (``4210_{5}``) accepts
its digits. Every convention is a field of :class:`~vibethinker.verify.math_policy.MathPolicy`, passed per check.
Agreement with the peers' own test cases and the red-team file: ``bench/verifier_agreement.py``.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from collections import deque
from multiprocessing.connection import wait as wait_connections
from typing import Iterable, Sequence

from vibethinker.verify.extract import extract_boxed_answer
from vibethinker.verify.math_policy import DEFAULT_POLICY, MathPolicy
from vibethinker.verify.math_rules import Plan, fast_decision, malformed_reason, plan, precheck
from vibethinker.verify.math_workers import worker_main
from vibethinker.verify.types import Verdict

DEFAULT_TIMEOUT_S = 5.0

# ----------------------------------------------------------------------------------------------- worker pool

class MathChecker:
    """A pool of math-verify worker processes with a wall-clock limit per check.

    Each worker serves one check at a time; a check running past ``timeout_s`` gets its worker killed and replaced
    and reports ``"timeout"``. Thread-safe (one batch at a time). Workers start lazily on first use.
    """

    def __init__(self, n_workers: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 start_method: str = "forkserver") -> None:
        self.n_workers = max(1, n_workers or min(4, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        methods = multiprocessing.get_all_start_methods()
        self._ctx = multiprocessing.get_context(start_method if start_method in methods else "spawn")
        self._workers: list[tuple[multiprocessing.Process, object]] = []
        self._lock = threading.Lock()
        self.replaced = 0  # workers killed after a timeout or crash
        self._warm: set[int] = set()  # slots whose worker has answered once (start-up done)

    # -- process management
    def _spawn(self):
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=worker_main, args=(child,), daemon=True, name="math-verify-worker")
        proc.start()
        child.close()
        return proc, parent

    def _ensure_workers(self) -> None:
        while len(self._workers) < self.n_workers:
            self._workers.append(self._spawn())

    def _kill(self, slot: int) -> None:
        proc, conn = self._workers[slot]
        try:
            proc.kill()
            proc.join(timeout=5)
        finally:
            conn.close()
        self._workers[slot] = self._spawn()
        self._warm.discard(slot)
        self.replaced += 1

    def close(self) -> None:
        with self._lock:
            for proc, conn in self._workers:
                try:
                    conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
                conn.close()
            for proc, _ in self._workers:
                proc.join(timeout=1)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=1)
            self._workers = []

    def __enter__(self) -> "MathChecker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- checks
    def run_many(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None,
                 policy: MathPolicy = DEFAULT_POLICY) -> list[tuple[str, str]]:
        """``(verdict, detail)`` per ``(pred, gold)``: verdict is ``correct`` / ``wrong`` / ``timeout``."""
        plans = [plan(pred, gold, policy) for pred, gold in pairs]
        jobs: dict[tuple[str, str], int] = {}  # distinct worker pairs (a term list may repeat one)
        for leaf in (leaf for p in plans for leaf in _leaves(p)):
            jobs.setdefault(leaf.pair, len(jobs))
        checked = self._run_on_workers(list(jobs), timeout_s, policy) if jobs else []
        return [_outcome(p, jobs, checked) for p in plans]

    def _run_on_workers(self, pairs: list[tuple[str, str]], timeout_s: float | None,
                        policy: MathPolicy) -> list[tuple[str, str]]:
        limit = self.timeout_s if timeout_s is None else timeout_s
        results: list[tuple[str, str] | None] = [None] * len(pairs)
        pending: deque[int] = deque(range(len(pairs)))
        policy_values = policy.as_tuple()
        with self._lock:
            self._ensure_workers()
            busy: dict[int, tuple[int, float]] = {}  # slot -> (index, started)
            send_failures = 0
            while pending or busy:
                for slot in range(len(self._workers)):
                    if slot not in busy and pending:
                        index = pending.popleft()
                        pred, gold = pairs[index]
                        try:
                            self._workers[slot][1].send((index, pred, gold, policy_values))
                        except (BrokenPipeError, OSError):
                            self._kill(slot)
                            send_failures += 1
                            if send_failures > 2 * self.n_workers + 2:
                                raise RuntimeError("math-verify workers keep dying on start-up") from None
                            pending.appendleft(index)
                            continue
                        busy[slot] = (index, time.monotonic())
                if not busy:
                    continue
                now = time.monotonic()
                # a check's limit runs from when its worker got it; a fresh worker gets extra time for start-up
                deadline = min(started + limit + self._startup_grace(slot) for slot, (_, started) in busy.items())
                conns = {self._workers[slot][1]: slot for slot in busy}
                ready = wait_connections(list(conns), timeout=max(0.0, deadline - now))
                for conn in ready:
                    slot = conns[conn]
                    index, _ = busy.pop(slot)
                    try:
                        got_index, verdict, detail = conn.recv()
                    except (EOFError, OSError):
                        self._kill(slot)
                        results[index] = ("wrong", "worker crashed")
                        continue
                    if verdict == "error":
                        verdict, detail = "wrong", f"math-verify error: {detail.strip().splitlines()[-1:]}"
                    results[got_index] = (verdict, detail)
                    self._warm.add(slot)
                now = time.monotonic()
                for slot, (index, started) in list(busy.items()):
                    if now >= started + limit + self._startup_grace(slot):
                        busy.pop(slot)
                        self._kill(slot)
                        results[index] = ("timeout", f"check exceeded {limit:g}s")
        return results  # type: ignore[return-value]

    _STARTUP_GRACE_S = 30.0  # a fresh worker's first check also pays for importing sympy / math-verify

    def _startup_grace(self, slot: int) -> float:
        return 0.0 if slot in self._warm else self._STARTUP_GRACE_S

    def check_many(self, pairs: Iterable[tuple[str, str]], timeout_s: float | None = None,
                   policy: MathPolicy = DEFAULT_POLICY) -> list[bool]:
        """Equivalence of each ``(pred, gold)``; a timed-out check is ``False``."""
        return [verdict == "correct" for verdict, _ in self.run_many(list(pairs), timeout_s, policy)]

    def check(self, pred: str, gold: str, timeout_s: float | None = None,
              policy: MathPolicy = DEFAULT_POLICY) -> bool:
        return self.check_many([(pred, gold)], timeout_s, policy)[0]


def _leaves(decision: Plan):
    if decision.pair is not None:
        yield decision
    for part in decision.parts:
        yield from _leaves(part)


def _outcome(decision: Plan, jobs: dict[tuple[str, str], int], checked: list[tuple[str, str]]) -> tuple[str, str]:
    """A plan's ``(verdict, detail)``: all parts must be correct; a wrong part is wrong, else a timeout times out."""
    if decision.decided is not None:
        return ("correct" if decision.decided else "wrong", decision.detail)
    if decision.pair is not None:
        return checked[jobs[decision.pair]]
    outcomes = [_outcome(part, jobs, checked) for part in decision.parts]
    for verdict in ("wrong", "timeout"):
        failed = [detail for v, detail in outcomes if v == verdict]
        if failed:
            return verdict, f"{decision.detail}: a term is {verdict}" + (f" ({failed[0]})" if failed[0] else "")
    return ("correct", decision.detail) if outcomes else ("wrong", "no terms to compare")


_DEFAULT: MathChecker | None = None
_DEFAULT_LOCK = threading.Lock()


def default_checker() -> MathChecker:
    """The module-level checker, created on first use and closed at interpreter exit."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MathChecker()
            atexit.register(_DEFAULT.close)
        return _DEFAULT


# ----------------------------------------------------------------------------------------------- verdicts

def verify_math(response: str, gold: str, *, require_think: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S,
                checker: MathChecker | None = None, policy: MathPolicy = DEFAULT_POLICY) -> Verdict:
    """Grade one response: its last boxed answer after ``</think>`` against ``gold``."""
    return verify_math_many([(response, gold)], require_think=require_think, timeout_s=timeout_s,
                            checker=checker, policy=policy)[0]


def verify_math_many(items: Iterable[tuple[str, str]], *, require_think: bool = True,
                     timeout_s: float = DEFAULT_TIMEOUT_S, checker: MathChecker | None = None,
                     policy: MathPolicy = DEFAULT_POLICY) -> list[Verdict]:
    """Grade ``(response, gold)`` pairs in one batch over the worker pool."""
    items = list(items)
    answers = [extract_boxed_answer(response, require_think) for response, _ in items]
    todo = [i for i, answer in enumerate(answers) if answer is not None]
    checked = (checker or default_checker()).run_many([(answers[i], items[i][1]) for i in todo], timeout_s,
                                                      policy) if todo else []
    verdicts: list[Verdict] = [Verdict(False, None, "no boxed answer after </think>", verdict="no_answer")
                               for _ in items]
    for i, (verdict, detail) in zip(todo, checked):
        verdicts[i] = Verdict(verdict == "correct", answers[i], detail, verdict=verdict)
    return verdicts


__all__ = ["MathChecker", "MathPolicy", "default_checker", "verify_math", "verify_math_many", "precheck",
           "malformed_reason", "fast_decision"]
