"""Guest protocol and framing without an X server: codec round trips, limits, streams."""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest

from envs.actions import Click, Hotkey, TypeText
from envs.errors import InvalidActionError
from envs.guest import protocol as p
from envs.guest.transport import (
    MAGIC, FdStream, FrameError, FrameStream, FrameTooLargeError, MalformedFrameError, SocketStream,
)

ALL_REQUESTS = [
    p.Auth("t" * 32), p.Ping(), p.ScreenSize(), p.Screenshot("png"), p.ExecuteAction(Hotkey(("ctrl", "c"))),
    p.RunCommand(("ls", "-l"), timeout_s=5, max_output_bytes=10, cwd="/tmp"), p.RunCommand(("echo hi",), shell=True),
    p.Launch(("xterm",)), p.ProcessStatus(42), p.ReadFile("/etc/hostname", 100),
    p.WriteFile("/tmp/x", b"\x00\xffbytes", 0o600), p.FileSize("/tmp/x"), p.ListDirectory("/tmp"), p.ListWindows(),
    p.ActiveWindow(), p.ActivateWindow("123"), p.CloseWindow("123"), p.AccessibilityTree(),
]


@pytest.mark.parametrize("req", ALL_REQUESTS, ids=lambda r: r.op)
def test_every_request_round_trips(req):
    header, body = p.encode_request(req, 7)
    request_id, back = p.decode_request(header, body)
    assert request_id == 7 and back == req and type(back) is type(req)


def test_every_op_has_a_request_type_and_result_type():
    assert set(p.REQUESTS_BY_OP) == {r.op for r in ALL_REQUESTS}
    for cls in p.REQUEST_TYPES:
        assert hasattr(cls.result_type, "__dataclass_fields__")


def test_results_round_trip_with_nested_records_and_body():
    result = p.WindowsResult((p.Window("1", "xterm", "xterm.XTerm", 5), p.Window("2", "", "", None)))
    header, body = p.ok_response(3, result)
    assert p.decode_response(header, body, p.WindowsResult) == result
    shot = p.ScreenshotResult(2, 1, "raw", b"\x01" * 6)
    header, body = p.ok_response(4, shot)
    assert body == b"\x01" * 6 and p.decode_response(header, body, p.ScreenshotResult) == shot


def test_errors_decode_as_data():
    header, body = p.error_response(9, p.ErrorInfo("not_found", "no such file"))
    assert header == {"id": 9, "ok": False, "error": {"type": "not_found", "message": "no such file"}}
    assert p.decode_response(header, body, p.FileData) == p.ErrorInfo("not_found", "no such file")


@pytest.mark.parametrize("header, error", [
    ({"op": "nope", "id": 1}, p.UnknownOpError),
    ({"op": "ping", "id": 1, "extra": 1}, p.ProtocolError),
    ({"op": "run", "id": 1, "argv": "ls"}, p.ProtocolError),
    ({"op": "run", "id": 1, "argv": ["a", "b"], "shell": True}, p.ProtocolError),
    ({"op": "run", "id": 1, "argv": ["ls"], "timeout_s": "5"}, p.ProtocolError),
    ({"op": "read_file", "id": 1, "path": "relative/path"}, p.ProtocolError),
    ({"op": "process_status", "id": 1, "pid": True}, p.ProtocolError),
    ({"op": "ping", "id": "x"}, p.ProtocolError),
    ({"op": "action", "id": 1, "action": {"kind": "click", "x": 1}}, InvalidActionError),
    ({"op": "action", "id": 1, "action": {"kind": "rm -rf"}}, InvalidActionError),
])
def test_bad_requests_raise_typed_errors(header, error):
    with pytest.raises(error):
        p.decode_request(header, b"")


def test_body_on_a_request_without_body_field_is_rejected():
    with pytest.raises(p.ProtocolError, match="no binary body"):
        p.decode_request({"op": "ping", "id": 1}, b"junk")


def test_auth_repr_hides_the_token():
    assert "secret" not in repr(p.Auth("secret-token-123456"))


def test_action_request_carries_typed_action():
    header, _ = p.encode_request(p.ExecuteAction(Click(3, 4, "right", 2)), 1)
    assert header["action"] == {"kind": "click", "x": 3, "y": 4, "button": "right", "count": 2}


# -- framing ------------------------------------------------------------------------------------
def _pair(max_frame: int = 1 << 16) -> tuple[FrameStream, FrameStream]:
    a, b = socket.socketpair()
    return FrameStream(SocketStream(a), max_frame), FrameStream(SocketStream(b), max_frame)


def test_frames_round_trip_over_a_socket_with_large_bodies():
    left, right = _pair(max_frame=8 << 20)
    body = os.urandom(3 << 20)
    t = threading.Thread(target=left.write_frame, args=({"op": "x", "n": 1}, body))
    t.start()
    header, got = right.read_frame()
    t.join()
    assert header == {"op": "x", "n": 1} and got == body
    left.close()
    with pytest.raises(EOFError):
        right.read_frame()
    right.close()


def test_oversized_frame_is_skipped_and_the_stream_stays_in_sync():
    left, right = _pair(max_frame=4096)
    big = FrameStream(left.stream, max_frame_bytes=1 << 20)  # a sender with a higher limit
    t = threading.Thread(target=lambda: (big.write_frame({"op": "big"}, b"x" * 100_000), big.write_frame({"op": "ok"})))
    t.start()
    with pytest.raises(FrameTooLargeError, match="exceeds the 4096-byte limit"):
        right.read_frame()
    assert right.read_frame() == ({"op": "ok"}, b"")
    t.join()
    with pytest.raises(FrameTooLargeError):
        right.write_frame({"op": "x"}, b"y" * 5000)  # the writer refuses too, sending nothing
    left.close()
    right.close()


def test_bad_magic_and_bad_json_are_typed_errors():
    a, b = socket.socketpair()
    reader = FrameStream(SocketStream(b))
    a.sendall(struct.pack(">4sII", b"HTTP", 0, 0))
    with pytest.raises(FrameError, match="bad frame magic"):
        reader.read_frame()
    a.sendall(struct.pack(">4sII", MAGIC, 3, 0) + b"[1]")
    with pytest.raises(MalformedFrameError, match="JSON object"):
        reader.read_frame()
    a.sendall(struct.pack(">4sII", MAGIC, 2, 0) + b"\xff{")
    with pytest.raises(MalformedFrameError, match="not UTF-8 JSON"):
        reader.read_frame()
    a.close()
    b.close()


def test_fd_streams_carry_the_same_frames_as_sockets():
    """The virtio-serial case: frames over plain file descriptors (a pipe pair here)."""
    r1, w1 = os.pipe()
    writer, reader = FrameStream(FdStream(r1, w1, owns=False)), FrameStream(FdStream(r1, w1, owns=False))
    header, body = p.encode_request(p.WriteFile("/tmp/f", b"abc"), 5)
    writer.write_frame(header, body)
    got_header, got_body = reader.read_frame()
    assert p.decode_request(got_header, got_body) == (5, p.WriteFile("/tmp/f", b"abc"))
    FdStream(r1, w1).close()


def test_type_text_request_keeps_unicode():
    header, body = p.encode_request(p.ExecuteAction(TypeText("héllo ✓")), 1)
    assert p.decode_request(header, body)[1].action == TypeText("héllo ✓")
