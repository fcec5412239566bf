"""Faults: a container killed mid-episode is an ``error`` episode on disk; collection goes on.

Runs the real loop (``agent.loop.run_episode``) with the docker task's scripted solution, a
real ``TrajectoryStore``, and a real ``docker kill`` in the middle of one episode. Also runs
``pixelpilot collect --suite docker`` once, end to end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.envs.test_docker_env import docker_or_skip

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class KillingPolicy:
    """The scripted solution, except that in episode ``kill_in`` it kills the container after one step."""

    def __init__(self, env: Any, docker: Any, kill_in: int) -> None:
        from agent.collect import SolutionPolicy

        self.inner = SolutionPolicy(env)
        self.env, self.docker, self.kill_in = env, docker, kill_in
        self.name, self.model, self.privileged, self.output_format = "expert", "killing", True, None
        self.episode = -1
        self.killed: str | None = None

    def reset(self, instruction: str) -> None:
        self.episode += 1
        self.inner.reset(instruction)

    def act(self, inp: Any) -> Any:
        if self.episode == self.kill_in and inp.step_index == 1:
            self.killed = self.env.container_id
            container = self.docker.containers.get(self.killed)
            container.kill()
            container.wait(timeout=30)  # dead for sure before the next step
        return self.inner.act(inp)


def test_killed_container_mid_episode_is_an_error_episode_and_collection_continues(tmp_path: Path) -> None:
    docker = docker_or_skip()
    from agent.loop import LoopConfig, run_episode
    from agent.recording import StoreRecorders
    from envs.docker.env import DockerEnv
    from trajectories.reader import read_episode
    from trajectories.store import TrajectoryStore

    store = TrajectoryStore(tmp_path / "run")
    env = DockerEnv(size=(640, 480), max_steps=10)
    policy = KillingPolicy(env, docker, kill_in=1)
    outcomes, paths, containers = [], [], []
    t0 = time.perf_counter()
    try:
        for seed in range(4):
            recorder = StoreRecorders(store, env, policy, task_id="terminal-file", suite="docker", seed=seed,
                                      episode_id=f"docker.terminal-file.s{seed:06d}")
            result = run_episode(env, policy, recorder=recorder, config=LoopConfig(max_steps=10), seed=seed,
                                 options={"task": "terminal-file"})
            paths.append(recorder.made[0].path)
            outcomes.append(result.outcome)
            containers.append(env.container_id)
            if result.outcome == "error":
                assert "environment died" in (result.error or "")
    finally:
        env.close()
        store.close()
    wall = time.perf_counter() - t0
    assert outcomes == ["success", "error", "success", "success"]
    assert policy.killed == containers[1] and len(set(containers)) == 4  # a new container after the kill
    on_disk = [read_episode(p) for p in paths]
    assert [e.outcome for e in on_disk] == outcomes
    assert "environment died" in (on_disk[1].end.error or "")
    print(f"\n[docker faults] 4 episodes (1 killed) in {wall:.1f}s: {4 / wall * 3600:.0f} episodes/hour on this machine")


def test_pixelpilot_collect_suite_docker(tmp_path: Path) -> None:
    docker_or_skip()
    from agent.cli import main

    run = tmp_path / "run"
    code = main(["collect", "--suite", "docker", "--tasks", "terminal-file", "--episodes", "3", "--workers", "1",
                 "--max-steps", "6", "--out", str(run)])
    assert code == 0
    summary = json.loads((run / "collect.json").read_text())
    assert summary["summary"]["outcomes"] == {"success": 3}
    print(f"\n[docker collect] {summary['summary']['episodes_per_hour']:.0f} episodes/hour with 1 worker")
