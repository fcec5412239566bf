"""TaskEnv on a real Xvfb: conformance, setup errors, placeholders, scoring rules, clean resets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from envs.actions import Done, Fail, TypeText, Wait
from envs.checker import check_env
from envs.desktop import DesktopConfig
from envs.desktop.procs import pid_running, poll_until
from envs.errors import EnvNotReadyError
from envs.tasks.errors import SetupError, SetupTimeoutError
from envs.tasks.model import Task, parse_task
from envs.tasks.task_env import TaskEnv, fill_placeholders
from tests.envs.conftest import require_x_tools

pytestmark = pytest.mark.integration
SMALL = DesktopConfig(size=(640, 480), window_manager=False, max_steps=10)


def make_task(config: list[dict[str, Any]], evaluator: dict[str, Any], task_id: str = "t") -> Task:
    return parse_task({"id": task_id, "instruction": f"instruction of {task_id}", "config": config,
                       "evaluator": evaluator})


def cat_equals(path: str, text: str) -> dict[str, Any]:
    """Evaluator: the file's contents equal ``text``."""
    return {"func": "exact_match", "result": {"type": "vm_command_line", "command": f"cat {path}", "shell": True},
            "expected": {"type": "rule", "rules": {"expected": text}}}


TRIVIAL = make_task([], cat_equals("/dev/null", ""), "trivial")


@pytest.fixture(scope="module")
def env() -> Iterator[TaskEnv]:
    require_x_tools("Xvfb", "xterm")
    e = TaskEnv(SMALL, setup_timeout_s=30)
    try:
        yield e
    finally:
        e.close()


def test_check_env_with_a_trivial_task() -> None:
    require_x_tools("Xvfb")
    env = TaskEnv(SMALL)
    workdir = env.workdir
    env.reset(options={"task": TRIVIAL})  # later resets without options repeat the task
    rules = check_env(env)
    assert "close_is_idempotent" in rules and "step_budget_truncates" in rules
    assert not workdir.exists(), "close() removes the temporary work directory"


def test_reset_needs_a_task() -> None:
    require_x_tools("Xvfb")
    with TaskEnv(SMALL) as env, pytest.raises(ValueError, match="options=\\{'task': Task\\}"):
        env.reset()


def test_solved_task_scores_one_and_instruction_is_the_tasks(env: TaskEnv) -> None:
    task = make_task([{"type": "execute", "parameters": {"command": "printf hi > {HOME}/Desktop/a.txt", "shell": True}}],
                     cat_equals("~/b.txt", "hi"), "copy")
    obs, _ = env.reset(options={"task": task})
    assert obs.instruction == "instruction of copy" and env.task is task
    assert env.home != os.path.expanduser("~") and (env.home / "Desktop" / "a.txt").read_text() == "hi"
    env.controller.run("cp ~/Desktop/a.txt ~/b.txt", shell=True)
    _, reward, terminated, truncated, info = env.step(Done())
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert info["success"] is True and info["feasible"] is True and info["score"] == 1.0
    assert info["eval"]["status"] == "scored" and info["eval"]["task_id"] == "copy"
    # The same task, not solved: reset wiped the home, so b.txt is gone.
    env.reset()
    assert not (env.home / "b.txt").exists()
    _, reward, _, _, info = env.step(Done())
    assert reward == 0.0 and info["success"] is False


def test_only_the_last_step_is_scored_and_truncation_scores(env: TaskEnv) -> None:
    env.max_steps = 2
    try:
        env.reset(options={"task": make_task([], cat_equals("/dev/null", ""), "trunc")})
        _, r1, term1, trunc1, info1 = env.step(Wait(0.0))
        assert (r1, term1, trunc1) == (0.0, False, False) and "score" not in info1
        _, r2, term2, trunc2, info2 = env.step(Wait(0.0))
        assert (r2, term2, trunc2) == (1.0, False, True) and info2["success"] is True
    finally:
        env.max_steps = SMALL.max_steps


def test_infeasible_rule_and_feasible_fail(env: TaskEnv) -> None:
    infeasible = make_task([], {"func": "infeasible"}, "impossible")
    for action, expected in ((Done(), 0.0), (Fail("cannot"), 1.0)):
        env.reset(options={"task": infeasible})
        _, reward, _, _, info = env.step(action)
        assert reward == expected and info["feasible"] is False and info["success"] is (expected == 1.0)
    env.reset(options={"task": make_task([], cat_equals("/dev/null", ""), "feasible")})
    _, reward, _, _, info = env.step(Fail("gave up"))
    assert reward == 0.0 and info["feasible"] is True and "ended with fail" in info["eval"]["error"]


def test_placeholders_are_filled(env: TaskEnv) -> None:
    cmd = "echo {SCREEN_WIDTH}x{SCREEN_HEIGHT} {SCREEN_WIDTH_HALF} {SCREEN_HEIGHT_HALF} {CLIENT_PASSWORD} > {HOME}/p.txt"
    task = make_task([{"type": "execute", "parameters": {"command": cmd, "shell": True}}],
                     cat_equals("{HOME}/p.txt", "640x480 320 240 password\n"), "placeholders")
    env.reset(options={"task": task})
    assert env.active_task is not None and str(env.home) in env.active_task.config[0].command
    assert env.step(Done())[1] == 1.0
    filled = fill_placeholders(task, {"HOME": "/h"})
    assert filled.evaluator.calls[0].result.get("command") == "cat /h/p.txt" and "{HOME}" in task.config[0].command


@pytest.mark.parametrize("config, match", [
    ([{"type": "launch", "parameters": {"command": ["pixelpilot-no-such-app"]}}], "launch"),
    ([{"type": "execute", "parameters": {"command": "exit 3", "shell": True, "until": {"returncode": 0},
                                         "timeout": 1}}], "not met"),
    ([{"type": "open", "parameters": {"path": "/nonexistent/file.txt", "timeout": 1}}], "does not exist"),
    ([{"type": "activate_window", "parameters": {"window_name": "No Such Window", "timeout": 0.5}}], "no window"),
    ([{"type": "googledrive", "parameters": {}}], "not supported here"),
], ids=["missing-app", "postcondition", "missing-file", "missing-window", "unsupported-step"])
def test_broken_setup_is_a_setup_error_not_an_agent_failure(env: TaskEnv, config: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(SetupError, match=match):
        env.reset(options={"task": make_task(config, cat_equals("/dev/null", ""), "broken")})
    with pytest.raises(EnvNotReadyError):
        env.step(Done())  # no episode to score
    env.reset(options={"task": TRIVIAL})  # the env stays usable
    assert env.step(Done())[1] == 1.0


def test_setup_budget_is_enforced() -> None:
    require_x_tools("Xvfb")
    task = make_task([{"type": "sleep", "parameters": {"seconds": 0.3}},
                      {"type": "execute", "parameters": {"command": "true", "shell": True}}],
                     cat_equals("/dev/null", ""), "slow")
    with TaskEnv(SMALL, setup_timeout_s=0.2) as env:
        with pytest.raises(SetupTimeoutError, match="setup step 1 .*budget of 0s ran out") as info:
            env.reset(options={"task": task})
        assert info.value.index == 1


def test_reset_ends_setup_apps_and_strays(env: TaskEnv) -> None:
    task = make_task([{"type": "launch", "parameters": {"command": ["xterm"]}}], cat_equals("/dev/null", ""), "xterm")
    env.reset(options={"task": task})
    [term] = env.controller.list_windows()
    assert term.pid is not None and pid_running(term.pid)
    env.step(TypeText("xterm &\n"))  # an app the agent starts itself is not tracked by PID
    poll_until(lambda: len(env.controller.list_windows()) == 2, timeout_s=15, what="the second terminal")
    env.reset()
    assert not pid_running(term.pid)
    assert len(env.controller.list_windows()) == 1, "only the setup's new terminal is on screen"


def test_session_apps_and_home_alias() -> None:
    require_x_tools("Xvfb", "xterm")
    task = make_task([{"type": "execute", "parameters": {"command": "mkdir -p /home/user/Desktop/d && echo /home/username",
                                                         "shell": True, "stdout": "out.txt"}},
                      {"type": "activate_window", "parameters": {"window_name": "Terminal"}}],
                     cat_equals("/home/user/Desktop/d/../../marker", "m"), "alias")
    with TaskEnv(SMALL, session_apps=[["xterm", "-title", "Terminal"]], home_alias="/home/user") as env:
        env.reset(options={"task": task})
        assert (env.home / "Desktop" / "d").is_dir(), "/home/user means the sandbox home"
        assert (env.session.cache_dir / "out.txt").read_text() == "/home/username\n", "only whole path components"
        assert [w.title for w in env.controller.list_windows()] == ["Terminal"]
        (env.home / "marker").write_text("m")
        assert env.step(Done())[1] == 1.0
    with pytest.raises(ValueError, match="absolute path"):
        TaskEnv(SMALL, home_alias="user")
