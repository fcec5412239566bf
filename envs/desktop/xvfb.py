"""``Xvfb``: a virtual X display this process owns (or an existing one it attaches to).

An owned display gets the first number from :10 up whose ``/tmp/.X{n}-lock`` and socket
do not exist. Xvfb takes the lock file atomically; if another server wins the race for a
number, ours exits and we try the next one. It is ready when the lock file holds *our*
Xvfb's PID and a connection succeeds (polled with back-off; ``-displayfd`` would signal
readiness too, but then Xvfb writes no lock file and other tools could pick the same
number). Optionally openbox is started and we wait until it owns the ``WM_S0`` selection
(the ICCCM "a window manager is running" signal). No fixed sleeps.

Everything started here is stopped by PID in ``stop()``, on ``with`` exit, and at
interpreter exit (``atexit``) for displays nobody stopped. An attached display
(``Xvfb.attach(":0")``) owns no process and ``stop()`` only closes our connection.

This module knows nothing about screenshots or input.
"""

from __future__ import annotations

import atexit
import os
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
# Managed displays start at :10 so :0/:1 stay free for real sessions.
_FIRST_DISPLAY, _LAST_DISPLAY = 10, 999
_START_ATTEMPTS = 8


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
        self._log = tempfile.TemporaryFile(prefix="pixelpilot-xvfb-")
        tried: list[int] = []
        for _ in range(_START_ATTEMPTS):
            number = free_display_number(after=tried[-1] if tried else _FIRST_DISPLAY - 1)
            tried.append(number)
            if self._try_server(binary, number):
                return
        raise EnvSetupError(f"Xvfb could not start on displays {tried} (another X server took each one first?); "
                            f"last error: {self._log_tail()}")

    def _try_server(self, binary: str, number: int) -> bool:
        """Start Xvfb on ``:number``; True once it is ours and accepts connections, False if it lost the race."""
        w, h = self.config.size
        # An explicit display number (not -displayfd) so Xvfb writes /tmp/.X{n}-lock, which
        # other tools choosing a display look at. Readiness is polled below.
        cmd = [binary, f":{number}", "-screen", "0", f"{w}x{h}x{self.config.depth}",
               "-nolisten", "tcp", "-noreset", "+extension", "XTEST"]
        server = spawn(cmd, env=os.environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)
        self._server = server
        self._display = f":{number}"

        def ready() -> xdisplay.Display | None:
            # The lock file names the PID of the server that owns the number: connect only
            # once it is ours, so we never mistake a concurrent server for our own.
            return _try_connect(self.display) if _lock_pid(number) == server.pid else None

        try:
            self._x = poll_until(ready, timeout_s=self.config.start_timeout_s,
                                 what=f"Xvfb on {self.display} to accept connections", abort=self._server_exit_reason)
            return True
        except TimeoutError as exc:
            if server.poll() is None:  # alive but never ready: a real failure, not a lost race
                raise EnvSetupError(f"{exc}; Xvfb said: {self._log_tail()}") from None
            stop(server)
            self._server = None
            self._display = None
            return False

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
            if self._wm is not None:  # window manager first, then the server under it
                stop(self._wm)
                self._wm = None
            if self._server is not None:
                stop(self._server)
                if self._display is not None:
                    _remove_stale_files(int(self._display.lstrip(":")), self._server.pid)
                self._server = None
            if self._log is not None:
                self._log.close()
                self._log = None
            self._display = None
        _LIVE.discard(self)


def _lock_pid(number: int) -> int | None:
    """PID written in ``/tmp/.X{number}-lock`` (None if missing or not yet written)."""
    try:
        with open(f"/tmp/.X{number}-lock", encoding="ascii", errors="replace") as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _remove_stale_files(number: int, pid: int) -> None:
    """After our Xvfb ``pid`` is reaped: remove the lock file and socket it left (killed by SIGKILL)."""
    if _lock_pid(number) != pid:
        return  # it cleaned up itself, or the number already belongs to another server
    for path in (f"/tmp/.X11-unix/X{number}", f"/tmp/.X{number}-lock"):  # the lock last: it guards the number
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def free_display_number(after: int = _FIRST_DISPLAY - 1) -> int:
    """The first display number above ``after`` with neither a lock file nor a socket."""
    for number in range(after + 1, _LAST_DISPLAY + 1):
        if not os.path.exists(f"/tmp/.X{number}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            return number
    raise EnvSetupError(f"no free X display number in ({after}, {_LAST_DISPLAY}]: remove stale /tmp/.X*-lock files")


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
