"""MiniWoBEnv on real MiniWoB++ pages in a real headless Chromium."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import numpy as np
import pytest

from envs import (
    BackendDiedError,
    Click,
    Done,
    EnvSetupError,
    Fail,
    Hotkey,
    InvalidActionError,
    OutOfScreenError,
    TypeText,
    UnknownKeyError,
    Wait,
    check_env,
)
from envs.miniwob import MiniWoBConfig, MiniWoBEnv, list_tasks, task_path
from envs.miniwob.view import PageView

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")]


@pytest.fixture(scope="module")
def env() -> Iterator[MiniWoBEnv]:
    e = MiniWoBEnv(MiniWoBConfig(task="click-test-2"))
    yield e
    e.close()


def test_list_tasks_finds_the_shipped_html() -> None:
    tasks = list_tasks()
    assert len(tasks) >= 100
    assert {"click-button", "enter-text", "use-autocomplete"} <= set(tasks)
    assert all(task_path(t).suffix == ".html" for t in tasks)


def test_unknown_task_suggests_close_names() -> None:
    with pytest.raises(EnvSetupError, match="click-button"):
        task_path("click-buton")
    with pytest.raises(EnvSetupError):
        MiniWoBConfig(task="no-such-task")


def test_reset_gives_task_area_instruction_and_seeded_problem(env: MiniWoBEnv) -> None:
    obs, info = env.reset(seed=7, options={"task": "click-button"})
    assert env.screen_size == (320, 420) and obs.size == (320, 420)
    assert obs.instruction.startswith('Click on the "') and obs.extra["task"] == "click-button"
    assert tuple(obs.screenshot[95, 315]) == (255, 255, 0)  # MiniWoB's yellow instruction bar
    again, _ = env.reset(seed=7, options={"task": "click-button"})
    assert again.instruction == obs.instruction
    assert np.array_equal(again.screenshot, obs.screenshot)
    instructions = {env.reset(seed=s, options={"task": "click-button"})[0].instruction for s in range(8)}
    assert len(instructions) > 1  # the seed changes the problem
    obs, _ = env.reset()
    assert obs.extra["task"] == "click-test-2"  # without a task option: the configured task
    assert isinstance(env.seed, int)  # a random seed is drawn and reported
    assert env.reset()[0].extra["seed"] != env.reset()[0].extra["seed"]


def test_right_and_wrong_clicks_are_scored_by_the_task(env: MiniWoBEnv) -> None:
    env.reset(seed=3, options={"task": "click-test-2"})
    one = PageView(env).one("#subbtn")
    _, reward, terminated, truncated, info = env.step(Click(*one.center))
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)
    assert 0 < info["timed_reward"] <= info["raw_reward"] == 1.0

    env.reset(seed=3)
    two = PageView(env).one("#subbtn2")
    _, reward, terminated, _, info = env.step(Click(*two.center))
    assert (reward, terminated, info["success"]) == (-1.0, True, False)

    env.reset(seed=3)
    _, reward, terminated, _, info = env.step(Click(1, 1))  # the instruction bar: nothing happens
    assert (reward, terminated, info["task_done"]) == (0.0, False, False)
    _, reward, terminated, _, info = env.step(Done())
    assert (reward, terminated, info["success"]) == (0.0, True, False)


def test_timed_reward_and_episode_timer() -> None:
    with MiniWoBEnv(MiniWoBConfig(task="click-test", reward="timed", episode_ms=400)) as e:
        e.reset(seed=1)
        _, reward, terminated, _, info = e.step(Wait(0.8))
        assert terminated and info["timed_out"] and reward == -1.0 and not info["success"]
        e.reset(seed=1)
        btn = PageView(e).one("#subbtn")
        _, reward, _, _, info = e.step(Click(*btn.center))
        assert reward == info["timed_reward"] and 0 < reward < 1.0  # time-penalised


def test_max_steps_truncates() -> None:
    with MiniWoBEnv(MiniWoBConfig(task="click-test", max_steps=2)) as e:
        e.reset(seed=0)
        assert e.step(Wait(0.0))[2:4] == (False, False)
        assert e.step(Wait(0.0))[2:4] == (False, True)


def test_bad_input_raises_typed_errors_and_env_stays_usable(env: MiniWoBEnv) -> None:
    env.reset(seed=5, options={"task": "enter-text"})
    with pytest.raises(InvalidActionError):
        env.step({"kind": "click", "x": 1, "y": 1})  # type: ignore[arg-type]
    with pytest.raises(OutOfScreenError):
        env.step(Click(320, 10))
    with pytest.raises(UnknownKeyError):
        Hotkey(("warp-drive",))
    with pytest.raises(InvalidActionError):
        TypeText("")
    tt = PageView(env).one("#tt")
    env.step(Click(*tt.center))
    env.step(TypeText("still works"))
    assert PageView(env).one("#tt").value == "still works"
    assert env.step(Fail("giving up"))[2] is True


def test_dead_browser_raises_and_reset_recovers() -> None:
    with MiniWoBEnv(MiniWoBConfig(task="click-test")) as e:
        e.reset(seed=0)
        os.kill(e.browser_pid(), signal.SIGKILL)
        with pytest.raises(BackendDiedError):
            for _ in range(100):  # the driver notices the disconnect within a few calls
                e.step(Wait(0.02))
        obs, _ = e.reset(seed=0)
        assert obs.instruction == "Click the button."
        btn = PageView(e).one("#subbtn")
        assert e.step(Click(*btn.center))[1] == 1.0


def test_check_env_passes() -> None:
    assert "seeded_reset_is_deterministic" in check_env(MiniWoBEnv(MiniWoBConfig(task="click-checkboxes", scale=1.0)))


@pytest.mark.slow
def test_every_listed_task_loads(env: MiniWoBEnv) -> None:
    broken = []
    t0 = time.monotonic()
    for task in list_tasks():
        obs, _ = env.reset(seed=1, options={"task": task})
        scroll = env.evaluate("() => [window.scrollX, window.scrollY]")
        if not obs.instruction or obs.screenshot.std() < 5 or scroll != [0, 0] or obs.size != (320, 420):
            broken.append(task)
    assert broken == [], f"tasks that did not load cleanly: {broken} ({time.monotonic() - t0:.0f} s)"
