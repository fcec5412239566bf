"""The guest controller's wire protocol: typed requests/responses and their JSON form.

Every message is one frame (see ``envs.guest.transport``): a JSON header plus an optional
binary body. A request header is ``{"op": NAME, "id": N, ...fields}``; the body carries bulk
bytes (``WriteFile.data``). A response header is ``{"id": N, "ok": true, "result": {...}}``
or ``{"id": N, "ok": false, "error": {"type": T, "message": M}}`` — errors are data, never a
dropped connection (except a failed ``Auth``, after which the server hangs up). The body of a
response carries bulk bytes (screenshot pixels, file contents).

Each request is a frozen dataclass with ``op`` and ``result_type``; each result is a frozen
dataclass. At most one field per message is the binary body (``BODY_FIELD``). Decoding
checks field names and types; anything else is ``ProtocolError`` ("bad_request" on the wire).

Session rule: the first request on a connection must be ``Auth``. This module does no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional, Union, get_type_hints

from envs.actions import action_from_json, action_to_json
from envs.errors import PixelPilotError

PROTOCOL_VERSION = 1
MAX_PATH_CHARS = 4096
MAX_ARGV_ITEMS = 1024

# Error types a response may carry (``ErrorInfo.type``).
ERROR_TYPES: tuple[str, ...] = (
    "auth_required", "auth_failed", "frame_too_large", "bad_request", "unknown_op", "invalid_action",
    "unsupported", "not_found", "too_large", "os_error", "backend_died", "internal",
)


class ProtocolError(PixelPilotError, ValueError):
    """A frame or message does not follow the protocol (wrong fields, types, op)."""


# -- shared records ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorInfo:
    """An error as data: ``type`` is one of ``ERROR_TYPES``; ``message`` says what to do."""

    type: str
    message: str

    def __post_init__(self) -> None:
        if self.type not in ERROR_TYPES:
            raise ProtocolError(f"unknown error type {self.type!r}; known: {ERROR_TYPES}")


@dataclass(frozen=True)
class Window:
    """A top-level window in the guest (``id`` is the X window id as a decimal string)."""

    id: str
    title: str
    wm_class: str = ""
    pid: Optional[int] = None


# -- requests -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Empty:
    """A result with nothing to report."""


@dataclass(frozen=True)
class AuthOk:
    version: int
    display: str


@dataclass(frozen=True)
class Auth:
    """First message of every connection: the shared token (compared in constant time)."""

    token: str
    op: ClassVar[str] = "auth"
    result_type: ClassVar[type] = AuthOk

    def __repr__(self) -> str:  # never print the token
        return "Auth(token=***)"


@dataclass(frozen=True)
class Pong:
    version: int
    display: str
    uptime_s: float
    pid: int


@dataclass(frozen=True)
class Ping:
    """Liveness and readiness: answers once the display is up."""

    op: ClassVar[str] = "ping"
    result_type: ClassVar[type] = Pong


@dataclass(frozen=True)
class ScreenSizeResult:
    width: int
    height: int


@dataclass(frozen=True)
class ScreenSize:
    """(width, height) of the guest screen."""

    op: ClassVar[str] = "screen_size"
    result_type: ClassVar[type] = ScreenSizeResult


@dataclass(frozen=True)
class ScreenshotResult:
    """``data``: raw RGB bytes (H*W*3, row-major) or a PNG file, per ``format``."""

    width: int
    height: int
    format: str
    data: bytes = b""
    BODY_FIELD: ClassVar[str] = "data"


@dataclass(frozen=True)
class Screenshot:
    """The whole screen. ``raw`` is fastest over a socket; ``png`` is smaller over serial links."""

    format: str = "raw"
    op: ClassVar[str] = "screenshot"
    result_type: ClassVar[type] = ScreenshotResult

    def __post_init__(self) -> None:
        if self.format not in ("raw", "png"):
            raise ProtocolError(f"screenshot format must be 'raw' or 'png', got {self.format!r}")


@dataclass(frozen=True)
class ActionResult:
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExecuteAction:
    """Perform one input action (``envs.actions``; not Wait/Done/Fail, which need no guest)."""

    action: Any
    op: ClassVar[str] = "action"
    result_type: ClassVar[type] = ActionResult

    def __post_init__(self) -> None:
        if isinstance(self.action, dict):
            object.__setattr__(self, "action", action_from_json(self.action))
        action_to_json(self.action)  # raises InvalidActionError for non-actions


def _check_argv(argv: Any, shell: bool) -> tuple[str, ...]:
    if isinstance(argv, str) or not isinstance(argv, (list, tuple)) or not argv:
        raise ProtocolError(f"argv must be a non-empty list of strings, got {argv!r}")
    if len(argv) > MAX_ARGV_ITEMS or not all(isinstance(a, str) for a in argv):
        raise ProtocolError(f"argv must be at most {MAX_ARGV_ITEMS} strings, got {argv!r:.200}")
    if shell and len(argv) != 1:
        raise ProtocolError("with shell=True, argv must be exactly one command string")
    return tuple(argv)


@dataclass(frozen=True)
class CommandOutput:
    """Outcome of ``RunCommand``. Output beyond the limit is cut and ``truncated`` is set."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    truncated: bool = False


@dataclass(frozen=True)
class RunCommand:
    """Run ``argv`` to completion (no shell unless ``shell``); a timeout kills its process group."""

    argv: tuple[str, ...]
    timeout_s: float = 60.0
    shell: bool = False
    max_output_bytes: int = 1 << 20
    cwd: Optional[str] = None
    op: ClassVar[str] = "run"
    result_type: ClassVar[type] = CommandOutput

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", _check_argv(self.argv, self.shell))
        if not (isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 3600):
            raise ProtocolError(f"timeout_s must be in (0, 3600], got {self.timeout_s!r}")
        if not (isinstance(self.max_output_bytes, int) and 0 <= self.max_output_bytes <= 64 << 20):
            raise ProtocolError(f"max_output_bytes must be in [0, 64 MiB], got {self.max_output_bytes!r}")


@dataclass(frozen=True)
class LaunchResult:
    pid: int


@dataclass(frozen=True)
class Launch:
    """Start ``argv`` without waiting (on the guest display); the pid is the handle."""

    argv: tuple[str, ...]
    shell: bool = False
    op: ClassVar[str] = "launch"
    result_type: ClassVar[type] = LaunchResult

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", _check_argv(self.argv, self.shell))


@dataclass(frozen=True)
class ProcessStatusResult:
    returncode: Optional[int]


@dataclass(frozen=True)
class ProcessStatus:
    """Exit status of a process started by ``Launch`` (None while it runs)."""

    pid: int
    op: ClassVar[str] = "process_status"
    result_type: ClassVar[type] = ProcessStatusResult


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH_CHARS or "\0" in path:
        raise ProtocolError(f"path must be an absolute path string (at most {MAX_PATH_CHARS} chars), got {path!r:.200}")


@dataclass(frozen=True)
class FileData:
    size: int
    data: bytes = b""
    BODY_FIELD: ClassVar[str] = "data"


@dataclass(frozen=True)
class ReadFile:
    """The bytes of a regular file; larger than ``max_bytes`` → "too_large" error."""

    path: str
    max_bytes: int = 32 << 20
    op: ClassVar[str] = "read_file"
    result_type: ClassVar[type] = FileData

    def __post_init__(self) -> None:
        _check_path(self.path)


@dataclass(frozen=True)
class WriteResult:
    bytes_written: int


@dataclass(frozen=True)
class WriteFile:
    """Write ``data`` (the binary body) to ``path`` atomically, creating parent directories."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    op: ClassVar[str] = "write_file"
    result_type: ClassVar[type] = WriteResult
    BODY_FIELD: ClassVar[str] = "data"

    def __post_init__(self) -> None:
        _check_path(self.path)
        if not (isinstance(self.mode, int) and 0 <= self.mode <= 0o7777):
            raise ProtocolError(f"mode must be a permission number like 0o644, got {self.mode!r}")


@dataclass(frozen=True)
class FileSizeResult:
    size: Optional[int]


@dataclass(frozen=True)
class FileSize:
    """Size of a regular file, or None if there is none."""

    path: str
    op: ClassVar[str] = "file_size"
    result_type: ClassVar[type] = FileSizeResult

    def __post_init__(self) -> None:
        _check_path(self.path)


@dataclass(frozen=True)
class DirectoryResult:
    """OSWorld's tree: ``{"type": "directory", "name", "children": [...]}``."""

    tree: dict


@dataclass(frozen=True)
class ListDirectory:
    path: str
    op: ClassVar[str] = "list_directory"
    result_type: ClassVar[type] = DirectoryResult

    def __post_init__(self) -> None:
        _check_path(self.path)


@dataclass(frozen=True)
class WindowsResult:
    windows: tuple[Window, ...]


@dataclass(frozen=True)
class ListWindows:
    op: ClassVar[str] = "list_windows"
    result_type: ClassVar[type] = WindowsResult


@dataclass(frozen=True)
class ActiveWindowResult:
    window: Optional[Window]


@dataclass(frozen=True)
class ActiveWindow:
    op: ClassVar[str] = "active_window"
    result_type: ClassVar[type] = ActiveWindowResult


@dataclass(frozen=True)
class ActivateWindow:
    window_id: str
    op: ClassVar[str] = "activate_window"
    result_type: ClassVar[type] = Empty


@dataclass(frozen=True)
class CloseWindow:
    window_id: str
    op: ClassVar[str] = "close_window"
    result_type: ClassVar[type] = Empty


@dataclass(frozen=True)
class A11yTree:
    xml: str


@dataclass(frozen=True)
class AccessibilityTree:
    """The AT-SPI tree as XML; "unsupported" where the guest runs no accessibility bus."""

    op: ClassVar[str] = "a11y_tree"
    result_type: ClassVar[type] = A11yTree


Request = Union[Auth, Ping, ScreenSize, Screenshot, ExecuteAction, RunCommand, Launch, ProcessStatus, ReadFile,
                WriteFile, FileSize, ListDirectory, ListWindows, ActiveWindow, ActivateWindow, CloseWindow,
                AccessibilityTree]
REQUEST_TYPES: tuple[type, ...] = (Auth, Ping, ScreenSize, Screenshot, ExecuteAction, RunCommand, Launch,
                                   ProcessStatus, ReadFile, WriteFile, FileSize, ListDirectory, ListWindows,
                                   ActiveWindow, ActivateWindow, CloseWindow, AccessibilityTree)
REQUESTS_BY_OP: dict[str, type] = {cls.op: cls for cls in REQUEST_TYPES}


# -- codec ----------------------------------------------------------------------------------
def _body_field(cls: type) -> str | None:
    return getattr(cls, "BODY_FIELD", None)


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def encode_message(msg: Any) -> tuple[dict[str, Any], bytes]:
    """A request or result dataclass → (JSON-ready dict, body bytes)."""
    body_name = _body_field(type(msg))
    data: dict[str, Any] = {}
    body = b""
    for f in fields(msg):
        value = getattr(msg, f.name)
        if f.name == body_name:
            body = bytes(value)
        elif f.name == "action" and isinstance(msg, ExecuteAction):
            data["action"] = action_to_json(value)
        else:
            data[f.name] = _to_json(value)
    return data, body


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Check ``value`` against a simple type hint; rebuild nested Window records."""
    if hint is Any:
        return value
    origin = getattr(hint, "__origin__", None)
    args = getattr(hint, "__args__", ())
    if origin is Union:  # Optional[X]
        if value is None and type(None) in args:
            return None
        return _coerce(name, next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ProtocolError(f"field {name!r} must be a list, got {type(value).__name__}")
        return tuple(_coerce(name, args[0], v) for v in value)
    if hint is Window:
        if not isinstance(value, dict):
            raise ProtocolError(f"field {name!r} must be a window object")
        return decode_message(Window, value)
    expected = {float: (int, float), int: (int,), bool: (bool,), str: (str,), dict: (dict,), bytes: (bytes,)}.get(hint)
    if expected is not None and (not isinstance(value, expected) or (hint is not bool and isinstance(value, bool))):
        raise ProtocolError(f"field {name!r} must be {hint.__name__}, got {type(value).__name__}")
    return float(value) if hint is float else value


def decode_message(cls: type, data: dict[str, Any], body: bytes = b"") -> Any:
    """(dict, body) → an instance of ``cls``, checking field names and types."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{cls.__name__} must be a JSON object")
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    body_name = _body_field(cls)
    extra = set(data) - names - {"op", "id"}
    if extra:
        raise ProtocolError(f"{cls.__name__} has no field(s) {sorted(extra)}; allowed: {sorted(names - {body_name})}")
    kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items() if k in names and k != body_name}
    if body_name is not None:
        kwargs[body_name] = body
    elif body:
        raise ProtocolError(f"{cls.__name__} carries no binary body, got {len(body)} bytes")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ProtocolError(f"{cls.__name__}: {exc}") from None


def encode_request(req: Any, request_id: int) -> tuple[dict[str, Any], bytes]:
    """A request → its frame header and body."""
    if not isinstance(req, REQUEST_TYPES):
        raise ProtocolError(f"not a guest request: {req!r}")
    data, body = encode_message(req)
    return {"op": req.op, "id": request_id, **data}, body


def decode_request(header: dict[str, Any], body: bytes) -> tuple[int, Any]:
    """A frame → (request id, request). Raises ``ProtocolError`` / ``InvalidActionError``."""
    request_id = header.get("id", 0)
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise ProtocolError(f"request id must be an integer, got {request_id!r}")
    op = header.get("op")
    cls = REQUESTS_BY_OP.get(op) if isinstance(op, str) else None
    if cls is None:
        raise UnknownOpError(f"unknown op {op!r}; known ops: {sorted(REQUESTS_BY_OP)}")
    return request_id, decode_message(cls, header, body)


class UnknownOpError(ProtocolError):
    """The request names an op this server does not have."""


def ok_response(request_id: int, result: Any) -> tuple[dict[str, Any], bytes]:
    data, body = encode_message(result)
    return {"id": request_id, "ok": True, "result": data}, body


def error_response(request_id: int, error: ErrorInfo) -> tuple[dict[str, Any], bytes]:
    return {"id": request_id, "ok": False, "error": {"type": error.type, "message": error.message}}, b""


def decode_response(header: dict[str, Any], body: bytes, result_type: type) -> Any:
    """A response frame → the result dataclass, or the ``ErrorInfo`` it carries."""
    if header.get("ok") is True:
        return decode_message(result_type, header.get("result", {}), body)
    err = header.get("error")
    if header.get("ok") is not False or not isinstance(err, dict):
        raise ProtocolError(f"malformed response header: {header!r:.300}")
    return ErrorInfo(str(err.get("type", "internal")), str(err.get("message", "")))


__all__ = [
    "A11yTree", "AccessibilityTree", "ActionResult", "ActivateWindow", "ActiveWindow", "ActiveWindowResult",
    "Auth", "AuthOk", "CloseWindow", "CommandOutput", "DirectoryResult", "ERROR_TYPES", "Empty", "ErrorInfo",
    "ExecuteAction", "FileData", "FileSize", "FileSizeResult", "Launch", "LaunchResult", "ListDirectory",
    "ListWindows", "PROTOCOL_VERSION", "Ping", "Pong", "ProcessStatus", "ProcessStatusResult", "ProtocolError",
    "REQUESTS_BY_OP", "REQUEST_TYPES", "ReadFile", "Request", "RunCommand", "ScreenSize", "ScreenSizeResult",
    "Screenshot", "ScreenshotResult", "UnknownOpError", "Window", "WindowsResult", "WriteFile", "WriteResult",
    "decode_message", "decode_request", "decode_response", "encode_message", "encode_request", "error_response",
    "ok_response",
]
