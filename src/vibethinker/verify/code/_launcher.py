"""Sandbox launcher: trusted code, run as the caller by ``sandbox.run_python``; sets up isolation, then execs.

argv[1] is the config as hex of ``marshal.dumps`` (or ``--probe``; marshal because json imports re, ~5 ms).
stdin starts with ``<n>\\n`` and ``n`` bytes of program source; the rest
of stdin is left unread for the program. Kept free of package imports: it runs as ``python -I -S _launcher.py``.
"""

import ctypes
import marshal
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
libc = ctypes.CDLL(None, use_errno=True)


def _mount(src, target, fstype, flags, data):
    arg = None if data is None else data.encode()
    if libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags, arg) != 0:
        raise OSError(ctypes.get_errno(), "mount %s failed" % target)


def _probe():
    pid = os.fork()
    if pid == 0:
        ok = libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) == 0
        if ok:
            try:
                _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
                _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
            except OSError:
                ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    print("ok" if os.waitstatus_to_exitcode(status) == 0 else "no")


def _read_source():
    header = b""
    while not header.endswith(b"\n"):
        ch = os.read(0, 1)
        if not ch:
            raise SystemExit("launcher: truncated stdin")
        header += ch
    size, src = int(header), b""
    while len(src) < size:
        chunk = os.read(0, size - len(src))
        if not chunk:
            raise SystemExit("launcher: truncated source")
        src += chunk
    return src


def _limits(cfg):
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu"], cfg["cpu"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (cfg["mem"], cfg["mem"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (cfg["nofile"], cfg["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cfg["uid"] is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))


def private_mounts(cfg):
    """Inside new mount + PID namespaces: a private /tmp tmpfs, empty read-only tmpfs over hidden folders, own /proc."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE, None)
    owner = "" if cfg["uid"] is None else ",uid=%d,gid=%d" % (cfg["uid"], cfg["uid"])
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=0700%s" % (cfg["tmpfs_mb"], owner))
    for target in ["/var/tmp", "/dev/shm"] + cfg["hide"]:
        if os.path.isdir(target):
            _mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755")
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    except OSError:
        pass


def drop_to_uid(uid):
    """Become the throw-away ``uid`` (no supplementary groups); die with the parent."""
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)  # after setuid: a credential change clears it


def _exec(cfg, workdir):
    os.chdir(workdir)
    path = os.path.join(workdir, "main.py")
    with open(path, "wb") as handle:
        handle.write(SOURCE)
    uid = cfg["uid"]
    if uid is not None:
        os.chown(workdir, uid, uid)
        os.chown(path, uid, uid)
    _limits(cfg)
    drop_to_uid(uid)
    os.execve(cfg["interp"], [cfg["interp"], "-I", "-S", "-B", "main.py"], cfg["env"])


def run_as_namespace_init(who, program):
    """Unshare network, mount and PID namespaces, fork ``program()`` as PID 1 of the new PID namespace, and exit
    with its status (killed by signal n: 128 + n). Never returns.

    Shared by the launcher and the zygote server so both isolate the program the same way. ``program`` must exec
    or ``os._exit``; if it raises, the error goes to stderr (prefixed ``who``) and the child exits 125.
    """
    if libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET) != 0:
        raise SystemExit("%s: unshare failed, errno %d" % (who, ctypes.get_errno()))
    pid = os.fork()  # the child is PID 1 of the new namespace; when it dies, everything in it dies
    if pid == 0:
        try:
            program()
        except BaseException as exc:  # noqa: BLE001 - report and die, never fall back into the caller's code
            os.write(2, ("%s: sandbox setup failed: %r\n" % (who, exc)).encode())
        os._exit(125)
    os.close(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _namespaced(cfg):
    def program():
        private_mounts(cfg)
        _exec(cfg, "/tmp")

    run_as_namespace_init("launcher", program)


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        _probe()
        sys.exit(0)
    CFG = marshal.loads(bytes.fromhex(sys.argv[1]))
    SOURCE = _read_source()
    if CFG["ns"]:
        _namespaced(CFG)
    else:
        _exec(CFG, CFG["cwd"])
