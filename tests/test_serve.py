"""`vibethinker serve` as users run it: the real server (uvicorn) in a subprocess on 127.0.0.1, on a tiny model
trained to write ``<think> a + b = c. </think> The answer is \\boxed{c}.``, called with the official openai client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import make_easy_problems, train_warm_model

openai = pytest.importorskip("openai")

SUFFIX = " Let's think step by step and output the final answer within \\boxed{}."  # as trained
QUESTION = "What is 3 + 4?" + SUFFIX


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, model, *options: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vibethinker.cli", "serve", str(model), "--port", str(self.port),
             "--served-model-name", "tiny", "--device", "cpu", *options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.process.stdout.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("the server did not come up in 120 s")
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=60)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.stdout.read()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return train_warm_model(tmp_path_factory.mktemp("serve"), make_easy_problems(40), epochs=80) / "model"


@pytest.fixture(scope="module")
def server(model):
    running = Server(model)
    yield running
    running.stop()


def _chat(server, **kwargs):
    kwargs.setdefault("messages", [{"role": "user", "content": QUESTION}])
    return server.client.chat.completions.create(model="tiny", **kwargs)


def test_models_health_tokenize(server):
    assert [m.id for m in server.client.models.list().data] == ["tiny"]
    tokens = httpx.post(server.url + "/tokenize", json={"prompt": "What is 3 + 4?"}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 0
    back = httpx.post(server.url + "/detokenize", json={"tokens": tokens["tokens"]}).json()
    assert back["prompt"] == "What is 3 + 4?"
    chat_tokens = httpx.post(server.url + "/tokenize", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    assert chat_tokens["count"] > 3


def test_chat_returns_the_reasoning_apart(server):
    response = _chat(server, temperature=0, max_tokens=40)
    choice = response.choices[0]
    message = choice.message.model_dump()
    assert "+" in message["reasoning_content"] and "<think>" not in message["reasoning_content"]
    assert message["reasoning"] == message["reasoning_content"]
    assert "\\boxed{" in message["content"] and "</think>" not in message["content"]
    assert choice.finish_reason == "stop"
    details = response.usage.completion_tokens_details
    assert 0 < details.reasoning_tokens < response.usage.completion_tokens
    assert response.usage.prompt_tokens > 5


def test_n_samples_and_seeds_repeat(server):
    first = _chat(server, n=3, temperature=1.0, seed=11, max_tokens=40)
    again = _chat(server, n=3, temperature=1.0, seed=11, max_tokens=40)
    assert len(first.choices) == 3 and [c.index for c in first.choices] == [0, 1, 2]
    assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]
    other = _chat(server, n=3, temperature=1.0, seed=12, max_tokens=40)
    assert first.usage.completion_tokens > 0 and other.usage.prompt_tokens == first.usage.prompt_tokens


def test_streaming_matches_the_whole_response(server):
    whole = _chat(server, n=2, temperature=1.0, seed=5, max_tokens=40)
    stream = _chat(server, n=2, temperature=1.0, seed=5, max_tokens=40, stream=True,
                   stream_options={"include_usage": True})
    reasoning, content, finish, usage, chunks = ["", ""], ["", ""], [None, None], None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta.model_dump()
            reasoning[choice.index] += delta.get("reasoning_content") or ""
            content[choice.index] += delta.get("content") or ""
            finish[choice.index] = choice.finish_reason or finish[choice.index]
    assert chunks > 6  # pieces, not one message
    for i, choice in enumerate(whole.choices):
        assert reasoning[i] == choice.message.model_dump()["reasoning_content"]
        assert content[i] == choice.message.content and finish[i] == choice.finish_reason
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens == whole.usage.completion_tokens_details.reasoning_tokens


def test_thinking_budget_closes_the_reasoning_and_lets_the_answer_come(server):
    free = _chat(server, temperature=0, max_tokens=40)
    budget = 3
    capped = _chat(server, temperature=0, max_tokens=40, extra_body={"thinking_token_budget": budget})
    free_reasoning = free.usage.completion_tokens_details.reasoning_tokens
    assert free_reasoning > budget + 1
    end_tokens = httpx.post(server.url + "/tokenize", json={"prompt": "</think>"}).json()["count"]
    assert capped.usage.completion_tokens_details.reasoning_tokens == budget + end_tokens
    assert capped.choices[0].message.content  # an answer follows the forced </think>
    assert capped.choices[0].message.model_dump()["reasoning_content"]


def test_stop_strings_and_completions_with_logprobs(server):
    stopped = _chat(server, temperature=0, max_tokens=40, stop=["boxed"])
    assert stopped.choices[0].finish_reason == "stop" and "boxed" not in stopped.choices[0].message.content
    completion = server.client.completions.create(model="tiny", prompt="What is 1 + 2?", max_tokens=8,
                                                  temperature=0, logprobs=2)
    choice = completion.choices[0]
    assert len(choice.logprobs.tokens) == completion.usage.completion_tokens
    assert all(len(top) <= 2 for top in choice.logprobs.top_logprobs)
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)
    chat = _chat(server, temperature=0, max_tokens=10, logprobs=True, top_logprobs=3)
    entries = chat.choices[0].logprobs.content
    assert len(entries) == chat.usage.completion_tokens and all(len(e.top_logprobs) == 3 for e in entries)
    assert all(e.top_logprobs[0].logprob >= e.logprob - 1e-6 for e in entries)  # greedy: the best one


def _answers(response) -> list[str | None]:
    from vibethinker.verify.extract import last_boxed

    return [last_boxed(c.message.content or "") for c in response.choices]


@pytest.mark.parametrize("select", ["majority", "clr"])
def test_verified_best_of_n(server, select):
    k = 8
    response = _chat(server, temperature=1.0, seed=3, max_tokens=40, extra_body={"vibethinker": {"select": select,
                                                                                                 "k": k}})
    extension = response.model_extra["vibethinker"]
    assert len(response.choices) == 1 and extension["k"] == k
    samples = _chat(server, temperature=1.0, seed=3, max_tokens=40, n=k)  # the same k samples, all returned
    answers = _answers(samples)
    assert response.choices[0].message.content == samples.choices[extension["chosen_sample"]].message.content
    sizes = sorted((answers.count(a) for a in set(answers) if a is not None), reverse=True)
    assert [c["size"] for c in extension["clusters"]] == sizes
    assert extension["agreement"] == pytest.approx(answers.count(extension["answer"]) / k)
    if select == "majority":
        assert answers.count(extension["answer"]) == sizes[0]
    else:
        assert 0.0 <= extension["clr_margin"] <= 1.0
        assert max(c["reliability"] for c in extension["clusters"]) > 0  # the "a + b = c" claims were checked
    assert response.usage.completion_tokens == samples.usage.completion_tokens  # all k samples counted
    # one prefill: the other samples read the prompt's full blocks from the cache
    assert response.usage.prompt_tokens_details.cached_tokens >= response.usage.prompt_tokens // 16 * 16 - 16 > 0


def _error(response: httpx.Response) -> dict:
    return response.json()["error"]


def test_bad_requests_name_the_field_and_the_server_keeps_serving(server):
    url = server.url + "/v1/chat/completions"
    good = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 8}
    malformed = httpx.post(url, content=b'{"model": "tiny", "messages": [', headers={"content-type":
                                                                                       "application/json"})
    assert malformed.status_code == 400 and "malformed JSON" in _error(malformed)["message"]
    unknown = httpx.post(url, json={**good, "best_of": 2})
    assert unknown.status_code == 400 and _error(unknown)["param"] == "best_of"
    zero = httpx.post(url, json={**good, "n": 0})
    assert zero.status_code == 400 and _error(zero)["param"] == "n"
    long_prompt = httpx.post(url, json={**good, "messages": [{"role": "user", "content": "1 + 2 " * 3000}]})
    assert long_prompt.status_code == 400 and _error(long_prompt)["param"] == "messages"
    budget = httpx.post(url, json={**good, "thinking_token_budget": 8})
    assert budget.status_code == 400 and _error(budget)["param"] == "thinking_token_budget"
    model = httpx.post(url, json={**good, "model": "gpt-9"})
    assert model.status_code == 404 and _error(model)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        _chat(server, max_tokens=8, temperature=-1)
    assert _chat(server, temperature=0, max_tokens=8).choices[0].message is not None
    metrics = httpx.get(server.url + "/metrics").text
    assert 'vibethinker:request_errors_total{status="400"}' in metrics


def _metric(server, name: str) -> float:
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith(f"vibethinker:{name} "):
            return float(line.split()[-1])
    raise KeyError(name)


def test_a_client_gone_mid_stream_frees_its_slot(server):
    aborted = _metric(server, "request_aborted_total")
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "temperature": 1.0, "seed": 1,
            "stream": True, "ignore_eos": True}  # to the end of the window unless stopped
    with httpx.Client(timeout=30) as client, client.stream("POST", server.url + "/v1/chat/completions",
                                                           json=body) as response:
        assert response.status_code == 200
        lines = 0
        for line in response.iter_lines():
            lines += line.startswith("data:")
            if lines >= 5:
                break
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (_metric(server, "num_requests_running") > 0
                                           or _metric(server, "request_aborted_total") == aborted):
        time.sleep(0.05)
    assert _metric(server, "num_requests_running") == 0 and _metric(server, "kv_cache_usage_perc") == 0
    assert _metric(server, "request_aborted_total") == aborted + 1
    assert _chat(server, temperature=0, max_tokens=8).choices  # still serving


def test_load_no_response_lost_mixed_or_cut(server):
    """32 concurrent clients x 2 requests, each with its own seed: every response equals the same request alone."""
    def request(seed: int):
        return _chat(server, temperature=1.0, seed=seed, max_tokens=30,
                     messages=[{"role": "user", "content": f"What is {seed % 4 + 1} + {seed % 3 + 1}?" + SUFFIX}])

    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        together = list(pool.map(request, range(64)))
    assert time.monotonic() - started < 240
    for seed in range(0, 64, 7):  # a sample of them, alone
        alone = request(seed)
        assert together[seed].choices[0].message.content == alone.choices[0].message.content
        assert together[seed].usage.completion_tokens == alone.usage.completion_tokens
    assert all(r.choices[0].finish_reason in ("stop", "length") for r in together)


def test_a_full_queue_answers_429_and_shutdown_is_graceful(model):
    busy = Server(model, "--max-queue", "1", "--max-num-seqs", "1")
    try:
        body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 200,
                "ignore_eos": True, "temperature": 1.0}
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: httpx.post(busy.url + "/v1/chat/completions", json=body,
                                                          timeout=120).status_code, range(8)))
        assert 429 in statuses and 200 in statuses and set(statuses) <= {200, 429}
        # a request in flight when the server is told to stop still completes
        results = {}
        thread = threading.Thread(target=lambda: results.update(r=httpx.post(
            busy.url + "/v1/chat/completions", json={**body, "max_tokens": 100}, timeout=120)))
        thread.start()
        time.sleep(1.0)
        busy.process.terminate()
        thread.join(120)
        assert results["r"].status_code == 200
        assert results["r"].json()["choices"][0]["finish_reason"] == "length"
        # uvicorn re-raises the SIGTERM it handled once it has shut down (the conventional exit status)
        assert busy.process.wait(60) in (0, -15)
    finally:
        busy.stop()


def test_serve_refuses_a_folder_that_is_not_a_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vibethinker.cli", "serve", str(tmp_path)], capture_output=True,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=120)
    assert result.returncode == 2 and "not a checkpoint folder" in result.stdout + result.stderr


def test_sse_ends_with_done(server):
    body = {"model": "tiny", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 8, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=30) as response:
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    first = json.loads(data[0])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def test_a_template_that_opens_the_reasoning_in_the_prompt(model, tmp_path):
    """Qwen3 / DeepSeek-R1 style: the generation prompt ends with ``<think>``; the response has only ``</think>``."""
    import shutil

    opened = tmp_path / "opened"
    shutil.copytree(model, opened)
    template = (opened / "chat_template.jinja").read_text()
    (opened / "chat_template.jinja").write_text(template.replace("'<|im_start|>assistant\\n'",
                                                                 "'<|im_start|>assistant\\n<think>'"))
    served = Server(opened)
    try:
        response = _chat(served, temperature=0, max_tokens=40)
        message = response.choices[0].message.model_dump()
        assert "+" in message["reasoning_content"] and "</think>" not in message["reasoning_content"]
        assert "\\boxed{" in message["content"]
        assert 0 < response.usage.completion_tokens_details.reasoning_tokens < response.usage.completion_tokens
    finally:
        served.stop()
