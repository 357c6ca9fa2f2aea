"""bench/long_context.py runs end to end on CPU (--smoke) and writes the rows issue 18 asks for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"part", "variant", "model_shape", "seq_len", "ok", "peak_gib", "tokens_per_s", "mfu", "gpu"}


def test_smoke_run_writes_every_part_and_variant(tmp_path):
    out = tmp_path / "long_context.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "long_context.py"), "--smoke", "--out", str(out),
                           "--engine-variants", "new+reserve,baseline"], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    measured = [row for row in rows if row["variant"] != "check"]
    assert all(KEYS <= row.keys() and row["ok"] for row in measured)
    assert {(row["part"], row["variant"]) for row in measured} == {
        ("engine", "new+reserve"), ("engine", "baseline"), ("sft", "new"), ("sft", "baseline"), ("rl", "new"),
        ("rl", "baseline")}
    checks = [row for row in rows if row["variant"] == "check"]
    assert checks and all(row["loss_rel_diff"] < 1e-5 and row["grad_rel_diff"] < 1e-4 for row in checks)
