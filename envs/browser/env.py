"""``BrowserEnv``: a headless Chromium page driven by pixel-coordinate mouse and keyboard.

The screen is the page viewport at device pixels (``BrowserConfig.screen_size``). Every action
is replayed through ``page.mouse`` / ``page.keyboard`` at CSS coordinates ``pixel / scale``:

- ``Click``: ``mouse.click`` with ``click_count`` (a double click fires ``dblclick``).
- ``Drag``: press at the start, move in ``DRAG_STEPS`` steps (so drag handlers see motion), release.
- ``Scroll``: move the pointer there, then ``mouse.wheel``; one notch = ``WHEEL_NOTCH_PX`` = 100
  CSS pixels (Chromium's line-based notch on Linux is about the same).
- ``TypeText``: ``keyboard.type`` (characters without a key fall back to text insertion).
- ``Hotkey``: keys pressed in order and released in reverse, names via ``envs.keys.playwright_key``.
- ``MouseDown`` / ``MouseUp``: optionally move first.

``reset()`` opens a fresh browser context (new cookies/storage; ~20–250 ms) and loads
``options["url"]`` (file:// or http://127.0.0.1 only are sensible here), or raw
``options["html"]``; ``options["instruction"]`` sets the task text. The browser itself is
reused across resets. If Chromium dies, the next call raises ``BackendDiedError`` and the
next ``reset()`` launches a new one. Pages opened by the page (``target=_blank``) become the
page the env looks at. Scoring is left to subclasses (``envs.miniwob``); here reward is 0.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from envs.actions import Action, Click, Drag, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText
from envs.base import GUIEnv
from envs.browser.capture import capture_cdp, capture_playwright, fit_to, pixel_to_css
from envs.browser.launch import BrowserConfig, LaunchedBrowser, browser_pid, launch_browser
from envs.errors import BackendDiedError, EnvNotReadyError, EnvSetupError, InvalidActionError
from envs.keys import playwright_key
from envs.observation import Observation

WHEEL_NOTCH_PX = 100
DRAG_STEPS = 8


_FIRST_FRAME_TIMEOUT_S = 2.0
_FOCUSED_PASSWORD_JS = (
    "() => { const e = document.activeElement; "
    "return !!(e && e.tagName === 'INPUT' && (e.type || '').toLowerCase() === 'password'); }"
)


class BrowserEnv(GUIEnv):
    """A Chromium viewport as the screen; see the module docstring for the action mapping."""

    name = "browser"

    def __init__(self, config: BrowserConfig | None = None, *, max_steps: int = 50) -> None:
        super().__init__(max_steps=max_steps)
        self.config = config or BrowserConfig()
        self._launched: LaunchedBrowser | None = None
        self._context: Any = None
        self._page: Any = None
        self._cdp: Any = None

    # -- public helpers ------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        return self.config.screen_size

    @property
    def scale(self) -> float:
        """Device pixels per CSS pixel."""
        return float(self.config.device_scale_factor)

    @property
    def page(self) -> Any:
        """The Playwright page of the current episode (privileged access: for tasks and experts)."""
        if self._page is None:
            raise EnvNotReadyError(f"{self.name} env has no page yet; call reset() first")
        return self._page

    def browser_pid(self) -> int | None:
        """PID of the Chromium main process, or None if none is running."""
        return browser_pid(self._launched.marker) if self._launched is not None else None

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run trusted JavaScript (project code, never model text) in the page."""
        return self._guard(lambda: self.page.evaluate(script, arg))

    # -- GUIEnv hooks --------------------------------------------------------------------
    def _alive(self) -> bool:
        launched = self._launched
        return launched is not None and launched.browser is not None and launched.browser.is_connected()

    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        if self._launched is None:
            self._launched = launch_browser(self.config)
        self._new_context()
        url = options.get("url")
        html = options.get("html")
        if url is not None and html is not None:
            raise InvalidActionError("reset options: give 'url' or 'html', not both")
        if html is not None:
            self._guard(lambda: self._page.set_content(str(html)))
        else:
            self.navigate(str(url or self.config.start_url))
        return str(options.get("instruction", ""))

    def navigate(self, url: str) -> None:
        """Load ``url`` in the current page; ``EnvSetupError`` if it cannot be loaded."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            self.page.goto(url, timeout=self.config.timeout_s * 1000)
        except PlaywrightError as exc:
            if not self._alive():
                raise BackendDiedError(f"{self.name} env: Chromium died while loading {url}; call reset()") from exc
            raise EnvSetupError(f"could not load {url!r}: {exc}; check the file exists or the local server is up") from exc

    def _new_context(self) -> None:
        assert self._launched is not None
        old = self._context
        self._context = self._page = self._cdp = None
        if old is not None:
            self._guard(old.close)
        cfg = self.config
        ctx = self._guard(lambda: self._launched.browser.new_context(
            viewport={"width": cfg.width, "height": cfg.height}, device_scale_factor=cfg.device_scale_factor
        ))
        ctx.set_default_timeout(cfg.timeout_s * 1000)
        ctx.on("page", self._adopt_page)
        self._context = ctx
        self._page = self._guard(ctx.new_page)

    def _adopt_page(self, page: Any) -> None:
        # A popup / new tab becomes the screen, like a real browser window switching tabs.
        if self._page is not None and page is not self._page:
            self._page, self._cdp = page, None

    def _observe(self) -> Observation:
        page = self.page
        shot = self._guard(self._capture)
        dom = None
        if self.config.dom == "text":
            dom = self._guard(lambda: page.evaluate("document.body ? document.body.innerText : ''"))
        elif self.config.dom == "html":
            dom = self._guard(page.content)
        # Whether typing now would go into a password field: the agent loop asks for confirmation
        # and redacts the text from trajectories (agent.risk).
        password = bool(self._guard(lambda: page.evaluate(_FOCUSED_PASSWORD_JS)))
        return Observation(
            screenshot=fit_to(shot, self.screen_size), instruction=self._instruction, dom=dom,
            extra={"url": page.url, "focused_password": password},
        )

    def _capture(self) -> np.ndarray:
        cfg = self.config
        if cfg.capture == "playwright":
            return capture_playwright(self._page)
        if self._cdp is None:
            self._cdp = self._context.new_cdp_session(self._page)
        from playwright.sync_api import Error as PlaywrightError

        # A page that has not produced its first compositor frame yet (just after a launch or a
        # new context) answers "Unable to capture screenshot": poll briefly, then let
        # page.screenshot (which waits for a frame) have the last word.
        deadline = time.monotonic() + _FIRST_FRAME_TIMEOUT_S
        while True:
            try:
                return capture_cdp(self._cdp, cfg.width, cfg.height, cfg.device_scale_factor)
            except PlaywrightError as exc:
                if "Unable to capture screenshot" not in str(exc) or not self._alive():
                    raise
                if time.monotonic() > deadline:
                    return fit_to(capture_playwright(self._page), self.screen_size)
                time.sleep(0.05)

    def _execute(self, action: Action) -> dict[str, Any]:
        self._guard(lambda: self._dispatch(action))
        return {}

    def _dispatch(self, action: Action) -> None:
        mouse, kb, s = self.page.mouse, self.page.keyboard, self.scale
        if isinstance(action, Click):
            mouse.click(pixel_to_css(action.x, s), pixel_to_css(action.y, s), button=action.button, click_count=action.count)
        elif isinstance(action, Move):
            mouse.move(pixel_to_css(action.x, s), pixel_to_css(action.y, s))
        elif isinstance(action, Drag):
            mouse.move(pixel_to_css(action.x1, s), pixel_to_css(action.y1, s))
            mouse.down(button=action.button)
            mouse.move(pixel_to_css(action.x2, s), pixel_to_css(action.y2, s), steps=DRAG_STEPS)
            mouse.up(button=action.button)
        elif isinstance(action, Scroll):
            mouse.move(pixel_to_css(action.x, s), pixel_to_css(action.y, s))
            mouse.wheel(action.dx * WHEEL_NOTCH_PX, action.dy * WHEEL_NOTCH_PX)
        elif isinstance(action, TypeText):
            kb.type(action.text)
        elif isinstance(action, Hotkey):
            names = [playwright_key(k) for k in action.keys]
            for name in names:
                kb.down(name)
            for name in reversed(names):
                kb.up(name)
        elif isinstance(action, (MouseDown, MouseUp)):
            if action.x is not None and action.y is not None:
                mouse.move(pixel_to_css(action.x, s), pixel_to_css(action.y, s))
            (mouse.down if isinstance(action, MouseDown) else mouse.up)(button=action.button)
        else:
            raise InvalidActionError(f"{self.name} env cannot execute {action!r}")

    def _guard(self, fn: Any) -> Any:
        """Call ``fn``; turn Playwright failures of a dead browser/page into ``BackendDiedError``."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            return fn()
        except PlaywrightError as exc:
            why = "Chromium is gone" if not self._alive() else "the page or its context was closed or crashed"
            raise BackendDiedError(f"{self.name} env: {why} ({exc.message.splitlines()[0]}); call reset() to recreate it") from exc

    def _shutdown(self) -> None:
        launched, self._launched = self._launched, None
        self._context = self._page = self._cdp = None
        if launched is not None:
            launched.stop()
