"""envs.desktop.xvfb / capture / procs: real Xvfb and openbox processes, stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest
from Xlib import display as xdisplay

from envs.desktop import Xvfb, XvfbConfig, bgrx_to_rgb
from envs.desktop.procs import pid_running, poll_until, spawn, stop
from envs.desktop.xvfb import free_display_number
from envs.errors import BackendDiedError, EnvSetupError
from tests.envs.conftest import require_x_tools


@pytest.mark.parametrize("bad", [{"size": (0, 100)}, {"size": (100,)}, {"size": (99999, 100)}, {"size": (640.0, 480)},
                                 {"depth": 16}, {"start_timeout_s": 0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        XvfbConfig(**bad)


def test_bgrx_to_rgb_swaps_channels_into_a_new_contiguous_array():
    bgrx = bytearray([1, 2, 3, 0, 10, 20, 30, 0, 100, 110, 120, 0, 7, 8, 9, 0])
    rgb = bgrx_to_rgb(bgrx, 2, 2)
    assert rgb.shape == (2, 2, 3) and rgb.flags["C_CONTIGUOUS"] and rgb.flags["WRITEABLE"]
    assert rgb.tolist() == [[[3, 2, 1], [30, 20, 10]], [[120, 110, 100], [9, 8, 7]]]
    bgrx[0] = 99  # the result must not alias the capture buffer
    assert rgb[0, 0, 2] == 1
    with pytest.raises(ValueError, match="expected 16 bytes"):
        bgrx_to_rgb(bgrx[:12], 2, 2)


def test_poll_until_returns_value_times_out_and_aborts():
    calls = iter([None, False, 7])
    assert poll_until(lambda: next(calls), timeout_s=5, what="x", interval_s=0.001) == 7
    with pytest.raises(TimeoutError, match="waiting for nothing"):
        poll_until(lambda: None, timeout_s=0.02, what="nothing", interval_s=0.001)
    with pytest.raises(TimeoutError, match="it broke"):
        poll_until(lambda: None, timeout_s=5, what="y", abort=lambda: "it broke")


@pytest.mark.integration
def test_start_owns_a_free_display_and_stop_removes_everything():
    require_x_tools("Xvfb")
    with Xvfb(XvfbConfig(size=(1920, 1080))) as a, Xvfb(XvfbConfig(size=(320, 200))) as b:
        assert a.display != b.display, "two servers must get different display numbers"
        assert a.size == (1920, 1080) and b.size == (320, 200)
        number = a.display.lstrip(":")
        pids = a.pids
        assert len(pids) == 1 and all(pid_running(p) for p in pids)
        with open(f"/tmp/.X{number}-lock") as fh:  # other tools see the number as taken
            assert int(fh.read().strip()) == pids[0]
        assert os.path.exists(f"/tmp/.X11-unix/X{number}")
        conn = xdisplay.Display(a.display)  # it accepts connections as soon as start() returns
        conn.close()
    assert not any(pid_running(p) for p in pids)
    assert not os.path.exists(f"/tmp/.X{number}-lock")
    a.stop()  # idempotent


@pytest.mark.integration
def test_a_number_held_by_a_foreign_server_is_skipped():
    require_x_tools("Xvfb")
    taken = free_display_number()
    foreign = spawn(["Xvfb", f":{taken}", "-screen", "0", "320x200x24", "-nolisten", "tcp"], env=os.environ,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        poll_until(lambda: os.path.exists(f"/tmp/.X{taken}-lock"), timeout_s=10, what="the foreign Xvfb's lock")
        with Xvfb(XvfbConfig(size=(320, 200))) as ours:
            assert ours.display != f":{taken}"
            assert foreign.poll() is None
    finally:
        stop(foreign)


@pytest.mark.integration
def test_window_manager_is_running_and_stopped_with_the_display():
    require_x_tools("Xvfb", "openbox")
    server = Xvfb(XvfbConfig(size=(640, 480), window_manager=True)).start()
    try:
        xvfb_pid, wm_pid = server.pids
        assert pid_running(wm_pid)
        conn = xdisplay.Display(server.display)
        try:
            owner = conn.get_selection_owner(conn.intern_atom("WM_S0"))
            assert owner != 0, "openbox must own the WM_S0 selection once start() returns"
        finally:
            conn.close()
    finally:
        server.stop()
    assert not pid_running(xvfb_pid) and not pid_running(wm_pid)


@pytest.mark.integration
def test_attach_owns_nothing_and_kills_nothing():
    require_x_tools("Xvfb")
    with Xvfb(XvfbConfig(size=(640, 480))) as owner:
        name = owner.display
        guest = Xvfb.attach(name)
        assert not guest.owned and guest.pids == [] and guest.size == (640, 480)
        assert guest.alive()
        guest.stop()
        assert owner.alive() and pid_running(owner.pids[0])
        with pytest.raises(EnvSetupError, match="attached"):
            guest.start()
    with pytest.raises(EnvSetupError, match="cannot connect"):
        Xvfb.attach(name, timeout_s=0.2)  # stopped with the ``with`` block


@pytest.mark.integration
def test_a_killed_server_is_reported_dead():
    require_x_tools("Xvfb")
    server = Xvfb(XvfbConfig(size=(320, 240))).start()
    try:
        pid = server.pids[0]
        os.kill(pid, signal.SIGKILL)
        poll_until(lambda: not server.alive(), timeout_s=10, what="Xvfb to die")
        with pytest.raises(BackendDiedError, match="call reset"):
            server.check_alive()
        number = server.display.lstrip(":")
        assert os.path.exists(f"/tmp/.X{number}-lock"), "SIGKILL leaves the lock file behind"
    finally:
        server.stop()
    assert not pid_running(pid)
    # stop() removed what the killed server could not, so the number is free again.
    assert not os.path.exists(f"/tmp/.X{number}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{number}")


@pytest.mark.integration
def test_capture_uses_one_mss_instance_per_thread():
    require_x_tools("Xvfb")
    import threading

    from envs.desktop import ScreenCapture

    with Xvfb(XvfbConfig(size=(320, 200))) as server:
        capture = ScreenCapture(server.display, server.size)
        shapes: list[tuple[int, ...]] = []
        errors: list[BaseException] = []

        def grab_twice() -> None:
            try:
                shapes.extend(capture.grab().shape for _ in range(2))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=grab_twice) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors and shapes == [(200, 320, 3)] * 6
        capture.grab()
        assert len(capture._instances) == 4, "three worker threads + the main thread, one instance each"
        capture.close()
        assert capture._instances == []
        with pytest.raises(EnvSetupError, match="closed"):
            capture.grab()
