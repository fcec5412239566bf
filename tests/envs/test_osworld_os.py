"""OSWorld's ``os``-domain task files, unchanged, end to end on a TaskEnv with scripted solutions.

Every one of the 24 files is a parameter: the 9 that run here must be solved by their scripted
solution and failed by doing nothing; the 15 others are skipped with the reason
(``envs.suites.osworld_os.SKIPPED``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from envs.actions import Done
from envs.desktop import DesktopConfig
from envs.suites.desktop.solutions import ScriptedSolutionPolicy
from envs.suites.osworld_os import OSWORLD_OS_DIR, SKIPPED, SOLUTIONS, task_env_kwargs
from envs.tasks.model import load_task
from envs.tasks.task_env import TaskEnv
from tests.envs.conftest import require_x_tools

FILES = sorted(Path(OSWORLD_OS_DIR).glob("*.json")) if Path(OSWORLD_OS_DIR).is_dir() else []
MAX_STEPS = 15


def _param(path: Path) -> object:
    task_id = path.stem
    marks = [pytest.mark.skip(reason=SKIPPED[task_id])] if task_id in SKIPPED else []
    return pytest.param(path, id=task_id[:8], marks=marks)


def test_every_os_task_is_either_solved_or_skipped_with_a_reason() -> None:
    if not FILES:
        pytest.skip(f"{OSWORLD_OS_DIR} is not here")
    ids = {p.stem for p in FILES}
    assert len(ids) == 24 and ids == set(SOLUTIONS) | set(SKIPPED) and not set(SOLUTIONS) & set(SKIPPED)
    assert len(SOLUTIONS) >= 9 and all(SKIPPED.values())


@pytest.fixture(scope="module")
def env() -> Iterator[TaskEnv]:
    require_x_tools("Xvfb", "openbox", "xterm", "gsettings", "bc")
    e = TaskEnv(DesktopConfig(size=(1280, 800), max_steps=MAX_STEPS), setup_timeout_s=60, **task_env_kwargs())
    try:
        yield e
    finally:
        e.close()


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_osworld_os_task_end_to_end(env: TaskEnv, path: Path) -> None:
    task = load_task(path)
    obs, _ = env.reset(options={"task": task})
    policy = ScriptedSolutionPolicy(env, SOLUTIONS)
    policy.reset(obs.instruction)
    for _ in range(MAX_STEPS):
        obs, reward, terminated, truncated, info = env.step(policy.next_action(obs))
        if terminated or truncated:
            break
    assert info["eval"]["status"] == "scored", info["eval"]
    assert reward == 1.0 and info["success"] is True and info["feasible"] is task.feasible, info["eval"]

    env.reset(options={"task": task})
    _, reward, _, _, info = env.step(Done())
    assert reward == 0.0 and info["success"] is False, info["eval"]
