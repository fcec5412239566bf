"""``LocalController``: the ``Controller`` protocol on this machine.

Commands run through ``subprocess`` (each in its own process group, so a timeout kills the
whole group); files are read and written directly; windows are listed and closed with
python-xlib and activated with xdotool when a DISPLAY is set. Without a DISPLAY, window and
screenshot calls raise ``ControllerUnsupportedError``; so do the accessibility tree and
terminal output, which need AT-SPI (not available here).

Every process started by ``launch`` is remembered and ended, by PID, in ``close()``.
URLs opened in the browser must be local (file://, http://127.0.0.1) — the network rule.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.tasks.controller import CommandArg, CommandResult, DirEntry, WindowInfo
from envs.tasks.errors import ControllerUnsupportedError, NetworkPolicyError
from envs.tasks.fetch import is_local_url

DEFAULT_BROWSER = ("chromium", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run")
MAX_DIR_ENTRIES = 10_000


def _argv(command: CommandArg, shell: bool) -> tuple[Any, bool]:
    if shell:
        return (command if isinstance(command, str) else " ".join(command)), True
    if isinstance(command, str):
        return ["/bin/sh", "-c", command], False  # a plain string without shell: OSWorld runs it via a shell too
    return list(command), False


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """End the process group we created for ``proc`` (its id is ``proc.pid``), then reap it.

    The group is signalled even when the leader already exited: launchers such as
    ``xdg-open`` leave children behind in the same group.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=3)
            if sig == signal.SIGTERM:
                time.sleep(0.05)  # let group members other than the leader exit too
        except subprocess.TimeoutExpired:
            continue


class LocalController:
    """Controls this machine. Use as a context manager (``close`` ends launched processes)."""

    def __init__(self, display: str | None = None, browser: Sequence[str] = DEFAULT_BROWSER,
                 env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.display = display if display is not None else os.environ.get("DISPLAY") or None
        self.cwd = cwd  # working directory of commands and launched apps (None: ours)
        self.browser = tuple(browser)
        self._env = {**os.environ, **(env or {})}
        if self.display:
            self._env["DISPLAY"] = self.display
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._xdisplay: Any = None

    # -- commands and processes -----------------------------------------------------------
    def run(self, command: CommandArg, *, shell: bool = False, timeout_s: float = 60.0) -> CommandResult:
        argv, use_shell = _argv(command, shell)
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(argv, shell=use_shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=self._env, cwd=self.cwd, start_new_session=True)
        except (FileNotFoundError, PermissionError) as exc:
            return CommandResult(127, "", f"{exc}", False, time.monotonic() - t0)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            timed_out = True
        return CommandResult(proc.returncode if not timed_out else -9, out.decode("utf-8", "replace"),
                             err.decode("utf-8", "replace"), timed_out, time.monotonic() - t0)

    def launch(self, command: CommandArg, *, shell: bool = False) -> int:
        argv, use_shell = _argv(command, shell)
        proc = subprocess.Popen(argv, shell=use_shell, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, env=self._env, cwd=self.cwd, start_new_session=True)
        self._procs[proc.pid] = proc
        return proc.pid

    def process_returncode(self, pid: int) -> int | None:
        proc = self._procs.get(pid)
        if proc is None:
            raise KeyError(f"pid {pid} was not started by this controller's launch()")
        return proc.poll()

    # -- files ----------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, p)

    def file_size(self, path: str) -> int | None:
        p = Path(path)
        return p.stat().st_size if p.is_file() else None

    def list_directory(self, path: str) -> DirEntry:
        root = Path(path)
        if not root.is_dir():
            raise FileNotFoundError(f"{path} is not a directory")
        budget = [MAX_DIR_ENTRIES]

        def walk(p: Path) -> DirEntry:
            children = []
            for child in sorted(p.iterdir()):
                budget[0] -= 1
                if budget[0] < 0:
                    break
                children.append(walk(child) if child.is_dir() and not child.is_symlink() else DirEntry(child.name, False))
            return DirEntry(p.name, True, tuple(children))

        return walk(root)

    # -- desktop --------------------------------------------------------------------------
    def open_path(self, path: str) -> None:
        if not Path(path).exists():
            raise FileNotFoundError(f"cannot open {path}: it does not exist")
        if shutil.which("xdg-open") is None:
            raise ControllerUnsupportedError("opening files needs xdg-open; install xdg-utils")
        self.launch(["xdg-open", path])

    def open_url(self, url: str) -> None:
        if not is_local_url(url):
            raise NetworkPolicyError(f"refusing to open {url}: only file:// and http://127.0.0.1 URLs are opened here")
        self.launch([*self.browser, url])

    def _x(self) -> Any:
        if not self.display:
            raise ControllerUnsupportedError("window operations need an X display: set DISPLAY or pass display=")
        if self._xdisplay is None:
            from Xlib import display as xdisplay

            self._xdisplay = xdisplay.Display(self.display)
        return self._xdisplay

    def _info(self, win: Any) -> WindowInfo | None:
        d = self._x()
        try:
            name = win.get_full_text_property(d.intern_atom("_NET_WM_NAME")) or win.get_wm_name() or ""
            cls = win.get_wm_class() or ()
            pid_prop = win.get_full_property(d.intern_atom("_NET_WM_PID"), 0)
        except Exception:  # the window vanished while we looked (Xlib raises BadWindow)
            return None
        pid = int(pid_prop.value[0]) if pid_prop is not None and len(pid_prop.value) else None
        return WindowInfo(str(win.id), str(name), ".".join(cls), pid)

    def list_windows(self) -> list[WindowInfo]:
        d = self._x()
        root = d.screen().root
        clients = root.get_full_property(d.intern_atom("_NET_CLIENT_LIST"), 0)
        if clients is not None:  # a window manager keeps the list of managed windows
            wins = [d.create_resource_object("window", int(w)) for w in clients.value]
        else:  # bare X server: top-level children that are mapped
            wins = [w for w in root.query_tree().children if w.get_attributes().map_state != 0]
        infos = [self._info(w) for w in wins]
        return [i for i in infos if i is not None and (i.title or i.wm_class)]

    def active_window(self) -> WindowInfo | None:
        d = self._x()
        prop = d.screen().root.get_full_property(d.intern_atom("_NET_ACTIVE_WINDOW"), 0)
        if prop is not None and len(prop.value) and prop.value[0]:
            return self._info(d.create_resource_object("window", int(prop.value[0])))
        focus = d.get_input_focus().focus
        return self._info(focus) if hasattr(focus, "id") and focus.id > 1 else None

    def activate_window(self, window_id: str) -> None:
        self._x()
        res = self.run(["xdotool", "windowactivate", "--sync", window_id], timeout_s=10)
        if res.returncode != 0:  # no window manager: raise and focus directly
            res = self.run(["xdotool", "windowraise", window_id, "windowfocus", "--sync", window_id], timeout_s=10)
        if res.returncode != 0:
            raise RuntimeError(f"xdotool could not activate window {window_id}: {res.stderr.strip()}")

    def close_window(self, window_id: str) -> None:
        from Xlib import X
        from Xlib.protocol import event

        d = self._x()
        win = d.create_resource_object("window", int(window_id))
        protocols = d.intern_atom("WM_PROTOCOLS")
        msg = event.ClientMessage(window=win, client_type=protocols,
                                  data=(32, [d.intern_atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]))
        win.send_event(msg, event_mask=X.NoEventMask)
        d.flush()

    def screenshot(self) -> np.ndarray:
        if not self.display:
            raise ControllerUnsupportedError("screenshots need an X display: set DISPLAY or pass display=")
        import mss

        factory = getattr(mss, "MSS", None) or mss.mss  # mss >= 10 renamed the factory
        with factory(display=self.display) as grabber:
            shot = grabber.grab(grabber.monitors[1])
        bgra = np.frombuffer(shot.bgra, dtype=np.uint8).reshape(shot.height, shot.width, 4)
        return np.ascontiguousarray(bgra[:, :, 2::-1])

    def accessibility_tree(self) -> str:
        raise ControllerUnsupportedError("the accessibility tree needs AT-SPI, which this machine does not run")

    def terminal_output(self) -> str:
        raise ControllerUnsupportedError("terminal output needs AT-SPI access to the terminal, not available here")

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """End every process this controller launched (by PID) and drop the X connection."""
        for proc in list(self._procs.values()):
            _kill_group(proc)
        self._procs.clear()
        if self._xdisplay is not None:
            self._xdisplay.close()
            self._xdisplay = None

    def __enter__(self) -> "LocalController":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
