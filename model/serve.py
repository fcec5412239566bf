"""An OpenAI-compatible chat-completions server for a saved pixelpilot model directory.

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``. Images arrive as
``image_url`` parts holding ``data:image/...;base64,`` URLs (remote URLs are refused: the server
never fetches anything). Supported request fields: ``messages``, ``model``, ``max_tokens`` /
``max_completion_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``seed``, ``stop``,
``logprobs``, ``top_logprobs``, ``stream`` (server-sent events, with
``stream_options.include_usage``; no logprobs when streaming); ``n`` must be 1. Bad requests
get a 400 with an OpenAI-style ``{"error": {...}}`` body.

How it works: the stdlib ``ThreadingHTTPServer`` parses and preprocesses requests concurrently;
generation is serialised on one lock around the model. Generation runs through
``model.context_cache.ReusableContext``, so an agent that resends a growing conversation reuses
the KV of the shared prefix and the vision embeddings of unchanged screenshots
(``usage.prompt_tokens_details.cached_tokens`` reports how many prompt tokens were reused), and
it runs in chunks of ``chunk_tokens`` so stop strings end generation early. A ``<think>``
section goes to ``message.reasoning_content`` (``reasoning="inline"`` keeps it in ``content``
as ``<think>…</think>``). Preprocessed data-URL images are kept in an LRU cache
(``image_cache_size``), so resent screenshots are decoded once. The model runs on ``device``
(CPU by default). The server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import torch

from model.context_cache import ReusableContext, image_keys
from model.modeling import PixelPilotVLForConditionalGeneration
from model.processing.chat import ChatFormatError
from model.processing.image_processor import ImageInputError
from model.processing.processor import ParsedResponse, Processor
from model.special_tokens import EOS_TOKEN_ID, IM_END_TOKEN_ID, THINK_END_TOKEN_ID

log = logging.getLogger(__name__)
_ACCEPTED = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
             "stop", "logprobs", "top_logprobs", "n", "stream", "stream_options", "user", "presence_penalty",
             "frequency_penalty"}
_STOP_IDS = (EOS_TOKEN_ID, IM_END_TOKEN_ID)


class APIError(Exception):
    """An error returned to the client as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ServerConfig:
    """How to serve a model directory (written by ``save_pretrained`` of model + processor)."""

    model_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000  # 0 picks a free port (see ``ChatServer.port``)
    model_name: str | None = None  # default: the directory name
    api_key: str | None = None  # if set, require "Authorization: Bearer <key>"
    default_max_tokens: int = 256
    max_tokens_limit: int = 4096
    max_body_bytes: int = 64 * 1024 * 1024
    chunk_tokens: int = 16  # tokens per generate call between stop-string checks
    # "separate": content = answer, message.reasoning_content = the thinking (DeepSeek/vLLM style);
    # "inline": content = "<think>…</think>answer" for clients that read content only.
    reasoning: Literal["separate", "inline"] = "separate"
    device: str = "cpu"  # torch device for the model, e.g. "cuda" or "cuda:1"
    reuse_prefix: bool = True  # keep KV + vision embeddings of the last request for the next one
    image_cache_size: int = 64  # preprocessed data-URL images kept (LRU) across requests

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_dir", Path(self.model_dir))
        try:
            torch.device(self.device)
        except RuntimeError as exc:
            raise ValueError(f"device {self.device!r} is not a torch device ({exc}); use 'cpu' or 'cuda'") from None
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 = any free port), got {self.port}")
        if not 1 <= self.default_max_tokens <= self.max_tokens_limit:
            raise ValueError("default_max_tokens must lie in [1, max_tokens_limit]")
        if self.chunk_tokens < 1 or self.max_body_bytes < 1024:
            raise ValueError("chunk_tokens must be >= 1 and max_body_bytes >= 1024")
        if self.reasoning not in ("separate", "inline"):
            raise ValueError(f"reasoning must be 'separate' or 'inline', got {self.reasoning!r}")

    @property
    def name(self) -> str:
        return self.model_name or self.model_dir.resolve().name


@dataclass(frozen=True)
class CompletionRequest:
    """A validated chat-completions request."""

    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False
    include_usage: bool = False  # stream_options.include_usage: a last chunk with the usage


def _number(body: dict[str, Any], key: str, default: float, lo: float, hi: float, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return default
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not lo <= value <= hi:
        kind = "an integer" if integer else "a number"
        raise APIError(400, f"'{key}' must be {kind} in [{lo}, {hi}], got {value!r}", param=key)
    return value


def parse_request(body: Any, config: ServerConfig) -> CompletionRequest:
    """Validate a request body; raises ``APIError(400)`` naming the offending field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    unknown = sorted(set(body) - _ACCEPTED)
    if unknown:
        raise APIError(400, f"unrecognized request argument(s): {', '.join(unknown)}", param=unknown[0])
    if body.get("model") not in (None, config.name):
        raise APIError(404, f"model {body.get('model')!r} is not served here; use {config.name!r}",
                       param="model", code="model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty list of {role, content} objects", param="messages")
    if body.get("n", 1) != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    stream = body.get("stream") or False
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        raise APIError(400, "'stream' must be a boolean and 'stream_options' an object", param="stream")
    if stream and body.get("logprobs"):
        raise APIError(400, "logprobs are not returned when streaming; drop one of them", param="logprobs")
    for key in ("presence_penalty", "frequency_penalty"):
        if body.get(key) not in (None, 0, 0.0):
            raise APIError(400, f"'{key}' is not supported (must be 0)", param=key)
    stop = body.get("stop")
    stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise APIError(400, "'stop' must be a non-empty string or a list of up to 4 of them", param="stop")
    logprobs = body.get("logprobs", False)
    if not isinstance(logprobs, bool) and logprobs is not None:
        raise APIError(400, "'logprobs' must be a boolean", param="logprobs")
    top = _number(body, "top_logprobs", 0, 0, 20, integer=True)
    if top and not logprobs:
        raise APIError(400, "'top_logprobs' needs 'logprobs': true", param="top_logprobs")
    limit = config.max_tokens_limit
    max_tokens = _number(body, "max_completion_tokens", config.default_max_tokens, 1, limit, integer=True)
    max_tokens = _number(body, "max_tokens", max_tokens, 1, limit, integer=True)
    return CompletionRequest(
        messages=[_map_role(m) for m in messages], max_tokens=max_tokens,
        temperature=float(_number(body, "temperature", 1.0, 0.0, 2.0)),
        top_p=float(_number(body, "top_p", 1.0, 1e-6, 1.0)),
        seed=_number(body, "seed", None, -(2**63), 2**63 - 1, integer=True),
        stop=stop, logprobs=bool(logprobs), top_logprobs=top,
        stream=stream, include_usage=bool(options.get("include_usage", False)),
    )


def _map_role(message: Any) -> Any:
    """OpenAI's ``developer`` role is a system prompt for this model."""
    if isinstance(message, dict) and message.get("role") == "developer":
        return {**message, "role": "system"}
    return message


@dataclass
class _Generation:
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    finish_reason: str = "length"
    parsed: ParsedResponse | None = None


class ChatEngine:
    """Model + processor behind one lock; turns validated requests into response bodies."""

    def __init__(self, model: PixelPilotVLForConditionalGeneration, processor: Processor, config: ServerConfig) -> None:
        vocab = model.vl_config.text.vocab_size
        if len(processor.tokenizer) > vocab:
            raise ValueError(f"tokenizer has {len(processor.tokenizer)} tokens but the model only {vocab}; "
                             "save the processor that the model was trained with into the model directory")
        self.model = model.eval()
        self.processor = processor
        self.config = config
        self.lock = threading.Lock()
        self.context = ReusableContext(self.model)
        self.max_positions = model.vl_config.text.max_position_embeddings

    @classmethod
    def load(cls, config: ServerConfig) -> ChatEngine:
        """Load ``config.model_dir`` (weights + config + processor files)."""
        directory = config.model_dir
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory} has no config.json; save the model there with save_pretrained")
        model = PixelPilotVLForConditionalGeneration.from_pretrained(str(directory)).to(config.device)
        processor = Processor.from_pretrained(directory)
        processor.url_cache_size = config.image_cache_size
        return cls(model, processor, config)

    def prepare(self, req: CompletionRequest) -> Any:
        """Model inputs for ``req``; raises ``APIError(400)`` for bad messages or images."""
        try:
            inputs = self.processor(req.messages, add_generation_prompt=True).to(self.model.device)
        except (ChatFormatError, ImageInputError) as exc:
            raise APIError(400, str(exc), param="messages") from None
        prompt_len = inputs["input_ids"].shape[1]
        if prompt_len + req.max_tokens > self.max_positions:
            raise APIError(400, f"prompt ({prompt_len} tokens) + max_tokens ({req.max_tokens}) exceeds the "
                                f"model's context of {self.max_positions}; send fewer or smaller images",
                           param="messages", code="context_length_exceeded")
        return inputs

    def complete(self, req: CompletionRequest, inputs: Any = None,
                 on_chunk: Callable[[_Generation], None] | None = None) -> dict[str, Any]:
        """The ``chat.completion`` body for one request (``inputs`` from ``prepare``, if done).

        ``on_chunk`` sees the growing generation after every chunk (used for streaming).
        """
        inputs = self.prepare(req) if inputs is None else inputs
        with self.lock:
            if not self.config.reuse_prefix:
                self.context = ReusableContext(self.model)
            gen, reused = self._generate(inputs, req, on_chunk)
        return self._response(req, gen, inputs["input_ids"].shape[1], reused)

    def _generate(self, inputs: Any, req: CompletionRequest,
                  on_chunk: Callable[[_Generation], None] | None = None) -> tuple[_Generation, int]:
        seed = req.seed if req.seed is not None else random.getrandbits(63)
        generator = torch.Generator(device=self.model.device).manual_seed(seed % 2**63)
        sample = req.temperature > 0
        temperature = req.temperature if sample else 1.0
        pixel_values, grids = inputs.get("pixel_values"), inputs.get("image_grid_hws")
        keys = image_keys(pixel_values, grids) if grids is not None else None
        sequence, gen, reused = inputs["input_ids"], _Generation(), None
        while len(gen.ids) < req.max_tokens:
            out = self.context.generate(
                sequence, pixel_values, grids, keys=keys, generator=generator,
                max_new_tokens=min(self.config.chunk_tokens, req.max_tokens - len(gen.ids)),
                do_sample=sample, temperature=temperature, top_p=req.top_p, return_logits=req.top_logprobs > 0)
            reused = self.context.reused_tokens if reused is None else reused
            before = len(gen.ids)
            gen.ids += out.new_tokens[0].tolist()
            gen.logprobs += out.logprobs[0].tolist()
            if out.logits is not None:
                top = torch.log_softmax(out.logits[0].float() / temperature, -1).topk(req.top_logprobs, -1)
                gen.top += [list(zip(i.tolist(), v.tolist())) for v, i in zip(top.values, top.indices)]
            if gen.ids[-1] in _STOP_IDS:
                gen.finish_reason = "stop"
                break
            if req.stop and self._cut_at_stop(gen, before, req.stop):
                break
            if on_chunk is not None:
                on_chunk(gen)
            sequence = out.sequences
        gen.parsed = gen.parsed or self.processor.parse_response(gen.ids)
        return gen, reused or 0

    def _cut_at_stop(self, gen: _Generation, before: int, stops: tuple[str, ...]) -> bool:
        """If a stop string appeared, keep tokens up to the one completing it and cut the text."""
        for k in range(before + 1, len(gen.ids) + 1):
            parsed = _apply_stop(self.processor.parse_response(gen.ids[:k]), stops)
            if parsed is not None:
                del gen.ids[k:], gen.logprobs[k:], gen.top[k:]
                gen.parsed, gen.finish_reason = parsed, "stop"
                return True
        return False

    def _response(self, req: CompletionRequest, gen: _Generation, prompt_len: int, reused: int) -> dict[str, Any]:
        parsed = gen.parsed
        assert parsed is not None
        message: dict[str, Any] = {"role": "assistant", "content": parsed.answer}
        if parsed.thinking is not None:
            if self.config.reasoning == "inline":
                message["content"] = f"<think>{parsed.thinking}</think>{parsed.answer}"
            else:
                message["reasoning_content"] = parsed.thinking
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": gen.finish_reason,
                                  "logprobs": self._logprobs(gen) if req.logprobs else None}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": self.config.name, "choices": [choice],
            "usage": {"prompt_tokens": prompt_len, "completion_tokens": len(gen.ids),
                      "total_tokens": prompt_len + len(gen.ids),
                      "prompt_tokens_details": {"cached_tokens": reused}},
        }

    def _logprobs(self, gen: _Generation) -> dict[str, Any]:
        """OpenAI ``logprobs.content``: one entry per generated token (the stop token excluded)."""
        n = len(gen.ids) - (1 if gen.ids and gen.ids[-1] in _STOP_IDS else 0)
        content = []
        for i in range(n):
            entry = self._token_entry(gen.ids[i], gen.logprobs[i])
            entry["top_logprobs"] = [self._token_entry(t, lp) for t, lp in gen.top[i]] if gen.top else []
            content.append(entry)
        return {"content": content}

    def _token_entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        text = self.processor.decode([token_id], skip_special_tokens=False)
        raw = self.processor.tokenizer.convert_ids_to_tokens(token_id)  # None past the tokenizer's vocab
        return {"token": text, "logprob": float(logprob), "bytes": list(_token_bytes(raw or ""))}


def _apply_stop(parsed: ParsedResponse, stops: tuple[str, ...]) -> ParsedResponse | None:
    """``parsed`` cut before the earliest stop string (reasoning first), or None if none occurs."""
    for part in ("thinking", "answer"):
        text = getattr(parsed, part)
        hits = [text.find(s) for s in stops if text is not None and s in text]
        if hits:
            cut = text[:min(hits)]
            if part == "thinking":
                return ParsedResponse(cut, "", True)
            return ParsedResponse(parsed.thinking, cut, True)
    return None


class _DeltaStream:
    """Turns the growing generation into ``chat.completion.chunk`` events with text deltas.

    Text that a stop string could still cut (its last len(stop)-1 characters) and a trailing
    incomplete UTF-8 character are held back until the next chunk or the end.
    """

    def __init__(self, engine: ChatEngine, req: CompletionRequest, emit: Callable[[dict[str, Any]], None]) -> None:
        self.engine, self.req, self.emit = engine, req, emit
        self.holdback = max((len(s) for s in req.stop), default=1) - 1
        self.sent = {"reasoning_content": "", "content": ""}
        self.head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": engine.config.name}
        self._chunk({"role": "assistant", "content": ""})

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
        self.emit({**self.head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                             "logprobs": None}], **extra})

    def _fields(self, gen: _Generation) -> dict[str, str]:
        parsed = self.engine.processor.parse_response(gen.ids)
        if parsed.thinking is None:
            return {"content": parsed.answer}
        if self.engine.config.reasoning == "separate":
            return {"reasoning_content": parsed.thinking, "content": parsed.answer}
        closed = "</think>" if THINK_END_TOKEN_ID in gen.ids else ""
        return {"content": f"<think>{parsed.thinking}{closed}{parsed.answer}"}

    def _send(self, key: str, text: str) -> None:
        old = self.sent[key]
        if len(text) > len(old) and text.startswith(old):
            self._chunk({key: text[len(old):]})
            self.sent[key] = text

    def update(self, gen: _Generation) -> None:
        for key, text in self._fields(gen).items():
            text = text.rstrip("\ufffd")
            self._send(key, text[:max(len(self.sent[key]), len(text) - self.holdback)])

    def finish(self, body: dict[str, Any]) -> None:
        choice = body["choices"][0]
        for key in self.sent:
            self._send(key, choice["message"].get(key) or "")
        self._chunk({}, choice["finish_reason"])
        if self.req.include_usage:
            self.emit({**self.head, "choices": [], "usage": body["usage"]})


def _byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level alphabet: printable stand-in character → byte value."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars)}


_BYTE_DECODER = _byte_decoder()


def _token_bytes(token: str) -> bytes:
    if all(ch in _BYTE_DECODER for ch in token):
        return bytes(_BYTE_DECODER[ch] for ch in token)
    return token.encode("utf-8")  # special tokens are stored verbatim


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        key = self.server.engine.config.api_key
        if key is None or self.headers.get("Authorization", "") == f"Bearer {key}":
            return True
        self._send(401, APIError(401, "invalid API key: send 'Authorization: Bearer <key>'",
                                 kind="authentication_error").body())
        return False

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        elif not self._authorised():
            return
        elif self.path.rstrip("/") == "/v1/models":
            name = self.server.engine.config.name
            self._send(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": self.server.started, "owned_by": "pixelpilot"}]})
        else:
            self._send(404, APIError(404, f"no route GET {self.path}; try /v1/models", code="not_found").body())

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        try:
            body = self._read_json()
            if not self._authorised():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                raise APIError(404, f"no route POST {self.path}; use /v1/chat/completions", code="not_found")
            engine = self.server.engine
            req = parse_request(body, engine.config)
            if req.stream:
                self._stream(engine, req)
            else:
                self._send(200, engine.complete(req))
        except APIError as exc:
            self._send(exc.status, exc.body())
        except Exception as exc:  # an internal failure still gets a JSON answer, and a log line
            log.exception("request failed")
            self._send(500, APIError(500, f"internal error: {type(exc).__name__}: {exc}", kind="server_error").body())

    def _stream(self, engine: ChatEngine, req: CompletionRequest) -> None:
        """Server-sent events: role, text deltas per chunk, finish chunk, optional usage, [DONE]."""
        inputs = engine.prepare(req)  # errors still become a plain JSON 400 here
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the stream ends when the connection does
        self.end_headers()
        self.close_connection = True
        deltas = _DeltaStream(engine, req, self._event)
        try:
            body = engine.complete(req, inputs, on_chunk=deltas.update)
        except Exception as exc:  # headers are out: report in-band, as OpenAI does
            log.exception("streamed request failed")
            self._event({"error": {"message": f"{type(exc).__name__}: {exc}", "type": "server_error"}})
        else:
            deltas.finish(body)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")
        self.wfile.flush()

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise APIError(411, "a Content-Length header is required")
        if int(length) > self.server.engine.config.max_body_bytes:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise APIError(413, f"request body over {self.server.engine.config.max_body_bytes} bytes; send smaller images")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(400, f"request body is not valid JSON ({exc})") from None


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads run torch. A daemon thread still inside torch when the interpreter exits
    # is torn down with pthread_exit, which aborts the process (std::terminate through
    # noexcept frames). So handlers are joined on close; idle keep-alive connections are shut
    # down first so that their threads return from recv().
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], engine: ChatEngine) -> None:
        self.engine = engine
        self.started = int(time.time())
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on an idle connection (it then ends)."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ChatServer:
    """The HTTP server around a ``ChatEngine``: ``start()`` in a thread or ``serve_forever()``."""

    def __init__(self, engine: ChatEngine) -> None:
        cfg = engine.config
        self.engine = engine
        self.httpd = _HTTPServer((cfg.host, cfg.port), engine)
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, config: ServerConfig) -> ChatServer:
        return cls(ChatEngine.load(config))

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI client's ``base_url`` (``http://host:port/v1``)."""
        return f"http://{self.engine.config.host}:{self.port}/v1"

    def start(self) -> ChatServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="pixelpilot-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        """Stop serving and release the socket."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.close_connections()
        self.httpd.server_close()  # joins the handler threads (running generations finish first)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
