"""``check_env``: the conformance test every environment passes.

Like Gymnasium's env checker, but for pixelpilot's typed contract (see ``envs.base``): it
drives a real env through reset, no-op steps, invalid input, terminal actions, the step
budget and close, and raises ``EnvConformanceError`` naming the first broken rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.actions import Click, Done, Fail, Move
from envs.base import Env
from envs.errors import EnvNotReadyError, InvalidActionError, OutOfScreenError
from envs.observation import Observation


class EnvConformanceError(AssertionError):
    """An environment broke a rule of the ``envs.base`` contract."""


def _require(cond: bool, rule: str) -> None:
    if not cond:
        raise EnvConformanceError(rule)


def _check_obs(obs: Any, size: tuple[int, int], where: str) -> None:
    _require(isinstance(obs, Observation), f"{where}: observation must be an envs.Observation, got {type(obs).__name__}")
    _require(obs.size == size, f"{where}: screenshot is {obs.size}, but env.screen_size is {size}")
    _require(obs.screenshot.dtype == np.uint8, f"{where}: screenshot dtype must be uint8")


def _check_step_result(result: Any, size: tuple[int, int], where: str) -> tuple[bool, bool]:
    _require(isinstance(result, tuple) and len(result) == 5, f"{where}: step must return a 5-tuple")
    obs, reward, terminated, truncated, info = result
    _check_obs(obs, size, where)
    _require(isinstance(reward, float), f"{where}: reward must be a float, got {type(reward).__name__}")
    _require(isinstance(terminated, bool) and isinstance(truncated, bool), f"{where}: terminated/truncated must be bool")
    _require(not (terminated and truncated), f"{where}: an episode cannot be both terminated and truncated")
    _require(isinstance(info, dict), f"{where}: info must be a dict")
    return terminated, truncated


def _expect(exc: type[BaseException], fn: Any, rule: str) -> None:
    try:
        fn()
    except exc:
        return
    except Exception as other:  # noqa: BLE001 - report the wrong type
        raise EnvConformanceError(f"{rule}: raised {type(other).__name__}: {other}") from other
    raise EnvConformanceError(f"{rule}: nothing was raised")


def check_env(env: Env, *, seed: int = 0, deterministic_instruction: bool = True, check_close: bool = True) -> list[str]:
    """Run every conformance rule against ``env``; return the names of the rules checked.

    ``deterministic_instruction``: the same seed must give the same instruction.
    ``check_close``: close the env at the end and check it refuses further use.
    """
    done: list[str] = []
    size = env.screen_size
    _require(
        isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size),
        f"screen_size must be (width, height) positive ints, got {size!r}",
    )
    noop = env.noop() if hasattr(env, "noop") else None
    _require(noop is not None, "env must offer noop() returning an action that changes nothing")

    obs, info = env.reset(seed=seed)
    _check_obs(obs, size, "reset")
    _require(isinstance(info, dict), "reset: info must be a dict")
    first_instruction = obs.instruction
    done.append("reset")

    terminated, truncated = _check_step_result(env.step(noop), size, "step(noop)")
    _require(not terminated, "step(noop) must not end the episode")
    done.append("step")

    _expect(InvalidActionError, lambda: env.step("click(1, 2)"), "a non-Action must raise InvalidActionError")
    _expect(OutOfScreenError, lambda: env.step(Click(size[0], size[1])), "a click off screen must raise OutOfScreenError")
    _expect(OutOfScreenError, lambda: env.step(Move(-1, 0)), "a negative coordinate must raise OutOfScreenError")
    _check_step_result(env.step(noop), size, "step(noop) after invalid input")
    done.append("invalid_input_leaves_env_usable")

    terminated, truncated = _check_step_result(env.step(Done()), size, "step(Done)")
    _require(terminated and not truncated, "Done must terminate the episode")
    _expect(EnvNotReadyError, lambda: env.step(noop), "step after the episode ended must raise EnvNotReadyError")
    done.append("done_terminates")

    obs, _ = env.reset(seed=seed)
    if deterministic_instruction:
        _require(obs.instruction == first_instruction, f"same seed gave different instructions: {first_instruction!r} vs {obs.instruction!r}")
        done.append("seeded_reset_is_deterministic")
    terminated, _ = _check_step_result(env.step(Fail("checker")), size, "step(Fail)")
    _require(terminated, "Fail must terminate the episode")
    done.append("fail_terminates")

    if hasattr(env, "max_steps"):
        saved = env.max_steps
        env.max_steps = 2
        try:
            env.reset(seed=seed)
            t1 = _check_step_result(env.step(noop), size, "budget step 1")
            t2 = _check_step_result(env.step(noop), size, "budget step 2")
            _require(t1 == (False, False), "step 1 of 2 must not end the episode")
            _require(t2 == (False, True), f"the last step of the budget must be truncated, got terminated/truncated={t2}")
        finally:
            env.max_steps = saved
        done.append("step_budget_truncates")

    if check_close:
        env.close()
        env.close()
        _expect(EnvNotReadyError, lambda: env.step(noop), "step after close must raise EnvNotReadyError")
        done.append("close_is_idempotent")
    return done
