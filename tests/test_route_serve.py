"""The router as users run it: two real servers on 127.0.0.1 (a trained tiny reasoner as the local model, a
differently trained checkpoint as the upstream), the front called with the official openai client."""

from __future__ import annotations

import httpx
import pytest

from conftest import make_easy_problems, train_warm_model
from test_serve import QUESTION, Server, _free_port

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    local = train_warm_model(tmp_path_factory.mktemp("local"), make_easy_problems(40), epochs=80) / "model"
    other = train_warm_model(tmp_path_factory.mktemp("upstream"), make_easy_problems(40, seed=3), epochs=20)
    upstream = Server(other / "model")
    front = Server(local, "--upstream", upstream.url + "/v1", "--upstream-model", "tiny", "--route-k", "4",
                   "--route-threshold", "0.6")
    yield front, upstream, local
    front.stop()
    upstream.stop()


def _route(response):
    return response.model_dump()["vibethinker"]["route"]


def test_agreeing_samples_answer_locally_and_stop_early(servers):
    front, _, _ = servers
    response = front.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": QUESTION}],
                                                    temperature=0, max_tokens=40)
    route = _route(response)
    # greedy: every sample agrees, so the third finished one (ceil(0.6 * 4) = 3 votes) decides and the fourth stops
    assert route["answered_by"] == "local" and route["reason"] == "confident"
    assert route["stopped_early"] and route["samples"] == 3 and route["confidence"] == 0.75
    assert route["local_tokens"] > 0 and route["upstream_tokens"] == 0
    assert "\\boxed{7}" in response.choices[0].message.content


def test_open_domain_questions_go_straight_upstream(servers):
    front, upstream, _ = servers
    response = front.client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Who wrote the play Hamlet?"}], temperature=0,
        max_tokens=12)
    route = _route(response)
    assert route["answered_by"] == "upstream" and route["reason"] == "open-domain question"
    assert route["local_tokens"] == 0 and route["upstream_tokens"] > 0
    direct = upstream.client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Who wrote the play Hamlet?"}], temperature=0,
        max_tokens=12)
    assert response.choices[0].message.content == direct.choices[0].message.content  # the upstream's own answer


def test_no_final_answer_escalates_and_metrics_count_both_sides(servers):
    front, _, _ = servers
    response = front.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": QUESTION}],
                                                    temperature=0, max_tokens=4)
    route = _route(response)  # four tokens hold no \boxed{} answer
    assert route["answered_by"] == "upstream" and route["reason"] == "no final answer"
    # after two answerless samples the other two cannot bring the 3 votes needed: sampling stops there
    assert route["samples"] == 2 and route["stopped_early"] and 8 <= route["local_tokens"] <= 16
    assert route["upstream_tokens"] > 0
    metrics = httpx.get(front.url + "/metrics").text
    assert 'routed_requests_total{answered_by="local",reason="confident"}' in metrics
    assert 'routed_requests_total{answered_by="upstream",reason="no final answer"}' in metrics
    assert 'route_tokens_total{side="local"}' in metrics


def test_upstream_failure_is_an_error_not_a_local_answer(servers):
    _, _, local = servers
    dead = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    broken = Server(local, "--upstream", dead, "--upstream-model", "big",
                    "--upstream-retries", "1", "--upstream-timeout", "5")
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            broken.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Who wrote "
                                                                           "Hamlet?"}], max_tokens=8)
        assert caught.value.status_code == 502
        message = caught.value.body["message"]
        assert dead in message and "'big'" in message and "after 2 attempt(s)" in message
    finally:
        broken.stop()


def test_thinking_budget_applies_to_the_local_samples(servers):
    front, _, _ = servers
    response = front.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": QUESTION}],
                                                    temperature=0, max_tokens=40,
                                                    extra_body={"thinking_token_budget": 3})
    route = _route(response)
    assert route["answered_by"] == "local", route  # the answer after a forced </think> still agrees across samples
    reasoning = response.choices[0].message.model_dump()["reasoning_content"] or ""
    assert 0 < httpx.post(front.url + "/tokenize", json={"prompt": reasoning}).json()["count"] <= 3


def test_clr_margin_routing_draws_all_k_samples(servers):
    front, upstream, local = servers
    clr = Server(local, "--upstream", upstream.url + "/v1", "--upstream-model", "tiny", "--route-k", "3",
                 "--route-signal", "clr", "--route-threshold", "0.9")
    try:
        response = clr.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": QUESTION}],
                                                      temperature=0, max_tokens=40)
    finally:
        clr.stop()
    route = _route(response)
    # every greedy sample checks out "3 + 4 = 7": all reliability sits in one cluster, margin 1; no early stop
    assert route["signal"] == "clr" and route["samples"] == 3 and not route["stopped_early"]
    assert route["answered_by"] == "local" and route["confidence"] == 1.0


def test_a_streamed_routed_request_streams_the_routed_answer(servers):
    front, _, _ = servers
    whole = front.client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": QUESTION}],
                                                 temperature=0, max_tokens=40)
    chunks = list(front.client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True}))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert final.model_dump()["vibethinker"]["route"]["answered_by"] == "local"
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
