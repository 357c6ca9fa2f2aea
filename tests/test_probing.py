"""Diversity probing (SPEC 2.2): Pass@K per sub-domain, argmax specialists, fusion weights, cache, outputs."""

from __future__ import annotations

import json

import pytest

from conftest import make_addition_problems, train_warm_model
from vibethinker.data.records import read_rows
from vibethinker.eval.metrics import pass_at_k
from vibethinker.generate import make_generator
from vibethinker.probe import (CheckpointProbe, ProbeConfig, ProbeResult, Specialist, fusion_weights,
                               list_checkpoints, probe_checkpoints, select_specialists)
from vibethinker.probe.probing import score_samples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    """A tiny model SFT-trained on additions: a checkpoint at step 80 and the final model at step 160."""
    root = tmp_path_factory.mktemp("probe-sft")
    problems = make_addition_problems(16, seed=0)
    train_warm_model(root, problems, epochs=40, save_every=80)
    return root / "sft", problems


def _rows(counts: dict[str, int], n: int) -> list[dict]:
    return [{"problem_id": pid, "correct": i < c} for pid, c in counts.items() for i in range(n)]


def _probe(step: int, problems, counts: dict[str, int], k: int = 2, n: int = 4) -> CheckpointProbe:
    scores, correct = score_samples(_rows(counts, n), problems, k, n)
    return CheckpointProbe(step, f"/ckpt/step-{step}", f"fp{step}", scores, correct)


def test_specialists_are_the_pass_at_k_argmax_not_the_pass_at_1_argmax():
    problems = [p.model_copy(update={"subdomain": sub})
                for p, sub in zip(make_addition_problems(4, seed=1), ["alg", "alg", "geo", "geo"])]
    ids = [p.id for p in problems]
    # alg: step 10 solves one problem always and the other never (pass@1 .5, pass@2 .5); step 20 solves both
    # sometimes (pass@1 .375, pass@2 (.5 + 5/6) / 2): more valid solutions, lower pass@1. geo: a tie -> later step.
    result = ProbeResult(k=2, n=4, checkpoints=[
        _probe(10, problems, dict(zip(ids, [4, 0, 2, 2]))),
        _probe(20, problems, dict(zip(ids, [1, 2, 0, 1]))),
        _probe(30, problems, dict(zip(ids, [0, 0, 2, 2]))),
    ])
    alg = {c.step: c.scores["alg"] for c in result.checkpoints}
    assert alg[10].pass_at_1 == pytest.approx(0.5) and alg[10].pass_at_k == pytest.approx(0.5)
    assert alg[20].pass_at_1 == pytest.approx(0.375)
    assert alg[20].pass_at_k == pytest.approx((pass_at_k(4, 1, 2) + pass_at_k(4, 2, 2)) / 2)
    specialists = select_specialists(result)
    assert specialists["alg"] == Specialist(20, "/ckpt/step-20", alg[20].pass_at_k)
    assert specialists["geo"].step == 30  # steps 10 and 30 tie at pass@2 = 5/6
    assert specialists["geo"].score == pytest.approx(5 / 6)
    assert ProbeResult.from_json(json.loads(json.dumps(result.to_json()))) == result


def test_fusion_weights_add_up_to_one_and_merge_duplicates():
    specialists = {"alg": Specialist(20, "/b", 0.9), "geo": Specialist(10, "/a", 0.8),
                   "calc": Specialist(20, "/b", 0.7)}
    weights = fusion_weights(specialists)
    assert list(weights) == ["/a", "/b"]  # ordered by step
    assert weights == pytest.approx({"/a": 1 / 3, "/b": 2 / 3})
    assert sum(weights.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown fusion weight scheme"):
        fusion_weights(specialists, scheme="loss")


def test_list_checkpoints_orders_by_step_and_appends_the_final_model(tmp_path, sft_run):
    for name in ["step-000100", "step-000002", "step-000010", "step-7", "not-a-step"]:
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
        (tmp_path / "checkpoints" / name / "config.json").write_text("{}")
    (tmp_path / "checkpoints" / "step-000200").mkdir()  # no config.json: an unfinished write, skipped
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    found = list_checkpoints(tmp_path)
    assert [(s, p.name) for s, p in found] == [(2, "step-000002"), (7, "step-7"), (10, "step-000010"),
                                               (100, "step-000100"), (101, "model")]
    (tmp_path / "sft_summary.json").write_text(json.dumps({"steps": 150}))
    assert list_checkpoints(tmp_path)[-1] == (150, tmp_path / "model")
    with pytest.raises(FileNotFoundError, match="no SFT checkpoints"):
        list_checkpoints(tmp_path / "empty")
    sft_dir, _ = sft_run
    assert list_checkpoints(sft_dir) == [(80, sft_dir / "checkpoints" / "step-000080"), (160, sft_dir / "model")]


def test_probe_end_to_end_writes_outputs_and_reuses_its_cache(tmp_path, sft_run):
    sft_dir, train_problems = sft_run
    problems = [train_problems[i].model_copy(update={"subdomain": "small" if i % 2 else "large"})
                for i in (2, 3, 4, 5, 9, 10, 13, 14)]
    calls = []

    def factory(path):
        calls.append(path)
        return make_generator(path, batch_size=64, device="cpu")

    config = ProbeConfig(k=4, n=8, max_new_tokens=40, seed=3, device="cpu", score_workers=2)
    checkpoints = list_checkpoints(sft_dir)
    out = tmp_path / "probe"
    result = probe_checkpoints(checkpoints, problems, config, out, generator_factory=factory)
    assert len(calls) == 2 and [c.step for c in result.checkpoints] == [80, 160]
    assert result.subdomains == ["large", "small"]
    for probe in result.checkpoints:
        samples = sorted((out / "samples").glob(f"step-{probe.step:06d}-*.jsonl"))
        assert len(samples) == 1
        rows = [row for _, row in read_rows(samples[0])]
        assert len(rows) == len(problems) * config.n
        for name, s in probe.scores.items():
            assert s.pass_at_k >= s.pass_at_1  # pass@K >= pass@1 always
            members = [p.id for p in problems if p.subdomain == name]
            counts = [sum(r["correct"] for r in rows if r["problem_id"] == pid) for pid in members]
            assert s.pass_at_k == pytest.approx(sum(pass_at_k(8, c, 4) for c in counts) / len(counts))
            assert s.pass_at_1 == pytest.approx(sum(counts) / (8 * len(counts)))
    assert any(s.pass_at_k > s.pass_at_1 > 0 for c in result.checkpoints for s in c.scores.values())

    data = json.loads((out / "probing.json").read_text())
    specialists = select_specialists(result)
    assert data["specialists"] == {name: s._asdict() for name, s in specialists.items()}
    assert sum(w["weight"] for w in data["weights"]) == pytest.approx(1.0)
    assert [row["step"] for row in data["table"]] == [80, 160]
    assert set(data["table"][0]["subdomains"]["small"]) == {"pass@4", "pass@1", "problems"}
    markdown = (out / "probing.md").read_text()
    assert "small pass@4" in markdown and "small pass@1" in markdown and markdown.count("★") >= 2
    png = (out / "probing.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image

    assert matplotlib.image.imread(out / "probing.png").shape[2] in (3, 4)

    again = probe_checkpoints(checkpoints, problems, config, out, generator_factory=factory)
    assert len(calls) == 2  # nothing resampled, no model loaded
    assert all(c.cached for c in again.checkpoints)
    assert [c.scores for c in again.checkpoints] == [c.scores for c in result.checkpoints]
    probe_checkpoints(checkpoints[:1], problems, config.model_copy(update={"seed": 4}), out,
                      generator_factory=factory)
    assert len(calls) == 3  # another seed is another estimate
    fresh = probe_checkpoints(checkpoints, problems, config, out, cache=False, generator_factory=factory)
    assert len(calls) == 5 and not any(c.cached for c in fresh.checkpoints)
    assert [c.scores for c in fresh.checkpoints] == [c.scores for c in result.checkpoints]  # same seed, same draw


def test_probe_rejects_bad_input(tmp_path, sft_run):
    sft_dir, problems = sft_run
    with pytest.raises(ValueError, match="n >= k"):
        ProbeConfig(k=8, n=4)
    config = ProbeConfig(k=1, n=1, max_new_tokens=4, device="cpu")
    with pytest.raises(ValueError, match="appears twice"):
        probe_checkpoints(list_checkpoints(sft_dir), [problems[0], problems[0]], config, tmp_path)
    with pytest.raises(ValueError, match="share a step"):
        probe_checkpoints([(1, sft_dir / "model"), (1, sft_dir / "model")], problems[:1], config, tmp_path)
