"""The Gymnasium-style environment interface every pixelpilot environment implements.

``Env`` fixes the contract (reset / step / close, context manager, typed errors);
``GUIEnv`` implements the bookkeeping every GUI env shares — validation before anything
touches the backend, terminal actions, the step budget, timing info — so a concrete env
only writes ``_start``, ``_execute``, ``_observe`` and optionally ``_reward``.

Contract:
- ``reset(seed=, options=)`` → ``(Observation, info)``; recreates a dead backend.
- ``step(action)`` → ``(Observation, reward, terminated, truncated, info)``.
  ``terminated``: the task reached an end state (``Done``/``Fail`` or the task says so);
  ``truncated``: the step budget ran out. Scoring is the env's job: ``reward`` and
  ``info["success"]`` where known.
- Invalid actions raise ``InvalidActionError`` before anything happens; the env stays usable.
- A dead backend raises ``BackendDiedError``; ``reset()`` recreates it.
"""

from __future__ import annotations

import abc
import time
from typing import Any, Generic, TypeVar

from envs.actions import Action, Wait, is_terminal, validate_action
from envs.errors import BackendDiedError, EnvNotReadyError
from envs.observation import Observation

ObsT = TypeVar("ObsT")
ActT = TypeVar("ActT")
StepResult = tuple[Observation, float, bool, bool, dict[str, Any]]


class Env(abc.ABC, Generic[ObsT, ActT]):
    """Abstract environment: Gymnasium's API with typed observations and actions."""

    #: Short name used in trajectories and the CLI (``desktop``, ``browser``, ...).
    name: str = "env"

    @abc.abstractmethod
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsT, dict[str, Any]]:
        """Start a new episode and return the first observation and an info dict."""

    @abc.abstractmethod
    def step(self, action: ActT) -> tuple[ObsT, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; return ``(obs, reward, terminated, truncated, info)``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every resource; idempotent."""

    @property
    @abc.abstractmethod
    def screen_size(self) -> tuple[int, int]:
        """(width, height) of the screen in pixels, as observations report it."""

    def __enter__(self) -> "Env[ObsT, ActT]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GUIEnv(Env[Observation, Action]):
    """Shared step logic for screen-and-input environments.

    Subclasses implement:
        _start(seed, options) -> str      start/refresh the backend; return the instruction.
        _execute(action) -> dict          perform one input action (not Wait/Done/Fail); return info.
        _observe() -> Observation         capture the screen (with the instruction).
        _alive() -> bool                  is the backend still there?
        _reward(action) -> tuple[float, bool, dict]  reward, task-ended, info (default 0/False).
        _shutdown()                       stop the backend; must be safe to call twice.
    """

    def __init__(self, max_steps: int = 50) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.max_steps = max_steps
        self._instruction = ""
        self._steps = 0
        self._episode_over = True
        self._closed = False
        self._needs_restart = False

    # -- hooks -------------------------------------------------------------------------
    @abc.abstractmethod
    def _start(self, seed: int | None, options: dict[str, Any]) -> str: ...

    @abc.abstractmethod
    def _execute(self, action: Action) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _observe(self) -> Observation: ...

    @abc.abstractmethod
    def _alive(self) -> bool: ...

    @abc.abstractmethod
    def _shutdown(self) -> None: ...

    def _reward(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        """Reward after ``action``; ``True`` in the middle if the task itself ended."""
        return 0.0, False, {}

    # -- public API ----------------------------------------------------------------------
    @property
    def instruction(self) -> str:
        return self._instruction

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        if self._closed:
            raise EnvNotReadyError(f"{self.name} env is closed; create a new one")
        t0 = time.perf_counter()
        if self._needs_restart or not self._alive():
            self._shutdown()
            self._needs_restart = False
        self._episode_over = True  # a reset that fails must not let step() continue the old episode
        try:
            self._instruction = self._start(seed, dict(options or {}))
            obs = self._observe()
        except BackendDiedError:
            self._needs_restart = True
            raise
        self._steps = 0
        self._episode_over = False
        return obs, {"reset_s": time.perf_counter() - t0, "seed": seed}

    def step(self, action: Action) -> StepResult:
        if self._closed:
            raise EnvNotReadyError(f"{self.name} env is closed; create a new one")
        if self._episode_over:
            raise EnvNotReadyError(f"{self.name} env: the episode is over (or never started); call reset() first")
        validate_action(action, self.screen_size)
        if not self._alive():
            self._needs_restart = True
            self._episode_over = True
            raise BackendDiedError(f"{self.name} env: the backend is gone; call reset() to recreate it")
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        try:
            if isinstance(action, Wait):
                time.sleep(action.seconds)
            elif not is_terminal(action):
                info.update(self._execute(action))
            t1 = time.perf_counter()
            reward, task_ended, rinfo = self._reward(action)
            info.update(rinfo)
            obs = self._observe()
        except BackendDiedError:
            self._needs_restart = True
            self._episode_over = True
            raise
        t2 = time.perf_counter()
        self._steps += 1
        terminated = is_terminal(action) or task_ended
        truncated = not terminated and self._steps >= self.max_steps
        self._episode_over = terminated or truncated
        info.update({"step": self._steps, "action_s": t1 - t0, "observe_s": t2 - t1})
        return obs, float(reward), terminated, truncated, info

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._episode_over = True
            self._shutdown()

    def noop(self) -> Action:
        """An action that changes nothing (used by the conformance checker)."""
        return Wait(0.0)
