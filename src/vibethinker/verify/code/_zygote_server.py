"""Sandbox zygote server: trusted code, started by ``zygote.Zygote`` as ``<sandbox python> -I -S -B _zygote_server.py``.

It is started fresh (scrubbed environment, not forked from the judge, so it holds nothing of the caller), imports the
header modules once, then serves jobs: fd 0 is a SOCK_SEQPACKET control socket; each job message is the marshal
config plus, as SCM_RIGHTS, the job's stdin (read end), stdout and stderr (write ends) and a job socket. For each job
it forks a child which (in this order) closes every inherited fd but its job pipes, unshares network/mount/PID
namespaces and forks again (the program runs as PID 1 of its PID namespace), mounts the private tmpfs, drops to the
throw-away uid, applies the rlimits, reseeds ``random``, resets signal handlers, chdirs into its private /tmp and runs
the source (read from its stdin exactly as ``_launcher.py`` does) in-process as ``__main__``. The outer child relays
the program's exit status as the launcher does. On the job socket the server answers ``X<exit code>`` when the job's
outer child ends; ``K`` (or the socket closing) kills the job's process group. Control EOF: kill all jobs and exit.
Kept free of package imports.
"""

import builtins
import io
import marshal
import os
import select
import signal
import socket
import sys

# The launcher's isolation primitives (namespaces + fork as PID 1, mounts, uid drop, source reading, rlimits) serve
# both paths, so the zygote and the launcher cannot drift apart. With -I the script's folder is not on sys.path:
# add it for this one import.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _launcher import (  # noqa: E402
    PR_SET_PDEATHSIG, _limits, _read_source, drop_to_uid, libc, private_mounts, run_as_namespace_init,
)
del sys.path[0]

PRELOAD = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
           "itertools", "functools", "operator", "io", "json", "typing", "traceback", "threading")
_SIGNALS = [s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP)]


def _reset_signals():
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for sig in _SIGNALS:
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    # what a fresh interpreter installs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(str(code) + "\n")
    except Exception:  # noqa: BLE001
        pass
    return 1


def _program(cfg, source):
    """PID 1 of the job's namespaces: mounts, uid, rlimits, fresh state, then run ``source`` as ``__main__``."""
    private_mounts(cfg)
    drop_to_uid(cfg["uid"])
    _limits(cfg)
    sys.modules["random"].seed()  # also reseeded by random's own at-fork hook; be explicit
    _reset_signals()
    os.chdir("/tmp")
    with open("main.py", "wb") as handle:
        handle.write(source)
    os.environ.clear()
    os.environ.update(cfg["env"])
    sys.argv[:] = ["main.py"]
    sys.dont_write_bytecode = True
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    main = type(sys)("__main__")
    main.__dict__.update({"__file__": "main.py", "__builtins__": builtins, "__cached__": None})
    sys.modules["__main__"] = main
    status = 0
    try:
        exec(compile(source, "main.py", "exec"), main.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc)
    except BaseException:  # noqa: BLE001 - as the interpreter would: traceback, exit 1
        kind, value, trace = sys.exc_info()
        sys.excepthook(kind, value, trace.tb_next if trace is not None else None)  # hide the server's frame
        status = 1
    try:
        sys.modules["threading"]._shutdown()
    except BaseException:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            status = status or 120
    os._exit(status)


def _job(cfg, fds, sockets, zygote_pid):
    """The forked job child (outer, root): isolate, fork the program as PID 1, relay its exit status."""
    for sock in sockets:
        sock.detach()  # forget (never close) the server's socket objects' fds: closerange below closes them
    signal.set_wakeup_fd(-1)
    os.setpgid(0, 0)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
    if os.getppid() != zygote_pid:
        os._exit(137)
    source = _read_source()
    run_as_namespace_init("zygote", lambda: _program(cfg, source))


def _kill(pid):
    for fn in (os.killpg, os.kill):
        try:
            fn(pid, signal.SIGKILL)
        except OSError:
            pass


def serve():
    for name in PRELOAD:
        __import__(name)
    ctl = socket.socket(fileno=0)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    signal.set_wakeup_fd(wake_w)
    jobs = {}  # job socket fd -> [pid, socket]
    by_pid = {}  # pid -> job socket fd (None once the socket is gone)
    poller = select.poll()
    poller.register(ctl, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    me = os.getpid()
    ctl.send(b"ready")
    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, _ in events:
            if fd == ctl.fileno():
                try:
                    msg, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 4)
                except OSError:
                    msg, fds = b"", []
                if not msg:  # the judge is gone: nothing to report to, end every job
                    for pid in list(by_pid):
                        _kill(pid)
                    os._exit(0)
                if len(fds) != 4:
                    for extra in fds:
                        os.close(extra)
                    continue
                cfg = marshal.loads(msg)
                jsock = socket.socket(fileno=fds[3])
                pid = os.fork()
                if pid == 0:
                    try:
                        _job(cfg, fds[:3], [ctl, jsock] + [entry[1] for entry in jobs.values()], me)
                    except BaseException as exc:  # noqa: BLE001
                        try:
                            os.write(2, ("zygote: sandbox setup failed: %r\n" % (exc,)).encode())
                        except OSError:
                            pass
                    os._exit(125)
                try:
                    os.setpgid(pid, pid)
                except OSError:
                    pass
                for extra in fds[:3]:
                    os.close(extra)
                jobs[jsock.fileno()] = [pid, jsock]
                by_pid[pid] = jsock.fileno()
                poller.register(jsock, select.POLLIN)
            elif fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    jfd = by_pid.pop(pid, None)
                    entry = jobs.get(jfd) if jfd is not None else None
                    if entry is not None:
                        entry[0] = None  # reaped: never signal this pid again
                        try:
                            entry[1].send(b"X%d" % os.waitstatus_to_exitcode(status))
                        except OSError:
                            pass
                        # the socket stays open until the judge closes it: closing it with a "K" still unread
                        # would turn the status into ECONNRESET on the judge's side
            elif fd in jobs:
                pid, jsock = jobs[fd]
                try:
                    data = jsock.recv(64)
                except OSError:
                    data = b""
                if pid is not None:
                    _kill(pid)  # "K" or the judge side went away: either way the job ends now
                if not data:
                    poller.unregister(fd)
                    del jobs[fd]
                    if pid is not None:
                        by_pid[pid] = None
                    jsock.close()


if __name__ == "__main__":
    serve()
