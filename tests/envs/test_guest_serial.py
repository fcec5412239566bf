"""The guest controller over a character device, as a VM guest serves its virtio-serial port.

A pseudo-terminal in raw mode stands in for the port: the daemon's ``serve_device`` opens the
slave side by path (as it opens ``/dev/virtio-ports/...``), the host side talks through the
master with the same ``GuestClient``. Same protocol, same auth, same errors as data.
"""

from __future__ import annotations

import os
import secrets
import threading
import tty
from collections.abc import Iterator
from typing import Any

import pytest

from envs.actions import Move
from envs.guest import protocol as p
from envs.guest.client import GuestAuthError, GuestClient
from envs.guest.transport import FdStream, FrameStream
from tests.envs.conftest import require_x_tools

pytestmark = pytest.mark.integration


@pytest.fixture()
def serial_daemon() -> Iterator[tuple[int, str, Any]]:
    require_x_tools("Xvfb")
    from envs.desktop.xvfb import Xvfb, XvfbConfig
    from envs.guest.backend import GuestBackend
    from envs.guest.server import GuestServer, ServerConfig

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no CR/LF translation: a clean byte stream like virtio-serial
    token = secrets.token_hex(16)
    backend = GuestBackend(Xvfb(XvfbConfig(size=(320, 240))).start())
    server = GuestServer(backend, ServerConfig(token))
    thread = threading.Thread(target=server.serve_device, args=(os.ttyname(slave),), daemon=True)
    thread.start()
    try:
        yield master, token, server
    finally:
        server.shutdown()
        os.close(master)  # ends the daemon's read (EIO on the slave side)
        thread.join(timeout=10)
        os.close(slave)
        backend.close()


def test_requests_over_a_character_device(serial_daemon):
    master, token, _ = serial_daemon
    client = GuestClient(FdStream(master, owns=False), token)
    assert client.screen_size() == (320, 240)
    assert client.screenshot().shape == (240, 320, 3)
    assert client.execute(Move(10, 10)) == {"input": "xtest"}
    assert client.run(["echo", "over serial"]).stdout == "over serial\n"
    with pytest.raises(FileNotFoundError):
        client.read_file("/no/such/file")
    assert client.ping().version == p.PROTOCOL_VERSION


def test_failed_auth_on_a_device_then_a_new_session_works(serial_daemon):
    master, token, _ = serial_daemon
    frames = FrameStream(FdStream(master, owns=False))
    frames.write_frame({"op": "auth", "id": 1, "token": "not-the-token-at-all"})
    assert frames.read_frame()[0]["error"]["type"] == "auth_failed"
    with pytest.raises(GuestAuthError):
        GuestClient(FdStream(master, owns=False), "also-wrong-token")
    # The daemon reopened the port after each failed session: the right token still gets in.
    assert GuestClient(FdStream(master, owns=False), token).ping().display
