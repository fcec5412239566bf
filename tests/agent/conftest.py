"""Fixtures for agent tests: a real page server on 127.0.0.1 and a real headless Chromium."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

TARGET_PAGE = """<!doctype html><html><head><title>start</title></head>
<body style="margin:0;background:#ffffff">
<input id="pw" type="password" style="position:absolute;left:40px;top:40px;width:160px;height:30px">
<input id="name" type="text" style="position:absolute;left:40px;top:100px;width:160px;height:30px">
<button id="go" style="position:absolute;left:300px;top:200px;width:120px;height:60px;background:#00c000;border:0"
 onclick="window.clicks=(window.clicks||0)+1;document.title='clicked'"></button>
</body></html>"""


@pytest.fixture(scope="session")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of TARGET_PAGE served by a real HTTP server on 127.0.0.1."""
    root: Path = tmp_path_factory.mktemp("site")
    (root / "target.html").write_text(TARGET_PAGE, encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/target.html"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """A BrowserEnv (640x400, headless system Chromium), closed after the module."""
    from envs.browser.env import BrowserEnv
    from envs.browser.launch import BrowserConfig

    env = BrowserEnv(BrowserConfig(width=640, height=400), max_steps=20)
    yield env
    env.close()
