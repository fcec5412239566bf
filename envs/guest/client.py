"""Host side of the guest controller: ``GuestClient`` (typed calls) and ``GuestController``.

``GuestClient`` sends one request at a time on one framed stream and returns the typed
result, raising a ``GuestError`` subclass for error data (``GuestAuthError``,
``GuestUnsupportedError`` — also a ``ControllerUnsupportedError`` —, ``GuestRequestError``)
and ``GuestConnectionError`` when the stream breaks (the guest died). It is thread-safe (a
lock serialises requests); open several clients for parallel requests.

``GuestController`` implements ``envs.tasks.controller.Controller`` on top of a client, so
OSWorld-style task setup and evaluation run inside containers and VMs unchanged.
"""

from __future__ import annotations

import itertools
import select
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from envs.actions import Action
from envs.errors import InvalidActionError, PixelPilotError
from envs.guest import protocol as p
from envs.guest.transport import DEFAULT_MAX_FRAME_BYTES, ByteStream, FrameStream, connect_unix
from envs.tasks.controller import CommandArg, CommandResult, DirEntry, WindowInfo
from envs.tasks.errors import ControllerUnsupportedError, NetworkPolicyError
from envs.tasks.fetch import is_local_url

R = TypeVar("R")


class GuestError(PixelPilotError, RuntimeError):
    """The guest controller answered with an error (``info`` holds the type and message)."""

    def __init__(self, info: p.ErrorInfo, op: str = "") -> None:
        self.info = info
        super().__init__(f"guest {op or 'request'} failed ({info.type}): {info.message}")


class GuestAuthError(GuestError):
    """The token was wrong or missing; the guest closed the connection."""


class GuestRequestError(GuestError):
    """The request failed in the guest (bad request, OS error, ...); the connection is still usable."""


class GuestUnsupportedError(GuestError, ControllerUnsupportedError):
    """The guest cannot do this (e.g. no accessibility bus)."""


class GuestConnectionError(PixelPilotError, ConnectionError):
    """The stream to the guest broke: the guest (container, VM) is probably gone."""


def _raise_for(info: p.ErrorInfo, op: str) -> None:
    if info.type in ("auth_failed", "auth_required"):
        raise GuestAuthError(info, op)
    if info.type == "unsupported":
        raise GuestUnsupportedError(info, op)
    if info.type == "not_found":
        raise FileNotFoundError(f"guest {op}: {info.message}")
    if info.type == "invalid_action":
        raise InvalidActionError(f"guest rejected the action: {info.message}")
    raise GuestRequestError(info, op)


class GuestClient:
    """A typed, authenticated connection to one guest controller."""

    def __init__(self, stream: ByteStream, token: str, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._frames = FrameStream(stream, max_frame_bytes)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False
        auth = self.request(p.Auth(token))
        self.display: str = auth.display
        self.version: int = auth.version

    @classmethod
    def connect_unix(cls, path: str, token: str, *, timeout_s: float | None = 120.0, **kw: Any) -> "GuestClient":
        """Connect to ``path`` and authenticate. ``timeout_s`` bounds each socket read/write."""
        try:
            stream = connect_unix(path, timeout_s)
        except OSError as exc:
            raise GuestConnectionError(f"cannot connect to the guest controller at {path}: {exc}") from None
        try:
            return cls(stream, token, **kw)
        except BaseException:
            stream.close()
            raise

    def request(self, req: Any) -> Any:
        """Send ``req`` and return its result dataclass; raises on error data or a broken stream."""
        with self._lock:
            if self._closed:
                raise GuestConnectionError("this guest client is closed; connect again")
            request_id = next(self._ids)
            header, body = p.encode_request(req, request_id)
            try:
                self._frames.write_frame(header, body)
                reply_header, reply_body = self._frames.read_frame()
            except (OSError, EOFError) as exc:
                self._close_locked()
                raise GuestConnectionError(f"guest connection lost during {req.op}: {exc or type(exc).__name__}") from None
        result = p.decode_response(reply_header, reply_body, type(req).result_type)
        if isinstance(result, p.ErrorInfo):
            if result.type in ("auth_failed", "auth_required"):
                self.close()
            _raise_for(result, req.op)
        return result

    # -- typed helpers ------------------------------------------------------------------------
    def ping(self) -> p.Pong:
        return self.request(p.Ping())

    def screen_size(self) -> tuple[int, int]:
        r = self.request(p.ScreenSize())
        return r.width, r.height

    def screenshot(self) -> np.ndarray:
        """The guest screen as an RGB uint8 array (H, W, 3), sent raw."""
        r = self.request(p.Screenshot("raw"))
        return np.frombuffer(r.data, dtype=np.uint8).reshape(r.height, r.width, 3).copy()

    def screenshot_png(self) -> bytes:
        return self.request(p.Screenshot("png")).data

    def execute(self, action: Action) -> dict[str, Any]:
        return dict(self.request(p.ExecuteAction(action)).info)

    def run(self, argv: Sequence[str], *, timeout_s: float = 60.0, shell: bool = False,
            max_output_bytes: int = 1 << 20, cwd: str | None = None) -> p.CommandOutput:
        return self.request(p.RunCommand(tuple(argv), timeout_s, shell, max_output_bytes, cwd))

    def read_file(self, path: str, max_bytes: int = 32 << 20) -> bytes:
        return self.request(p.ReadFile(path, max_bytes)).data

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> int:
        return self.request(p.WriteFile(path, bytes(data), mode)).bytes_written

    @property
    def closed(self) -> bool:
        return self._closed

    def peer_closed(self) -> bool:
        """Cheap liveness (no round trip): has the guest closed our idle connection?

        Between requests nothing is in flight, so a readable socket means end-of-stream:
        the controller (or the whole container / VM) is gone. Streams other than sockets
        cannot be checked this way and report False.
        """
        if self._closed:
            return True
        sock = getattr(self._frames.stream, "sock", None)
        if sock is None or not self._lock.acquire(blocking=False):
            return False  # a request is in flight (its reply would make the socket readable)
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable)
        except (OSError, ValueError):
            return True
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the stream; idempotent."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if not self._closed:
            self._closed = True
            self._frames.close()

    def __enter__(self) -> "GuestClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _argv(command: CommandArg, shell: bool) -> tuple[tuple[str, ...], bool]:
    if shell or isinstance(command, str):  # a plain string runs through sh, as OSWorld does
        return ((command if isinstance(command, str) else " ".join(command)),), True
    return tuple(command), False


def _window(w: p.Window | None) -> WindowInfo | None:
    return None if w is None else WindowInfo(w.id, w.title, w.wm_class, w.pid)


def _dir_entry(node: dict[str, Any]) -> DirEntry:
    children = tuple(_dir_entry(c) for c in node.get("children", ()))
    return DirEntry(str(node["name"]), node.get("type") == "directory", children)


class GuestController:
    """``envs.tasks.controller.Controller`` over a guest controller (docker / VM guests)."""

    def __init__(self, client: GuestClient | Callable[[], GuestClient]) -> None:
        # A callable lets the env hand out its *current* client across container restarts.
        self._get = client if callable(client) and not isinstance(client, GuestClient) else (lambda: client)

    @property
    def client(self) -> GuestClient:
        return self._get()  # type: ignore[no-any-return]

    def run(self, command: CommandArg, *, shell: bool = False, timeout_s: float = 60.0) -> CommandResult:
        argv, use_shell = _argv(command, shell)
        r = self.client.run(argv, timeout_s=timeout_s, shell=use_shell)
        return CommandResult(r.returncode, r.stdout, r.stderr, r.timed_out, r.duration_s)

    def read_file(self, path: str) -> bytes:
        return self.client.read_file(path)

    def write_file(self, path: str, data: bytes) -> None:
        self.client.write_file(path, data)

    def file_size(self, path: str) -> int | None:
        return self.client.request(p.FileSize(path)).size

    def list_directory(self, path: str) -> DirEntry:
        return _dir_entry(self.client.request(p.ListDirectory(path)).tree)

    def launch(self, command: CommandArg, *, shell: bool = False) -> int:
        argv, use_shell = _argv(command, shell)
        return self.client.request(p.Launch(argv, use_shell)).pid

    def process_returncode(self, pid: int) -> int | None:
        return self.client.request(p.ProcessStatus(pid)).returncode

    def open_path(self, path: str) -> None:
        if self.file_size(path) is None and self.client.run(["test", "-e", path]).returncode != 0:
            raise FileNotFoundError(f"cannot open {path} in the guest: it does not exist")
        self.launch(["xdg-open", path])

    def open_url(self, url: str) -> None:
        if not is_local_url(url):
            raise NetworkPolicyError(f"refusing to open {url}: only file:// and http://127.0.0.1 URLs are opened")
        self.launch(["xdg-open", url])

    def list_windows(self) -> list[WindowInfo]:
        return [w for w in (_window(x) for x in self.client.request(p.ListWindows()).windows) if w is not None]

    def active_window(self) -> WindowInfo | None:
        return _window(self.client.request(p.ActiveWindow()).window)

    def activate_window(self, window_id: str) -> None:
        self.client.request(p.ActivateWindow(window_id))

    def close_window(self, window_id: str) -> None:
        self.client.request(p.CloseWindow(window_id))

    def screenshot(self) -> np.ndarray:
        return self.client.screenshot()

    def accessibility_tree(self) -> str:
        return self.client.request(p.AccessibilityTree()).xml

    def terminal_output(self) -> str:
        raise ControllerUnsupportedError("terminal output needs AT-SPI access to the terminal; the guest has none")
