# In-sandbox harness (appended to _canon.py's source by the judge). Runs every test of one program in this one
# interpreter and reports RAW results (stdout text, canonical return values, exceptions) on a private copy of fd 1
# as nonce-tagged JSON lines. Expected outputs never enter this process: the parent compares, so a program that
# patches builtins, the harness or the exit functions can at worst report wrong values or die, never pass.
# ruff: noqa: F821  (canon comes from _canon.py, prepended to this source by the judge)
import builtins
import io
import json
import os
import sys

_P = json.loads(sys.stdin.buffer.read().decode("utf-8"))
_NONCE, _CAP = _P["nonce"], _P["output_cap"]
_REPORT = os.dup(1)
_write, _dumps = os.write, json.dumps


def _frame(obj):
    data = (_NONCE + _dumps(obj) + "\n").encode("utf-8", "replace")
    while data:
        data = data[_write(_REPORT, data):]


def _redirect(text):
    with open("in.txt", "wb") as handle:
        handle.write(text.encode("utf-8"))
    for target, path, flags in ((0, "in.txt", os.O_RDONLY), (1, "out.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        fd = os.open(path, flags, 0o600)
        if fd != target:  # the program may have closed fd 0/1 (``open(0)``), then open() reuses it
            os.dup2(fd, target)
            os.close(fd)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")


def _collect():
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    with open("out.txt", "rb") as handle:
        return handle.read(_CAP + 1)


def _report(test, k, value):
    _frame({"i": test, "k": k, "value": canon(value)})


builtins.exit = builtins.quit = sys.exit  # -S skips site.py, which normally defines them
try:
    _CODE = compile(_P["header"] + "\n" + _P["program"], "<solution>", "exec")
except (SyntaxError, ValueError) as exc:
    _frame({"syntax_error": "%s: %s (line %s)" % (type(exc).__name__, exc, getattr(exc, "lineno", "?"))})
    raise SystemExit(0)
exec(compile(_P["header"], "<header>", "exec"), {})  # warm the imports once

for _i, _t in enumerate(_P["tests"]):
    _frame({"start": _i})
    _res = {"i": _i}
    try:
        _redirect(_t.get("input") or "")
        _ns = {"__name__": "__main__" if _t["type"] == "stdin" else "__solution__", "__builtins__": builtins}
        if _t["type"] == "stdin":
            try:
                exec(_CODE, _ns)
            except SystemExit as _exit:
                if _exit.code not in (None, 0):
                    raise
            _out = _collect()
            _res["stdout"] = _out[:_CAP].decode("utf-8", "replace")
            _res["overflow"] = len(_out) > _CAP
        elif _t["type"] == "functional":
            exec(_CODE, _ns)
            _args = [json.loads(_line) for _line in _t["input"].split("\n")]
            _fn = getattr(_ns["Solution"](), _t["fn_name"]) if "Solution" in _ns else _ns[_t["fn_name"]]
            _val = _fn(*_args)
            _res["value"] = canon(list(_val) if isinstance(_val, tuple) else _val)
        else:
            exec(_CODE, _ns)
            _ns["__vt_report__"] = lambda k, v, _i=_i: _report(_i, k, v)
            exec(compile(_t["code"], "<test %d>" % _i, "exec"), _ns)
            _res["done"] = True
    except BaseException as _exc:  # noqa: BLE001 - every failure is reported, the parent decides
        _res["error"] = type(_exc).__name__
        _res["message"] = str(_exc)[:300]
    _frame(_res)
_frame({"end": True})
