"""The desktop suite: every task is solved by its scripted solution and failed by doing nothing.

One ``TaskEnv`` (real Xvfb + openbox, real xterm / mousepad / galculator / pcmanfm) serves the
whole module; every episode starts with a reset that ends the previous apps and wipes $HOME.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from envs.actions import Done, Fail
from envs.desktop import DesktopConfig
from envs.suites.desktop import INDEX_PATH, load_suite
from envs.suites.desktop.solutions import SOLUTIONS, ScriptedSolutionPolicy
from envs.tasks.check import check_task
from envs.tasks.model import Task
from envs.tasks.task_env import TaskEnv
from tests.envs.conftest import require_x_tools

TASKS = load_suite()
APPS = ("Xvfb", "openbox", "xterm", "mousepad", "galculator", "pcmanfm", "xdotool")
MAX_STEPS = 40


def test_suite_shape() -> None:
    index = json.loads(INDEX_PATH.read_text())
    ids = [i for ids in index.values() for i in ids]
    assert len(ids) == len(set(ids)) == len(TASKS) >= 20
    assert set(SOLUTIONS) == set(ids), "every task has exactly one scripted solution"
    assert sum(not t.feasible for t in TASKS) >= 3
    assert {a for t in TASKS for a in t.related_apps} >= {"terminal", "mousepad", "galculator", "pcmanfm"}
    for task in TASKS:
        assert task.path.endswith(f"{task.domain}/{task.id}.json")
        report = check_task(task, which=lambda name: "/usr/bin/" + name)  # supported pieces, whatever is installed
        assert report.fully_supported, (task.id, report.missing)


@pytest.fixture(scope="module")
def env() -> Iterator[TaskEnv]:
    require_x_tools(*APPS)
    e = TaskEnv(DesktopConfig(size=(1280, 800), max_steps=MAX_STEPS), setup_timeout_s=60)
    try:
        yield e
    finally:
        e.close()


def play_solution(env: TaskEnv, task: Task) -> dict[str, Any]:
    obs, _ = env.reset(options={"task": task})
    assert obs.instruction == task.instruction.replace("{HOME}", str(env.home))
    policy = ScriptedSolutionPolicy(env)
    policy.reset(obs.instruction)
    for _ in range(MAX_STEPS):
        obs, _, terminated, truncated, info = env.step(policy.next_action(obs))
        if terminated or truncated:
            return info
    raise AssertionError("the episode did not end within the step budget")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_task_solved_by_script_and_failed_by_doing_nothing(env: TaskEnv, task: Task) -> None:
    info = play_solution(env, task)
    assert info["eval"]["status"] == "scored", info["eval"]
    assert info["success"] is True and info["score"] == 1.0, info["eval"]
    assert info["feasible"] is task.feasible

    env.reset(options={"task": task})
    _, reward, terminated, _, info = env.step(Done())
    assert terminated and reward == 0.0 and info["success"] is False, info["eval"]
    if not task.feasible:  # giving up is right only for infeasible tasks
        env.reset(options={"task": task})
        assert env.step(Fail("cannot be done"))[1] == 1.0


def test_policy_refuses_unknown_tasks_and_wrappers() -> None:
    require_x_tools("Xvfb")
    with TaskEnv(DesktopConfig(size=(320, 240), window_manager=False)) as env:
        env.reset(options={"task": {"id": "not-in-suite", "instruction": "x", "evaluator": {"func": "infeasible"}}})
        policy = ScriptedSolutionPolicy(env)
        with pytest.raises(KeyError, match="no scripted solution for task 'not-in-suite'"):
            policy.next_action()
    with pytest.raises(TypeError, match="needs the TaskEnv itself"):
        ScriptedSolutionPolicy(object())  # type: ignore[arg-type]

