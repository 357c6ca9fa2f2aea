"""Run a candidate program against assert-style tests in a child Python process.

A basic runner for the embedded suite's code problems: an isolated interpreter (``-I``), a fresh temporary working
directory, a scrubbed environment, CPU-time and memory limits, and a wall-clock timeout that kills the whole process
group. stdin/stdout and functional (LiveCodeBench) tests, and the hardened sandbox, belong to the code judge.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass

_RUNNER = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
namespace = {{"__name__": "__candidate__"}}
try:
    exec(compile(sys.stdin.read(), "<candidate>", "exec"), namespace)
except SyntaxError as exc:
    print("SYNTAX_ERROR", exc.msg, file=sys.stderr); sys.exit(3)
for index, test in enumerate({tests!r}):
    try:
        exec(compile(test, f"<test {{index}}>", "exec"), namespace)
    except AssertionError:
        print("FAILED", index, test, file=sys.stderr); sys.exit(4)
print("PASSED")
"""


@dataclass
class CodeResult:
    passed: bool
    verdict: str  # accepted | wrong_answer | runtime_error | syntax_error | time_limit
    detail: str = ""


def run_assert_tests(program: str, tests: list[str], timeout_s: float = 5.0, memory_mb: int = 512) -> CodeResult:
    """Execute ``program`` then each assert statement in ``tests``; pass only if every one passes."""
    script = _RUNNER.format(cpu=max(1, int(timeout_s)), mem=memory_mb << 20, tests=list(tests))
    with tempfile.TemporaryDirectory(prefix="vt-code-") as workdir:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", script],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=workdir, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True,
        )
        try:
            out, err = proc.communicate(program.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return CodeResult(False, "time_limit", f"over {timeout_s}s")
    stderr = err.decode(errors="replace")[-500:]
    if proc.returncode == 0 and out.decode().strip().endswith("PASSED"):
        return CodeResult(True, "accepted")
    if proc.returncode == 3:
        return CodeResult(False, "syntax_error", stderr)
    if proc.returncode == 4:
        return CodeResult(False, "wrong_answer", stderr)
    if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return CodeResult(False, "time_limit", stderr)
    return CodeResult(False, "runtime_error", stderr)
