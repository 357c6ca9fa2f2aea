"""Offline self-distillation (SPEC 2.6): harvest, S_LP under the student, selection rules, end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import make_easy_problems, train_warm_model
from pydantic import ValidationError

from vibethinker.data.records import Problem, load_problems
from vibethinker.distill import (
    DistillConfig,
    ScoredTrace,
    Trace,
    harvest_with_stats,
    length_bucket,
    nearest_rank,
    run_self_distillation,
    select_traces,
    selection_reasons,
    student_logprob_scores,
)
from vibethinker.distill import harvest as harvest_module
from vibethinker.distill.harvest import sampling_params
from vibethinker.generate import make_generator
from vibethinker.model import load_model, load_tokenizer
from vibethinker.prompts import render_prompt, render_response
from vibethinker.sft import SFTConfig
from vibethinker.sft.packing import collate_rows, tokenize_sample
from vibethinker.sft.trainer import micro_batch_loss
from vibethinker.verify import score

# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def easy_problems() -> list[Problem]:
    return make_easy_problems(24)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, easy_problems) -> dict[str, str]:
    """A random base (the student) and two checkpoints of one SFT run on it (the teachers: mid-run and final)."""
    sft = train_warm_model(tmp_path_factory.mktemp("distill"), easy_problems, epochs=60, save_every=120)
    return {"base": str(sft.parent / "base"), "mid": str(sft / "checkpoints" / "step-000120"),
            "final": str(sft / "model")}


def _harvest_config(**kw) -> DistillConfig:
    base = dict(samples_per_problem=6, max_new_tokens=21, generation_batch_size=64, seed=0, device="cpu")
    return DistillConfig(**{**base, **kw})


def _trace(problem_id: str, value: float, num_tokens: int = 100, domain: str = "math", text: str = "") -> ScoredTrace:
    return ScoredTrace(Trace(problem_id, domain, "sub", "teacher", text or f"{problem_id}:{value}", num_tokens), value)


def _select_config(**kw) -> DistillConfig:
    base = dict(length_bucket_edges=[0, 256, 1024], min_tokens=0, drop_top_fraction=0.0, keep_low_quantile=0.0,
                keep_high_quantile=1.0, max_traces_per_problem=None)
    return DistillConfig(**{**base, **kw})


def _kept_texts(scored, config) -> set[str]:
    return {s.trace.text for s in select_traces(scored, config)[0]}


# ---------------------------------------------------------------- S_LP


def test_slp_equals_the_mean_response_nll_of_a_manual_forward_pass(tiny_checkpoint, addition_problems):
    tokenizer = load_tokenizer(tiny_checkpoint)
    problems = {p.id: p for p in addition_problems[:4]}
    traces = [Trace(p.id, p.domain, p.subdomain, "t", text, 0) for p in problems.values() for text in p.traces]
    traces.append(Trace("add-0", "math", "addition", "t", "<think>\nshort\n</think> \\boxed{1}", 0))
    scores = student_logprob_scores(tiny_checkpoint, None, problems, traces, batch_size=3, device="cpu")

    model = load_model(tiny_checkpoint, device="cpu", dtype=torch.float32).eval()
    for trace, value in zip(traces, scores):
        prompt_text, response_text = render_response(tokenizer, problems[trace.problem_id], trace.text)
        prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        response = tokenizer(response_text, add_special_tokens=False)["input_ids"]
        assert response[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")  # the end of turn is scored too
        with torch.no_grad():
            logits = model(torch.tensor([prompt + response])).logits[0].float()
        logp = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
        manual = -logp.gather(1, torch.tensor(response)[:, None]).mean().item()
        assert value == pytest.approx(manual, abs=1e-5)
        # ... and it is the loss SFT would train on for this trace alone
        sample = tokenize_sample(tokenizer, problems[trace.problem_id], trace.text)
        batch = collate_rows([sample], [[0]], None, tokenizer.pad_token_id)
        with torch.no_grad():
            sft_loss = micro_batch_loss(model, batch, torch.device("cpu"), batch.n_target_tokens)[0].item()
        assert value == pytest.approx(sft_loss, abs=1e-5)

    unbatched = student_logprob_scores(model, tokenizer, problems, traces, batch_size=1)
    assert scores == pytest.approx(unbatched, abs=1e-5)  # padding never leaks into a score
    assert len(set(scores)) == len(scores)
    with pytest.raises(KeyError, match="unknown problem 'nope'"):
        student_logprob_scores(model, tokenizer, problems, [Trace("nope", "math", "a", "t", "x", 1)])
    with pytest.raises(ValueError, match="needs its tokenizer"):
        student_logprob_scores(model, None, problems, traces)


# ---------------------------------------------------------------- selection rules


def test_length_bucket_edges():
    edges = [0, 256, 1024, 4096]
    cases = {0: 0, 1: 0, 255: 0, 256: 1, 1023: 1, 1024: 2, 4095: 2, 4096: 3, 10**7: 3}
    assert {n: length_bucket(n, edges) for n in cases} == cases
    with pytest.raises(ValueError, match="below the first bucket edge"):
        length_bucket(-1, edges)
    for bad in ([256, 1024], [0, 256, 256], [0, 512, 256], []):
        with pytest.raises(ValidationError, match="length_bucket_edges"):
            DistillConfig(length_bucket_edges=bad)


def test_config_rejects_bad_band_and_weights():
    with pytest.raises(ValidationError, match="must not exceed"):
        DistillConfig(keep_low_quantile=0.9, keep_high_quantile=0.5)
    with pytest.raises(ValidationError, match=">= 0"):
        DistillConfig(domain_weights={"math": -1.0, "code": 2.0})
    with pytest.raises(ValidationError, match="positive sum"):
        DistillConfig(domain_weights={"math": 0.0})
    with pytest.raises(ValidationError, match="extra"):
        DistillConfig(keep_band=[0.1, 0.2])


def test_nearest_rank_quantiles():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert [nearest_rank(values, p) for p in (0.0, 0.05, 0.1, 0.11, 0.5, 0.7, 0.98, 1.0)] == \
        [1.0, 1.0, 1.0, 2.0, 5.0, 7.0, 10.0, 10.0]  # 0.7 * 10 is 7.000000000000001 in floats; the rank is still 7
    assert nearest_rank([4.0], 0.5) == 4.0
    with pytest.raises(ValueError):
        nearest_rank([], 0.5)


def test_outlier_drop_and_quantile_band_within_each_group():
    values = [3, 9, 1, 10, 6, 2, 8, 5, 7, 4]  # one group (math, [0,256)): S_LP 1..10, shuffled
    scored = [_trace(f"p{v}", float(v), num_tokens=100) for v in values]
    scored += [_trace(f"q{v}", float(v), num_tokens=300) for v in (20, 30, 40)]  # bucket [256,1024)
    scored += [_trace("short", 99.0, num_tokens=3)]
    config = _select_config(min_tokens=4, drop_top_fraction=0.1, keep_low_quantile=0.5, keep_high_quantile=0.8)
    reasons = dict(zip((s.trace.problem_id for s in scored), selection_reasons(scored, config)))
    # group 1: floor(0.1 * 10) = 1 outlier (10); band over the other m = 9: Q(.5) = s_5 = 5, Q(.8) = s_8 = 8
    assert reasons["p10"] == "outlier"
    assert [v for v in range(1, 10) if reasons[f"p{v}"] == "kept"] == [5, 6, 7, 8]
    assert [v for v in range(1, 10) if reasons[f"p{v}"] == "below_band"] == [1, 2, 3, 4]
    assert reasons["p9"] == "above_band"
    # group 2: floor(0.3) = 0 outliers; m = 3: Q(.5) = s_2 = 30, Q(.8) = s_3 = 40
    assert (reasons["q20"], reasons["q30"], reasons["q40"]) == ("below_band", "kept", "kept")
    assert reasons["short"] == "too_short"  # would have been an outlier, but the length rule comes first

    ties = [_trace(f"t{i}", v) for i, v in enumerate([1.0, 2.0, 2.0, 3.0])]  # Q(.5) = s_2 = 2: both 2s stay
    assert selection_reasons(ties, _select_config(keep_low_quantile=0.5)) == ["below_band", "kept", "kept", "kept"]
    ranks = [_trace(f"r{i}", float(i)) for i in range(50)]  # floor(0.02 * 50) = 1 outlier: the highest only
    assert [s.trace.problem_id for s, r in zip(ranks, selection_reasons(ranks, _select_config(
        drop_top_fraction=0.02))) if r == "outlier"] == ["r49"]


def test_per_problem_cap_keeps_the_highest_scores():
    scored = [_trace("a", float(v), text=f"a{v}") for v in (3, 1, 5, 2, 4)] + [_trace("b", 0.5, text="b")]
    kept, report = select_traces(scored, _select_config(max_traces_per_problem=2))
    assert [s.trace.text for s in kept] == ["a5", "a4", "b"]  # the two best of 'a', in input order
    assert report["removed"]["problem_cap"] == 3 and report["kept"] == 3 and report["kept_problems"] == 2


def test_domain_mix_hits_the_proportions_deterministically():
    scored = [_trace(f"m{i}", float(i)) for i in range(30)] + [_trace(f"c{i}", float(i), domain="code")
                                                               for i in range(10)]

    def per_domain(config):
        kept = select_traces(scored, config)[0]
        return {d: sum(s.trace.domain == d for s in kept) for d in ("math", "code")}

    assert per_domain(_select_config(domain_weights={"math": 0.5, "code": 0.5})) == {"math": 10, "code": 10}
    assert per_domain(_select_config(domain_weights={"math": 3, "code": 1})) == {"math": 30, "code": 10}
    # T = min(30 / 0.8, 10 / 0.2) = 37.5: math keeps floor(30.0) = 30, code floor(7.5) = 7
    assert per_domain(_select_config(domain_weights={"math": 0.8, "code": 0.2})) == {"math": 30, "code": 7}
    assert per_domain(_select_config(domain_weights={"math": 1.0})) == {"math": 30, "code": 0}
    kept, report = select_traces(scored, _select_config(domain_weights={"math": 0.5, "stem": 0.5}))
    assert len(kept) == 30 and report["domain_mix"]["missing"] == ["stem"]
    assert report["removed"]["domain_mix"] == 10

    half = {"math": 0.5, "code": 0.5}
    first = _kept_texts(scored, _select_config(domain_weights=half, seed=1))
    assert first == _kept_texts(scored, _select_config(domain_weights=half, seed=1))
    assert first != _kept_texts(scored, _select_config(domain_weights=half, seed=2))


def test_report_counts_add_up():
    rng = random.Random(0)
    scored = [_trace(f"p{rng.randint(0, 15)}", rng.random(), num_tokens=rng.choice([2, 50, 300, 2000]),
                     domain=rng.choice(["math", "code", "stem"]), text=f"trace-{i}") for i in range(200)]
    config = _select_config(min_tokens=10, drop_top_fraction=0.1, keep_low_quantile=0.3, keep_high_quantile=0.9,
                            max_traces_per_problem=3, domain_weights={"math": 0.5, "code": 0.25, "stem": 0.25})
    kept, report = select_traces(scored, config)
    assert all(report["removed"].values()), "every filter should act on this set"

    def adds_up(counts):
        return counts["total"] == counts["kept"] + sum(counts["removed"].values())

    assert report["total"] == 200 and report["kept"] == len(kept) and adds_up(report)
    for part in ("per_domain", "per_group"):
        assert all(adds_up(c) for c in report[part].values())
        assert sum(c["total"] for c in report[part].values()) == 200
        assert sum(c["kept"] for c in report[part].values()) == len(kept)
        for reason, n in report["removed"].items():
            assert sum(c["removed"][reason] for c in report[part].values()) == n
    group = report["per_group"]["math/[256,1024)"]
    assert group["score_quantiles"]["0.0"] <= group["band"][0] <= group["band"][1] <= group["score_quantiles"]["1.0"]
    assert report["domain_mix"]["after"] == {d: c["kept"] for d, c in report["per_domain"].items() if c["kept"]}
    json.dumps(report)  # selection.json must be writable as plain JSON


# ---------------------------------------------------------------- harvest


def _counting_make_generator(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = harvest_module.make_generator

    def counting(teacher, **kw):
        calls.append(str(teacher))
        return real(teacher, **kw)

    monkeypatch.setattr(harvest_module, "make_generator", counting)
    return calls


def test_harvest_keeps_verified_unique_responses_and_reuses_its_cache(tmp_path, monkeypatch, teachers,
                                                                      easy_problems):
    problems, config = easy_problems[:8], _harvest_config()
    calls = _counting_make_generator(monkeypatch)
    result = harvest_with_stats([teachers["final"]], problems, config, tmp_path / "cache")
    assert calls == [teachers["final"]]

    # The same sampling, done independently, and the rules applied by hand.
    generator = make_generator(teachers["final"], batch_size=64, device="cpu")
    completions = generator.generate([render_prompt(generator.tokenizer, p) for p in problems],
                                     sampling_params(config))
    expected, seen, wrong, duplicates = [], set(), 0, 0
    for c in completions:
        problem = problems[c.prompt_index]
        if c.finish_reason != "stop" or not score(problem, c.text).correct:
            wrong += c.finish_reason == "stop"
            continue
        if (problem.id, c.text) in seen:
            duplicates += 1
            continue
        seen.add((problem.id, c.text))
        expected.append((problem.id, c.text, c.num_tokens))
    assert wrong and duplicates and expected, "the teacher should give right, wrong and repeated answers"
    assert [(t.problem_id, t.text, t.num_tokens) for t in result.traces] == expected
    counts = result.counts[teachers["final"]]
    assert counts["kept"] == len(expected) and counts["duplicate"] == duplicates and counts["wrong"] == wrong
    assert counts["sampled"] == len(problems) * 6 == sum(v for k, v in counts.items() if k != "sampled")
    assert all(t.teacher == teachers["final"] and t.domain == "math" for t in result.traces)

    again = harvest_with_stats([teachers["final"]], problems, config, tmp_path / "cache")
    assert calls == [teachers["final"]] and again.cache_hits == [teachers["final"]]
    assert again.traces == result.traces
    no_dedupe = harvest_with_stats([teachers["final"]], problems, _harvest_config(dedupe=False), tmp_path / "cache")
    assert len(calls) == 1 and len(no_dedupe.traces) == len(expected) + duplicates  # dedupe is not in the key
    harvest_with_stats([teachers["final"]], problems, _harvest_config(seed=1), tmp_path / "cache")
    assert len(calls) == 2  # other sampling settings: sample again


def test_harvest_never_keeps_responses_cut_at_the_length_limit(tmp_path, teachers, easy_problems):
    # 20 new tokens cut most answers right before their end-of-turn token: complete text, verified correct, cut.
    result = harvest_with_stats([teachers["final"]], easy_problems[:8], _harvest_config(max_new_tokens=20),
                                tmp_path)
    by_id = {p.id: p for p in easy_problems}
    cache = Path(result.cache_files[teachers["final"]])
    rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    cut_but_correct = [r for r in rows if r["finish_reason"] == "length" and score(by_id[r["problem_id"]],
                                                                                   r["text"]).correct]
    assert cut_but_correct and result.traces
    kept = {(t.problem_id, t.text) for t in result.traces}
    assert not kept & {(r["problem_id"], r["text"]) for r in cut_but_correct}
    assert result.counts[teachers["final"]]["truncated"] == sum(r["finish_reason"] == "length" for r in rows)
    stopped = {(r["problem_id"], r["text"]) for r in rows if r["finish_reason"] == "stop"}
    assert kept <= stopped


# ---------------------------------------------------------------- end to end


def _e2e_config(**kw) -> DistillConfig:
    base = dict(samples_per_problem=4, max_new_tokens=24, seed=0, device="cpu", length_bucket_edges=[0, 21, 23],
                min_tokens=4, drop_top_fraction=0.1, keep_low_quantile=0.25, keep_high_quantile=1.0,
                max_traces_per_problem=2,
                sft=SFTConfig(learning_rate=1e-3, max_steps=2, seq_len=128, rows_per_micro_batch=4, packing=False,
                              seed=0, device="cpu"))
    return DistillConfig(**{**base, **kw})


def test_run_self_distillation_end_to_end(tmp_path, teachers, easy_problems):
    out = tmp_path / "run"
    summary = run_self_distillation(teachers["base"], [teachers["mid"], teachers["final"]], easy_problems,
                                    _e2e_config(), out)
    rows = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    selection = json.loads((out / "selection.json").read_text())
    train = load_problems(out / "distill_train.jsonl")
    assert summary["harvested"] == len(rows) == selection["selection"]["total"]
    assert {r["teacher"] for r in rows} == {teachers["mid"], teachers["final"]}
    kept_rows = [r for r in rows if r["reason"] == "kept"]
    assert 0 < summary["kept"] == len(kept_rows) == sum(len(p.traces) for p in train) < len(rows)
    assert {(p.id, t) for p in train for t in p.traces} == {(r["problem_id"], r["text"]) for r in kept_rows}
    assert all(len(p.traces) <= 2 for p in train)
    for p in train:  # highest S_LP first
        scores = [next(r["score"] for r in kept_rows if r["problem_id"] == p.id and r["text"] == t) for t in p.traces]
        assert scores == sorted(scores, reverse=True)
    by_id = {p.id: p for p in easy_problems}
    assert all(score(by_id[r["problem_id"]], r["text"]).correct for r in rows)
    removed = {reason: sum(r["reason"] == reason for r in rows) for reason in selection["selection"]["removed"]}
    assert removed == selection["selection"]["removed"] == summary["removed"]
    assert set(selection["harvest"]["per_teacher"]) == {teachers["mid"], teachers["final"]}

    assert summary["sft"]["steps"] == 2 and summary["model"] == str(out / "sft" / "model")
    model, tokenizer = load_model(out / "sft" / "model", device="cpu"), load_tokenizer(out / "sft" / "model")
    ids = tokenizer(render_prompt(tokenizer, easy_problems[0]), return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(ids).logits).all()
    student = load_model(teachers["base"], device="cpu")
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), student.parameters()))


def test_refuses_when_no_trace_survives(tmp_path, teachers, easy_problems):
    problems = easy_problems[:4]
    with pytest.raises(ValueError, match="no verified-correct, untruncated trace"):
        run_self_distillation(teachers["base"], [teachers["base"]], problems,
                              _e2e_config(samples_per_problem=2, max_new_tokens=8), tmp_path / "random")
    with pytest.raises(ValueError, match="all .* harvested traces were filtered out"):
        run_self_distillation(teachers["base"], [teachers["final"]], problems, _e2e_config(min_tokens=10**6),
                              tmp_path / "strict")
    assert (tmp_path / "strict" / "selection.json").exists() and (tmp_path / "strict" / "traces.jsonl").exists()
    assert not (tmp_path / "strict" / "distill_train.jsonl").exists()
    with pytest.raises(ValueError, match="at least one teacher"):
        run_self_distillation(teachers["base"], [], problems, _e2e_config(), tmp_path / "none")
    with pytest.raises(ValueError, match="occurs twice"):
        run_self_distillation(teachers["base"], [teachers["final"]], problems + problems[:1], _e2e_config(),
                              tmp_path / "dup")
