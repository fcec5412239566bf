"""``DesktopEnv``: a GUI environment on a real X display (managed Xvfb or an existing one).

Screen: mss (``capture.ScreenCapture``). Input: XTEST through python-xlib
(``inputs.XTestInput``; see that module for why not pyautogui). Session: ``xvfb.Xvfb``,
optionally with openbox. ``launch(cmd)`` starts applications on the display and tracks them
by PID; ``reset()`` kills them (and, with ``restart``, the X server) and launches the
configured ones again. A dead X server surfaces as ``BackendDiedError``; the next
``reset()`` starts a fresh one.

The desktop env has no task logic: reward is 0 and the instruction is whatever
``reset(options={"instruction": ...})`` says. Task suites build on top of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from Xlib import error as xerror

from envs.actions import Action
from envs.base import GUIEnv
from envs.desktop.capture import ScreenCapture
from envs.desktop.inputs import XTestInput
from envs.desktop.procs import poll_until, spawn, stop
from envs.desktop.xvfb import Xvfb, XvfbConfig
from envs.errors import BackendDiedError, EnvNotReadyError, EnvSetupError, PixelPilotError
from envs.observation import Observation

RESET_OPTIONS = frozenset({"instruction", "launch", "restart"})


def _command(cmd: Any) -> tuple[str, ...]:
    if isinstance(cmd, str) or not isinstance(cmd, Sequence) or not cmd or not all(isinstance(a, str) for a in cmd):
        raise ValueError(f"a launch command must be a non-empty list of strings (argv, no shell), got {cmd!r}")
    return tuple(cmd)


@dataclass(frozen=True)
class DesktopConfig:
    """Options of a ``DesktopEnv``.

    Attributes:
        size: (width, height) of a managed Xvfb screen (ignored when attaching).
        display: attach to this existing display (e.g. ``":0"``) instead of starting Xvfb;
            then nothing of the X session is owned or killed, only launched apps.
        window_manager: start openbox on a managed display.
        max_steps: step budget per episode (``truncated`` after it).
        launch: commands (argv lists) started on the display at every reset.
        restart_on_reset: kill and restart Xvfb at every reset (a clean session every episode).
        start_timeout_s: how long Xvfb / openbox may take to become ready.
        window_timeout_s: how long a launched app may take to map its first window.
        drag_steps: pointer motions between press and release in a drag.
    """

    size: tuple[int, int] = (1280, 800)
    display: str | None = None
    window_manager: bool = True
    max_steps: int = 50
    launch: tuple[tuple[str, ...], ...] = ()
    restart_on_reset: bool = False
    start_timeout_s: float = 15.0
    window_timeout_s: float = 15.0
    drag_steps: int = 8

    def __post_init__(self) -> None:
        XvfbConfig(size=tuple(self.size), start_timeout_s=self.start_timeout_s)  # validates size/timeout
        object.__setattr__(self, "size", tuple(self.size))
        object.__setattr__(self, "launch", tuple(_command(c) for c in self.launch))
        if self.display is not None and (not isinstance(self.display, str) or ":" not in self.display):
            raise ValueError(f"display must look like ':0' or 'host:0', got {self.display!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"max_steps must be a positive int, got {self.max_steps!r}")
        if not self.window_timeout_s > 0:
            raise ValueError(f"window_timeout_s must be positive, got {self.window_timeout_s!r}")
        if isinstance(self.drag_steps, bool) or not isinstance(self.drag_steps, int) or self.drag_steps < 1:
            raise ValueError(f"drag_steps must be an int >= 1, got {self.drag_steps!r}")
        if self.display is not None and self.restart_on_reset:
            raise ValueError("restart_on_reset needs a managed Xvfb; an attached display is never restarted")


def _stop_apps(apps: list[subprocess.Popen]) -> None:
    while apps:
        stop(apps.pop())


class DesktopEnv(GUIEnv):
    """Screen and input of an X display: ``with DesktopEnv(size=(1920, 1080)) as env: ...``."""

    name = "desktop"

    def __init__(self, config: DesktopConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or DesktopConfig(), **overrides)
        super().__init__(max_steps=self.config.max_steps)
        self._xvfb: Xvfb | None = None
        self._input: XTestInput | None = None
        self._capture: ScreenCapture | None = None
        self._apps: list[subprocess.Popen] = []
        # Launched apps die with the interpreter even if nobody calls close().
        self._finalizer = weakref.finalize(self, _stop_apps, self._apps)
        self._size = self.config.size
        if self.config.display is not None:
            self._xvfb = Xvfb.attach(self.config.display, timeout_s=self.config.start_timeout_s)
            self._size = self._xvfb.size

    # -- public extras ------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        return self._size

    @property
    def display(self) -> str:
        """The X display name the env drives (``":5"``)."""
        if self._xvfb is None:
            raise EnvNotReadyError("the desktop env has no display yet; call reset() first")
        return self._xvfb.display

    @property
    def server(self) -> Xvfb | None:
        """The display object (owned Xvfb or attached display), or None before reset."""
        return self._xvfb

    def owned_pids(self) -> list[int]:
        """PIDs of every process this env started and has not reaped (Xvfb, openbox, apps)."""
        server = self._xvfb.pids if self._xvfb is not None else []
        return server + [p.pid for p in self._apps]

    def launch(self, cmd: Sequence[str], *, wait_for_window: bool = True,
               stdout: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        """Start ``cmd`` (argv, no shell) on the display and track it; returns its Popen.

        With ``wait_for_window`` (default) returns once a new top-level window is viewable.
        ``stdout=subprocess.PIPE`` lets the caller read the app's output.
        """
        argv = _command(cmd)
        if self._xvfb is None or not self._alive():
            raise EnvNotReadyError("the desktop env is not running; call reset() before launch()")
        if shutil.which(argv[0]) is None:
            raise EnvSetupError(f"cannot launch {argv[0]!r}: not found on PATH (install it or give a full path)")
        before = self._xvfb.viewable_windows() if wait_for_window else set()
        proc = spawn(argv, env=self._xvfb.child_env(), stdin=subprocess.DEVNULL, stdout=stdout,
                     stderr=subprocess.DEVNULL)
        self._apps.append(proc)
        if wait_for_window:
            self._wait_for_window(proc, argv, before)
        return proc

    # -- GUIEnv hooks -------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the desktop env accepts {sorted(RESET_OPTIONS)}")
        launches = tuple(_command(c) for c in options.get("launch", ()))
        restart = bool(options.get("restart", self.config.restart_on_reset))
        if restart and self.config.display is not None:
            raise ValueError("restart needs a managed Xvfb; an attached display is never restarted")
        _stop_apps(self._apps)
        if restart:
            self._shutdown()
        if self._input is None:
            self._start_backend()
        for argv in self.config.launch + launches:
            self.launch(argv)
        return str(options.get("instruction", ""))

    def _execute(self, action: Action) -> dict[str, Any]:
        assert self._input is not None
        with self._backend_errors("input"):
            return self._input.execute(action)

    def _observe(self) -> Observation:
        assert self._capture is not None
        with self._backend_errors("screen capture"):
            pixels = self._capture.grab()
        return Observation(screenshot=pixels, instruction=self._instruction, extra={"display": self.display})

    def _alive(self) -> bool:
        return self._xvfb is not None and self._xvfb.alive()

    def _shutdown(self) -> None:
        _stop_apps(self._apps)
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        if self._input is not None:
            self._input.close()
            self._input = None
        if self._xvfb is not None:
            self._xvfb.stop()  # kills only what it owns; an attached display is left running
            if self._xvfb.owned or self._closed:
                self._xvfb = None

    # -- internals ----------------------------------------------------------------------
    def _start_backend(self) -> None:
        cfg = self.config
        if cfg.display is not None:
            self._xvfb = Xvfb.attach(cfg.display, timeout_s=cfg.start_timeout_s)
            self._size = self._xvfb.size
        else:
            xcfg = XvfbConfig(size=cfg.size, window_manager=cfg.window_manager, start_timeout_s=cfg.start_timeout_s)
            self._xvfb = Xvfb(xcfg).start()
        try:
            self._input = XTestInput(self._xvfb.display, drag_steps=cfg.drag_steps)
            self._capture = ScreenCapture(self._xvfb.display, self._size)
        except BaseException:
            self._shutdown()
            raise

    def _wait_for_window(self, proc: subprocess.Popen, argv: tuple[str, ...], before: set[int]) -> None:
        assert self._xvfb is not None
        server = self._xvfb

        def new_window() -> bool:
            return bool(server.viewable_windows() - before)

        def exited() -> str | None:
            code = proc.poll()
            return None if code is None else f"{argv[0]} exited with code {code} before showing a window"

        try:
            poll_until(new_window, timeout_s=self.config.window_timeout_s, what=f"a window of {argv[0]}", abort=exited)
        except TimeoutError as exc:
            raise EnvSetupError(f"launch {list(argv)}: {exc}; pass wait_for_window=False for apps without windows") from None

    @contextlib.contextmanager
    def _backend_errors(self, what: str) -> Iterator[None]:
        """Turn X connection failures into ``BackendDiedError`` when the server is really gone."""
        try:
            yield
        except PixelPilotError:
            raise  # typed errors (bad key, xdotool failure) pass through unchanged
        except Exception as exc:  # noqa: BLE001 - mss raises ScreenShotError or even AssertionError on a dead server
            if isinstance(exc, xerror.ConnectionClosedError) or not self._alive():
                raise BackendDiedError(
                    f"desktop env: X server {self._xvfb.display if self._xvfb else '?'} died during {what} "
                    f"({type(exc).__name__}: {exc}); call reset() to start a new one"
                ) from exc
            raise
