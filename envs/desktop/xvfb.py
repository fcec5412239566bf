"""``Xvfb``: a virtual X display this process owns (or an existing one it attaches to).

An owned display is started with ``Xvfb -displayfd``: the X server itself picks the first
free display number (it takes ``/tmp/.X{n}-lock`` atomically, so two envs starting at once
never collide) and writes the number to a pipe once it accepts connections. We then open
one X connection to confirm, and optionally start openbox and wait until it owns the
``WM_S0`` selection (the ICCCM "a window manager is running" signal). No fixed sleeps.

Everything started here is stopped by PID in ``stop()``, on ``with`` exit, and at
interpreter exit (``atexit``) for displays nobody stopped. An attached display
(``Xvfb.attach(":0")``) owns no process and ``stop()`` only closes our connection.

This module knows nothing about screenshots or input.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

from Xlib import X, display as xdisplay, error as xerror

from envs.desktop.procs import poll_until, spawn, stop
from envs.errors import BackendDiedError, EnvSetupError

_MIN_SIDE, _MAX_SIDE = 64, 8192


@dataclass(frozen=True)
class XvfbConfig:
    """How to start a virtual display.

    Attributes:
        size: (width, height) of screen 0 in pixels.
        depth: colour depth; 24 gives 4-byte BGRX pixels, which capture expects.
        window_manager: also start openbox (focus on click, decorations, ``_NET_ACTIVE_WINDOW``).
        start_timeout_s: how long to wait for Xvfb / openbox to become ready.
    """

    size: tuple[int, int] = (1280, 800)
    depth: int = 24
    window_manager: bool = False
    start_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        size = tuple(self.size)
        if len(size) != 2 or not all(isinstance(v, int) and _MIN_SIDE <= v <= _MAX_SIDE for v in size):
            raise ValueError(f"size must be (width, height) ints in [{_MIN_SIDE}, {_MAX_SIDE}], got {self.size!r}")
        object.__setattr__(self, "size", size)
        if self.depth != 24:
            raise ValueError(f"depth must be 24 (capture reads 32-bit BGRX pixels), got {self.depth!r}")
        if not self.start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be positive, got {self.start_timeout_s!r}")


def _require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvSetupError(f"{name} not found on PATH: install it (apt-get install {package}) or run scripts/setup.sh")
    return path


class Xvfb:
    """An X display: started and owned (``Xvfb(config).start()``) or attached (``Xvfb.attach``)."""

    def __init__(self, config: XvfbConfig | None = None) -> None:
        self.config = config or XvfbConfig()
        self._display: str | None = None
        self._owned = True
        self._server: subprocess.Popen | None = None
        self._wm: subprocess.Popen | None = None
        self._x: xdisplay.Display | None = None
        self._log: Any = None
        self._lock = threading.Lock()

    @classmethod
    def attach(cls, display: str, *, timeout_s: float = 5.0) -> "Xvfb":
        """Use an existing display (e.g. ``os.environ["DISPLAY"]``); nothing is owned or killed."""
        obj = cls()
        obj._owned = False
        obj._display = display
        try:
            obj._x = poll_until(lambda: _try_connect(display), timeout_s=timeout_s, what=f"X display {display}")
        except TimeoutError as exc:
            raise EnvSetupError(f"cannot connect to X display {display!r} ({exc}); check DISPLAY and xauth") from None
        return obj

    # -- properties ---------------------------------------------------------------------
    @property
    def display(self) -> str:
        """The display name (``":3"``); raises if not started."""
        if self._display is None:
            raise EnvSetupError("the display is not started; call start() first")
        return self._display

    @property
    def owned(self) -> bool:
        """True if this object started the X server (and will stop it)."""
        return self._owned

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of screen 0, as the X server reports it."""
        if self._x is None:
            return self.config.size
        screen = self._x.screen()
        return int(screen.width_in_pixels), int(screen.height_in_pixels)

    @property
    def pids(self) -> list[int]:
        """PIDs of the processes this object started (Xvfb, openbox) that it has not reaped."""
        return [p.pid for p in (self._server, self._wm) if p is not None]

    def viewable_windows(self) -> set[int]:
        """Ids of the root window's children that are mapped and viewable (top-level windows/frames)."""
        x = self._x
        if x is None:
            raise EnvSetupError("the display is not started; call start() first")
        found: set[int] = set()
        for win in x.screen().root.query_tree().children:
            try:
                if win.get_attributes().map_state == X.IsViewable:
                    found.add(int(win.id))
            except xerror.BadWindow:
                continue  # destroyed between query_tree and get_attributes
        return found

    def child_env(self) -> dict[str, str]:
        """A copy of ``os.environ`` pointing X clients at this display."""
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env.pop("WAYLAND_DISPLAY", None)
        return env

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> "Xvfb":
        """Start Xvfb (and openbox if configured); wait until both are ready."""
        if not self._owned:
            raise EnvSetupError("an attached display cannot be started; it is already running")
        with self._lock:
            if self._server is not None:
                return self
            _LIVE.add(self)
            try:
                self._start_server()
                if self.config.window_manager:
                    self._start_wm()
            except BaseException:
                self._stop_locked()
                raise
        return self

    def stop(self) -> None:
        """Stop what we started (by PID) and close our X connection; idempotent."""
        with self._lock:
            self._stop_locked()

    def alive(self) -> bool:
        """Cheap liveness: the Xvfb process is running (owned) or a round trip works (attached)."""
        if self._owned:
            return self._server is not None and self._server.poll() is None
        if self._x is None:
            return False
        try:
            self._x.get_input_focus()
            return True
        except (xerror.ConnectionClosedError, OSError):
            return False

    def check_alive(self) -> None:
        """Raise ``BackendDiedError`` if the X server is gone."""
        if not self.alive():
            code = self._server.poll() if self._server is not None else None
            raise BackendDiedError(f"X server {self._display} is gone (exit code {code}); call reset() to start a new one")

    def __enter__(self) -> "Xvfb":
        return self.start() if self._owned else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------
    def _start_server(self) -> None:
        binary = _require_binary("Xvfb", "xvfb")
        w, h = self.config.size
        read_fd, write_fd = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="pixelpilot-xvfb-")
        cmd = [binary, "-displayfd", str(write_fd), "-screen", "0", f"{w}x{h}x{self.config.depth}",
               "-nolisten", "tcp", "-noreset", "+extension", "XTEST"]
        try:
            self._server = spawn(cmd, env=os.environ, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=self._log)
        finally:
            os.close(write_fd)
        try:
            number = self._read_display_number(read_fd)
        finally:
            os.close(read_fd)
        self._display = f":{number}"
        try:
            self._x = poll_until(lambda: _try_connect(self.display), timeout_s=self.config.start_timeout_s,
                                 what=f"Xvfb on {self.display} to accept connections", abort=self._server_exit_reason)
        except TimeoutError as exc:
            raise EnvSetupError(f"{exc}; Xvfb said: {self._log_tail()}") from None

    def _read_display_number(self, read_fd: int) -> int:
        # -displayfd writes "<n>\n" once the server is ready; EOF means it died first.
        data = b""

        def ready() -> bool | None:
            nonlocal data
            readable, _, _ = select.select([read_fd], [], [], 0)
            if readable:
                chunk = os.read(read_fd, 64)
                if not chunk:
                    raise EnvSetupError(f"Xvfb exited before it was ready: {self._log_tail()}")
                data += chunk
            return b"\n" in data or None

        try:
            poll_until(ready, timeout_s=self.config.start_timeout_s, what="Xvfb to report its display number",
                       abort=self._server_exit_reason)
        except TimeoutError as exc:
            raise EnvSetupError(f"{exc}; Xvfb said: {self._log_tail()}") from None
        return int(data.split(b"\n", 1)[0].strip())

    def _start_wm(self) -> None:
        binary = _require_binary("openbox", "openbox")
        self._wm = spawn([binary, "--sm-disable"], env=self.child_env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=self._log)
        x = self._x
        assert x is not None
        wm_selection = x.intern_atom(f"WM_S{x.get_default_screen()}")

        def wm_ready() -> bool:
            return x.get_selection_owner(wm_selection) != X.NONE

        def wm_exit_reason() -> str | None:
            code = self._wm.poll() if self._wm is not None else None
            return None if code is None else f"openbox exited with code {code}: {self._log_tail()}"

        try:
            poll_until(wm_ready, timeout_s=self.config.start_timeout_s, what="openbox to manage the screen",
                       abort=wm_exit_reason)
        except TimeoutError as exc:
            raise EnvSetupError(str(exc)) from None

    def _server_exit_reason(self) -> str | None:
        code = self._server.poll() if self._server is not None else None
        return None if code is None else f"Xvfb exited with code {code}: {self._log_tail()}"

    def _log_tail(self) -> str:
        if self._log is None:
            return "(no log)"
        self._log.seek(0)
        text = self._log.read()[-600:].decode("utf-8", "replace").strip()
        return text or "(nothing on stderr)"

    def _stop_locked(self) -> None:
        if self._x is not None:
            try:
                self._x.close()
            except (xerror.ConnectionClosedError, OSError):
                pass  # the server is already gone; nothing to close
            self._x = None
        if self._owned:
            for attr in ("_wm", "_server"):  # window manager first, then the server under it
                proc = getattr(self, attr)
                if proc is not None:
                    stop(proc)
                    setattr(self, attr, None)
            if self._log is not None:
                self._log.close()
                self._log = None
            self._display = None
        _LIVE.discard(self)


def _try_connect(name: str) -> xdisplay.Display | None:
    try:
        return xdisplay.Display(name)
    except (xerror.DisplayError, xerror.ConnectionClosedError, OSError):
        return None


# Displays started and not yet stopped; stopped at interpreter exit so a crash in user
# code never leaves an Xvfb behind.
_LIVE: set[Xvfb] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()
