"""Fixtures for the desktop-env tests: real Xvfb displays and a real X client that reports events.

``desktop_env``   one DesktopEnv (640x480, no window manager) per test module, reset per test.
``reporter``      ``tests/envs/xclick_reporter.py`` running full-screen on that display;
                  ``reporter.next(kind)`` returns its next event of that kind as a dict.
Everything started here is stopped by PID in fixture teardown.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPORTER = Path(__file__).with_name("xclick_reporter.py")
EVENT_TIMEOUT_S = 15.0  # a deadline for failing tests, not a speed assertion


def require_x_tools(*names: str) -> None:
    """Skip the calling test when a system binary it needs is not installed."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (run scripts/setup.sh)")


class Reporter:
    """Reads the JSON lines ``xclick_reporter.py`` prints, on a background thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        # Read from our own copy of the pipe: the env closes proc.stdout when it stops the
        # client, and closing a file another thread is blocked reading from is not safe.
        assert proc.stdout is not None
        self._stdout = os.fdopen(os.dup(proc.stdout.fileno()), "r", encoding="utf-8")
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self.ready = self.next("ready")

    def _pump(self) -> None:
        with self._stdout:
            for line in self._stdout:
                self._lines.put(json.loads(line))
        self._lines.put(None)  # EOF: the client exited

    def next(self, kind: str | tuple[str, ...], timeout_s: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        """The next event whose ``event`` field is ``kind`` (others are skipped)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        while True:
            try:
                item = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"no {kinds} event from the X client within {timeout_s}s") from None
            if item is None:
                raise AssertionError(f"the X client exited (code {self.proc.poll()}) before a {kinds} event")
            if item["event"] in kinds:
                return item

    def take(self, n: int, kind: str | tuple[str, ...]) -> list[dict[str, Any]]:
        """The next ``n`` events of ``kind``."""
        return [self.next(kind) for _ in range(n)]

    def join(self) -> None:
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def desktop_env() -> Iterator[Any]:
    require_x_tools("Xvfb")
    from envs.desktop import DesktopEnv

    env = DesktopEnv(size=(640, 480), window_manager=False)
    try:
        env.reset()
        yield env
    finally:
        env.close()


@pytest.fixture()
def reporter(desktop_env: Any) -> Iterator[Reporter]:
    desktop_env.reset()  # a fresh episode; kills apps from earlier tests
    proc = desktop_env.launch([sys.executable, str(REPORTER)], stdout=subprocess.PIPE)
    rep = Reporter(proc)
    yield rep
    desktop_env.reset()  # stops the client by PID; its stdout closes and the reader thread ends
    rep.join()
