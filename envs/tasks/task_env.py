"""``TaskEnv``: an OSWorld-style task on a real X desktop — setup, the agent's steps, evaluation.

``reset(options={"task": Task})`` gives a fresh session for the task:
1. apps from the previous episode are ended by PID (the controller's launches, the desktop's
   launches); if windows are still mapped on a display we own (an app the agent started from
   a terminal), Xvfb is restarted;
2. the session's home directory (``$HOME``, a sandbox under the env's work directory, never
   the real home) and the evaluation cache directory are wiped and recreated;
3. placeholders in the task are filled in (``PLACEHOLDERS``), a ``Controller`` is bound to the
   display (``controller_factory``; default ``LocalController``) and the task's setup steps run
   through ``run_setup`` with their postconditions. A step that fails, or a setup that exceeds
   ``setup_timeout_s``, raises ``SetupError`` — the runner records ``setup_error``, never an
   agent failure.

``step(action)`` is ``DesktopEnv``'s. When the episode ends (``Done``/``Fail`` or the step
budget) the evaluator runs (postconfig, getters, metrics; an infeasible task scores 1 only when
the last action was ``Fail``) and the step returns ``reward = score`` with ``info["score"]``,
``info["success"]``, ``info["feasible"]`` and ``info["eval"]`` (JSON-ready details).

Session environment of every command and app the controller starts (``session_environment``):
``HOME``/``XDG_*`` in the sandbox, ``GSETTINGS_BACKEND=keyfile`` (GNOME settings persist in
``$HOME/.config`` without a D-Bus session), ``NO_AT_BRIDGE=1`` (no AT-SPI timeouts), no session
bus, and this interpreter's directory first on ``PATH`` (OSWorld's setup commands run
``python -c "import pyautogui ..."``). Paths a task writes outside ``$HOME`` (OSWorld's
``/home/user/...``) are real paths on this machine: TaskEnv does not clean them.

This module scores episodes; it does not choose actions (see ``envs.suites``) or record runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from envs.actions import Action, is_terminal
from envs.desktop.env import DesktopConfig, DesktopEnv
from envs.desktop.procs import stop
from envs.errors import EnvNotReadyError
from envs.tasks.controller import Controller
from envs.tasks.errors import SetupError, SetupTimeoutError
from envs.tasks.evaluate import DEFAULT_SUCCESS_THRESHOLD, EvalResult, evaluate
from envs.tasks.fetch import FetchPolicy
from envs.tasks.getters import EvalContext
from envs.tasks.local_controller import LocalController
from envs.tasks.model import Task, parse_task
from envs.tasks.setup_runner import SetupContext, SetupResult, StepOutcome, run_setup
from envs.tasks.setup_steps import LaunchStep, SetupStep

#: Placeholders filled in every string of a task (OSWorld's, plus ``{HOME}``).
PLACEHOLDERS = ("SCREEN_WIDTH", "SCREEN_HEIGHT", "SCREEN_WIDTH_HALF", "SCREEN_HEIGHT_HALF", "CLIENT_PASSWORD", "HOME")
HOME_SUBDIRS = ("Desktop", "Documents", "Downloads")
RESET_OPTIONS = frozenset({"task", "restart"})
STRAY_WINDOW_GRACE_S = 1.0  # how long windows of ended apps may linger before the display is restarted


@dataclass(frozen=True)
class SessionInfo:
    """What a controller factory needs to bind a controller to one episode's session."""

    display: str
    screen_size: tuple[int, int]
    home: Path
    cache_dir: Path
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


ControllerFactory = Callable[[SessionInfo], Controller]


def session_environment(home: Path) -> dict[str, str]:
    """Environment variables (on top of ``os.environ``) for everything the session starts."""
    bindir = str(Path(sys.executable).parent)
    return {
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"), "GSETTINGS_BACKEND": "keyfile", "NO_AT_BRIDGE": "1",
        # No session bus: apps must not reach (or open windows through) a bus outside the sandbox.
        "DBUS_SESSION_BUS_ADDRESS": "disabled:",
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
    }


def default_controller_factory(session: SessionInfo) -> Controller:
    """A ``LocalController`` on the session's display, with the session environment, working in ``$HOME``."""
    return LocalController(session.display, env=dict(session.env), cwd=str(session.home))


def fill_placeholders(task: Task, values: Mapping[str, str], aliases: Mapping[str, str] | None = None) -> Task:
    """A copy of ``task`` with ``{NAME}`` replaced by ``values[NAME]`` in every string.

    Plain ``str.replace`` (not ``str.format``): commands contain other braces (awk, JSON).
    ``aliases`` maps path prefixes to replacements (``/home/user`` -> the sandbox home); a
    prefix matches only as a whole path component (``/home/username`` stays).
    """
    patterns = [(re.compile(re.escape(src) + r"(?![\w.-])"), dst) for src, dst in (aliases or {}).items()]

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            for name, text in values.items():
                value = value.replace("{" + name + "}", text)
            for pattern, dst in patterns:
                value = pattern.sub(lambda _m: dst, value)
            return value
        if isinstance(value, tuple):
            return tuple(fill(v) for v in value)
        if isinstance(value, Mapping):
            return MappingProxyType({k: fill(v) for k, v in value.items()})
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{f.name: fill(getattr(value, f.name))
                                                 for f in dataclasses.fields(value) if f.init})
        return value

    return fill(task)


def _argv(cmd: Any) -> tuple[str, ...]:
    if isinstance(cmd, str) or not isinstance(cmd, Sequence) or not cmd or not all(isinstance(a, str) for a in cmd):
        raise ValueError(f"a session app must be a non-empty argv list of strings, got {cmd!r}")
    return tuple(cmd)


def _as_task(value: Any) -> Task:
    if isinstance(value, Task):
        return value
    if isinstance(value, Mapping):
        return parse_task(value, "<reset options>")
    raise ValueError(f"options['task'] must be an envs.tasks.Task (or a task JSON object), got {type(value).__name__}")


def _close_controller(holder: list[Any]) -> None:
    """Close the controller in ``holder`` (ends the processes it launched, by PID)."""
    while holder:
        close = getattr(holder.pop(), "close", None)
        if callable(close):
            close()


def _cleanup(holder: list[Any], workdir: Path | None) -> None:
    _close_controller(holder)
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)


class TaskEnv(DesktopEnv):
    """A ``DesktopEnv`` that runs one OSWorld-style ``Task`` per episode and scores it.

    Args:
        base: the desktop (screen size, window manager, step budget, ...).
        controller_factory: ``SessionInfo -> Controller`` (default: ``LocalController``).
        setup_timeout_s: budget for all setup steps of one reset (each step keeps its own,
            smaller timeout); exceeding it raises ``SetupTimeoutError``.
        workdir: where session homes and caches live (default: a new temporary directory,
            removed by ``close()``; a given directory is kept).
        client_password: the value of ``{CLIENT_PASSWORD}``.
        fetch: how remote task files are fetched (local URLs or a mirror; never the internet).
        sleep_scale: factor on the ``sleep`` steps task files ask for.
        threshold: the score counted as success.
        session_apps: apps (argv lists) started in the session at every reset, before the task's
            setup, like the standing apps of OSWorld's desktop (e.g. ``[["xterm", "-title", "Terminal"]]``:
            the VM has a terminal one shortcut away, openbox here has none). They run as
            setup steps, so a failure is a ``SetupError``.
        home_alias: a path the task files use for the user's home (OSWorld: ``/home/user``);
            it is rewritten to the sandbox ``$HOME`` in every string of the task.
    """

    name = "desktop-task"

    def __init__(self, base: DesktopConfig | None = None, *, controller_factory: ControllerFactory | None = None,
                 setup_timeout_s: float = 120.0, workdir: str | Path | None = None, client_password: str = "password",
                 fetch: FetchPolicy | None = None, sleep_scale: float = 1.0,
                 threshold: float = DEFAULT_SUCCESS_THRESHOLD, session_apps: Sequence[Sequence[str]] = (),
                 home_alias: str | None = None) -> None:
        if not setup_timeout_s > 0:
            raise ValueError(f"setup_timeout_s must be positive seconds, got {setup_timeout_s!r}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        self._setup_ctx_args = {"fetch": fetch or FetchPolicy(), "sleep_scale": sleep_scale}
        SetupContext(Path("."), **self._setup_ctx_args)  # validates sleep_scale now, not at the first reset
        super().__init__(base)
        self.setup_timeout_s = float(setup_timeout_s)
        self.threshold = threshold
        self.client_password = client_password
        self.session_apps = tuple(LaunchStep(type="launch", timeout_s=60.0, command=_argv(a)) for a in session_apps)
        if home_alias is not None and not (home_alias.startswith("/") and len(home_alias) > 1):
            raise ValueError(f"home_alias must be an absolute path such as '/home/user', got {home_alias!r}")
        self.home_alias = home_alias.rstrip("/") if home_alias else None
        self._factory = controller_factory or default_controller_factory
        owned = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="pixelpilot-task-")) if owned else Path(workdir).resolve()
        self._holder: list[Any] = []  # the current controller (a list, so the finalizer sees changes)
        self._task_finalizer = weakref.finalize(self, _cleanup, self._holder, self.workdir if owned else None)
        self._task: Task | None = None
        self._active: Task | None = None
        self._session: SessionInfo | None = None
        self.last_setup: SetupResult | None = None
        self.last_eval: EvalResult | None = None

    # -- public extras ------------------------------------------------------------------
    @property
    def task(self) -> Task | None:
        """The task of the current episode as given to ``reset`` (placeholders not filled)."""
        return self._task

    @property
    def active_task(self) -> Task | None:
        """The current task with its placeholders filled in (what setup and evaluation use)."""
        return self._active

    @property
    def controller(self) -> Controller:
        """The controller bound to this episode's session (privileged access, for setup/scoring/tests)."""
        if not self._holder:
            raise EnvNotReadyError("the task env has no controller yet; call reset(options={'task': task}) first")
        return self._holder[0]

    @property
    def session(self) -> SessionInfo:
        """Display, home and cache directory of the current episode."""
        if self._session is None:
            raise EnvNotReadyError("the task env has no session yet; call reset(options={'task': task}) first")
        return self._session

    @property
    def home(self) -> Path:
        """The sandbox ``$HOME`` of the current episode."""
        return self.session.home

    # -- GUIEnv hooks -------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        unknown = set(options) - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; the task env accepts {sorted(RESET_OPTIONS)}")
        task = _as_task(options["task"]) if options.get("task") is not None else self._task
        if task is None:
            raise ValueError("TaskEnv.reset needs options={'task': Task} (later resets without it repeat that task)")
        self._task, self._active, self.last_setup, self.last_eval = task, None, None, None
        _close_controller(self._holder)
        restart = bool(options.get("restart", False)) or self._stray_windows()
        super()._start(seed, {"instruction": task.instruction, "restart": restart})
        self._session = self._fresh_session()
        aliases = {self.home_alias: str(self._session.home)} if self.home_alias else None
        self._active = fill_placeholders(task, self._placeholder_values(self._session), aliases)
        self._holder.append(self._factory(self._session))
        self.last_setup = self._run_setup(self.session_apps + self._active.config, self.controller)
        return self._active.instruction

    def _reward(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        episode_ends = is_terminal(action) or self._steps + 1 >= self.max_steps
        if not episode_ends or self._active is None:
            return 0.0, False, {}
        t0 = time.monotonic()
        ctx = EvalContext(self.controller, self.session.cache_dir, self._setup_ctx_args["fetch"])
        result = evaluate(self._active.evaluator, ctx, action, threshold=self.threshold,
                          sleep_scale=self._setup_ctx_args["sleep_scale"])
        self.last_eval = result
        info = {"score": result.score, "success": result.success, "feasible": result.feasible,
                "eval": {**result.to_json(), "task_id": self._active.id, "duration_s": time.monotonic() - t0}}
        return result.score, False, info

    def _shutdown(self) -> None:
        _close_controller(self._holder)
        super()._shutdown()
        if self._closed:
            self._task_finalizer()  # removes an owned workdir; safe to call once more later

    # -- internals ----------------------------------------------------------------------
    def _stray_windows(self) -> bool:
        """Windows left on a display we own after every tracked app ended (started from a terminal)."""
        server = self.server
        if server is None or not server.owned or not self._alive():
            return False
        while self._apps:  # end the desktop's own launches first, so only strays remain
            stop(self._apps.pop())
        # Client windows (openbox's _NET_CLIENT_LIST, or mapped top-levels on a bare server);
        # windows of apps that just exited may take a moment to go.
        with LocalController(server.display) as probe:
            deadline = time.monotonic() + STRAY_WINDOW_GRACE_S
            while probe.list_windows():
                if time.monotonic() >= deadline:
                    return True
                time.sleep(0.02)
        return False

    def _fresh_session(self) -> SessionInfo:
        home, cache = self.workdir / "home", self.workdir / "cache"
        for d in (home, cache):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for sub in HOME_SUBDIRS:
            (home / sub).mkdir()
        env = MappingProxyType(session_environment(home))
        return SessionInfo(self.display, self.screen_size, home, cache, env)

    def _placeholder_values(self, session: SessionInfo) -> dict[str, str]:
        w, h = session.screen_size
        return {"SCREEN_WIDTH_HALF": str(w // 2), "SCREEN_HEIGHT_HALF": str(h // 2), "SCREEN_WIDTH": str(w),
                "SCREEN_HEIGHT": str(h), "CLIENT_PASSWORD": self.client_password, "HOME": str(session.home)}

    def _run_setup(self, steps: tuple[SetupStep, ...], controller: Controller) -> SetupResult:
        """``run_setup`` step by step under the overall budget (a step's timeout never exceeds what is left)."""
        ctx = SetupContext(self.session.cache_dir, **self._setup_ctx_args)
        deadline = time.monotonic() + self.setup_timeout_s
        outcomes: list[StepOutcome] = []
        t0 = time.monotonic()
        for i, step in enumerate(steps):
            left = deadline - time.monotonic()
            if left <= 0:
                raise SetupTimeoutError(i, step.type, f"the setup budget of {self.setup_timeout_s:.0f}s ran out",
                                        "raise TaskEnv(setup_timeout_s=...) or make the task's setup faster")
            capped = dataclasses.replace(step, timeout_s=min(step.timeout_s, left))
            try:
                done = run_setup([capped], controller, ctx)
            except SetupError as exc:
                raise type(exc)(i, exc.step_type, exc.reason, exc.fix) from exc
            outcomes.extend(dataclasses.replace(o, index=i) for o in done.steps)
        return SetupResult(tuple(outcomes), time.monotonic() - t0)


__all__ = ["ControllerFactory", "PLACEHOLDERS", "SessionInfo", "TaskEnv", "default_controller_factory",
           "fill_placeholders", "session_environment"]
