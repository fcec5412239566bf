"""DockerEnv against the real docker daemon and the real pixelpilot/desktop image.

The image is built by ``make test`` (setup); if it is missing or stale, the module fixture
builds it once (slow the first time: debootstrap). Tests skip only when no docker daemon can
be reached (``scripts/start_daemons.sh`` starts one).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from envs.actions import Click, Done, Fail, TypeText
from envs.checker import check_env
from envs.errors import BackendDiedError, EnvSetupError

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SIZE = (640, 480)


def docker_or_skip() -> Any:
    """A docker SDK client with the current image built, or a skip saying why docker cannot run here."""
    pytest.importorskip("docker", reason="the docker SDK is not installed (pip install 'pixelpilot[docker]')")
    from envs.docker.container import docker_client
    from envs.docker.image import build_image

    try:
        client = docker_client()
    except EnvSetupError as exc:
        pytest.skip(f"no docker daemon here: {exc}")
    build_image(log=lambda m: None)
    return client


@pytest.fixture(scope="module")
def docker() -> Any:
    return docker_or_skip()


@pytest.fixture(scope="module")
def env(docker: Any) -> Iterator[Any]:
    from envs.docker.env import DockerEnv

    e = DockerEnv(size=SIZE, cpus=1.0, memory="768m")
    try:
        yield e
    finally:
        e.close()


def _ours(docker: Any) -> list[Any]:
    return docker.containers.list(all=True, filters={"label": f"pixelpilot.owner={os.getpid()}"})


def test_type_in_xterm_and_check_the_file_through_the_controller(env):
    obs, info = env.reset(seed=7, options={"task": "terminal-file"})
    assert obs.size == SIZE and "pixelpilot-00007" in obs.instruction
    assert any(w.wm_class.startswith("xterm") for w in env.controller.list_windows())
    env.step(Click(100, 60))
    env.step(TypeText("echo pixelpilot-00007 > /root/out.txt\n"))
    ctl = env.controller
    from envs.desktop.procs import poll_until

    poll_until(lambda: ctl.file_size("/root/out.txt") or None, timeout_s=30, what="the shell to write the file")
    assert ctl.read_file("/root/out.txt") == b"pixelpilot-00007\n"
    _, reward, terminated, truncated, info = env.step(Done())
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)


def test_each_episode_gets_a_fresh_container(env):
    env.reset(seed=1, options={"task": "terminal-file"})
    first = env.container_id
    env.controller.write_file("/root/out.txt", b"pixelpilot-00001\n")
    assert env.step(Done())[1] == 1.0
    env.reset(seed=1, options={"task": "terminal-file"})
    assert env.container_id != first
    assert env.controller.file_size("/root/out.txt") is None  # nothing survives an episode
    assert env.step(Fail("give up"))[4]["success"] is False


def test_container_has_no_network_and_has_limits(env, docker):
    env.reset()
    attrs = docker.containers.get(env.container_id).attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none" and host["NanoCpus"] == 10**9 and host["Memory"] == 768 * 2**20
    assert set(attrs["NetworkSettings"]["Networks"]) == {"none"}
    interfaces = [line.split(":")[0].strip() for line in env.controller.read_file("/proc/net/dev").decode().splitlines()[2:]]
    assert interfaces == ["lo"]


def test_killed_container_is_backend_died_and_reset_recreates(env, docker):
    env.reset(seed=3, options={"task": "terminal-file"})
    dead = env.container_id
    docker.containers.get(dead).kill()
    with pytest.raises(BackendDiedError, match="reset"):
        for _ in range(50):  # the kill lands asynchronously; at most a few steps see the old connection
            env.step(Click(5, 5))
    obs, _ = env.reset(seed=3, options={"task": "terminal-file"})
    assert env.container_id != dead and obs.size == SIZE
    for action in env.solution():
        result = env.step(action)
    assert result[4]["success"] is True


def test_stale_containers_of_dead_runs_are_removed(docker):
    from envs.docker.container import LABEL, OWNER_LABEL, remove_stale
    from envs.docker.image import IMAGE

    dead_pid = subprocess.Popen(["true"])  # its pid is free once it is reaped
    dead_pid.wait()
    stale = docker.containers.create(IMAGE, network_mode="none", labels={LABEL: "docker", OWNER_LABEL: str(dead_pid.pid)})
    live = docker.containers.create(IMAGE, network_mode="none", labels={LABEL: "docker", OWNER_LABEL: str(os.getpid())})
    try:
        removed = remove_stale(docker)
        assert stale.id in removed and live.id not in removed
        assert live.id in [c.id for c in _ours(docker)]
    finally:
        live.remove(force=True)


def test_check_env_and_close_removes_every_container(docker):
    from envs.docker.env import DockerEnv

    before = {c.id for c in _ours(docker)}  # the module's env (current + prestarted container)
    e = DockerEnv(size=SIZE, max_steps=5)
    rules = check_env(e)  # resets several times and ends with close()
    assert "close_is_idempotent" in rules and "step_budget_truncates" in rules
    leftovers = {c.short_id for c in _ours(docker) if c.id not in before}
    assert leftovers == set()


_CHILD = """
import os, sys, time
from envs.docker.env import DockerEnv
env = DockerEnv(size=(320, 240))
env.reset()
print(env.container_id, flush=True)
if sys.argv[1] == "hang":
    time.sleep(600)  # killed by the test
# "exit": leave without close(); atexit must remove the containers
"""


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_containers_are_removed_after_exit_without_close_and_after_a_crash(docker, how):
    import signal
    import sys

    from envs.desktop.procs import poll_until
    from envs.docker.container import remove_stale

    proc = subprocess.Popen([sys.executable, "-c", _CHILD, "exit" if how == "exit" else "hang"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        container_id = proc.stdout.readline().strip()
        assert container_id, "the child did not start a container"
        if how == "sigkill":
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    owned = {"label": f"pixelpilot.owner={proc.pid}"}
    socket_dirs = {m["Source"] for m in docker.api.inspect_container(container_id)["Mounts"]} if how == "sigkill" else set()
    if how == "sigkill":  # nothing ran in the child: its containers (current + spare) are stale now
        poll_until(lambda: docker.containers.list(all=True, filters=owned) or None, timeout_s=60,
                   what="the crashed run's containers")
        removed = remove_stale(docker)
        assert container_id in removed
        # A spare the child was creating when it died may appear a moment later: it is stale too.
        poll_until(lambda: not (remove_stale(docker) or docker.containers.list(all=True, filters=owned)) or None,
                   timeout_s=60, what="every container of the crashed run to be removed")
        assert socket_dirs and not any(os.path.exists(d) for d in socket_dirs)
    assert docker.containers.list(all=True, filters=owned) == []
