"""Zygote fast path for ``sandbox.run_python`` (strong mode): one trusted server forks a sandbox per job.

The server (``_zygote_server.py``) is started fresh on the sandbox interpreter with the scrubbed environment (never
forked from the caller, so it holds none of the caller's memory or secrets), imports the LiveCodeBench header modules
once, and for each job forks a child that sets up exactly the launcher's isolation (namespaces with the program as
PID 1, private tmpfs mounts, a fresh throw-away uid, rlimits) and runs the source in-process. This saves two
interpreter start-ups and the header imports per judgement. The parent side is unchanged: ``spawn`` returns a
``Popen``-like object whose pipes ``sandbox._pump`` drives as before.

Thread-safe; a dead server is restarted on the next job; ``spawn`` returns None when no server can run (the caller
then uses the launcher). ``VT_SANDBOX_ZYGOTE=0`` disables it.
"""

from __future__ import annotations

import marshal
import os
import socket
import subprocess
import threading
import time

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zygote_server.py")
RETRY_AFTER_S = 60.0  # after a failed start, use the launcher this long before trying again

_lock = threading.Lock()
_server: _Server | None = None
_failed_at: float | None = None
stats = {"started": 0, "jobs": 0}  # servers started, jobs submitted (read by tests)


class _Server:
    def __init__(self, interp: str, env: dict) -> None:
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([interp, "-I", "-S", "-B", SERVER], stdin=theirs, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=dict(env), cwd="/", start_new_session=True,
                                         close_fds=True)
        finally:
            theirs.close()
        self.owner = os.getpid()
        self.send_lock = threading.Lock()
        self.ctl.settimeout(30)
        try:
            ready = self.ctl.recv(16)
        except OSError:
            ready = b""
        if ready != b"ready":
            self.close()
            raise OSError("zygote server did not start")
        self.ctl.settimeout(None)

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        self.ctl.close()
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def submit(self, cfg: dict) -> ZygoteProc:
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with self.send_lock:
                socket.send_fds(self.ctl, [marshal.dumps(cfg)], [in_r, out_w, err_w, theirs.fileno()])
        except OSError:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            mine.close()
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
            theirs.close()
        return ZygoteProc(mine, in_w, out_r, err_r)


class ZygoteProc:
    """The parent's handle on one zygote job, shaped like the parts of ``subprocess.Popen`` that ``_pump`` uses."""

    def __init__(self, sock: socket.socket, in_w: int, out_r: int, err_r: int) -> None:
        self.sock = sock
        self.stdin = open(in_w, "wb", buffering=0)
        self.stdout = open(out_r, "rb", buffering=0)
        self.stderr = open(err_r, "rb", buffering=0)
        self.returncode: int | None = None
        self._finished = False

    def _read_status(self, timeout: float | None) -> None:
        if self._finished:
            return
        self.sock.settimeout(timeout)
        try:
            msg = self.sock.recv(64)
        except TimeoutError:
            return
        except OSError:
            msg = b""
        self._finished = True
        self.sock.close()
        # no status: the server died (its jobs die with it, PR_SET_PDEATHSIG): report "killed"
        self.returncode = int(msg[1:]) if msg[:1] == b"X" else -9

    def wait(self, timeout: float | None = None) -> int | None:
        self._read_status(timeout)
        if not self._finished:
            raise subprocess.TimeoutExpired("zygote job", timeout)
        return self.returncode

    def poll(self) -> int | None:
        self._read_status(0)
        return self.returncode

    def kill_tree(self) -> None:
        """SIGKILL the job's process group (via the server, which has not reaped it yet) and wait for its end."""
        if not self._finished:
            try:
                self.sock.send(b"K")
            except OSError:
                pass
            self._read_status(10)
        for stream in (self.stdin, self.stdout, self.stderr):
            if not stream.closed:
                stream.close()


def _get(interp: str, env: dict) -> _Server | None:
    global _server, _failed_at
    with _lock:
        if _server is not None and _server.alive():
            return _server
        if _server is not None:
            _server.close()
            _server = None
        if _failed_at is not None and time.monotonic() - _failed_at < RETRY_AFTER_S:
            return None
        try:
            _server = _Server(interp, env)
        except OSError:
            _failed_at = time.monotonic()
            return None
        _failed_at = None
        stats["started"] += 1
        return _server


def enabled() -> bool:
    return os.environ.get("VT_SANDBOX_ZYGOTE", "1") not in ("0", "false", "no", "")


def spawn(interp: str, env: dict, cfg: dict) -> ZygoteProc | None:
    """Start one sandboxed job on the zygote (starting or restarting it as needed); None if it cannot run."""
    global _server
    if not enabled():
        return None
    for _ in range(2):
        server = _get(interp, env)
        if server is None:
            return None
        try:
            proc = server.submit(cfg)
        except OSError:  # the server died between jobs: restart it once
            with _lock:
                if _server is server:
                    server.close()
                    _server = None
            continue
        with _lock:
            stats["jobs"] += 1
        return proc
    return None


def server_pid() -> int | None:
    with _lock:
        return _server.proc.pid if _server is not None and _server.alive() else None


def shutdown() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.close()
            _server = None
