"""The guest controller daemon: one process serving ``GuestBackend`` over framed streams.

Run inside the guest session (a container, a VM, or a local Xvfb for tests)::

    python3 -m envs.guest.server --token-file /run/pixelpilot-token \\
        --socket /run/pixelpilot/guest.sock --start-xvfb 1280x800 --window-manager
    python3 -m envs.guest.server --token-file T --device /dev/virtio-ports/org.pixelpilot.guest.0 --display :0

Sessions: the first request on a connection must be ``Auth`` with the token (constant-time
compare); anything else gets an ``auth_required`` / ``auth_failed`` error and the connection is
closed. Then requests are served one after another per connection; each unix-socket
connection has its own thread (at most ``max_connections``). Every failure of a request is
answered as error data (``{"ok": false, "error": {...}}``) and the connection goes on; an
oversized frame is skipped and answered with ``frame_too_large``. The token file must not be
readable by group or others (``chmod 600``). The socket is created with mode 0600, and the
daemon never listens on TCP.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from envs.errors import BackendDiedError, InvalidActionError
from envs.guest import protocol as p
from envs.guest.transport import (
    DEFAULT_MAX_FRAME_BYTES, ByteStream, FdStream, FrameError, FrameStream, FrameTooLargeError, MalformedFrameError,
    SocketStream,
)

log = logging.getLogger("pixelpilot.guest")


class TokenFileError(RuntimeError):
    """The token file is missing, empty, or readable by other users."""


def read_token_file(path: str) -> str:
    """The token in ``path``; refuses files that group or others may read."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc}") from None
    if st.st_mode & 0o077:
        raise TokenFileError(f"token file {path} has mode {st.st_mode & 0o777:o}; run chmod 600 {path}")
    if len(token) < 16:
        raise TokenFileError(f"token in {path} is shorter than 16 characters; write a random one (secrets.token_hex)")
    return token


@dataclass(frozen=True)
class ServerConfig:
    """Daemon limits. ``token`` is never printed (repr hides it)."""

    token: str
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_connections: int = 16

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or len(self.token) < 16:
            raise ValueError("token must be a string of at least 16 characters")
        if self.max_frame_bytes < 1024 or self.max_connections < 1:
            raise ValueError(f"max_frame_bytes >= 1024 and max_connections >= 1 required, got {self.max_frame_bytes}, "
                             f"{self.max_connections}")

    def __repr__(self) -> str:
        return f"ServerConfig(token=***, max_frame_bytes={self.max_frame_bytes}, max_connections={self.max_connections})"


def error_info(exc: BaseException) -> p.ErrorInfo:
    """Map an exception raised while serving a request to error data."""
    from envs.guest.backend import TooLargeError
    from envs.tasks.errors import ControllerUnsupportedError

    table: tuple[tuple[type, str], ...] = (
        (p.UnknownOpError, "unknown_op"), (p.ProtocolError, "bad_request"), (InvalidActionError, "invalid_action"),
        (ControllerUnsupportedError, "unsupported"), (FileNotFoundError, "not_found"), (TooLargeError, "too_large"),
        (BackendDiedError, "backend_died"), (OSError, "os_error"),
    )
    for cls, name in table:
        if isinstance(exc, cls):
            return p.ErrorInfo(name, str(exc) or type(exc).__name__)
    if type(exc).__module__.startswith("Xlib"):
        return p.ErrorInfo("backend_died", f"X server call failed ({type(exc).__name__}: {exc}); the display may be gone")
    return p.ErrorInfo("internal", f"{type(exc).__name__}: {exc}")


class GuestServer:
    """Serves one ``GuestBackend`` (anything with ``handle(request)``) on sockets or devices."""

    def __init__(self, backend: Any, config: ServerConfig) -> None:
        self.backend = backend
        self.config = config
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(config.max_connections)
        self._threads: set[threading.Thread] = set()

    # -- one connection -----------------------------------------------------------------------
    def serve_connection(self, stream: ByteStream) -> None:
        """Authenticate, then answer requests until the peer closes the stream."""
        frames = FrameStream(stream, self.config.max_frame_bytes)
        authed = False
        while not self._stop.is_set():
            try:
                header, body = frames.read_frame()
            except (EOFError, ConnectionError, OSError) as exc:
                if not isinstance(exc, EOFError):
                    log.info("connection dropped: %s", exc)
                return
            except (FrameTooLargeError, MalformedFrameError) as exc:
                kind = "frame_too_large" if isinstance(exc, FrameTooLargeError) else "bad_request"
                if not self._reply(frames, *p.error_response(0, p.ErrorInfo(kind, str(exc)))) or not authed:
                    return
                continue
            request_id = header.get("id", 0) if isinstance(header.get("id"), int) else 0
            if not authed:
                authed = self._authenticate(frames, request_id, header, body)
                if not authed:
                    return
                continue
            if not self._reply(frames, *self._answer(request_id, header, body)):
                return

    def _authenticate(self, frames: FrameStream, request_id: int, header: dict[str, Any], body: bytes) -> bool:
        if header.get("op") != p.Auth.op:
            self._reply(frames, *p.error_response(request_id, p.ErrorInfo(
                "auth_required", "the first request must be auth with the controller's token")))
            return False
        token = header.get("token")
        given = token.encode("utf-8") if isinstance(token, str) else b""
        if not hmac.compare_digest(given, self.config.token.encode("utf-8")):
            log.warning("rejected a connection with a wrong token")
            self._reply(frames, *p.error_response(request_id, p.ErrorInfo(
                "auth_failed", "wrong token: read it from the file the controller was started with")))
            return False
        return self._reply(frames, *p.ok_response(request_id, p.AuthOk(p.PROTOCOL_VERSION, self.backend.display)))

    def _answer(self, request_id: int, header: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        try:
            _, req = p.decode_request(header, body)
            if isinstance(req, p.Auth):
                return p.ok_response(request_id, p.AuthOk(p.PROTOCOL_VERSION, self.backend.display))
            result = self.backend.handle(req)
            response = p.ok_response(request_id, result)
        except Exception as exc:  # noqa: BLE001 - every failure goes back as error data
            if not isinstance(exc, (p.ProtocolError, InvalidActionError, FileNotFoundError)):
                log.info("request %s failed: %s: %s", header.get("op"), type(exc).__name__, exc)
            return p.error_response(request_id, error_info(exc))
        size = len(json.dumps(response[0], separators=(",", ":"))) + len(response[1])
        if size > self.config.max_frame_bytes:
            return p.error_response(request_id, p.ErrorInfo(
                "too_large", f"the result is {size} bytes, over this connection's {self.config.max_frame_bytes}-byte "
                "frame limit; ask for less (a png screenshot, a smaller file)"))
        return response

    @staticmethod
    def _reply(frames: FrameStream, header: dict[str, Any], body: bytes) -> bool:
        try:
            frames.write_frame(header, body)
            return True
        except (OSError, FrameTooLargeError) as exc:
            log.info("could not send a reply: %s", exc)
            return False

    # -- listeners ------------------------------------------------------------------------------
    def serve_unix(self, path: str, ready: threading.Event | None = None) -> None:
        """Listen on a unix socket at ``path`` (mode 0600) until ``shutdown()``."""
        if os.path.exists(path):
            os.unlink(path)  # a socket left by a previous run of this daemon
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        listener.listen(self.config.max_connections)
        listener.settimeout(0.2)
        self._listener = listener
        log.info("guest controller listening on %s (display %s)", path, self.backend.display)
        if ready is not None:
            ready.set()
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break  # the listener was closed by shutdown()
                self._spawn(conn)
        finally:
            listener.close()
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _spawn(self, conn: socket.socket) -> None:
        if not self._slots.acquire(blocking=False):
            frames = FrameStream(SocketStream(conn), self.config.max_frame_bytes)
            self._reply(frames, *p.error_response(0, p.ErrorInfo(
                "too_large", f"more than {self.config.max_connections} connections; close one and retry")))
            conn.close()
            return
        conn.settimeout(None)

        def run() -> None:
            stream = SocketStream(conn)
            try:
                self.serve_connection(stream)
            finally:
                stream.close()
                self._slots.release()
                self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="guest-conn", daemon=True)
        self._threads.add(thread)
        thread.start()

    def serve_device(self, path: str) -> None:
        """Serve a character device (virtio-serial port) until ``shutdown()``; reopen it after each session."""
        log.info("guest controller serving device %s (display %s)", path, self.backend.display)
        delay = 0.0
        while not self._stop.is_set():
            stream = FdStream.open_device(path)
            t0 = time.monotonic()
            try:
                self.serve_connection(stream)
            except FrameError as exc:
                log.warning("desynchronised stream on %s (%s); reopening", path, exc)
            finally:
                stream.close()
            # read() on a virtio-serial port returns 0 at once while no host is connected:
            # back off instead of spinning on the guest's only vCPU.
            delay = 0.0 if time.monotonic() - t0 > 1.0 else min(max(delay * 2, 0.01), 0.25)
            self._stop.wait(delay)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until ``shutdown()`` (or the timeout); True once shut down."""
        return self._stop.wait(timeout_s)

    def shutdown(self) -> None:
        """Stop accepting; running requests finish; idempotent."""
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m envs.guest.server", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", help="unix socket path to listen on")
    where.add_argument("--device", help="character device (virtio-serial port) to serve")
    screen = parser.add_mutually_exclusive_group(required=True)
    screen.add_argument("--display", help="attach to this X display (e.g. :0)")
    screen.add_argument("--start-xvfb", metavar="WxH", help="start a managed Xvfb of this size")
    parser.add_argument("--window-manager", action="store_true", help="with --start-xvfb: also start openbox")
    parser.add_argument("--token-file", required=True, help="file holding the token (mode 600)")
    parser.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the display (or attach), then serve until SIGTERM / SIGINT."""
    from envs.desktop.xvfb import Xvfb, XvfbConfig
    from envs.guest.backend import GuestBackend

    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[guest %(asctime)s] %(message)s", stream=sys.stderr)
    try:
        config = ServerConfig(read_token_file(args.token_file), max_frame_bytes=args.max_frame_bytes)
    except TokenFileError as exc:
        print(f"guest controller: {exc}", file=sys.stderr)
        return 2
    if args.display:
        xvfb = Xvfb.attach(args.display)
    else:
        w, h = (int(v) for v in args.start_xvfb.lower().split("x"))
        xvfb = Xvfb(XvfbConfig(size=(w, h), window_manager=args.window_manager)).start()
    backend = GuestBackend(xvfb)
    server = GuestServer(backend, config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.shutdown())
    try:
        if args.socket:
            server.serve_unix(args.socket)
        else:
            device_thread = threading.Thread(target=server.serve_device, args=(args.device,), daemon=True)
            device_thread.start()
            server.wait()
    finally:
        backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
