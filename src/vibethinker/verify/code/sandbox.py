"""Run untrusted Python in a separate, resource-limited, isolated process.

``run_python(source, stdin, limits)`` starts a small *launcher* interpreter (trusted code, run as the caller) that
sets the sandbox up and then ``exec``s an isolated interpreter (``-I -S``) on ``source``:

* Strong mode (caller is root and ``unshare`` works): new network, mount and PID namespaces (no network at all, not
  even loopback; other processes are invisible; when the sandbox's PID 1 dies every process it spawned dies with
  it, so ``setsid`` cannot escape the kill). ``/tmp`` is a fresh private tmpfs used as the working directory,
  ``/var/tmp`` and ``/dev/shm`` are empty read-only tmpfs, and ``hide_paths`` (e.g. ``/work``: the data sets, the
  repository) are covered by empty read-only tmpfs. The program then runs under a throw-away uid (one per run, no
  passwd entry), so it cannot write outside its tmpfs, signal the judge, or read other users' files, and
  RLIMIT_NPROC (which the kernel ignores for root) caps fork bombs per run.
* Fallback (not root, or namespaces refused): a fresh temporary working directory, the same rlimits, and a prelude
  that replaces the ``socket`` module's constructors with failing ones. This is weaker: a determined program can
  still reach the network through ``ctypes``/``_socket`` and write wherever the caller may; state it in reports.

In strong mode the sandbox is normally forked by a pre-started zygote (``zygote.py``: same isolation, set up in
the same order, without two interpreter start-ups and the header imports per run); the launcher is the fallback.

Both modes: scrubbed environment, RLIMIT_CPU/AS/FSIZE/NPROC/NOFILE/CORE, ``start_new_session`` plus a wall-clock
kill of the whole process group, and stdout/stderr read concurrently (no pipe deadlock) and capped.
"""

from __future__ import annotations

import functools
import marshal
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vibethinker.verify.code import zygote

LAUNCHER = Path(__file__).with_name("_launcher.py")
DEFAULT_HIDE = ("/work", "/home", "/mnt", "/srv", "/media", "/opt")
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8", "HOME": "/tmp", "OMP_NUM_THREADS": "1"}
SOCKET_PRELUDE = (
    "def _vt_no_net():\n"
    "    import socket as _s\n"
    "    def _deny(*a, **k):\n"
    "        raise OSError('network access is disabled in the sandbox')\n"
    "    for _n in ('socket', 'create_connection', 'create_server', 'socketpair', 'fromfd', 'getaddrinfo'):\n"
    "        setattr(_s, _n, _deny)\n"
    "_vt_no_net(); del _vt_no_net\n"
)


@dataclass
class Limits:
    cpu_s: float = 10.0  # CPU seconds (RLIMIT_CPU, whole seconds, rounded up)
    wall_s: float = 20.0  # wall-clock limit for the whole run
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    fsize_mb: int = 64  # largest file the program may write (RLIMIT_FSIZE)
    nproc: int = 64  # processes + threads of the sandbox uid (strong mode only)
    nofile: int = 64
    output_bytes: int = 1 << 20  # stdout cap; stderr is capped at 64 KiB
    stderr_bytes: int = 64 << 10
    tmpfs_mb: int = 256
    step_marker: bytes | None = None  # each occurrence on stdout restarts the step clock ...
    step_timeout_s: float | None = None  # ... which kills the run when it runs out
    hide_paths: tuple[str, ...] = field(default=DEFAULT_HIDE)


@dataclass
class RunResult:
    stdout: str
    stderr: str
    exit_code: int | None  # negative: killed by that signal
    timed_out: bool
    memory_exceeded: bool
    output_truncated: bool
    wall_s: float
    step_timed_out: bool = False
    stopped: bool = False  # stopped early by ``watch``
    mode: str = ""
    zygote: bool = False  # run by the zygote fast path (see ``zygote.py``) rather than a fresh launcher


def _world_executable(path: str) -> bool:
    """Whether an unprivileged uid can traverse to and run ``path`` (and read its stdlib)."""
    real = Path(os.path.realpath(path))
    if not real.exists() or not (real.stat().st_mode & 0o001):
        return False
    return all(parent.stat().st_mode & 0o001 for parent in real.parents)


@functools.lru_cache(maxsize=1)
def isolation() -> dict:
    """What this machine allows: root, namespaces, an interpreter an unprivileged uid can run. Probed once."""
    info = {"root": os.geteuid() == 0, "namespaces": False, "drop_user": False, "interpreter": sys.executable}
    if info["root"]:
        probe = subprocess.run([sys.executable, "-I", "-S", str(LAUNCHER), "--probe"], capture_output=True,
                               text=True, timeout=30)
        info["namespaces"] = probe.returncode == 0 and probe.stdout.strip() == "ok"
        for cand in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
            if cand and _world_executable(cand):
                info["interpreter"], info["drop_user"] = os.path.realpath(cand), True
                break
    info["mode"] = "namespaces+uid" if info["namespaces"] and info["drop_user"] else (
        "namespaces-as-root" if info["namespaces"] else "fallback")
    return info


def _sandbox_uid() -> int:
    """A throw-away uid for one run, unlikely to belong to anyone (RLIMIT_NPROC then counts only this run)."""
    return 200_000 + int.from_bytes(os.urandom(3), "big") % 60_000


def run_python(source: str, stdin: str | bytes = "", limits: Limits | None = None,
               watch: Callable[[bytes], bool] | None = None) -> RunResult:
    """Run ``source`` as ``__main__`` in the sandbox with ``stdin`` as standard input.

    ``watch`` (optional) sees each new stdout chunk; when it returns True the run is stopped early (``stopped``).
    """
    limits = limits or Limits()
    info = isolation()
    strong = info["namespaces"]
    interp = info["interpreter"]
    hide = [p for p in limits.hide_paths if os.path.isdir(p) and not interp.startswith(p.rstrip("/") + "/")]
    workdir = None if strong else tempfile.mkdtemp(prefix="vt-sbx-")
    cfg = {"ns": strong, "uid": _sandbox_uid() if info["drop_user"] else None, "interp": interp,
           "cwd": workdir, "cpu": max(1, int(limits.cpu_s + 0.999)), "mem": limits.memory_mb << 20,
           "fsize": limits.fsize_mb << 20, "nproc": limits.nproc, "nofile": limits.nofile,
           "tmpfs_mb": limits.tmpfs_mb, "hide": hide, "env": SAFE_ENV}
    if not strong:
        source = SOCKET_PRELUDE + source
    src = source.encode()
    data = stdin.encode() if isinstance(stdin, str) else stdin
    feed = b"%d\n" % len(src) + src + data
    start = time.monotonic()
    # the launcher runs on the sandbox's interpreter too (a system python starts faster than a venv/pyenv one) and
    # reads its config as marshal data (json would import re: ~5 ms per run); both are trusted, set up here
    # strong mode: a pre-started zygote forks the sandbox (same isolation, no interpreter start-up, header modules
    # already imported); the launcher is the fallback when no zygote can run
    proc = zygote.spawn(interp, SAFE_ENV, cfg) if strong else None
    if proc is None:
        proc = subprocess.Popen([interp, "-I", "-S", str(LAUNCHER), marshal.dumps(cfg).hex()], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(SAFE_ENV), cwd="/",
                                start_new_session=True, close_fds=True)
    try:
        out, err, trunc, timed_out, step_out, stopped = _pump(proc, feed, limits, start, watch)
    finally:
        _kill_group(proc)
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    code = proc.returncode
    if code is not None and code > 128 and strong:  # the launcher relays "killed by signal n" as 128 + n
        code = -(code - 128)
    stderr = err.decode("utf-8", errors="replace")
    mem = "MemoryError" in stderr[-4000:] or code == -signal.SIGSEGV and "Cannot allocate" in stderr
    return RunResult(out.decode("utf-8", errors="replace"), stderr, code, timed_out, mem, trunc,
                     time.monotonic() - start, step_out, stopped, info["mode"], isinstance(proc, zygote.ZygoteProc))


def _kill_group(proc) -> None:
    if isinstance(proc, zygote.ZygoteProc):
        proc.kill_tree()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed process always goes
        pass


def _pump(proc: subprocess.Popen, feed: bytes, limits: Limits, start: float, watch=None):
    """Write stdin, read stdout/stderr without deadlock until exit or a limit; returns the captured output."""
    sel = selectors.DefaultSelector()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        os.set_blocking(stream.fileno(), False)
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    sel.register(proc.stdin, selectors.EVENT_WRITE, "in")
    bufs = {"out": bytearray(), "err": bytearray()}
    caps = {"out": limits.output_bytes, "err": limits.stderr_bytes}
    trunc = timed_out = step_out = stopped = False
    marker, tail = limits.step_marker, b""
    step_deadline = start + limits.step_timeout_s if limits.step_timeout_s else None
    pos = 0
    while sel.get_map():
        now = time.monotonic()
        deadline = start + limits.wall_s if step_deadline is None else min(start + limits.wall_s, step_deadline)
        if now >= deadline:
            timed_out, step_out = True, step_deadline is not None and now >= step_deadline
            break
        for key, _ in sel.select(timeout=deadline - now):
            if key.data == "in":
                try:
                    pos += os.write(key.fileobj.fileno(), feed[pos:pos + 65536])
                except (BrokenPipeError, OSError):
                    pos = len(feed)
                if pos >= len(feed):
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                continue
            try:
                chunk = os.read(key.fileobj.fileno(), 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = bufs[key.data]
            room = caps[key.data] - len(buf)
            buf += chunk[:max(room, 0)]
            if key.data == "out" and marker and step_deadline is not None and marker in tail + chunk:
                step_deadline = time.monotonic() + limits.step_timeout_s
                tail = b""
            if key.data == "out" and marker:
                tail = (tail + chunk)[-len(marker):]
            if key.data == "out" and watch is not None and watch(chunk):
                stopped = True
                sel = _close(sel)
                break
            if key.data == "out" and len(chunk) > room:
                trunc = True  # output flood: stop now rather than drain it
                sel = _close(sel)
                break
    _close(sel)
    _kill_group(proc)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if not stream.closed:
            stream.close()
    return bytes(bufs["out"]), bytes(bufs["err"]), trunc, timed_out, step_out, stopped


def _close(sel: selectors.BaseSelector) -> selectors.BaseSelector:
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    return sel


def new_nonce() -> str:
    return uuid.uuid4().hex
