"""Launching the system Chromium through Playwright, and finding its process.

``BrowserConfig`` holds everything about the browser and the viewport; ``launch_browser``
starts Playwright's driver and a headless Chromium with flags that keep it quiet and
offline (no background networking, no component updates, no sync). Playwright cannot
download its own browsers here, so the Debian ``/usr/bin/chromium`` is used via
``executable_path``.

Playwright's sync API allows one driver per thread, so every env in a thread shares one
driver (reference-counted by ``acquire_driver`` / ``release_driver``) and launches its own
browser from it.

``browser_pid`` finds the browser's main process by a unique marker switch we add to its
command line (Playwright does not expose the pid); tests use it to kill the browser and check
that the env notices. This module knows nothing about actions or observations.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from envs.errors import EnvSetupError

#: Flags checked on these machines: without the networking ones Chromium keeps trying to
#: reach Google services and logs refused connections.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
DEFAULT_CHROMIUM = "/usr/bin/chromium"
MARKER_SWITCH = "--pixelpilot-browser-id"

CaptureMethod = Literal["cdp", "playwright"]
DomMode = Literal["none", "text", "html"]


@dataclass(frozen=True)
class BrowserConfig:
    """How to launch Chromium and what the screen looks like.

    Attributes:
        executable_path: the Chromium binary (Playwright's bundled browsers are not available).
        width, height: viewport in CSS pixels.
        device_scale_factor: device pixels per CSS pixel; screenshots (and so action
            coordinates) are ``width * scale`` × ``height * scale`` device pixels.
        headless: run without a window (the default; no X server needed).
        extra_args: more Chromium switches, appended to ``CHROMIUM_FLAGS``.
        capture: ``"cdp"`` (Page.captureScreenshot, lossless PNG tuned for speed) or
            ``"playwright"`` (``page.screenshot``); both give the same exact pixels.
        dom: what ``Observation.dom`` holds: nothing, ``document.body.innerText`` or the HTML.
        start_url: page loaded by ``reset()`` when no ``url`` option is given.
        timeout_s: navigation / launch timeout.
    """

    executable_path: str = DEFAULT_CHROMIUM
    width: int = 1280
    height: int = 800
    device_scale_factor: float = 1.0
    headless: bool = True
    extra_args: tuple[str, ...] = ()
    capture: CaptureMethod = "cdp"
    dom: DomMode = "none"
    start_url: str = "about:blank"
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int) and self.width > 0 and self.height > 0):
            raise ValueError(f"viewport width/height must be positive ints (CSS pixels), got {self.width}x{self.height}")
        dsf = self.device_scale_factor
        if not isinstance(dsf, (int, float)) or not 0.25 <= dsf <= 8:
            raise ValueError(f"device_scale_factor must be in [0.25, 8], got {dsf!r}")
        for side in (self.width, self.height):
            if abs(side * dsf - round(side * dsf)) > 1e-9:
                raise ValueError(
                    f"viewport side {side} × device_scale_factor {dsf} is not a whole number of device "
                    "pixels; pick a scale that keeps screenshots integer-sized (1, 1.5 with even sides, 2, 3)"
                )
        if self.capture not in ("cdp", "playwright"):
            raise ValueError(f"capture must be 'cdp' or 'playwright', got {self.capture!r}")
        if self.dom not in ("none", "text", "html"):
            raise ValueError(f"dom must be 'none', 'text' or 'html', got {self.dom!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    @property
    def screen_size(self) -> tuple[int, int]:
        """(width, height) of screenshots in device pixels."""
        return round(self.width * self.device_scale_factor), round(self.height * self.device_scale_factor)


@dataclass
class LaunchedBrowser:
    """A running Playwright driver and Chromium; ``marker`` identifies the Chromium process."""

    playwright: Any
    browser: Any
    marker: str = field(default="")

    def stop(self) -> None:
        """Close the browser and release the driver; safe on a dead browser and when called twice."""
        from playwright.sync_api import Error as PlaywrightError

        browser, pw = self.browser, self.playwright
        self.browser = self.playwright = None
        if browser is not None:
            try:
                browser.close()
            except PlaywrightError:
                pass  # already gone: nothing left to close
        if pw is not None:
            release_driver()


_DRIVERS = threading.local()


def acquire_driver() -> Any:
    """This thread's Playwright driver, started on first use; pair with ``release_driver``."""
    from playwright.sync_api import sync_playwright

    if getattr(_DRIVERS, "count", 0) == 0:
        _DRIVERS.playwright = sync_playwright().start()
        _DRIVERS.count = 0
    _DRIVERS.count += 1
    return _DRIVERS.playwright


def release_driver() -> None:
    """Drop one reference to this thread's driver; the last one stops it."""
    count = getattr(_DRIVERS, "count", 0)
    if count <= 0:
        return
    _DRIVERS.count = count - 1
    if _DRIVERS.count == 0:
        pw, _DRIVERS.playwright = _DRIVERS.playwright, None
        pw.stop()


def resolve_executable(path: str) -> str:
    """The absolute Chromium path, or ``EnvSetupError`` saying how to install it."""
    found = shutil.which(path) if not os.path.isabs(path) else (path if os.access(path, os.X_OK) else None)
    if found is None:
        raise EnvSetupError(
            f"Chromium not found at {path!r}: install it (Debian/Ubuntu: `apt-get install chromium`) "
            "or set BrowserConfig.executable_path to a Chromium/Chrome binary"
        )
    return found


def launch_browser(config: BrowserConfig) -> LaunchedBrowser:
    """Start Playwright and a Chromium as configured; raises ``EnvSetupError`` on failure."""
    try:
        from playwright.sync_api import Error as PlaywrightError
    except ImportError as exc:
        raise EnvSetupError("the browser env needs Playwright: pip install 'pixelpilot[browser]'") from exc
    executable = resolve_executable(config.executable_path)
    marker = uuid.uuid4().hex
    pw = acquire_driver()
    try:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=config.headless,
            args=[*CHROMIUM_FLAGS, *config.extra_args, f"{MARKER_SWITCH}={marker}"],
            timeout=config.timeout_s * 1000,
        )
    except PlaywrightError as exc:
        release_driver()
        raise EnvSetupError(f"Chromium at {executable} failed to start: {exc}; check it runs with `{executable} --headless --version`") from exc
    return LaunchedBrowser(playwright=pw, browser=browser, marker=marker)


def browser_pid(marker: str) -> int | None:
    """PID of the Chromium main process launched with ``marker`` (None if it is gone)."""
    needle = f"{MARKER_SWITCH}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue  # the process ended while we looked
        if needle in argv and not any(a.startswith(b"--type=") for a in argv):
            return int(entry)
    return None
