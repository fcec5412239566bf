"""The guest controller daemon on a real local Xvfb: auth, limits, every op, errors as data, concurrency.

One daemon process (``python -m envs.guest.server --start-xvfb``) serves the whole module,
as it does inside a container; it is stopped by PID at the end and must take its Xvfb along.
"""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from envs.actions import Click, Hotkey, TypeText
from envs.desktop.procs import pid_running, poll_until, stop
from envs.errors import InvalidActionError
from envs.guest import protocol as p
from envs.guest.client import (
    GuestAuthError, GuestClient, GuestConnectionError, GuestController, GuestRequestError, GuestUnsupportedError,
)
from envs.guest.transport import FrameStream, connect_unix
from tests.envs.conftest import require_x_tools

pytestmark = pytest.mark.integration
MAX_FRAME = 2 << 20  # the daemon's limit in this module: a 640x480 raw screenshot (0.9 MiB) fits


class Daemon:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.socket = str(tmp / "g.sock")
        self.token = secrets.token_hex(32)
        token_file = tmp / "token"
        token_file.write_text(self.token)
        token_file.chmod(0o600)
        self.log = open(tmp / "daemon.log", "w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "envs.guest.server", "--socket", self.socket, "--token-file", str(token_file),
             "--start-xvfb", "640x480", "--window-manager", "--max-frame-bytes", str(MAX_FRAME)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        poll_until(lambda: os.path.exists(self.socket) or None, timeout_s=30, what="the guest daemon's socket",
                   abort=lambda: None if self.proc.poll() is None else f"daemon exited: {self.read_log()}")

    def read_log(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def client(self) -> GuestClient:
        return GuestClient.connect_unix(self.socket, self.token, timeout_s=60)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    require_x_tools("Xvfb", "openbox", "xterm", "xdotool")
    d = Daemon(tmp_path_factory.mktemp("guest"))
    try:
        yield d
    finally:
        stop(d.proc, timeout_s=10)
        d.log.close()


@pytest.fixture()
def client(daemon: Daemon) -> Iterator[GuestClient]:
    with daemon.client() as c:
        yield c


# -- auth and limits ----------------------------------------------------------------------------
def test_wrong_token_is_refused_and_the_connection_closed(daemon):
    with pytest.raises(GuestAuthError, match="auth_failed"):
        GuestClient.connect_unix(daemon.socket, "x" * 64)
    frames = FrameStream(connect_unix(daemon.socket))
    frames.write_frame({"op": "auth", "id": 1, "token": "wrong-token-0000"})
    assert frames.read_frame()[0]["error"]["type"] == "auth_failed"
    with pytest.raises(EOFError):
        frames.read_frame()  # the daemon hung up
    frames.close()


def test_first_request_must_be_auth(daemon):
    frames = FrameStream(connect_unix(daemon.socket))
    frames.write_frame({"op": "ping", "id": 1})
    header, _ = frames.read_frame()
    assert header["ok"] is False and header["error"]["type"] == "auth_required"
    frames.close()


def test_oversized_frame_gets_an_error_and_the_connection_goes_on(daemon):
    frames = FrameStream(connect_unix(daemon.socket), max_frame_bytes=MAX_FRAME * 2)
    frames.write_frame({"op": "auth", "id": 1, "token": daemon.token})
    assert frames.read_frame()[0]["ok"] is True
    header, body = p.encode_request(p.WriteFile("/tmp/never-written", b"z" * (MAX_FRAME + 10)), 2)
    frames.write_frame(header, body)
    reply, _ = frames.read_frame()
    assert reply["error"]["type"] == "frame_too_large" and str(MAX_FRAME) in reply["error"]["message"]
    assert not os.path.exists("/tmp/never-written")
    frames.write_frame({"op": "ping", "id": 3})
    assert frames.read_frame()[0]["result"]["version"] == p.PROTOCOL_VERSION
    frames.close()


def test_garbage_gets_bad_request_as_data(daemon):
    frames = FrameStream(connect_unix(daemon.socket))
    frames.write_frame({"op": "auth", "id": 1, "token": daemon.token})
    assert frames.read_frame()[0]["ok"] is True
    for i, header in enumerate(({"op": "run", "argv": "rm -rf /"}, {"op": "teleport"}, {"op": "read_file", "path": "x"},
                                {"op": "action", "action": {"kind": "click", "x": "1", "y": 2}})):
        frames.write_frame({**header, "id": 10 + i})
        reply, _ = frames.read_frame()
        assert reply["id"] == 10 + i and reply["ok"] is False
        assert reply["error"]["type"] in ("bad_request", "unknown_op", "invalid_action")
    frames.write_frame({"op": "ping", "id": 99})
    assert frames.read_frame()[0]["result"]["version"] == p.PROTOCOL_VERSION
    frames.close()


def test_token_file_readable_by_others_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(16))
    token.chmod(0o644)
    proc = subprocess.run([sys.executable, "-m", "envs.guest.server", "--socket", str(tmp_path / "s"), "--token-file",
                           str(token), "--display", ":99999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr


# -- every op -----------------------------------------------------------------------------------
def test_ping_and_screen_size(client):
    pong = client.ping()
    assert pong.display == client.display and pong.pid > 0
    assert client.screen_size() == (640, 480)


def test_screenshot_raw_and_png_agree(client):
    from PIL import Image

    raw = client.screenshot()
    assert raw.shape == (480, 640, 3) and raw.dtype == np.uint8
    png = np.asarray(Image.open(io.BytesIO(client.screenshot_png())).convert("RGB"))
    assert png.shape == raw.shape and np.array_equal(png, client.screenshot())


def test_run_command_exit_codes_timeouts_and_bounded_output(client):
    r = client.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (r.returncode, r.stdout, r.stderr, r.timed_out) == (3, "out\n", "err\n", False)
    r = client.run(["sleep", "30"], timeout_s=0.3)
    assert r.timed_out and r.returncode == -9
    r = client.run(["head", "-c", "5000000", "/dev/zero"], max_output_bytes=1000)
    assert r.truncated and len(r.stdout) == 1000 and r.returncode == 0
    assert client.run(["echo $HOME"], shell=True).stdout.strip() == os.environ.get("HOME", "/root")
    assert client.run(["echo", "$HOME"]).stdout.strip() == "$HOME"  # no shell unless asked
    assert client.run(["/no/such/binary"]).returncode == 127


def test_files_read_write_size_and_limits(client, tmp_path):
    path = str(tmp_path / "sub" / "f.bin")
    data = os.urandom(100_000)
    assert client.write_file(path, data, mode=0o600) == len(data)
    assert client.read_file(path) == data and (os.stat(path).st_mode & 0o777) == 0o600
    ctl = GuestController(client)
    assert ctl.file_size(path) == len(data) and ctl.file_size(str(tmp_path / "none")) is None
    with pytest.raises(GuestRequestError, match="too_large"):
        client.read_file(path, max_bytes=10)
    with pytest.raises(FileNotFoundError):
        client.read_file(str(tmp_path / "missing"))
    tree = ctl.list_directory(str(tmp_path))
    assert tree.to_json() == {"type": "directory", "name": tmp_path.name,
                              "children": [{"type": "directory", "name": "sub", "children": [{"type": "file", "name": "f.bin"}]}]}
    with pytest.raises(GuestRequestError, match="os_error"):
        client.write_file(f"{path}/under-a-file", b"1")  # the parent is a regular file
    assert client.ping()  # still usable after errors


def test_windows_actions_and_typing_into_xterm(client, tmp_path):
    ctl = GuestController(client)
    target = tmp_path / "typed.txt"
    pid = ctl.launch(["xterm", "-geometry", "60x10+0+0", "-e", "sh"])  # sh: no host shell rc files
    win = poll_until(lambda: next((w for w in ctl.list_windows() if w.pid == pid), None), timeout_s=20,
                     what="the xterm window")
    assert ctl.process_returncode(pid) is None
    ctl.activate_window(win.id)
    assert poll_until(lambda: (ctl.active_window() or None) and ctl.active_window().id == win.id or None,
                      timeout_s=10, what="xterm to be active")
    client.execute(Click(50, 40))
    client.execute(TypeText(f"echo typed-in-guest > {target}\n"))
    poll_until(lambda: target.exists() and target.read_text() == "typed-in-guest\n" or None, timeout_s=20,
               what="the file typed in xterm")
    assert client.execute(Hotkey(("ctrl", "d"))) == {"input": "xtest"}  # closes the shell, so the xterm exits
    poll_until(lambda: ctl.process_returncode(pid) is not None or None, timeout_s=20, what="xterm to exit")
    with pytest.raises(InvalidActionError, match="outside"):
        client.execute(Click(640, 0))


def test_close_window_and_unknown_pid(client):
    ctl = GuestController(client)
    pid = ctl.launch(["xterm"])
    win = poll_until(lambda: next((w for w in ctl.list_windows() if w.pid == pid), None), timeout_s=20, what="xterm")
    ctl.close_window(win.id)
    poll_until(lambda: ctl.process_returncode(pid) is not None or None, timeout_s=20, what="xterm to close")
    with pytest.raises(FileNotFoundError, match="not started"):
        ctl.process_returncode(1)
    with pytest.raises(GuestRequestError, match="bad_request"):
        ctl.activate_window("not-a-window")


def test_accessibility_tree_is_unsupported_as_data(client):
    with pytest.raises(GuestUnsupportedError, match="unsupported") as info:
        GuestController(client).accessibility_tree()
    assert info.value.info.type == "unsupported"
    assert client.ping()


# -- several connections ------------------------------------------------------------------------
def test_concurrent_clients_are_served_in_parallel(daemon, tmp_path):
    gate = tmp_path / "go"
    waiting = daemon.client()
    result: dict[str, p.CommandOutput] = {}
    # This command only ends once another connection has written the gate file: it proves that
    # a long request on one connection does not block the others.
    t = threading.Thread(target=lambda: result.setdefault("r", waiting.run(
        ["sh", "-c", f"while [ ! -f {gate} ]; do sleep 0.02; done; echo released"], timeout_s=60)))
    t.start()
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with daemon.client() as c:
                for _ in range(5):
                    assert c.screenshot().shape == (480, 640, 3)
                    assert c.run(["echo", str(i)]).stdout == f"{i}\n"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors and t.is_alive()
    with daemon.client() as c:
        c.write_file(str(gate), b"")
    t.join(timeout=60)
    assert result["r"].stdout == "released\n"
    waiting.close()
    with pytest.raises(GuestConnectionError):
        waiting.ping()


def test_daemon_stops_its_xvfb_on_sigterm(tmp_path):
    require_x_tools("Xvfb")
    d = Daemon(tmp_path)
    with d.client() as c:
        display = c.display
    lock = Path(f"/tmp/.X{display.lstrip(':')}-lock")
    xvfb_pid = int(lock.read_text().strip())
    assert pid_running(xvfb_pid)
    assert stop(d.proc, timeout_s=10) == 0
    assert not pid_running(xvfb_pid) and not os.path.exists(d.socket)
    d.log.close()
