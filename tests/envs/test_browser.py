"""BrowserEnv against a real headless Chromium and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from envs import (
    BackendDiedError,
    Click,
    Done,
    Drag,
    EnvSetupError,
    Hotkey,
    InvalidActionError,
    MouseDown,
    MouseUp,
    Move,
    OutOfScreenError,
    Scroll,
    TypeText,
    UnknownKeyError,
    check_env,
)
from envs.browser import BrowserConfig, BrowserEnv, css_to_pixel, pixel_to_css

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")]

# A page that records every input event with its CSS coordinates.
EVENT_PAGE = """<!doctype html><html><head><style>
body { margin: 0; } #pad { position: absolute; left: 0; top: 0; width: 200px; height: 150px; background: #fff; }
#box { position: absolute; left: 20px; top: 20px; width: 40px; height: 30px; background: rgb(255, 0, 0); }
#txt { position: absolute; left: 20px; top: 100px; width: 150px; }
#tall { position: absolute; top: 0; left: 0; width: 1px; height: 3000px; }
</style></head><body><div id="tall"></div><div id="pad"></div><div id="box"></div><input id="txt">
<script>
window.log = [];
for (const t of ["click", "dblclick", "mousedown", "mouseup", "contextmenu"]) {
  document.addEventListener(t, e => log.push([t, e.clientX, e.clientY, e.button]));
}
document.addEventListener("keydown", e => log.push(["keydown", e.key, e.ctrlKey, e.shiftKey]));
document.addEventListener("wheel", e => log.push(["wheel", e.deltaX, e.deltaY]));
</script></body></html>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    (root / "events.html").write_text(EVENT_PAGE)
    (root / "other.html").write_text("<title>other</title><p>second page</p>")
    handler = lambda *a, **k: _Handler(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def env() -> Iterator[BrowserEnv]:
    e = BrowserEnv(BrowserConfig(width=200, height=150, device_scale_factor=2, dom="text"), max_steps=100)
    yield e
    e.close()


def _events(env: BrowserEnv) -> list[list]:
    return env.evaluate("window.log")


def test_reset_loads_local_page_and_screenshot_has_device_pixels(env: BrowserEnv, server: str) -> None:
    obs, info = env.reset(options={"url": f"{server}/events.html", "instruction": "poke the box"})
    assert env.screen_size == (400, 300)
    assert obs.size == (400, 300) and obs.instruction == "poke the box"
    assert obs.extra["url"] == f"{server}/events.html"
    # the red box spans CSS 20..60 × 20..50 → device pixels 40..120 × 40..100
    assert tuple(obs.screenshot[70, 80]) == (255, 0, 0)
    assert tuple(obs.screenshot[70, 130]) == (255, 255, 255)
    assert info["reset_s"] > 0


def test_click_maps_device_pixels_to_css(env: BrowserEnv, server: str) -> None:
    env.reset(options={"url": f"{server}/events.html"})
    env.step(Click(81, 61))
    env.step(Click(10, 10, button="right"))
    env.step(Click(100, 100, count=2))
    log = _events(env)
    assert ["click", 40, 30, 0] in log  # 81/2 = 40.5 → clientX floors to 40
    assert ["contextmenu", 5, 5, 2] in log
    assert ["dblclick", 50, 50, 0] in log


def test_drag_mouse_down_up_and_move(env: BrowserEnv, server: str) -> None:
    env.reset(options={"url": f"{server}/events.html"})
    env.step(Drag(20, 20, 200, 100))
    env.step(Move(60, 60))
    env.step(MouseDown())
    env.step(MouseUp(x=80, y=80))
    log = [e for e in _events(env) if e[0] in ("mousedown", "mouseup")]
    assert log[0] == ["mousedown", 10, 10, 0]
    assert ["mouseup", 100, 50, 0] in log
    assert log[-2:] == [["mousedown", 30, 30, 0], ["mouseup", 40, 40, 0]]


def test_type_hotkey_and_scroll(env: BrowserEnv, server: str) -> None:
    env.reset(options={"url": f"{server}/events.html"})
    env.step(Click(100, 205))  # into the input at CSS y=100..
    env.step(TypeText("hello world"))
    env.step(Hotkey(("ctrl", "a")))
    env.step(TypeText("Bye!"))
    assert env.evaluate("document.getElementById('txt').value") == "Bye!"
    assert ["keydown", "a", True, False] in _events(env)
    obs, *_ = env.step(Scroll(100, 100, dy=2))
    assert ["wheel", 0, 200] in _events(env)  # one notch = 100 CSS px
    deadline = time.monotonic() + 10  # wheel scrolling is applied asynchronously
    while env.evaluate("window.scrollY") != 200 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env.evaluate("window.scrollY") == 200
    assert "Bye!" not in (obs.dom or "")  # dom is innerText: input values are not text


def test_dom_text_and_file_url(env: BrowserEnv, tmp_path: Path) -> None:
    page = tmp_path / "hello.html"
    page.write_text("<h1>Hello file</h1>")
    obs, _ = env.reset(options={"url": page.as_uri()})
    assert "Hello file" in obs.dom
    assert obs.extra["url"] == page.as_uri()


def test_capture_methods_give_identical_pixels(server: str) -> None:
    shots = []
    for method in ("cdp", "playwright"):
        with BrowserEnv(BrowserConfig(width=200, height=150, device_scale_factor=1.5, capture=method)) as e:
            obs, _ = e.reset(options={"url": f"{server}/events.html"})
            shots.append(obs.screenshot)
    assert shots[0].shape == (225, 300, 3)
    assert np.array_equal(shots[0], shots[1])


def test_bad_input_raises_typed_errors_and_env_stays_usable(env: BrowserEnv, server: str) -> None:
    env.reset(options={"url": f"{server}/events.html"})
    with pytest.raises(InvalidActionError):
        env.step("click(1, 2)")  # type: ignore[arg-type]
    with pytest.raises(OutOfScreenError):
        env.step(Click(400, 10))
    with pytest.raises(UnknownKeyError):
        Hotkey(("hyperspace",))
    with pytest.raises(InvalidActionError):
        TypeText("")
    with pytest.raises(EnvSetupError, match="could not load"):
        env.reset(options={"url": "file:///nonexistent/nowhere.html"})
    env.reset(options={"url": f"{server}/events.html"})
    env.step(Click(81, 61))
    assert ["click", 40, 30, 0] in _events(env)
    assert env.step(Done())[2] is True


def test_new_tab_becomes_the_screen(env: BrowserEnv, server: str) -> None:
    html = f'<a href="{server}/other.html" target="_blank" style="display:block;width:200px;height:150px">open</a>'
    env.reset(options={"html": html})
    env.step(Click(50, 50))
    deadline = time.monotonic() + 10
    while "other.html" not in env.page.url and time.monotonic() < deadline:
        env.evaluate("1")  # let Playwright deliver the 'page' event
    assert env.page.url == f"{server}/other.html"


def test_dead_browser_raises_and_reset_relaunches(server: str) -> None:
    with BrowserEnv(BrowserConfig(width=200, height=150)) as e:
        e.reset(options={"url": f"{server}/events.html"})
        pid = e.browser_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while e._alive() and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                e.evaluate("1")
            except BackendDiedError:
                break
        with pytest.raises(BackendDiedError, match="reset"):
            e.step(Click(10, 10))
        obs, _ = e.reset(options={"url": f"{server}/events.html"})
        new_pid = e.browser_pid()
        assert new_pid is not None and new_pid != pid
        e.step(Click(10, 10))
    assert e.browser_pid() is None  # closed: no browser left behind


def test_missing_chromium_says_how_to_install() -> None:
    env = BrowserEnv(BrowserConfig(executable_path="/no/such/chromium"))
    with pytest.raises(EnvSetupError, match="apt-get install chromium"):
        env.reset()
    env.close()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="whole number"):
        BrowserConfig(width=101, height=100, device_scale_factor=1.5)
    with pytest.raises(ValueError):
        BrowserConfig(capture="jpeg")  # type: ignore[arg-type]
    assert BrowserConfig(width=160, height=210, device_scale_factor=2).screen_size == (320, 420)


def test_pixel_css_maps_round_trip() -> None:
    for scale in (1.0, 1.5, 2.0, 3.0):
        for px in range(0, 50):
            assert css_to_pixel(pixel_to_css(px, scale), scale) == px


def test_check_env_passes(server: str) -> None:
    env = BrowserEnv(BrowserConfig(width=200, height=150, start_url=f"{server}/events.html"))
    assert "close_is_idempotent" in check_env(env)
