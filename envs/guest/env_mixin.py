"""What every environment driven through the guest controller shares (docker and VM).

``GuestEnvMixin`` holds the task plumbing both ``DockerEnv`` and ``VMEnv`` need on top of
``GUIEnv``: the task ``Controller`` over the current guest, launching apps and waiting for
their windows, the task's reward on ``Done``/``Fail``, the scripted solution, and mapping a
broken controller connection to ``BackendDiedError``. The env supplies ``client`` (the current
``GuestClient``), ``config.window_timeout_s``, ``_task``/``_seed`` and ``_died_message``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from envs.actions import Action, Done, Fail
from envs.errors import BackendDiedError, EnvNotReadyError, EnvSetupError
from envs.guest import protocol as p
from envs.guest.client import GuestClient, GuestConnectionError, GuestController


def launch_argv(cmd: Any) -> tuple[str, ...]:
    """``cmd`` as an argv tuple; ``ValueError`` for anything but a non-empty list of strings (no shell)."""
    if isinstance(cmd, str) or not isinstance(cmd, (list, tuple)) or not cmd \
            or not all(isinstance(a, str) for a in cmd):
        raise ValueError(f"a launch command must be a non-empty list of strings (argv, no shell), got {cmd!r}")
    return tuple(cmd)


class GuestEnvMixin:
    """Task plumbing over the guest controller; mix in before ``GUIEnv``."""

    client: GuestClient
    config: Any
    screen_size: tuple[int, int]
    _task: Any
    _seed: int

    def _died_message(self, what: str, exc: Exception) -> str:
        """The ``BackendDiedError`` text when the guest dies during ``what``."""
        raise NotImplementedError

    @property
    def controller(self) -> GuestController:
        """A task ``Controller`` that always talks to the current guest."""
        return GuestController(lambda: self.client)

    @contextlib.contextmanager
    def _died(self, what: str) -> Iterator[None]:
        """Map a broken guest connection to ``BackendDiedError``."""
        try:
            yield
        except GuestConnectionError as exc:
            raise BackendDiedError(self._died_message(what, exc)) from exc

    def _reward(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        if self._task is None or not isinstance(action, (Done, Fail)):
            return 0.0, False, {}
        if isinstance(action, Fail):
            return 0.0, True, {"success": False}
        with self._died("task check"):
            ok = self._task.check(self.controller, self._seed)
        return (1.0 if ok else 0.0), True, {"success": ok}

    def launch(self, argv: Any, *, wait_for_window: bool = True) -> int:
        """Start ``argv`` in the guest; by default wait until a new window is viewable. Returns its pid."""
        argv = launch_argv(argv)
        client = self.client
        with self._died(f"launch {argv[0]}"):
            before = {w.id for w in client.request(p.ListWindows()).windows} if wait_for_window else set()
            pid = client.request(p.Launch(argv)).pid
            if wait_for_window:
                self._wait_for_window(client, pid, argv[0], before)
        return pid

    def _wait_for_window(self, client: GuestClient, pid: int, name: str, before: set[str]) -> None:
        deadline = time.monotonic() + self.config.window_timeout_s
        delay = 0.02
        while True:
            for wid in sorted({w.id for w in client.request(p.ListWindows()).windows} - before):
                # Managed (in _NET_CLIENT_LIST) comes before mapped: wait until X says it is viewable.
                if "IsViewable" in client.run(["xwininfo", "-id", wid], timeout_s=20).stdout:
                    return
            code = client.request(p.ProcessStatus(pid)).returncode
            if code is not None:
                raise EnvSetupError(f"{name} exited with code {code} in the guest before showing a window")
            if time.monotonic() > deadline:
                raise EnvSetupError(f"no window of {name} within {self.config.window_timeout_s:.0f}s; pass "
                                    "wait_for_window=False for apps without windows")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def solution(self) -> tuple[Action, ...]:
        """The scripted solution of the current episode's task (what a collection expert replays)."""
        if self._task is None:
            raise EnvNotReadyError("no task in this episode: reset(options={'task': ...}) first")
        return self._task.solution(self._seed, self.screen_size)
