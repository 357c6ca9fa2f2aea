"""The HTML run report: built from a real miniature run (plus a CLR result and a distillation selection written the
way their stages write them), self-contained, escaped, and rendered by headless Chromium without errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import mini_recipe

from vibethinker.data.records import RecordError
from vibethinker.distill.config import DistillConfig
from vibethinker.distill.harvest import Trace
from vibethinker.distill.selection import ScoredTrace, select_traces
from vibethinker.eval.metrics import pass_at_k
from vibethinker.pipeline import run_recipe
from vibethinker.recipe import load_recipe
from vibethinker.report import figures
from vibethinker.report.html import render_html_report, write_html_report
from vibethinker.utils.files import read_json, write_json_atomic

RECIPE = mini_recipe("html_mini", """\
  - name: eval_base
    kind: eval
    model: "@base"
    data: "@data/test.jsonl"
    n: 2
    k: [1, 2]
    max_new_tokens: 16
  - name: sft
    kind: sft
    model: "@base"
    data: "@data/train.jsonl"
    learning_rate: 0.003
    epochs: 1
    seq_len: 512
    packing: false
    rows_per_micro_batch: 16
    save_every: 2
  - name: fuse
    kind: probe_fuse
    sft: "@sft"
    data: "@data/probe.jsonl"
    k: 2
    n: 2
    max_new_tokens: 12
  - name: rl
    kind: rl
    model: "@fuse"
    data: "@data/train.jsonl"
    group_size: 2
    prompts_per_step: 2
    max_steps: 2
    max_new_tokens: 12
    micro_batch_size: 4
  - name: eval_rl
    kind: eval
    model: "@rl"
    data: "@data/test.jsonl"
    n: 4
    k: [1, 2, 4]
    max_new_tokens: 24
""")
HOSTILE = '</pre><script>alert("x")</script> & <img src="https://example.com/a.png">\x1e'
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _add_distill_stage(run_dir):
    """A distill stage entry and its selection.json, as ``distill/run.py`` writes them (real selection code)."""
    scored = [ScoredTrace(Trace(f"p{i}", "math", "addition", "@rl", f"t{i}", num_tokens=20 + i),
                          score=-0.1 * i) for i in range(10)]
    config = DistillConfig(min_tokens=0, keep_low_quantile=0.2, keep_high_quantile=1.0, drop_top_fraction=0.0)
    kept, report = select_traces(scored, config)
    harvest = {"traces": 10, "per_teacher": {"rl/model <teacher>": {"sampled": 40, "truncated": 3, "wrong": 27,
                                                                   "duplicate": 0, "kept": 10}}}
    write_json_atomic(run_dir / "distill" / "selection.json", {"harvest": harvest, "selection": report})
    manifest = read_json(run_dir / "manifest.json")
    manifest["stages"]["distill"] = {"status": "done", "kind": "distill", "seconds": 1.0, "summary": {
        "harvested": 10, "kept": len(kept), "problems": len({s.trace.problem_id for s in kept}),
        "removed": report["removed"]}}
    write_json_atomic(run_dir / "manifest.json", manifest)
    return len(kept)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("html_report")
    (root / "recipe.yaml").write_text(RECIPE)
    run = root / "run"
    run_recipe(load_recipe(root / "recipe.yaml"), run)
    write_json_atomic(run / "eval_rl" / "clr.json", {
        "clr_pass@1": 0.5, "majority_pass@1": 0.375, "pass@1": 0.25, "claim_source": "tool <sympy>",
        "extra_tokens": {"prompt": 0, "generated": 0},
        "by_domain": {"math": {"clr_pass@1": 0.625, "majority_pass@1": 0.5, "pass@1": 0.3125}}})
    samples = run / "eval_rl" / "samples.jsonl"
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    rows[0]["response"] = HOSTILE + rows[0]["response"]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _add_distill_stage(run)
    return run


@pytest.fixture(scope="module")
def page(run_dir):
    path = write_html_report(run_dir)
    assert path == run_dir / "report.html"
    return path.read_text(encoding="utf-8")


def test_page_is_self_contained(page):
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    style = page.split("<style>")[1].split("</style>")[0]
    assert "url(" not in style and "@import" not in style
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) >= 6  # per-domain bars, pass@k, lengths, 3 training grids, probing
    for tag in images:
        assert re.search(r"src='data:image/png;base64,[A-Za-z0-9+/=]{200,}'", tag), tag[:120]


def test_text_from_the_run_is_escaped(page):
    assert HOSTILE not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in page
    assert "\x1e" not in page  # control characters (random models emit them) are not valid HTML text
    assert "tool &lt;sympy&gt;" in page and "rl/model &lt;teacher&gt;" in page


def test_sections_and_numbers_come_from_the_run(run_dir, page):
    manifest = read_json(run_dir / "manifest.json")
    for anchor in ("stages", "accuracy", "passk", "lengths", "clr", "training", "probe-fuse", "distill-distill",
                   "samples"):
        assert f"<section id='{anchor}'>" in page, anchor
    for name in manifest["stages"]:
        assert f"<td>{name}</td>" in page
    # pass@k of the last eval recomputed by hand from its samples, as shown in the pass@k table
    rows = figures.load_samples(run_dir / "eval_rl" / "samples.jsonl")
    per_problem = {}
    for row in rows:
        per_problem.setdefault(row["problem_id"], []).append(row["correct"])
    for k in (1, 2, 4):
        expected = sum(pass_at_k(4, sum(v), k) for v in per_problem.values()) / len(per_problem)
        assert figures.samples_pass_curve(rows)[k] == pytest.approx(expected)
    assert figures.samples_pass_curve(rows)[1] == pytest.approx(manifest["stages"]["eval_rl"]["summary"]["pass@1"])
    passk = page.split("<section id='passk'>")[1].split("</section>")[0]
    assert re.search(r"<td>pass@4</td><td class=num>–</td><td class=num>[01]\.\d{3}</td>", passk)
    before = manifest["stages"]["eval_base"]["summary"]["pass@1"]
    after = manifest["stages"]["eval_rl"]["summary"]["pass@1"]
    assert f">{after - before:+.3f}</td>" in page.split("<section id='accuracy'>")[1]
    clr = page.split("<section id='clr'>")[1].split("</section>")[0]
    assert "majority vote" in clr and "0.375" in clr and "+0.125" in clr and "domain math" in clr
    samples = page.split("<section id='samples'>")[1]
    assert samples.count("<pre>") == len({(r["domain"], r["correct"]) for r in rows})  # 1 right + 1 wrong a domain


def test_sections_without_inputs_are_left_out(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.safetensors", "checkpoints", "tensorboard"))
    (copy / "eval_rl" / "clr.json").unlink()
    manifest = read_json(copy / "manifest.json")
    for name in ("fuse", "distill"):
        del manifest["stages"][name]
    write_json_atomic(copy / "manifest.json", manifest)
    page = render_html_report(copy)
    assert "<section id='clr'>" not in page and "probe-fuse" not in page and "distill-distill" not in page
    assert "<section id='passk'>" in page


def test_bad_samples_row_names_file_line_and_field(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"problem_id": "a", "domain": "math", "correct": true, "tokens": 3}\n'
                    '{"problem_id": "b", "domain": "math", "correct": true}\n')
    with pytest.raises(RecordError, match=r"samples\.jsonl:2: field 'tokens'"):
        figures.load_samples(path)


def _chromium(page_path, tmp_path, *flags):
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("headless rendering needs Chromium: install the Debian package `chromium`")
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *flags,
               page_path.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_chromium_renders_the_page_without_errors(run_dir, page, tmp_path):
    from PIL import Image

    path = run_dir / "report.html"
    dom = _chromium(path, tmp_path, "--enable-logging=stderr", "--v=0", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    assert "<section id=\"clr\">" in dom.stdout and dom.stdout.count("<img") == page.count("<img")

    shot = tmp_path / "report.png"
    result = _chromium(path, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("RGB").resize((64, 200)).getcolors(maxcolors=64 * 200)
    assert len(colours) > 50  # text, tables and plots, not a blank page
