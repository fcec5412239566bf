"""check_env catches broken environments and accepts a correct one.

The envs here are tiny in-memory canvases made only to test the checker itself; real
environments (desktop, browser, ...) are checked in their own integration tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.actions import Action, Click
from envs.base import GUIEnv
from envs.checker import EnvConformanceError, check_env
from envs.observation import Observation


class CanvasEnv(GUIEnv):
    """Draws a white pixel where it is clicked; the instruction depends on the seed."""

    name = "canvas"

    def __init__(self, size: tuple[int, int] = (64, 48), max_steps: int = 10) -> None:
        super().__init__(max_steps=max_steps)
        self._size = size
        self.canvas = np.zeros((size[1], size[0], 3), np.uint8)
        self.alive = True
        self.shutdowns = 0

    @property
    def screen_size(self) -> tuple[int, int]:
        return self._size

    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        self.alive = True
        self.canvas[:] = 0
        return f"paint pixel {seed}"

    def _execute(self, action: Action) -> dict[str, Any]:
        if isinstance(action, Click):
            self.canvas[action.y, action.x] = 255
        return {}

    def _observe(self) -> Observation:
        return Observation(self.canvas.copy(), instruction=self.instruction)

    def _alive(self) -> bool:
        return self.alive

    def _shutdown(self) -> None:
        self.shutdowns += 1


def test_a_correct_env_passes_every_rule() -> None:
    env = CanvasEnv()
    rules = check_env(env)
    assert rules == ["reset", "step", "invalid_input_leaves_env_usable", "done_terminates",
                     "seeded_reset_is_deterministic", "fail_terminates", "step_budget_truncates",
                     "close_is_idempotent"]
    assert env.shutdowns == 1


def test_click_lands_on_the_canvas() -> None:
    with CanvasEnv() as env:
        env.reset(seed=1)
        obs, *_ = env.step(Click(5, 7))
        assert obs.screenshot[7, 5].tolist() == [255, 255, 255]


class WrongSize(CanvasEnv):
    @property
    def screen_size(self) -> tuple[int, int]:
        return (65, 48)


class RandomInstruction(CanvasEnv):
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        super()._start(seed, options)
        return f"paint {np.random.randint(1 << 30)}"


class DoneDoesNotTerminate(CanvasEnv):
    def step(self, action):  # type: ignore[override]
        obs, r, term, trunc, info = super().step(action)
        return obs, r, False, trunc, info


class NoTruncation(CanvasEnv):
    def step(self, action):  # type: ignore[override]
        obs, r, term, trunc, info = super().step(action)
        self._episode_over = term
        return obs, r, term, False, info


@pytest.mark.parametrize(
    "env_cls, fragment",
    [(WrongSize, "screen_size"), (RandomInstruction, "same seed"),
     (DoneDoesNotTerminate, "Done must terminate"), (NoTruncation, "truncated")],
)
def test_broken_envs_are_caught(env_cls: type, fragment: str) -> None:
    with pytest.raises(EnvConformanceError, match=fragment):
        check_env(env_cls())


def test_dead_backend_is_recreated_by_reset() -> None:
    from envs.errors import BackendDiedError

    env = CanvasEnv()
    env.reset(seed=0)
    env.alive = False
    with pytest.raises(BackendDiedError, match="reset"):
        env.step(env.noop())
    obs, _ = env.reset(seed=0)
    assert env.shutdowns == 1 and obs.instruction == "paint pixel 0"
    env.step(env.noop())
