"""Math answer verification: the last ``\\boxed{}`` after ``</think>`` against a gold answer (SPEC 2.5, 5).

Equivalence is decided by math-verify (gold parsed as gold and passed FIRST; the library is not symmetric), run
in worker processes with a wall-clock limit per check (math-verify's own timeouts use ``signal.alarm`` and only
work on a main thread). A stuck worker is killed and replaced, the check reports ``timeout``.

Before a worker is asked, cheap string-level rules decide some cases in the calling process:

* fast path: both sides exact integers / fractions / decimals (``vibethinker.verify.exact.as_number``) or plain
  scientific numbers (``1.5e-7``) are compared directly;
* malformed predictions are wrong (see (c) below);
* a braced set never equals a parenthesised / bracketed tuple or interval (see (e) below).

Deliberate deviations from math-verify 0.9.0:

(a) Float tolerance is relative: ``|a-b| <= max(1e-12, 1e-9 * max(|a|, |b|))`` when either side is a decimal,
    instead of rounding both to 6 absolute decimals. ``1e-7`` / ``0.0000001`` no longer equals ``2e-7``;
    ``0.1`` still equals ``0.10000000000001``. Consequence: ``0.333333`` is NOT accepted for gold ``\\frac13``
    (math-verify accepts it); ``3.14159265358979`` is accepted for ``\\pi``. The rule replaces math-verify's
    numeric comparison inside the workers, so it also holds inside tuples, sets, intervals, matrices, equations.
(b) No chopping of tiny exact values: exact numbers compare to ~50 significant digits, so ``10^{-8}`` or
    ``0.00000001`` never equals ``0``.
(c) Malformed LaTeX in the prediction is wrong, never coerced: unbalanced braces (``2}`` is 2 for math-verify),
    a trailing or dangling backslash, ``\\frac`` / ``\\sqrt`` with missing or empty arguments, ``\\left``
    without ``\\right``.
(d) Equations compare as equations. math-verify already does this (``2x + 1 = y`` equals ``y = 2x + 1``,
    ``y = 2x + 1`` differs from ``y = 2x + 2``; a simple assignment ``x = 2`` is accepted for gold ``2``); our
    numeric rule (a) applies to their sides. Tests pin this behaviour.
(e) Sets are not tuples/intervals: math-verify accepts ``(1,2)`` for gold ``\\{1,2\\}`` (and the reverse); we
    reject a braced set against a parenthesised or bracketed answer. A bare list ``1, 2`` is still accepted
    against either, as in math-verify.
(f) A scientific literal ``1.5e-7`` means ``1.5 \\times 10^{-7}`` (math-verify's LaTeX parser reads ``e`` as
    Euler's number).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import re
import threading
import time
from collections import deque
from fractions import Fraction
from multiprocessing.connection import wait as wait_connections
from typing import Iterable, Sequence

from vibethinker.verify.exact import as_number
from vibethinker.verify.extract import extract_boxed_answer
from vibethinker.verify.math_workers import ABS_TOL, REL_TOL, normalise_latex, worker_main
from vibethinker.verify.types import Verdict

DEFAULT_TIMEOUT_S = 5.0

_SCI_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


# ----------------------------------------------------------------------------------------------- string rules

def _plain_number(text: str) -> tuple[Fraction, bool] | None:
    """``(value, inexact)`` for an integer / fraction / decimal / scientific literal, else ``None``."""
    text = text.strip().strip("$").strip()
    value = as_number(text)
    if value is not None:
        compact = text.replace(" ", "")
        return value, "." in compact
    compact = text.replace(" ", "")
    if _SCI_NUMBER.match(compact):
        try:
            return Fraction(compact), True
        except (ValueError, ZeroDivisionError):
            return None
    return None


def numbers_equal(a: Fraction, b: Fraction, inexact: bool) -> bool:
    if not inexact:
        return a == b
    return abs(a - b) <= max(Fraction(ABS_TOL), Fraction(REL_TOL) * max(abs(a), abs(b)))


def fast_decision(pred: str, gold: str) -> bool | None:
    """Decide plain-number pairs without a worker; ``None`` when math-verify is needed."""
    p, g = _plain_number(pred), _plain_number(gold)
    if p is None or g is None:
        return None
    return numbers_equal(p[0], g[0], p[1] or g[1])


def _strip_escaped_braces(text: str) -> str:
    return text.replace("\\{", "").replace("\\}", "")


def malformed_reason(text: str) -> str | None:
    """Why ``text`` is malformed LaTeX (rule (c)), or ``None`` when it looks well formed."""
    body = _strip_escaped_braces(text.replace("\\\\", " "))
    depth = 0
    for char in body:
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return "unbalanced braces"
    if depth:
        return "unbalanced braces"
    if re.search(r"\\(\s|$)", body):
        return "dangling backslash"
    if re.search(r"\{\s*\}", body) and re.search(r"\\[dt]?frac|\\sqrt|\\binom|\^|_", body):
        # an empty group as an argument (\frac{1}{}, \sqrt{}, x^{})
        if re.search(r"(\\[dt]?frac|\\sqrt|\\binom|\\text|\^|_)\s*(\{[^{}]*\})?\s*\{\s*\}", body):
            return "empty argument"
    for match in re.finditer(r"\\[dt]?frac(?![a-zA-Z])", body):
        if _count_args(body, match.end(), 2) < 2:
            return "\\frac without two arguments"
    for match in re.finditer(r"\\sqrt(?![a-zA-Z])", body):
        rest = body[match.end():]
        rest = re.sub(r"^\s*\[[^\]]*\]", "", rest)
        if _count_args(rest, 0, 1) < 1:
            return "\\sqrt without an argument"
    if re.search(r"[\^_]\s*$", body):
        return "dangling ^ or _"
    if len(re.findall(r"\\left(?![a-zA-Z])", body)) != len(re.findall(r"\\right(?![a-zA-Z])", body)):
        return "\\left without \\right"
    return None


def _count_args(text: str, pos: int, wanted: int) -> int:
    """How many of ``wanted`` TeX arguments (a ``{group}``, one character or one command) follow ``pos``."""
    found = 0
    while found < wanted:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text) or text[pos] in "}^_=,)]":
            return found
        if text[pos] == "{":
            depth = 0
            for end in range(pos, len(text)):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
            if not text[pos + 1:end].strip():
                return found
            pos = end + 1
        elif text[pos] == "\\":
            match = re.match(r"\\[a-zA-Z]+|\\.", text[pos:])
            if not match:
                return found
            pos += match.end()
        else:
            pos += 1
        found += 1
    return found


def _strip_left_right(text: str) -> str:
    return re.sub(r"\\(left|right|bigl|bigr|Bigl|Bigr)(?![a-zA-Z])", "", text).strip()


def _outer_kind(text: str) -> str | None:
    """``"set"`` for ``\\{...\\}``, ``"paren"`` for ``(...)`` / ``[...]`` / mixed interval brackets."""
    text = _strip_left_right(text.strip().strip("$"))
    if text.startswith("\\{") and text.endswith("\\}"):
        return "set"
    if text[:1] in "([" and text[-1:] in ")]" and "," in text:
        return "paren"
    return None


def structural_mismatch(pred: str, gold: str) -> bool:
    """Rule (e): a braced set against a parenthesised tuple or interval."""
    kinds = {_outer_kind(pred), _outer_kind(gold)}
    return kinds == {"set", "paren"}


def precheck(pred: str, gold: str) -> tuple[bool | None, str]:
    """String-level decision: ``(True/False, detail)`` when decided, ``(None, "")`` when a worker is needed."""
    reason = malformed_reason(pred)
    if reason:
        return False, f"malformed answer: {reason}"
    decided = fast_decision(pred, gold)
    if decided is not None:
        return decided, "numeric fast path"
    if structural_mismatch(pred, gold):
        return False, "set vs tuple/interval"
    if not normalise_latex(pred):
        return False, "empty answer"
    return None, ""


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
    def run_many(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None) -> list[tuple[str, str]]:
        """``(verdict, detail)`` per ``(pred, gold)``: verdict is ``correct`` / ``wrong`` / ``timeout``."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        results: list[tuple[str, str] | None] = [None] * len(pairs)
        pending: deque[int] = deque()
        for index, (pred, gold) in enumerate(pairs):
            decided, detail = precheck(pred, gold)
            if decided is None:
                pending.append(index)
            else:
                results[index] = ("correct" if decided else "wrong", detail)
        if not pending:
            return results  # type: ignore[return-value]
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
                            self._workers[slot][1].send((index, pred, gold))
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

    def check_many(self, pairs: Iterable[tuple[str, str]], timeout_s: float | None = None) -> list[bool]:
        """Equivalence of each ``(pred, gold)``; a timed-out check is ``False``."""
        return [verdict == "correct" for verdict, _ in self.run_many(list(pairs), timeout_s)]

    def check(self, pred: str, gold: str, timeout_s: float | None = None) -> bool:
        return self.check_many([(pred, gold)], timeout_s)[0]


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
                checker: MathChecker | None = None) -> Verdict:
    """Grade one response: its last boxed answer after ``</think>`` against ``gold``."""
    return verify_math_many([(response, gold)], require_think=require_think, timeout_s=timeout_s,
                            checker=checker)[0]


def verify_math_many(items: Iterable[tuple[str, str]], *, require_think: bool = True,
                     timeout_s: float = DEFAULT_TIMEOUT_S, checker: MathChecker | None = None) -> list[Verdict]:
    """Grade ``(response, gold)`` pairs in one batch over the worker pool."""
    items = list(items)
    answers = [extract_boxed_answer(response, require_think) for response, _ in items]
    todo = [i for i, answer in enumerate(answers) if answer is not None]
    checked = (checker or default_checker()).run_many([(answers[i], items[i][1]) for i in todo], timeout_s) \
        if todo else []
    verdicts: list[Verdict] = [Verdict(False, None, "no boxed answer after </think>", verdict="no_answer")
                               for _ in items]
    for i, (verdict, detail) in zip(todo, checked):
        verdicts[i] = Verdict(verdict == "correct", answers[i], detail, verdict=verdict)
    return verdicts


__all__ = ["MathChecker", "default_checker", "verify_math", "verify_math_many", "precheck", "malformed_reason",
           "fast_decision"]
