"""``GuestBackend``: what the guest controller does, on the X display of the guest session.

Screen: ``envs.desktop.capture.ScreenCapture`` (mss; one instance per thread). Input:
``envs.desktop.inputs.XTestInput``. Windows, launching and directory listing:
``envs.tasks.local_controller.LocalController``. Commands and files are done here because
the guest must bound what it sends back (output and file sizes), which the local controller
does not. X calls that share a connection are serialised with one lock; commands and file
I/O run concurrently across connections.

Every method takes a request dataclass from ``envs.guest.protocol`` and returns its result
dataclass, or raises; ``envs.guest.server`` turns exceptions into error data.
This module has no sockets in it.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from envs.desktop.capture import ScreenCapture
from envs.desktop.inputs import XTestInput
from envs.desktop.xvfb import Xvfb
from envs.guest import protocol as p
from envs.tasks.errors import ControllerUnsupportedError
from envs.tasks.local_controller import LocalController


class TooLargeError(ValueError):
    """A file or payload is bigger than the limit the request allows."""


def encode_png(rgb_HW3: np.ndarray, level: int = 1) -> bytes:
    """A PNG file (8-bit RGB, filter 0) from an (H, W, 3) uint8 array; stdlib zlib only (no PIL in the guest)."""
    h, w, _ = rgb_HW3.shape
    rows_HX = np.empty((h, 1 + w * 3), dtype=np.uint8)
    rows_HX[:, 0] = 0  # filter type "None" for every row
    rows_HX[:, 1:] = rgb_HW3.reshape(h, w * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows_HX.tobytes(), level)) + \
        chunk(b"IEND", b"")


def _read_capped(pipe: Any, limit: int, out: list[bytes], truncated: threading.Event) -> None:
    """Read ``pipe`` to EOF, keeping at most ``limit`` bytes (the rest is drained and dropped)."""
    kept = 0
    while chunk := pipe.read1(65536):
        take = max(0, min(len(chunk), limit - kept))
        if take:
            out.append(chunk[:take])
            kept += take
        if take < len(chunk):
            truncated.set()
    pipe.close()


def run_bounded(req: p.RunCommand, env: dict[str, str]) -> p.CommandOutput:
    """Run ``req.argv`` in its own process group; kill the group on timeout; cap the output."""
    argv: Any = req.argv[0] if req.shell else list(req.argv)
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(argv, shell=req.shell, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=req.cwd, start_new_session=True)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        return p.CommandOutput(127, "", str(exc), False, time.monotonic() - t0)
    outs: tuple[list[bytes], list[bytes]] = ([], [])
    truncated = threading.Event()
    readers = [threading.Thread(target=_read_capped, args=(pipe, req.max_output_bytes, buf, truncated), daemon=True)
               for pipe, buf in ((proc.stdout, outs[0]), (proc.stderr, outs[1]))]
    for t in readers:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=req.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc.pid)  # also ends children the command left behind
    proc.wait()
    for t in readers:
        t.join(timeout=5)
    stdout, stderr = (b"".join(b).decode("utf-8", "replace") for b in outs)
    code = -9 if timed_out else int(proc.returncode)
    return p.CommandOutput(code, stdout, stderr, timed_out, time.monotonic() - t0, truncated.is_set())


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already empty


class GuestBackend:
    """The operations of one guest session on the display ``xvfb``.

    ``xvfb`` is either started by the controller (``Xvfb(config).start()``; stopped in
    ``close``) or attached to the session's display (``Xvfb.attach(":0")``; left running).
    """

    def __init__(self, xvfb: Xvfb) -> None:
        self._xvfb = xvfb
        self.display = display = xvfb.display
        self.size = xvfb.size
        self._started = time.monotonic()
        self._xlock = threading.Lock()
        self._input = XTestInput(display)
        self._capture = ScreenCapture(display, self.size)
        self._local = LocalController(display=display)
        self._env = {**os.environ, "DISPLAY": display}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            p.Ping: self.ping, p.ScreenSize: self.screen_size, p.Screenshot: self.screenshot,
            p.ExecuteAction: self.execute, p.RunCommand: self.run, p.Launch: self.launch,
            p.ProcessStatus: self.process_status, p.ReadFile: self.read_file, p.WriteFile: self.write_file,
            p.FileSize: self.file_size, p.ListDirectory: self.list_directory, p.ListWindows: self.list_windows,
            p.ActiveWindow: self.active_window, p.ActivateWindow: self.activate_window,
            p.CloseWindow: self.close_window, p.AccessibilityTree: self.a11y_tree,
        }

    def handle(self, req: Any) -> Any:
        """Dispatch one (authenticated) request to its handler."""
        handler = self._handlers.get(type(req))
        if handler is None:
            raise p.UnknownOpError(f"op {getattr(req, 'op', '?')!r} is not served after authentication")
        return handler(req)

    # -- screen and input -------------------------------------------------------------------
    def ping(self, req: p.Ping) -> p.Pong:
        return p.Pong(p.PROTOCOL_VERSION, self.display, time.monotonic() - self._started, os.getpid())

    def screen_size(self, req: p.ScreenSize) -> p.ScreenSizeResult:
        return p.ScreenSizeResult(*self.size)

    def screenshot(self, req: p.Screenshot) -> p.ScreenshotResult:
        pixels = self._capture.grab()
        h, w, _ = pixels.shape
        data = encode_png(pixels) if req.format == "png" else pixels.tobytes()
        return p.ScreenshotResult(w, h, req.format, data)

    def execute(self, req: p.ExecuteAction) -> p.ActionResult:
        from envs.actions import validate_action

        validate_action(req.action, self.size)
        with self._xlock:
            return p.ActionResult(self._input.execute(req.action))

    # -- processes --------------------------------------------------------------------------
    def run(self, req: p.RunCommand) -> p.CommandOutput:
        return run_bounded(req, self._env)

    def launch(self, req: p.Launch) -> p.LaunchResult:
        command: Any = req.argv[0] if req.shell else list(req.argv)
        return p.LaunchResult(self._local.launch(command, shell=req.shell))

    def process_status(self, req: p.ProcessStatus) -> p.ProcessStatusResult:
        try:
            return p.ProcessStatusResult(self._local.process_returncode(req.pid))
        except KeyError:
            raise FileNotFoundError(f"pid {req.pid} was not started by this controller's launch") from None

    # -- files ------------------------------------------------------------------------------
    def read_file(self, req: p.ReadFile) -> p.FileData:
        with open(req.path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > req.max_bytes:
                raise TooLargeError(f"{req.path} is {size} bytes, over the {req.max_bytes}-byte limit of this read")
            data = fh.read(req.max_bytes + 1)
        if len(data) > req.max_bytes:  # it grew while we read
            raise TooLargeError(f"{req.path} is over the {req.max_bytes}-byte limit of this read")
        return p.FileData(len(data), data)

    def write_file(self, req: p.WriteFile) -> p.WriteResult:
        path = Path(req.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, req.mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(req.data)
        os.chmod(tmp, req.mode)
        os.replace(tmp, path)
        return p.WriteResult(len(req.data))

    def file_size(self, req: p.FileSize) -> p.FileSizeResult:
        return p.FileSizeResult(self._local.file_size(req.path))

    def list_directory(self, req: p.ListDirectory) -> p.DirectoryResult:
        return p.DirectoryResult(self._local.list_directory(req.path).to_json())

    # -- windows ----------------------------------------------------------------------------
    def list_windows(self, req: p.ListWindows) -> p.WindowsResult:
        with self._xlock:
            wins = self._local.list_windows()
        return p.WindowsResult(tuple(p.Window(w.id, w.title, w.wm_class, w.pid) for w in wins))

    def active_window(self, req: p.ActiveWindow) -> p.ActiveWindowResult:
        with self._xlock:
            w = self._local.active_window()
        return p.ActiveWindowResult(None if w is None else p.Window(w.id, w.title, w.wm_class, w.pid))

    def activate_window(self, req: p.ActivateWindow) -> p.Empty:
        _check_window_id(req.window_id)
        with self._xlock:
            self._local.activate_window(req.window_id)
        return p.Empty()

    def close_window(self, req: p.CloseWindow) -> p.Empty:
        _check_window_id(req.window_id)
        with self._xlock:
            self._local.close_window(req.window_id)
        return p.Empty()

    def a11y_tree(self, req: p.AccessibilityTree) -> p.A11yTree:
        raise ControllerUnsupportedError("this guest runs no AT-SPI accessibility bus; use screenshots instead")

    # -- lifecycle --------------------------------------------------------------------------
    def alive(self) -> bool:
        """True while the display answers."""
        return self._xvfb.alive()

    def close(self) -> None:
        """End launched processes, close X connections, stop the display if we started it."""
        self._local.close()
        self._capture.close()
        self._input.close()
        self._xvfb.stop()  # stops only what it owns


def _check_window_id(window_id: str) -> None:
    if not window_id.isdigit():
        raise p.ProtocolError(f"window_id must be a decimal X window id from list_windows, got {window_id!r}")
