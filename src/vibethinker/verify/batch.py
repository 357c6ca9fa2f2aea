"""Verify a file of responses: problem records with an added ``response`` field, written back with the verdict.

Input rows are problem records (``vibethinker.data.records``) plus ``response``; each output row is the input row
with ``correct`` (bool), ``reward`` (float in [0, 1]), ``verdict`` (label) and ``detail`` added. Rows are judged
in a thread pool: math checks and programs run in worker processes, so threads are enough to keep them busy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vibethinker.data.records import RecordError, read_rows, parse_problem, write_jsonl
from vibethinker.verify import score


def verify_file(input_path: str | os.PathLike, out_path: str | os.PathLike, require_think: bool = True,
                workers: int = 8) -> dict[str, int]:
    input_path = Path(input_path)
    if not input_path.exists():
        raise FileNotFoundError(f"{input_path}: no such file")
    jobs = []
    for line, row in read_rows(input_path):
        if not isinstance(row, dict):
            raise RecordError(input_path, line, "<record>", "expected a JSON object")
        if not isinstance(row.get("response"), str):
            raise RecordError(input_path, line, "response", "every row needs a 'response' string to verify")
        fields = {k: v for k, v in row.items() if k not in ("response", "correct", "reward", "verdict", "detail")}
        jobs.append((row, parse_problem(fields, input_path, line)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        verdicts = list(pool.map(lambda job: score(job[1], job[0]["response"], require_think=require_think), jobs))
    rows = [{**row, "correct": v.correct, "reward": v.reward, "verdict": v.verdict, "detail": v.detail}
            for (row, _), v in zip(jobs, verdicts)]
    write_jsonl(out_path, rows)
    counts: dict[str, int] = {"rows": len(rows), "correct": sum(v.correct for v in verdicts)}
    for v in verdicts:
        counts[f"verdict:{v.verdict}"] = counts.get(f"verdict:{v.verdict}", 0) + 1
    return counts
