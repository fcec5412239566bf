"""Length-prefixed frames over any byte stream: a unix socket or a serial / virtio-serial port.

Frame layout (all integers big-endian)::

    b"PPG1" | u32 header_len | u32 body_len | header (UTF-8 JSON object) | body (bytes)

The same framing runs over a connected unix socket (``SocketStream``) and over a character
device or pipe pair (``FdStream``, e.g. ``/dev/virtio-ports/org.pixelpilot.guest.0`` inside a
VM, or the host end of a QEMU ``chardev socket``). The magic catches a desynchronised stream.

A frame whose ``header_len + body_len`` exceeds ``max_frame_bytes`` is read and *discarded*
(in bounded chunks, so memory stays flat) and ``FrameTooLargeError`` is raised: the stream
stays in sync, so the server can answer with an error and keep serving — which matters on a
serial port, where there is no "new connection". A bad magic raises ``FrameError``: the
stream cannot be trusted any more and the caller should drop it (socket) or reopen it (serial).

This module knows nothing about what the JSON means (``envs.guest.protocol`` does).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Protocol

from envs.errors import PixelPilotError

MAGIC = b"PPG1"
_PREFIX = struct.Struct(">4sII")
DEFAULT_MAX_FRAME_BYTES = 64 << 20  # 64 MiB: a 4K RGB screenshot is 25 MiB
MAX_HEADER_BYTES = 1 << 20  # the JSON part; bulk data goes in the body
_CHUNK = 1 << 20


class FrameError(PixelPilotError, ConnectionError):
    """The stream does not carry valid frames (bad magic, bad JSON); drop or reopen it."""


class FrameTooLargeError(PixelPilotError, ValueError):
    """A frame exceeded the size limit; it was skipped and the stream is still usable."""

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"frame of {size} bytes exceeds the {limit}-byte limit; send less per request "
                         "(split file writes, read files in parts, or raise max_frame_bytes on both ends)")


class MalformedFrameError(PixelPilotError, ValueError):
    """A complete frame arrived but its header is not a JSON object; the stream is still in sync."""


class ByteStream(Protocol):
    """What framing needs from a transport."""

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream."""
        ...

    def write_all(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SocketStream:
    """A connected stream socket (unix, or a socketpair in tests)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self, n: int) -> bytes:
        return self.sock.recv(n)

    def write_all(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already disconnected
        self.sock.close()


class FdStream:
    """A pair of file descriptors (a character device opened read-write, or two pipe ends)."""

    def __init__(self, read_fd: int, write_fd: int | None = None, *, owns: bool = True) -> None:
        self.read_fd = read_fd
        self.write_fd = read_fd if write_fd is None else write_fd
        self._owns = owns

    @classmethod
    def open_device(cls, path: str) -> "FdStream":
        """Open a character device (virtio-serial port, pty) for reading and writing."""
        return cls(os.open(path, os.O_RDWR | os.O_NOCTTY))

    def read(self, n: int) -> bytes:
        return os.read(self.read_fd, n)

    def write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view):]

    def close(self) -> None:
        if self._owns:
            for fd in {self.read_fd, self.write_fd}:
                try:
                    os.close(fd)
                except OSError:
                    pass  # already closed


def _read_exact(stream: ByteStream, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            raise EOFError(f"stream ended with {left} of {n} bytes unread")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _discard(stream: ByteStream, n: int) -> None:
    while n:
        chunk = stream.read(min(n, _CHUNK))
        if not chunk:
            raise EOFError("stream ended inside a skipped frame")
        n -= len(chunk)


class FrameStream:
    """Reads and writes frames on a ``ByteStream`` with a size limit (one reader, one writer)."""

    def __init__(self, stream: ByteStream, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 1024:
            raise ValueError(f"max_frame_bytes must be at least 1024, got {max_frame_bytes}")
        self.stream = stream
        self.max_frame_bytes = max_frame_bytes

    def read_frame(self) -> tuple[dict[str, Any], bytes]:
        """The next (header, body). ``EOFError`` on a clean end of stream before a frame."""
        first = self.stream.read(_PREFIX.size)
        if not first:
            raise EOFError("stream closed")
        prefix = first + (_read_exact(self.stream, _PREFIX.size - len(first)) if len(first) < _PREFIX.size else b"")
        magic, header_len, body_len = _PREFIX.unpack(prefix)
        if magic != MAGIC:
            raise FrameError(f"bad frame magic {magic!r} (expected {MAGIC!r}): the peer does not speak this protocol")
        total = header_len + body_len
        if total > self.max_frame_bytes or header_len > MAX_HEADER_BYTES:
            _discard(self.stream, total)
            limit = MAX_HEADER_BYTES if header_len > MAX_HEADER_BYTES else self.max_frame_bytes
            raise FrameTooLargeError(header_len if header_len > MAX_HEADER_BYTES else total, limit)
        raw = _read_exact(self.stream, header_len)
        body = _read_exact(self.stream, body_len) if body_len else b""
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFrameError(f"frame header is not UTF-8 JSON: {exc}") from None
        if not isinstance(header, dict):
            raise MalformedFrameError(f"frame header must be a JSON object, got {type(header).__name__}")
        return header, body

    def write_frame(self, header: dict[str, Any], body: bytes = b"") -> None:
        """Send one frame; raises ``FrameTooLargeError`` (nothing sent) if it exceeds the limit."""
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        total = len(raw) + len(body)
        if total > self.max_frame_bytes or len(raw) > MAX_HEADER_BYTES:
            raise FrameTooLargeError(total, self.max_frame_bytes)
        prefix = _PREFIX.pack(MAGIC, len(raw), len(body))
        if len(body) < 65536:
            self.stream.write_all(prefix + raw + body)
        else:  # avoid copying large bodies
            self.stream.write_all(prefix + raw)
            self.stream.write_all(body)

    def close(self) -> None:
        self.stream.close()


def connect_unix(path: str, timeout_s: float | None = 30.0) -> SocketStream:
    """Connect to a guest controller's unix socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return SocketStream(sock)
