"""VMEnv on a real libvirt/QEMU (TCG) VM booted from the project's image.

One VM per test session (a session fixture; cold boot ~20 s here): screenshot, typing into an
xterm checked through the guest controller, snapshot revert, the sendKey fallback, the
conformance checker, stale-domain cleanup, libvirt's own revert (on a second, short-lived VM);
the last test kills QEMU mid-episode (that costs another boot). The image is built by the
fixture if missing or stale (the first time includes debootstrap: minutes). Tests skip only
when libvirt-python or a libvirt daemon is missing (``scripts/start_daemons.sh`` starts one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from envs.actions import Click, Done, TypeText
from envs.checker import check_env
from envs.desktop.procs import pid_running, poll_until
from envs.errors import EnvSetupError

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SIZE = (800, 600)


def vm_or_skip() -> None:
    """Skip unless libvirt can run VMs here; build (or refresh) the image."""
    pytest.importorskip("libvirt", reason="libvirt-python is not installed (pip install 'pixelpilot[vm]')")
    from envs.vm import domain as vmd
    from envs.vm.image import build_image

    try:
        vmd.connect().close()
    except EnvSetupError as exc:
        pytest.skip(f"no libvirt daemon here: {exc}")
    if os.geteuid() != 0:
        pytest.skip("building the VM image needs root")
    build_image(log=lambda m: None)


@pytest.fixture(scope="session")
def vm_env() -> Iterator[Any]:
    vm_or_skip()
    from envs.vm.env import VMEnv

    env = VMEnv(size=SIZE, max_steps=10)
    try:
        yield env
    finally:
        env.close()


def _file(env: Any, path: str, timeout_s: float = 30.0) -> bytes:
    ctl = env.controller
    poll_until(lambda: ctl.file_size(path) or None, timeout_s=timeout_s, what=f"{path} in the guest")
    return ctl.read_file(path)


def test_boot_type_in_xterm_check_revert_and_the_effect_is_gone(vm_env):
    obs, info = vm_env.reset(seed=7, options={"task": "terminal-file"})
    print(f"\n[vm] first reset (cold boot) {info['reset_s']:.1f}s: {vm_env.timings}")
    assert obs.size == SIZE and obs.screenshot.std() > 5  # an xterm on the desktop: not blank
    assert "pixelpilot-00007" in obs.instruction
    vm_env.step(Click(100, 60))
    vm_env.step(TypeText("echo pixelpilot-00007 > /root/out.txt\n"))
    assert _file(vm_env, "/root/out.txt") == b"pixelpilot-00007\n"
    _, reward, terminated, _, step_info = vm_env.step(Done())
    assert (reward, terminated, step_info["success"]) == (1.0, True, True)

    obs, info = vm_env.reset(seed=8)
    print(f"[vm] revert reset {info['reset_s']:.2f}s: {vm_env.timings}")
    assert vm_env.controller.file_size("/root/out.txt") is None  # the snapshot has no such file
    assert not any(w.wm_class.startswith("xterm") for w in vm_env.controller.list_windows())


def test_the_domain_has_no_network_and_no_graphics_listener(vm_env):
    vm_env.reset()
    live = ET.fromstring(vm_env.domain.XMLDesc(0))
    assert live.get("type") == "qemu"
    assert live.findall("devices/interface") == [] and live.findall("devices/graphics") == []
    assert vm_env.controller.run(["ls", "/sys/class/net"]).stdout.split() == ["lo"]


def test_sendkey_fallback_types_into_the_console_shell(vm_env):
    vm_env.reset()
    info = vm_env.send_keys(TypeText("echo sendkey-ok > /root/sendkey.txt\n"))
    assert info["chords"] == 36
    assert _file(vm_env, "/root/sendkey.txt") == b"sendkey-ok\n"
    vga = vm_env.vga_screenshot()  # the fallback observation: the VGA text console
    assert vga.ndim == 3 and vga.std() > 1


def test_conformance_checker(vm_env):
    assert "step_budget_truncates" in check_env(vm_env, seed=3, check_close=False)


def test_stale_domains_of_dead_owners_are_removed_on_start(vm_env, tmp_path):
    from envs.vm import domain as vmd
    from envs.vm.env import VMEnv

    proc = subprocess.Popen(["true"])
    proc.wait()
    run = Path(vm_env.config.run_dir) / f"{vmd.NAME_PREFIX}stale-test"
    run.mkdir(exist_ok=True)
    (run / "disk.qcow2").write_bytes(b"")
    spec = vmd.DomainSpec(name=run.name, kernel=vm_env.image.kernel, initrd=vm_env.image.initrd,
                          disk=str(run / "disk.qcow2"), console_log=str(run / "console.log"), owner_pid=proc.pid)
    conn = vmd.connect()
    conn.defineXML(vmd.domain_xml(spec))  # defined, never started: what a crashed run leaves
    other = VMEnv(size=SIZE)
    try:
        assert run.name in other.stale_removed and vm_env.domain_name not in other.stale_removed
        assert not run.exists()
        assert run.name not in [d.name() for d in conn.listAllDomains(0)]
    finally:
        other.close()
        conn.close()


def test_libvirt_revert_restarts_qemu_and_the_env_reconnects(vm_env):
    from envs.vm.env import VMEnv

    with VMEnv(size=(640, 480), revert="libvirt") as env:  # a second, short-lived VM
        env.reset()
        pid = env.qemu_pid()
        env.controller.write_file("/root/dirty.txt", b"x")
        obs, info = env.reset()
        print(f"\n[vm] libvirt revert reset {info['reset_s']:.2f}s: {env.timings}")
        assert env.qemu_pid() != pid  # libvirt restarted QEMU from the snapshot
        assert env.controller.file_size("/root/dirty.txt") is None and obs.size == (640, 480)


class KillingPolicy:
    """The scripted solution, except that in episode ``kill_in`` it SIGKILLs QEMU after one step."""

    def __init__(self, env: Any, kill_in: int) -> None:
        from agent.collect import SolutionPolicy

        self.inner = SolutionPolicy(env)
        self.env, self.kill_in = env, kill_in
        self.name, self.model, self.privileged, self.output_format = "expert", "killing", True, None
        self.episode = -1
        self.killed: str | None = None

    def reset(self, instruction: str) -> None:
        self.episode += 1
        self.inner.reset(instruction)

    def act(self, inp: Any) -> Any:
        if self.episode == self.kill_in and inp.step_index == 1:
            pid = self.env.qemu_pid()
            assert pid is not None
            self.killed = self.env.domain_name
            os.kill(pid, signal.SIGKILL)  # the PID libvirt reports for this domain, nothing else
            poll_until(lambda: not pid_running(pid), timeout_s=30, what="QEMU to exit")
        return self.inner.act(inp)


def test_killed_qemu_mid_episode_is_an_error_episode_and_the_next_reset_recreates(vm_env, tmp_path):
    from agent.loop import LoopConfig, run_episode
    from agent.recording import StoreRecorders
    from trajectories.reader import read_episode
    from trajectories.store import TrajectoryStore

    store = TrajectoryStore(tmp_path / "run")
    policy = KillingPolicy(vm_env, kill_in=0)
    outcomes, paths, domains = [], [], []
    t0 = time.perf_counter()
    try:
        for seed in range(2):
            recorder = StoreRecorders(store, vm_env, policy, task_id="terminal-file", suite="vm", seed=seed,
                                      episode_id=f"vm.terminal-file.s{seed:06d}")
            result = run_episode(vm_env, policy, recorder=recorder, config=LoopConfig(max_steps=8), seed=seed,
                                 options={"task": "terminal-file"})
            paths.append(recorder.made[0].path)
            outcomes.append(result.outcome)
            domains.append(vm_env.domain_name)
            if result.outcome == "error":
                assert "environment died" in (result.error or "")
    finally:
        store.close()
    assert outcomes == ["error", "success"]
    assert policy.killed == domains[0] and domains[1] != domains[0]  # a new VM after the kill
    on_disk = [read_episode(p) for p in paths]
    assert [e.outcome for e in on_disk] == outcomes
    assert "environment died" in (on_disk[0].end.error or "")
    print(f"\n[vm faults] killed episode + recovery episode (cold boot) in {time.perf_counter() - t0:.1f}s")
