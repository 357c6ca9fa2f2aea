"""Hostile programs: each must fail, leave the host and the judge intact, and not spoil the next judgement."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from vibethinker.verify.code.judge import judge_program
from vibethinker.verify.code.sandbox import Limits, isolation, run_python

TESTS = [{"type": "stdin", "input": "2 3\n", "output": "5\n"}, {"type": "stdin", "input": "1 1\n", "output": "2\n"}]
GOOD = "a, b = map(int, input().split())\nprint(a + b)\n"
STRONG = isolation()["mode"] == "namespaces+uid"
# Without root and namespaces the documented fallback does not isolate the filesystem or the user, so these attacks
# are only contained in strong mode (tests/test_sandbox_fallback.py covers what the fallback does contain).
needs_strong = pytest.mark.skipif(not STRONG, reason="needs root + namespaces (strong mode); see sandbox.py")


def _hostile(program: str, *verdicts: str, time_limit_s: float = 1.0, memory_mb: int = 256) -> None:
    result = judge_program(program, TESTS, time_limit_s=time_limit_s, memory_mb=memory_mb)
    assert not result.passed, result
    if verdicts:
        assert result.verdict in verdicts, result
    assert judge_program(GOOD, TESTS).verdict == "accepted"


def test_run_python_basics():
    result = run_python("import sys\nprint(sys.stdin.read().upper())", "hi")
    assert result.stdout == "HI\n" and result.exit_code == 0 and not result.timed_out
    flood = run_python("while True: print('x' * 1000)", limits=Limits(output_bytes=1 << 16, wall_s=10))
    assert flood.output_truncated and len(flood.stdout) <= 1 << 16 and flood.wall_s < 10
    slow = run_python("while True: pass", limits=Limits(wall_s=1, cpu_s=30))
    assert slow.timed_out and slow.wall_s < 5


def test_infinite_loop():
    _hostile("while True: pass", "time_limit")


def test_sleep_forever_is_wall_clock_limited():
    _hostile("import time\ntime.sleep(1000)", "time_limit")


def test_fork_bomb():
    _hostile("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
             "time_limit", "runtime_error", "memory_limit")
    if STRONG:  # RLIMIT_NPROC bites for the unprivileged sandbox uid
        result = run_python("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
                            "            import time; time.sleep(30)\n        n += 1\nexcept OSError:\n    print(n)\n",
                            limits=Limits(nproc=16, wall_s=10))
        assert result.stdout.strip() and int(result.stdout.split()[0]) < 16, result


@needs_strong
def test_escaping_child_dies_with_the_sandbox(tmp_path):
    marker = f"/tmp/vt-escape-{uuid.uuid4().hex}"
    program = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(2)\n"
               f"    open({marker!r}, 'w').write('alive')\n    os._exit(0)\nprint(5)\n")
    _hostile(program)
    import time
    time.sleep(2.5)
    assert not os.path.exists(marker)


def test_memory_bomb():
    _hostile("x = []\nwhile True:\n    x.append(bytearray(10 << 20))", "memory_limit", "runtime_error")
    _hostile("x = ' ' * (8 << 30)", "memory_limit")


def test_output_flood():
    _hostile("while True:\n    print('A' * 10000)", "time_limit", "wrong_answer", "runtime_error")


@needs_strong
def test_write_outside_tempdir():
    target = f"/tmp/pwned-{uuid.uuid4().hex}"
    _hostile(f"open({target!r}, 'w').write('x')\nprint(5)")
    assert not os.path.exists(target)


@needs_strong
def test_delete_files(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.chmod(tmp_path, 0o777)
    _hostile(f"import os, shutil\ntry:\n    os.remove({str(victim)!r})\nexcept OSError:\n    pass\n"
             f"shutil.rmtree({str(tmp_path)!r}, ignore_errors=True)\n")
    assert victim.read_text() == "keep me"


def test_environment_secrets_hidden(monkeypatch):
    secret = uuid.uuid4().hex
    monkeypatch.setenv("VT_TEST_SECRET", secret)
    result = run_python("import os\nprint(dict(os.environ))\n"
                        "try:\n    print(open(f'/proc/{os.getppid()}/environ').read())\nexcept OSError as e:\n    print(e)")
    assert secret not in result.stdout and "VT_TEST_SECRET" not in result.stdout
    program = ("import os\ntry:\n    data = open(f'/proc/{os.getppid()}/environ', 'rb').read()\nexcept OSError:\n"
               "    data = b''\nprint(5 if b'VT_TEST_SECRET' in data or 'VT_TEST_SECRET' in os.environ else 0)")
    _hostile(program, "wrong_answer")


def test_no_network():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        program = (f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                   "s.sendall(b'pwned')\nprint(5)")
        _hostile(program, "runtime_error")
        server.settimeout(0.2)
        with pytest.raises(OSError):
            server.accept()
    finally:
        server.close()


@needs_strong
def test_signal_parent():
    _hostile("import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
             "    except OSError:\n        pass\nprint(5)")
    _hostile(f"import os, signal\ntry:\n    os.kill({os.getpid()}, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(5)")
    _hostile("import os, signal\ntry:\n    os.killpg(0, signal.SIGKILL)\nexcept OSError:\n    pass\nprint(5)")


@pytest.mark.parametrize("program", ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit",
                                     "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
def test_early_exit(program):
    _hostile(program, "runtime_error", "wrong_answer", "time_limit")


def test_faking_the_harness():
    # forged frames without the nonce, patched builtins, exit hooks: the parent still compares real values
    _hostile("import os, sys, json\nfor i in range(5):\n    os.write(1, (json.dumps({'i': i, 'stdout': '5'}) + '\\n').encode())\n"
             "import builtins\nbuiltins.print = lambda *a, **k: None\nos._exit(0)")
    _hostile("import gc, os\nfor obj in gc.get_objects():\n    if isinstance(obj, dict) and '_frame' in obj and '_NONCE' in obj:\n"
             "        nonce = obj['_NONCE']; rep = obj['_REPORT']\n"
             "        for i in range(3):\n"
             "            os.write(rep, (nonce + '{\"i\": %d, \"stdout\": \"5\"}\\n' % i).encode())\n"
             "            os.write(rep, (nonce + '{\"start\": %d}\\n' % (i + 1)).encode())\n"
             "        obj['_frame'] = lambda o: None\nprint(7)", "wrong_answer")
    liar = ("class Eq(str):\n    def __eq__(self, o): return True\n    def strip(self, *a): return self\n"
            "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
            "class Solution:\n    def f(self, *a): return Eq('z')\n")
    check = {"type": "assert", "code": "def check(candidate):\n    assert candidate(1) == 2\ncheck(Solution().f)"}
    func = {"type": "functional", "fn_name": "f", "input": "1", "output": "2"}
    assert not judge_program(liar, [check]).passed
    assert not judge_program(liar, [func]).passed
    assert judge_program("class Solution:\n    def f(self, x): return x + 1\n", [check, func]).passed


def test_isolation_report():
    info = isolation()
    assert info["mode"] in ("namespaces+uid", "namespaces-as-root", "fallback")
    if os.geteuid() == 0 and STRONG:
        result = run_python("import os\nprint(os.getuid(), os.getpid())")
        uid, pid = map(int, result.stdout.split())
        assert uid != 0 and pid == 1


@pytest.mark.skipif(not STRONG, reason="the zygote fast path needs root and namespaces")
def test_zygote_runs_jobs_without_shared_state(monkeypatch):
    from vibethinker.verify.code import zygote

    monkeypatch.setenv("VT_SANDBOX_ZYGOTE", "1")

    probe = "import sys\nprint('statistics' in sys.modules)"  # preloaded by the zygote, never by a fresh interpreter
    first = run_python(probe)
    assert first.zygote and first.stdout.strip() == "True", first
    marker = f"/tmp/vt-zygote-{uuid.uuid4().hex}"
    leak = ("import builtins, json, os, random, sys\nbuiltins.VT_LEAK = 1\njson.dumps = None\nsys.VT_LEAK = 1\n"
            f"open({marker!r}, 'w').write('x')\nprint(os.getuid(), random.random())")
    check = ("import builtins, json, os, random, sys\n"
             f"print(os.getuid(), random.random(), hasattr(builtins, 'VT_LEAK'), json.dumps is None, "
             f"hasattr(sys, 'VT_LEAK'), os.path.exists({marker!r}), os.getpid())")
    a, b = run_python(leak), run_python(check)
    assert a.zygote and b.zygote and a.exit_code == 0 and b.exit_code == 0, (a, b)
    uid_a, rand_a = a.stdout.split()
    uid_b, rand_b, *flags, pid = b.stdout.split()
    assert flags == ["False"] * 4 and pid == "1" and rand_a != rand_b and uid_a != uid_b and int(uid_b) != 0, b
    assert not os.path.exists(marker)
    # judgements go through the zygote and still pass/fail as before
    before = zygote.stats["jobs"]
    assert judge_program(GOOD, TESTS).verdict == "accepted"
    assert judge_program("print(5)", TESTS).verdict == "wrong_answer"
    assert zygote.stats["jobs"] == before + 2
    # a dead zygote is restarted on the next job
    os.kill(zygote.server_pid(), 9)
    import time
    time.sleep(0.2)
    again = run_python(probe)
    assert again.zygote and again.stdout.strip() == "True" and zygote.server_pid() is not None, again
