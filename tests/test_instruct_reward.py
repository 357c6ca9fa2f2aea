"""Instruct RL reward: judge score parsing, the rubric template, rule + rubric mixing, both judge clients (a real
tiny HF checkpoint and a real local HTTP server) and a short train_rl run with the reward."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion
from vibethinker.rl.config import RLConfig
from vibethinker.rl.instruct_reward import (
    DEFAULT_RUBRIC,
    check_graded_config,
    instruct_reward,
    load_rubric_template,
    parse_score,
    problem_rubric,
    render_rubric_prompt,
)
from vibethinker.rl.judge import JudgeError, LocalHFJudge, OpenAICompatibleJudge
from vibethinker.rl.mgpo import mgpo_advantages
from vibethinker.rl.rollout import score_group
from vibethinker.rl.trainer import train_rl
from vibethinker.utils.run_log import read_metrics

CONSTRAINTS = [{"kind": "letter_case", "case": "lower"}, {"kind": "keywords", "keywords": ["rain"]},
               {"kind": "word_count", "n": 3, "relation": "at_least"}]


def instruct_problem(pid: str = "inst-1", constraints=CONSTRAINTS, **meta) -> Problem:
    if constraints is not None:
        meta["constraints"] = constraints
    return Problem(id=pid, domain="instruct", subdomain="format", difficulty=1, source="test",
                   problem="Describe rain in lowercase, in at least three words.", meta=meta)


def done(text: str, finish: str = "stop") -> Completion:
    return Completion(0, 0, [1, 2], text, [0.0, 0.0], finish)


def response_of(prompt: str) -> str:
    """The response section of a rendered rubric prompt (the template's own delimiters)."""
    return prompt.split("[Response]\n", 1)[1].split("\n[End of response]", 1)[0]


class ScriptedJudge:
    """A deterministic stand-in for a remote judge: the reply is looked up by the response it is shown."""

    def __init__(self, replies: dict[str, str]):
        self.replies, self.calls = replies, []

    def grade(self, prompts: list[str]) -> list[str]:
        self.calls.append(list(prompts))
        return [self.replies[response_of(p)] for p in prompts]


# ---- score parsing ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, score, status", [
    ("The response is fine.\nSCORE: 7", 7, "ok"),
    ("SCORE: 10", 10, "ok"),
    ("SCORE: 1\n", 1, "ok"),
    ("**SCORE:** 8", 8, "ok"),
    ("**Score**: [6]", 6, "ok"),
    ("score = 9/10", 9, "ok"),
    ("SCORE: 4.0", 4, "ok"),
    ("SCORE: 7.", 7, "ok"),
    ("<think>first guess SCORE: 2</think>\nOn reflection it is good.\nSCORE: 9", 9, "ok"),  # last match wins
    ("SCORE: 8\nSCORE: 11", None, "invalid"),  # the last label decides, even when an earlier one was valid
    ("SCORE: 0", None, "invalid"),
    ("SCORE: -3", None, "invalid"),
    ("SCORE: 7.5", None, "invalid"),
    ("SCORE: N/A", None, "invalid"),
    ("SCORE:", None, "invalid"),
    ("I would rate it highly, 8 out of 10.", None, "missing"),
    ("", None, "missing"),
    ("SCORES_TOTAL: 5", None, "missing"),
])
def test_parse_score(reply, score, status):
    parsed = parse_score(reply)
    assert (parsed.score, parsed.status) == (score, status)


def test_score_normalises_to_unit_interval_and_missing_is_minimum():
    assert parse_score("SCORE: 1").normalised == 0.0
    assert parse_score("SCORE: 10").normalised == 1.0
    assert parse_score("SCORE: 4").normalised == pytest.approx(1 / 3)
    assert parse_score("no score").normalised == 0.0 and parse_score("SCORE: 12").normalised == 0.0


# ---- the rubric template ------------------------------------------------------------------------------------------

def test_template_renders_instruction_response_and_rubric():
    template = load_rubric_template()
    assert "<!--" not in template and "{{instruction}}" in template  # the documentation comment is stripped
    prompt = render_rubric_prompt(template, "Write a haiku about rain.", "  Rain on the roof.  ", DEFAULT_RUBRIC)
    assert "Write a haiku about rain." in prompt and "Helpfulness" in prompt and "Instruction following" in prompt
    assert response_of(prompt) == "Rain on the roof."
    assert "{{" not in prompt
    assert prompt.rstrip().endswith("SCORE: <integer 1-10>`.")


def test_template_fills_in_one_pass():
    # A response that quotes a placeholder must reach the judge verbatim, not expanded into the rubric.
    prompt = render_rubric_prompt(load_rubric_template(), "Say {{response}}", "see {{rubric}}", "be kind")
    assert "Say {{response}}" in prompt and response_of(prompt) == "see {{rubric}}"
    assert prompt.count("be kind") == 1


def test_problem_rubric_from_meta_or_default():
    assert problem_rubric(instruct_problem()) == DEFAULT_RUBRIC
    assert problem_rubric(instruct_problem(rubric="Be concise.")) == "Be concise."
    assert problem_rubric(instruct_problem(rubric=["Be concise.", "Use rhyme."])) == "1. Be concise.\n2. Use rhyme."
    with pytest.raises(ValueError, match=r"problem inst-9: field 'meta.rubric'"):
        problem_rubric(instruct_problem("inst-9", rubric=["ok", ""]))


def test_custom_template_must_have_every_placeholder(tmp_path):
    bad = tmp_path / "judge.md"
    bad.write_text("<!-- doc -->\nInstruction: {{instruction}}\nResponse: {{response}}\n")
    with pytest.raises(ValueError, match=r"judge\.md: the rubric template lacks the placeholder\(s\) \{\{rubric\}\}"):
        load_rubric_template(str(bad))
    typo = tmp_path / "typo.md"
    typo.write_text("{{instruction}} {{response}} {{rubric}} {{respnse}}")
    with pytest.raises(ValueError, match=r"typo\.md: unknown placeholder\(s\) \['respnse'\]"):
        load_rubric_template(str(typo))
    with pytest.raises(ValueError, match="lacks the placeholder"):
        instruct_reward(ScriptedJudge({}), template_path=bad)


# ---- the reward ---------------------------------------------------------------------------------------------------

GROUP = [
    done("<think>plan</think>rain falls softly here"),  # 3/3 constraints
    done("<think>plan</think>Rain falls softly here"),  # 2/3: not lowercase
    done("<think>plan</think>SUN"),  # 0/3
    done("rain falls softly here, no think block"),  # no </think>: no answer
    done("<think>plan</think>rain rain rain", finish="length"),  # cut at the length limit
]
REPLIES = {"rain falls softly here": "Vivid and lowercase.\nSCORE: 10", "Rain falls softly here": "SCORE: 4",
           "SUN": "I cannot grade this."}


def test_rule_and_rubric_mix_with_one_judge_call_per_group():
    judge = ScriptedJudge(REPLIES)
    reward = instruct_reward(judge, rule_weight=0.5)
    result = reward(instruct_problem(), GROUP)
    assert result.rewards == pytest.approx([1.0, 0.5 * 2 / 3 + 0.5 * 3 / 9, 0.0, 0.0, 0.0])
    assert result.correct == [True, False, False, False, False]
    assert len(judge.calls) == 1 and [response_of(p) for p in judge.calls[0]] == list(REPLIES)  # no empty/cut ones
    assert "Describe rain in lowercase" in judge.calls[0][0]
    assert reward.stats == {"completions": 5, "truncated": 1, "no_answer": 1, "judged": 3, "score_ok": 2,
                            "score_missing": 1, "score_invalid": 0}


def test_rule_weight_shifts_the_mix():
    result = instruct_reward(ScriptedJudge(REPLIES), rule_weight=0.25)(instruct_problem(), GROUP[:3])
    assert result.rewards == pytest.approx([1.0, 0.25 * 2 / 3 + 0.75 * 3 / 9, 0.0])


def test_rule_only_without_judge_gives_constraint_fractions():
    result = instruct_reward(None)(instruct_problem(), GROUP)
    assert result.rewards == pytest.approx([1.0, 2 / 3, 0.0, 0.0, 0.0])
    assert result.correct == [True, False, False, False, False]


def test_rule_weight_one_skips_the_judge_for_constrained_problems():
    judge = ScriptedJudge(REPLIES)
    result = instruct_reward(judge, rule_weight=1.0)(instruct_problem(), GROUP)
    assert result.rewards == pytest.approx([1.0, 2 / 3, 0.0, 0.0, 0.0]) and judge.calls == []


def test_rubric_only_problem_correct_from_half_score():
    replies = {"good": "SCORE: 6", "fair": "SCORE: 5", "bad": "SCORE: 99"}
    reward = instruct_reward(ScriptedJudge(replies))
    result = reward(instruct_problem(constraints=None), [done(f"<think>t</think>{r}") for r in replies])
    assert result.rewards == pytest.approx([5 / 9, 4 / 9, 0.0])
    assert result.correct == [True, False, False]
    assert reward.stats["score_invalid"] == 1


def test_require_think_false_grades_the_whole_text():
    result = instruct_reward(None, require_think=False)(instruct_problem(), [done("rain falls softly here")])
    assert result.rewards == [1.0] and result.correct == [True]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"problem open-1: no rule constraints .* and no judge"):
        instruct_reward(None)(instruct_problem("open-1", constraints=None), GROUP)
    with pytest.raises(ValueError, match=r"problem bad-1: field 'meta.constraints': unknown constraint kind"):
        instruct_reward(None)(instruct_problem("bad-1", constraints=[{"kind": "rhymes"}]), GROUP)

    class ShortJudge:
        def grade(self, prompts):
            return prompts[:1]

    with pytest.raises(ValueError, match=r"problem inst-1: the judge returned 1 replies for 3 prompts"):
        instruct_reward(ShortJudge())(instruct_problem(), GROUP)
    with pytest.raises(ValueError, match="rule_weight"):
        instruct_reward(None, rule_weight=1.5)


def test_check_graded_config_requires_plain_group_advantages():
    check_graded_config(RLConfig(mgpo_lambda=0))
    with pytest.raises(ValueError, match=r"mgpo_lambda=2.0.*SPEC 2.7.*mgpo_lambda: 0"):
        check_graded_config(RLConfig())


# ---- the local HF judge -------------------------------------------------------------------------------------------

def test_local_hf_judge_runs_end_to_end_and_garbage_counts_as_missing(tiny_checkpoint):
    judge = LocalHFJudge(tiny_checkpoint, max_new_tokens=6, batch_size=2, device="cpu")
    assert judge.render("hello").startswith("<|im_start|>user\nhello<|im_end|>")
    replies = judge.grade(["judge this", "judge that"])
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)
    reward = instruct_reward(judge)
    group = [done("<think>t</think>light rain"), done("<think>t</think>heavy rain today")]
    result = reward(instruct_problem(constraints=None), group)
    assert result.rewards == [0.0, 0.0] and result.correct == [False, False]  # a random model writes no SCORE line
    assert reward.stats["judged"] == 2 and reward.stats["score_missing"] + reward.stats["score_invalid"] == 2


# ---- the OpenAI-compatible judge against a real local HTTP server -------------------------------------------------

class ChatServer:
    """A chat-completions endpoint on 127.0.0.1; ``respond(index, body)`` -> (status, reply text or JSON object)."""

    def __init__(self, respond):
        self.respond, self.requests, self.lock = respond, [], threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    index = len(server.requests)
                    server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, reply = server.respond(index, body)
                payload = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    servers = []

    def start(respond):
        servers.append(ChatServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def chat(content: str) -> dict:
    return {"id": "c1", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def test_openai_judge_sends_standard_body_and_keeps_order(chat_server, monkeypatch):
    monkeypatch.setenv("VT_TEST_JUDGE_KEY", "sk-test")
    server = chat_server(lambda i, body: (200, chat(f"graded {body['messages'][0]['content']}\nSCORE: 8")))
    judge = OpenAICompatibleJudge(server.base_url + "/", "judge-7b", api_key_env="VT_TEST_JUDGE_KEY", concurrency=3,
                                  max_tokens=256)
    prompts = [f"prompt {i}" for i in range(6)]
    assert judge.grade(prompts) == [f"graded prompt {i}\nSCORE: 8" for i in range(6)]
    assert len(server.requests) == 6
    for request in server.requests:
        assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
        assert request["body"]["model"] == "judge-7b" and request["body"]["temperature"] == 0.0
        assert request["body"]["max_tokens"] == 256
        assert request["body"]["messages"] == [{"role": "user", "content": request["body"]["messages"][0]["content"]}]
    assert sorted(r["body"]["messages"][0]["content"] for r in server.requests) == prompts


def test_openai_judge_retries_429_then_succeeds(chat_server):
    server = chat_server(lambda i, body: (429, {"error": "slow down"}) if i == 0 else (200, chat("SCORE: 6")))
    judge = OpenAICompatibleJudge(server.base_url, "m", api_key_env=None, backoff_s=0.01)
    assert judge.grade(["p"]) == ["SCORE: 6"]
    assert len(server.requests) == 2 and server.requests[0]["auth"] is None


def test_openai_judge_gives_up_on_500_forever_with_a_clear_error(chat_server):
    server = chat_server(lambda i, body: (500, {"error": "model crashed"}))
    judge = OpenAICompatibleJudge(server.base_url, "m", api_key_env=None, max_retries=2, backoff_s=0.01)
    with pytest.raises(JudgeError) as error:
        judge.grade(["p"])
    message = str(error.value)
    assert f"{server.base_url}/chat/completions" in message and "HTTP 500" in message and "3 attempts" in message
    assert "model crashed" in message and len(server.requests) == 3


def test_openai_judge_fails_fast_on_client_errors_and_bad_replies(chat_server):
    server = chat_server(lambda i, body: (404, {"error": "no model named m"}) if i == 0 else (200, {"id": "x"}))
    judge = OpenAICompatibleJudge(server.base_url, "m", api_key_env=None, backoff_s=0.01)
    with pytest.raises(JudgeError, match=r"/v1/chat/completions failed with HTTP 404: .*no model named m"):
        judge.grade(["p"])
    assert len(server.requests) == 1  # 4xx other than 429 is not retried
    with pytest.raises(JudgeError, match=r"HTTP 200 but not a chat completion"):
        judge.grade(["p"])


def test_openai_judge_needs_its_key(monkeypatch):
    monkeypatch.delenv("VT_MISSING_KEY", raising=False)
    with pytest.raises(ValueError, match=r"environment variable VT_MISSING_KEY is not set.*api_key_env=None"):
        OpenAICompatibleJudge("http://127.0.0.1:9/v1", "m", api_key_env="VT_MISSING_KEY")


def test_instruct_reward_through_the_http_judge(chat_server):
    server = chat_server(lambda i, body: (200, chat(REPLIES[response_of(body["messages"][0]["content"])])))
    judge = OpenAICompatibleJudge(server.base_url, "m", api_key_env=None, concurrency=2)
    result = instruct_reward(judge)(instruct_problem(), GROUP)
    assert result.rewards == pytest.approx([1.0, 0.5 * 2 / 3 + 0.5 * 3 / 9, 0.0, 0.0, 0.0])
    assert len(server.requests) == 3


# ---- a short RL run with the reward -------------------------------------------------------------------------------

def test_graded_rewards_become_plain_group_advantages():
    config = RLConfig(mgpo_lambda=0, group_size=5)
    result = score_group(instruct_problem(), GROUP, config, instruct_reward(ScriptedJudge(REPLIES)))
    advantages, weight = mgpo_advantages(result.rewards, result.correct, config.mgpo_lambda)
    assert weight == 1.0
    assert advantages[0] > advantages[1] > advantages[2] == advantages[3] == advantages[4]
    assert sum(advantages) == pytest.approx(0.0, abs=1e-6)


def test_train_rl_with_rule_reward_and_plain_group_advantages(tmp_path, tiny_checkpoint):
    problems = [instruct_problem(f"inst-{i}", constraints=[{"kind": "forbidden_words", "words": ["zebra"]},
                                                            {"kind": "word_count", "n": 2, "relation": "at_least"}])
                for i in range(4)]
    config = RLConfig(mgpo_lambda=0, group_size=2, prompts_per_step=2, max_steps=2, max_new_tokens=12,
                      learning_rate=1e-3, micro_batch_size=4, generation_batch_size=8, seed=1, device="cpu")
    check_graded_config(config)
    reward = instruct_reward(None, require_think=False)
    summary = train_rl(tiny_checkpoint, problems, config, tmp_path / "rl", reward_fn=reward)
    assert summary["finished"] and summary["steps"] == 2
    rows = [r for r in read_metrics(tmp_path / "rl" / "metrics.jsonl") if "reward_mean" in r]
    assert len(rows) == 2 and all(0.0 <= r["reward_mean"] <= 1.0 for r in rows)
    assert all(r["mgpo_weight_mean"] == 1.0 for r in rows)  # lambda 0: plain group-relative advantages
    assert reward.stats["completions"] == 2 * 2 * 2  # the trainer scored every rollout with this reward
    assert (tmp_path / "rl" / "model" / "config.json").exists()
