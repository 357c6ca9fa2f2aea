"""The documented weaker fallback (no root or no namespaces), forced here even where the strong mode is available.

The fallback keeps: a fresh temp dir, rlimits, a scrubbed environment, a process-group kill on timeout, no
``socket`` module, and the parent-side comparison. It does NOT isolate the filesystem or the user (see
``sandbox.py``), so the attacks that need those (signalling the parent, writing elsewhere) are not run here.
"""

from __future__ import annotations

import socket
import sys
import uuid

import pytest

from vibethinker.verify.code import sandbox
from vibethinker.verify.code.judge import judge_program

TESTS = [{"type": "stdin", "input": "2 3\n", "output": "5\n"}, {"type": "stdin", "input": "1 1\n", "output": "2\n"}]
GOOD = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture(autouse=True)
def fallback_mode(monkeypatch):
    info = {"root": False, "namespaces": False, "drop_user": False, "interpreter": sys.executable,
            "mode": "fallback"}
    monkeypatch.setattr(sandbox, "isolation", lambda: info)


def _fails_then_good_passes(program: str, *verdicts: str) -> None:
    result = judge_program(program, TESTS, time_limit_s=1.0, memory_mb=256)
    assert not result.passed, result
    if verdicts:
        assert result.verdict in verdicts, result
    assert judge_program(GOOD, TESTS).verdict == "accepted"


def test_fallback_judges_and_runs_outside_namespaces():
    result = sandbox.run_python("print('hi')")
    assert result.stdout == "hi\n" and result.mode == "fallback" and not result.zygote
    assert judge_program(GOOD, TESTS).verdict == "accepted"
    assert judge_program(GOOD.replace("a + b", "a * b"), TESTS).verdict == "wrong_answer"


def test_fallback_contains_loops_floods_and_exit_tricks():
    _fails_then_good_passes("while True:\n    pass", "time_limit")
    _fails_then_good_passes("while True:\n    print('x' * 10000)")
    for program in ("import sys\nsys.exit(0)", "import os\nos._exit(0)"):
        _fails_then_good_passes(program, "runtime_error", "wrong_answer")


def test_fallback_hides_secrets_and_sockets(monkeypatch):
    secret = uuid.uuid4().hex
    monkeypatch.setenv("VT_TEST_SECRET", secret)
    leaked = sandbox.run_python("import os\nprint(dict(os.environ))")
    assert secret not in leaked.stdout
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        _fails_then_good_passes(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint(5)",
                                "runtime_error")
        server.settimeout(0.2)
        with pytest.raises(OSError):
            server.accept()
    finally:
        server.close()
