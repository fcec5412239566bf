"""DesktopEnv end to end on real Xvfb: conformance, a real xterm, crashes, resets and leaks."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from envs.actions import Click, Hotkey, Move, TypeText, Wait
from envs.checker import check_env
from envs.desktop import DesktopConfig, DesktopEnv, Xvfb, XvfbConfig
from envs.desktop.procs import pid_running, poll_until
from envs.errors import BackendDiedError, EnvNotReadyError, EnvSetupError, InvalidActionError, OutOfScreenError, UnknownKeyError
from tests.envs.conftest import require_x_tools

pytestmark = pytest.mark.integration


def _gone(pids: list[int]) -> bool:
    return not any(pid_running(p) for p in pids)


def test_config_validation():
    with pytest.raises(ValueError, match="max_steps"):
        DesktopConfig(max_steps=0)
    with pytest.raises(ValueError, match="launch command"):
        DesktopConfig(launch=("xterm",))
    with pytest.raises(ValueError, match="display"):
        DesktopConfig(display="0")
    with pytest.raises(ValueError, match="restart_on_reset"):
        DesktopConfig(display=":0", restart_on_reset=True)
    assert DesktopConfig(launch=[["xterm", "-e", "sh"]]).launch == (("xterm", "-e", "sh"),)


def test_check_env_passes_with_window_manager():
    require_x_tools("Xvfb", "openbox")
    env = DesktopEnv(size=(800, 600), window_manager=True)
    try:
        rules = check_env(env)
    finally:
        env.close()
    assert "close_is_idempotent" in rules and "step_budget_truncates" in rules


def test_1080p_screenshot_shape():
    require_x_tools("Xvfb")
    with DesktopEnv(size=(1920, 1080), window_manager=False) as env:
        obs, info = env.reset(options={"instruction": "look"})
        assert obs.screenshot.shape == (1080, 1920, 3) and obs.size == env.screen_size == (1920, 1080)
        assert obs.instruction == "look" and obs.extra["display"] == env.display
        obs, reward, terminated, truncated, info = env.step(Move(1919, 1079))
        assert obs.screenshot.shape == (1080, 1920, 3) and reward == 0.0 and not (terminated or truncated)
        assert info["step"] == 1 and info["input"] == "xtest"


def test_typing_a_shell_command_into_a_real_xterm(tmp_path):
    require_x_tools("Xvfb", "openbox", "xterm")
    target = tmp_path / f"xyz_{uuid.uuid4().hex}"
    with DesktopEnv(size=(1024, 768), window_manager=True) as env:
        env.reset(options={"launch": [["xterm", "-geometry", "80x24+0+0", "-e", "sh"]]})
        env.step(Click(200, 100))  # focus the terminal (openbox: click to focus)
        env.step(TypeText(f"touch {target}"))
        env.step(Hotkey(("enter",)))
        poll_until(target.exists, timeout_s=15, what=f"{target} to be created by the shell in xterm")


def test_invalid_input_raises_typed_errors_and_env_stays_usable(desktop_env):
    desktop_env.reset()
    with pytest.raises(OutOfScreenError):
        desktop_env.step(Click(640, 10))
    with pytest.raises(UnknownKeyError):
        desktop_env.step(Hotkey(("fn",)))  # a valid name with no X keysym: refused before any key goes down
    with pytest.raises(UnknownKeyError):
        Hotkey(("nosuchkey",))
    with pytest.raises(InvalidActionError):
        TypeText("")
    with pytest.raises(InvalidActionError, match="control character"):
        desktop_env.step(TypeText("a\x07b"))
    obs, *_, info = desktop_env.step(Click(10, 10))
    assert info["step"] == 1 and obs.size == (640, 480)


def test_reset_kills_launched_apps_and_launches_from_options(desktop_env):
    desktop_env.reset(options={"launch": [["xterm"]]})
    first = desktop_env.owned_pids()[-1]
    assert pid_running(first)
    extra = desktop_env.launch(["sleep", "300"], wait_for_window=False)
    desktop_env.reset()
    assert not pid_running(first) and not pid_running(extra.pid)
    with pytest.raises(ValueError, match="unknown reset option"):
        desktop_env.reset(options={"lanuch": []})
    with pytest.raises(ValueError, match="launch command"):
        desktop_env.reset(options={"launch": ["xterm"]})


def test_launch_reports_apps_that_exit_without_a_window(desktop_env):
    desktop_env.reset()
    with pytest.raises(EnvSetupError, match="exited with code 3"):
        desktop_env.launch(["sh", "-c", "exit 3"])
    with pytest.raises(EnvSetupError, match="not found on PATH"):
        desktop_env.launch(["no-such-program-pixelpilot"])


def test_killed_x_server_raises_backend_died_and_reset_recreates_it():
    require_x_tools("Xvfb")
    with DesktopEnv(size=(320, 240), window_manager=False) as env:
        env.reset()
        old_display, old_pid = env.display, env.server.pids[0]
        os.kill(old_pid, signal.SIGKILL)
        poll_until(lambda: not env.server.alive(), timeout_s=10, what="Xvfb to die")
        with pytest.raises(BackendDiedError, match="reset"):
            env.step(Move(1, 1))
        with pytest.raises(EnvNotReadyError):
            env.step(Move(1, 1))
        obs, _ = env.reset()
        assert obs.size == (320, 240) and env.server.pids[0] != old_pid
        assert env.step(Click(5, 5))[4]["step"] == 1
        assert not pid_running(old_pid), f"the dead server on {old_display} must have been reaped"
        if old_display != env.display:
            assert not os.path.exists(f"/tmp/.X{old_display.lstrip(':')}-lock"), "stale lock file left behind"


def test_reset_with_restart_starts_a_fresh_server():
    require_x_tools("Xvfb")
    with DesktopEnv(size=(320, 240), window_manager=False) as env:
        env.reset()
        before = env.server.pids[0]
        env.reset(options={"restart": True})
        assert env.server.pids[0] != before and not pid_running(before)


def test_no_process_survives_close():
    require_x_tools("Xvfb", "openbox", "xterm")
    env = DesktopEnv(size=(640, 480), window_manager=True)
    env.reset(options={"launch": [["xterm"]]})
    env.launch(["sleep", "300"], wait_for_window=False)
    pids = env.owned_pids()
    assert len(pids) == 4 and all(pid_running(p) for p in pids)  # Xvfb, openbox, xterm, sleep
    env.close()
    assert _gone(pids)
    with pytest.raises(EnvNotReadyError):
        env.reset()


def test_no_process_survives_an_exception_inside_with():
    require_x_tools("Xvfb", "openbox", "xterm")
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        with DesktopEnv(size=(640, 480), window_manager=True) as env:
            env.reset(options={"launch": [["xterm"]]})
            pids = env.owned_pids()
            raise RuntimeError("boom")
    assert len(pids) == 3 and _gone(pids)


def test_attach_to_an_existing_display_leaves_it_running():
    require_x_tools("Xvfb", "xterm")
    with Xvfb(XvfbConfig(size=(500, 300))) as server:
        env = DesktopEnv(display=server.display)
        assert env.screen_size == (500, 300)
        obs, _ = env.reset(options={"launch": [["xterm"]]})
        assert obs.size == (500, 300)
        app = env.owned_pids()
        assert len(app) == 1, "attached: only the launched app is ours"
        env.step(Wait(0.0))
        with pytest.raises(ValueError, match="restart"):
            env.reset(options={"restart": True})
        env.close()
        assert _gone(app)
        assert server.alive() and pid_running(server.pids[0])


def test_attached_display_that_dies_is_detected_by_a_failed_x_call():
    require_x_tools("Xvfb")
    server = Xvfb(XvfbConfig(size=(320, 240))).start()
    try:
        env = DesktopEnv(display=server.display, start_timeout_s=0.5)
        env.reset()
        pid = server.pids[0]
        os.kill(pid, signal.SIGKILL)  # the env holds no Popen for it: only X calls can tell
        poll_until(lambda: not pid_running(pid), timeout_s=10, what="Xvfb to die")
        with pytest.raises(BackendDiedError):
            env.step(Move(1, 1))
        with pytest.raises(EnvSetupError, match="cannot connect"):
            env.reset()  # nothing to re-attach to; the error says so
        env.close()
    finally:
        server.stop()
