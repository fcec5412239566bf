"""The ``Controller`` protocol: what setup steps and getters need from the machine under test.

Implemented by ``envs.tasks.local_controller.LocalController`` (this machine, via subprocess,
the filesystem and xdotool) and later by the guest controller that runs inside a container or
VM. A controller that cannot do something here raises ``ControllerUnsupportedError`` (for
example: windows without a DISPLAY, an accessibility tree without AT-SPI).

Paths are paths on the controlled machine; commands run there. Nothing here talks to a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

import numpy as np

CommandArg = Union[str, Sequence[str]]


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command run to completion (or until its timeout)."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True)
class WindowInfo:
    """A top-level window. ``id`` is the controller's handle (an X window id here)."""

    id: str
    title: str
    wm_class: str = ""
    pid: int | None = None


@dataclass(frozen=True)
class DirEntry:
    """One node of ``Controller.list_directory``: a file or a directory with children."""

    name: str
    is_dir: bool
    children: tuple["DirEntry", ...] = ()

    def to_json(self) -> dict[str, object]:
        """OSWorld's ``list_directory`` shape: ``{"type", "name", "children"}``."""
        node: dict[str, object] = {"type": "directory" if self.is_dir else "file", "name": self.name}
        if self.is_dir:
            node["children"] = [c.to_json() for c in self.children]
        return node


@runtime_checkable
class Controller(Protocol):
    """Operations on the machine a task runs on. All timeouts are in seconds."""

    def run(self, command: CommandArg, *, shell: bool = False, timeout_s: float = 60.0) -> CommandResult:
        """Run ``command`` to completion; a timeout kills it and sets ``timed_out``."""
        ...

    def read_file(self, path: str) -> bytes:
        """The bytes of ``path``; raises ``FileNotFoundError`` if it does not exist."""
        ...

    def write_file(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` (creating parent directories)."""
        ...

    def file_size(self, path: str) -> int | None:
        """Size of the regular file ``path`` in bytes, or ``None`` if there is none."""
        ...

    def list_directory(self, path: str) -> DirEntry:
        """The tree under ``path``; raises ``FileNotFoundError`` if it is not a directory."""
        ...

    def launch(self, command: CommandArg, *, shell: bool = False) -> int:
        """Start ``command`` without waiting; returns its pid."""
        ...

    def process_returncode(self, pid: int) -> int | None:
        """``None`` while the process ``pid`` (started by ``launch``) runs, else its exit status."""
        ...

    def open_path(self, path: str) -> None:
        """Open ``path`` with its default application (like double-clicking it)."""
        ...

    def open_url(self, url: str) -> None:
        """Open ``url`` in a browser tab."""
        ...

    def list_windows(self) -> list[WindowInfo]:
        """Visible top-level windows."""
        ...

    def active_window(self) -> WindowInfo | None:
        """The focused window, if any."""
        ...

    def activate_window(self, window_id: str) -> None:
        """Raise and focus the window."""
        ...

    def close_window(self, window_id: str) -> None:
        """Ask the window to close (like its close button)."""
        ...

    def screenshot(self) -> np.ndarray:
        """The screen as an RGB uint8 array of shape (H, W, 3)."""
        ...

    def accessibility_tree(self) -> str:
        """The desktop accessibility tree as XML text (OSWorld's format)."""
        ...

    def terminal_output(self) -> str:
        """The text of the focused terminal window."""
        ...
