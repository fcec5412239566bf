"""A small scripted responder behind a real OpenAI-compatible HTTP server on 127.0.0.1.

No large model runs here, so end-to-end tests talk to this instead: it speaks the
chat-completions protocol, reads the screenshot it is sent (a data URL), finds the green
target on it and answers in UI-TARS syntax with coordinates in the model's smart-resized
space — the same path a served UI-TARS model takes. Once it has clicked, it answers
``finished()``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from agent.images import decode_data_url
from envs.geometry import smart_resize


def green_centre(image_HWC: np.ndarray) -> tuple[float, float] | None:
    """Centre (x, y) of the pure-green pixels of an RGB image, or None."""
    r, g, b = (image_HWC[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((g > 150) & (r < 90) & (b < 90))
    if len(xs) == 0:
        return None
    return float(xs.mean()), float(ys.mean())


def reply_for(messages: list[dict[str, Any]]) -> str:
    """The scripted model: click the green target once, then say finished."""
    if any(m["role"] == "assistant" and "click(" in str(m["content"]) for m in messages):
        return "Thought: I clicked the green button; the task is done.\nAction: finished(content='done')"
    image = None
    for m in messages:
        if m["role"] == "user" and isinstance(m["content"], list):
            for part in m["content"]:
                if part.get("type") == "image_url":
                    image = decode_data_url(part["image_url"]["url"])
    if image is None:
        return "Thought: I cannot see the screen.\nAction: wait()"
    centre = green_centre(image)
    if centre is None:
        return "Thought: there is no green button.\nAction: wait()"
    h, w = image.shape[:2]
    rh, rw = smart_resize(h, w, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    x, y = round(centre[0] * rw / w), round(centre[1] * rh / h)
    return f"Thought: The green button is the target; click it.\nAction: click(start_box='({x},{y})')"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)  # type: ignore[attr-defined]
        text = reply_for(request["messages"])
        self._send(200, {
            "id": f"chatcmpl-{len(self.server.requests)}", "object": "chat.completion",  # type: ignore[attr-defined]
            "created": int(time.time()), "model": request["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        })


class ScriptedServer:
    """``with ScriptedServer() as s: s.base_url`` — serves until the block ends."""

    def __init__(self) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.httpd.requests  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
