"""The OpenAI-compatible server, driven by the real ``openai`` client against a tiny random model."""

from __future__ import annotations

import base64
import http.client
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import openai
import pytest
import torch
from PIL import Image

from model.config import tiny
from model.modeling import build_model
from model.processing import Processor
from model.serve import ChatEngine, ChatServer, CompletionRequest, ServerConfig, parse_request

ROOT = Path(__file__).resolve().parents[2]
NAME = "tiny-pp"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("served") / NAME
    torch.manual_seed(0)
    build_model(tiny()).save_pretrained(str(directory))
    Processor.default().save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def server(model_dir: Path):
    with ChatServer.from_config(ServerConfig(model_dir=model_dir, port=0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ChatServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120)


def _data_url(w: int = 60, h: int = 40) -> str:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _messages(text: str = "Click the OK button.") -> list[dict]:
    return [{"role": "system", "content": "You operate a computer."},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": _data_url()}},
                                         {"type": "text", "text": text}]}]


def _raw(server: ChatServer, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_completion_with_image_via_openai_client(client: openai.OpenAI, server: ChatServer) -> None:
    assert [m.id for m in client.models.list()] == [NAME]
    r = client.chat.completions.create(model=NAME, messages=_messages(), max_tokens=6, temperature=0)
    choice = r.choices[0]
    assert r.object == "chat.completion" and r.model == NAME and r.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    expected_prompt = server.engine.processor(_messages(), add_generation_prompt=True)["input_ids"].shape[1]
    assert r.usage.prompt_tokens == expected_prompt
    assert 1 <= r.usage.completion_tokens <= 6
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_greedy_and_seeded_sampling_are_reproducible(client: openai.OpenAI) -> None:
    def ask(**kw: object) -> str:
        r = client.chat.completions.create(model=NAME, messages=_messages("Type hello."), max_tokens=5, **kw)
        return str([r.choices[0].message.content, r.usage.completion_tokens])

    assert ask(temperature=0) == ask(temperature=0)
    assert ask(temperature=1.5, top_p=0.9, seed=7) == ask(temperature=1.5, top_p=0.9, seed=7)


def test_second_turn_reuses_the_prompt_prefix(client: openai.OpenAI) -> None:
    first = _messages("Open the menu.")
    client.chat.completions.create(model=NAME, messages=first, max_tokens=2, temperature=0)
    follow = first + [{"role": "assistant", "content": "click(3, 4)"}, {"role": "user", "content": "Next."}]
    r = client.chat.completions.create(model=NAME, messages=follow, max_tokens=2, temperature=0)
    cached = r.usage.prompt_tokens_details.cached_tokens
    assert 0 < cached < r.usage.prompt_tokens  # the system prompt and the screenshot were not recomputed


def test_prefix_reuse_can_be_switched_off(model_dir: Path) -> None:
    engine = ChatEngine.load(ServerConfig(model_dir=model_dir, reuse_prefix=False))
    req = CompletionRequest(messages=_messages(), max_tokens=2, temperature=0)
    engine.complete(req)
    assert engine.complete(req)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_logprobs_and_top_logprobs(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model=NAME, messages=_messages(), max_tokens=4, temperature=0,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    stopped = r.choices[0].finish_reason == "stop"
    assert len(content) == r.usage.completion_tokens - (1 if stopped else 0)
    for entry in content:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-5)  # greedy picks the top


def test_chunked_generation_matches_one_shot(model_dir: Path) -> None:
    engine = ChatEngine.load(ServerConfig(model_dir=model_dir, chunk_tokens=3))
    req = CompletionRequest(messages=_messages(), max_tokens=10, temperature=0)
    inputs = engine.processor(_messages(), add_generation_prompt=True)
    gen, _ = engine._generate(inputs, req)
    one_shot = engine.model.generate(**inputs, max_new_tokens=10)
    assert gen.ids == one_shot.new_tokens[0].tolist()[:len(gen.ids)]
    assert torch.allclose(torch.tensor(gen.logprobs), one_shot.logprobs[0, :len(gen.ids)], atol=1e-4)


def test_stop_string_cuts_the_answer(server: ChatServer) -> None:
    engine = server.engine
    free = CompletionRequest(messages=_messages("Say something."), max_tokens=12, temperature=0)
    text = engine.complete(free)["choices"][0]["message"]["content"]
    if len(text.strip()) < 4:
        pytest.skip(f"random model produced too little text to cut: {text!r}")
    stop = text[len(text) // 2:len(text) // 2 + 2]
    cut = engine.complete(CompletionRequest(messages=free.messages, max_tokens=12, temperature=0, stop=(stop,)))
    choice = cut["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == text[:text.find(stop)]
    assert cut["usage"]["completion_tokens"] <= engine.complete(free)["usage"]["completion_tokens"]


def test_concurrent_requests_are_serialised(client: openai.OpenAI) -> None:
    results: list[str] = []

    def call() -> None:
        r = client.chat.completions.create(model=NAME, messages=_messages(), max_tokens=3, temperature=0)
        results.append(r.choices[0].message.content)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 3 and len(set(results)) == 1


def test_bad_requests_get_openai_style_errors(client: openai.OpenAI, server: ChatServer) -> None:
    status, body = _raw(server, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    status, body = _raw(server, "POST", "/v1/chat/completions", json.dumps({"messages": []}).encode())
    assert status == 400 and body["error"]["param"] == "messages"
    status, body = _raw(server, "GET", "/v1/nothing")
    assert status == 404 and "/v1/models" in body["error"]["message"]
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model=NAME, messages=[{"role": "robot", "content": "x"}], max_tokens=2)
    remote = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]
    with pytest.raises(openai.BadRequestError, match="data:image/png;base64"):
        client.chat.completions.create(model=NAME, messages=remote, max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model=NAME, messages=_messages(), max_tokens=0)
    with pytest.raises(openai.BadRequestError, match="unrecognized"):
        client.chat.completions.create(model=NAME, messages=_messages(), extra_body={"best_of": 2})
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.chat.completions.create(model="gpt-4o", messages=_messages(), max_tokens=2)
    assert _raw(server, "GET", "/health") == (200, {"status": "ok"})


def test_parse_request_validation() -> None:
    cfg = ServerConfig(model_dir=Path("/nonexistent/m"), default_max_tokens=32)
    req = parse_request({"messages": [{"role": "developer", "content": "be brief"}], "stop": "\n"}, cfg)
    assert req.max_tokens == 32 and req.stop == ("\n",) and req.messages[0]["role"] == "system"
    assert parse_request({"messages": [{}], "max_completion_tokens": 9}, cfg).max_tokens == 9
    for bad, field in [({"messages": [{}], "temperature": 3}, "temperature"),
                       ({"messages": [{}], "top_logprobs": 2}, "top_logprobs"),
                       ({"messages": [{}], "n": 2}, "n"),
                       ({"messages": [{}], "stop": ["a"] * 5}, "stop"),
                       ({"messages": [{}], "seed": 1.5}, "seed")]:
        with pytest.raises(Exception) as info:
            parse_request(bad, cfg)
        assert getattr(info.value, "status", None) == 400 and info.value.param == field
    with pytest.raises(ValueError, match="port"):
        ServerConfig(model_dir=Path("m"), port=70000)


def test_api_key_is_enforced_when_set(model_dir: Path) -> None:
    with ChatServer.from_config(ServerConfig(model_dir=model_dir, port=0, api_key="s3cret")) as srv:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.base_url, api_key="wrong", max_retries=0).models.list()
        ok = openai.OpenAI(base_url=srv.base_url, api_key="s3cret", max_retries=0)
        assert [m.id for m in ok.models.list()] == [NAME]


@pytest.mark.integration
def test_cli_serve_prints_its_port_and_answers(model_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "serve", "--model", str(model_dir), "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {NAME} at http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        base_url = line.split(" at ", 1)[1].strip()
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=120)
        r = client.chat.completions.create(model=NAME, messages=_messages(), max_tokens=2, temperature=0)
        assert r.usage.completion_tokens >= 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.parametrize("mode", ["inline", "separate"])
def test_thinking_is_returned_inline_or_separately(model_dir: Path, mode: str) -> None:
    from model.serve import _Generation

    engine = ChatEngine.load(ServerConfig(model_dir=model_dir, reasoning=mode))
    ids = engine.processor.tokenizer("<think>OK is left.</think>click(3, 4)<|im_end|>", add_special_tokens=False)["input_ids"]
    gen = _Generation(ids=ids, logprobs=[-0.5] * len(ids), finish_reason="stop",
                      parsed=engine.processor.parse_response(ids))
    message = engine._response(CompletionRequest(messages=[], max_tokens=8), gen, 10, 0)["choices"][0]["message"]
    if mode == "inline":
        assert message == {"role": "assistant", "content": "<think>OK is left.</think>click(3, 4)"}
    else:
        assert message == {"role": "assistant", "content": "click(3, 4)", "reasoning_content": "OK is left."}


def test_streaming_deltas_add_up_to_the_full_answer(client: openai.OpenAI, server: ChatServer) -> None:
    kwargs = dict(model=NAME, messages=_messages("Stream it."), max_tokens=12, temperature=0)
    full = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [full.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    if len(full.choices[0].message.content) > 4:  # a stop string never leaks into the stream
        stop = full.choices[0].message.content[3:5]
        streamed = client.chat.completions.create(**kwargs, stop=[stop], stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        content = full.choices[0].message.content
        assert text == content[:content.find(stop)]
    with pytest.raises(openai.BadRequestError, match="streaming"):
        client.chat.completions.create(**kwargs, stream=True, logprobs=True)


@pytest.mark.parametrize("mode", ["inline", "separate"])
def test_delta_stream_splits_thinking_incrementally(model_dir: Path, mode: str) -> None:
    from model.serve import _DeltaStream, _Generation

    engine = ChatEngine.load(ServerConfig(model_dir=model_dir, reasoning=mode))
    ids = engine.processor.tokenizer("<think>look at the menu</think>click(3, 4)<|im_end|>",
                                     add_special_tokens=False)["input_ids"]
    events: list[dict] = []
    req = CompletionRequest(messages=[], max_tokens=len(ids), stop=("ZZ",))
    stream = _DeltaStream(engine, req, events.append)
    for k in range(1, len(ids)):
        stream.update(_Generation(ids=ids[:k]))
    gen = _Generation(ids=ids, finish_reason="stop", parsed=engine.processor.parse_response(ids))
    stream.finish(engine._response(req, gen, 5, 0))
    deltas = [e["choices"][0]["delta"] for e in events]
    joined = {key: "".join(d.get(key) or "" for d in deltas) for key in ("content", "reasoning_content")}
    if mode == "inline":
        assert joined == {"content": "<think>look at the menu</think>click(3, 4)", "reasoning_content": ""}
    else:
        assert joined == {"content": "click(3, 4)", "reasoning_content": "look at the menu"}
    assert len(deltas) > 4  # text arrived in pieces, not all at the end
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
