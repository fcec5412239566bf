"""Scripted solutions of the desktop suite, and a policy that plays them on a ``TaskEnv``.

A solution is a generator function ``solve(env: TaskEnv) -> Iterator[Action]``: it yields the
actions to take, one at a time, and the caller steps the env with each before asking for the
next. Every change to the desktop goes through ``envs.actions`` (keys, typing, clicks on title
bars). Solutions are **privileged**: between actions they read state an agent could not see —
window lists and geometry, the clipboard owner and files, through ``env.controller`` and the
X server — to decide *where* to click and *when* the previous action has taken effect (instead
of sleeping for a fixed time). A solution that waits in vain raises ``SolutionError``.

Runner interface (``ScriptedSolutionPolicy``)::

    policy = ScriptedSolutionPolicy(env)          # env: the TaskEnv itself (not a wrapper)
    obs, _ = env.reset(options={"task": task})
    policy.reset()                                # the next action starts env.task's solution
    while True:
        action = policy.next_action(obs)          # Done() once the solution has run out
        obs, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break

``SOLUTIONS`` maps task id -> solution for every task of ``test_all.json``; infeasible tasks
are "solved" by ``Fail``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from Xlib import Xatom, display as xdisplay, error as xerror

from envs.actions import Action, Click, Done, Fail, Hotkey, Move, TypeText, Wait
from envs.desktop.procs import poll_until
from envs.errors import PixelPilotError
from envs.tasks.controller import WindowInfo
from envs.tasks.task_env import TaskEnv

Solution = Callable[[TaskEnv], Iterator[Action]]
T = TypeVar("T")
WAIT_S = 20.0  # how long a solution waits for an effect before giving up (a deadline, not a delay)
CALCULATOR_KEY_PAUSE_S = 0.25
RETRY_SETTLE_S = 1.5  # how long one attempt of a retried action may take to show its effect


class SolutionError(PixelPilotError, RuntimeError):
    """A scripted solution could not go on: the effect it waited for never showed."""


# -- privileged reads ---------------------------------------------------------------------------
def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    """Poll ``check`` until it returns something truthy; ``SolutionError`` naming ``what`` otherwise."""
    try:
        return poll_until(check, timeout_s=timeout_s, what=what, interval_s=0.02, max_interval_s=0.1)
    except TimeoutError as exc:
        raise SolutionError(f"scripted solution: {exc}") from None


def windows(env: TaskEnv, wm_class: str, title: str | None = None) -> list[WindowInfo]:
    """Top-level windows whose WM_CLASS contains ``wm_class`` (and title contains ``title``)."""
    return [w for w in env.controller.list_windows()
            if wm_class in w.wm_class.lower() and (title is None or title in w.title)]


def wait_window(env: TaskEnv, wm_class: str, title: str | None = None) -> WindowInfo:
    return wait_for(lambda: next(iter(windows(env, wm_class, title)), None), f"a {wm_class} window {title or ''}")


def wait_no_window(env: TaskEnv, wm_class: str, title: str | None = None) -> None:
    wait_for(lambda: not windows(env, wm_class, title), f"the {wm_class} window {title or ''} to close")


def geometry(env: TaskEnv, win: WindowInfo) -> tuple[int, int, int, int, int]:
    """``(x, y, width, height, title_bar_height)`` of the window's client area on the screen.

    Read from the X server (``xdotool getwindowgeometry`` misreports positions under openbox);
    the title bar height comes from the window manager's ``_NET_FRAME_EXTENTS`` (0 without one).
    """
    conn = xdisplay.Display(env.display)
    try:
        xwin = conn.create_resource_object("window", int(win.id))
        geo = xwin.get_geometry()
        origin = xwin.translate_coords(conn.screen().root, 0, 0)  # the root's origin in window coordinates
        extents = xwin.get_full_property(conn.intern_atom("_NET_FRAME_EXTENTS"), Xatom.CARDINAL)
    except xerror.XError as exc:
        raise SolutionError(f"no geometry for window {win.title!r}: {exc}") from None
    finally:
        conn.close()
    top = int(extents.value[2]) if extents is not None and len(extents.value) == 4 else 0
    return -origin.x, -origin.y, int(geo.width), int(geo.height), top


def clipboard_owned(env: TaskEnv) -> bool:
    """True when some client owns the CLIPBOARD selection (an app copied something)."""
    conn = xdisplay.Display(env.display)
    try:
        return conn.get_selection_owner(conn.intern_atom("CLIPBOARD")) != 0
    finally:
        conn.close()


def path_exists(env: TaskEnv, path: str | Path) -> bool:
    return env.controller.run(["test", "-e", str(path)], timeout_s=10).returncode == 0


def modified(win: WindowInfo) -> bool:
    """Mousepad marks unsaved documents with a leading ``*`` in the title."""
    return win.title.startswith("*")


# -- building blocks --------------------------------------------------------------------------------
def focus(env: TaskEnv, wm_class: str) -> Iterator[Action]:
    """Click the title bar of the app's main window and wait until it is the active window.

    Without a window manager (no title bar, focus follows the pointer) move onto the window instead.
    """
    win = wait_window(env, wm_class)
    x, y, w, h, bar = geometry(env, win)
    sw, sh = env.screen_size
    px = min(max(x + w // 2, 0), sw - 1)
    yield Click(px, min(max(y - bar // 2, 0), sh - 1)) if bar else Move(px, min(max(y + h // 2, 0), sh - 1))

    def active() -> bool:
        now = env.controller.active_window()
        return now is not None and wm_class in now.wm_class.lower()

    wait_for(active, f"the {wm_class} window to become active")


def retry(actions: Sequence[Action], check: Callable[[], bool], what: str, attempts: int = 8) -> Iterator[Action]:
    """Play ``actions`` until ``check`` holds (e.g. a file view that is still loading ignores ctrl+a)."""
    for _ in range(attempts):
        yield from actions
        try:
            wait_for(lambda: check() or None, what, timeout_s=RETRY_SETTLE_S)
            return
        except SolutionError:
            continue
    raise SolutionError(f"scripted solution: {what} did not happen after {attempts} attempts")


def terminal(env: TaskEnv, *lines: str) -> Iterator[Action]:
    """Type ``lines`` into the terminal, then ``exit``, and wait until the terminal has closed.

    The shell runs the lines in order, so the terminal closing means every command finished.
    """
    yield from focus(env, "xterm")
    for line in lines:
        yield TypeText(line + "\n")
    yield TypeText("exit\n")
    wait_no_window(env, "xterm")


def editor_save(env: TaskEnv) -> Iterator[Action]:
    """Ctrl+S in mousepad on a document that has a file; wait until the title loses its ``*``.

    Waits first for the ``*`` of the edits before (mousepad may not have processed them yet).
    """
    wait_for(lambda: any(modified(w) for w in windows(env, "mousepad")), "mousepad to show the edits")
    yield Hotkey(("ctrl", "s"))
    wait_for(lambda: not any(modified(w) for w in windows(env, "mousepad")), "mousepad to save the document")


def editor_save_as(env: TaskEnv, path: Path, keys: tuple[str, ...] = ("ctrl", "s")) -> Iterator[Action]:
    """Open the Save As dialog with ``keys``, type the full path, confirm; wait for the new title."""
    yield Hotkey(keys)
    wait_window(env, "mousepad", "Save As")
    yield Hotkey(("ctrl", "a"))
    yield TypeText(str(path))
    yield Wait(0.5)  # the file chooser completes typed paths; Enter during completion is swallowed
    yield Hotkey(("enter",))
    wait_no_window(env, "mousepad", "Save As")
    wait_for(lambda: any(path.name in w.title and not modified(w) for w in windows(env, "mousepad")),
             f"mousepad to show the saved {path.name}")


def file_manager_dialog(env: TaskEnv, keys: tuple[str, ...], title: str, text: str, *, select_all: bool) -> Iterator[Action]:
    """Open a pcmanfm dialog with ``keys`` (after selecting every file), replace its text, confirm."""
    opener = [Hotkey(("ctrl", "a")), Hotkey(keys)] if select_all else [Hotkey(keys)]
    yield from retry(opener, lambda: bool(windows(env, "pcmanfm", title)), f"the {title!r} dialog to open")
    yield Hotkey(("ctrl", "a"))
    yield TypeText(text)
    yield Hotkey(("enter",))
    wait_no_window(env, "pcmanfm", title)


def calculate_and_paste(env: TaskEnv, keys: str, path: Path) -> Iterator[Action]:
    """Type ``keys`` into galculator, copy the display, paste it into mousepad, save it as ``path``."""
    yield from focus(env, "galculator")
    for key in keys:  # galculator animates the button of each key for ~0.1 s and drops keys that arrive
        yield TypeText(key)  # meanwhile (a fast burst turns "375" into "37"), so: one key, then a pause
        yield Wait(CALCULATOR_KEY_PAUSE_S)
    yield from retry([Hotkey(("ctrl", "c"))], lambda: clipboard_owned(env), "galculator to copy its display")
    yield from focus(env, "mousepad")
    yield Hotkey(("ctrl", "v"))
    wait_for(lambda: any(modified(w) for w in windows(env, "mousepad")), "the pasted result in mousepad")
    yield from editor_save_as(env, path)


# -- the solutions ------------------------------------------------------------------------------
def _terminal_solution(*lines: str) -> Solution:
    def solve(env: TaskEnv) -> Iterator[Action]:
        yield from terminal(env, *lines)
    solve.__doc__ = "Terminal: " + "; ".join(lines)
    return solve


def _infeasible(reason: str) -> Solution:
    def solve(env: TaskEnv) -> Iterator[Action]:
        yield Fail(reason)
    solve.__doc__ = f"Infeasible: {reason}"
    return solve


def editor_new_note(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "mousepad")
    yield TypeText("Remember the milk\n")
    yield from editor_save_as(env, env.home / "Documents" / "todo.txt")


def editor_append_line(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "mousepad")
    yield Hotkey(("ctrl", "end"))
    yield TypeText("sugar\n")
    yield from editor_save(env)


def editor_replace_greeting(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "mousepad")
    yield Hotkey(("ctrl", "home"))
    yield Hotkey(("shift", "end"))
    yield TypeText("Dear Ada,")
    yield from editor_save(env)


def editor_delete_first_line(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "mousepad")
    yield Hotkey(("ctrl", "home"))
    yield Hotkey(("shift", "down"))
    yield Hotkey(("delete",))
    yield from editor_save(env)


def editor_save_copy(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "mousepad")
    yield from editor_save_as(env, env.home / "Documents" / "plan-copy.txt", keys=("ctrl", "shift", "s"))


def files_new_folder(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "pcmanfm")
    yield from file_manager_dialog(env, ("ctrl", "shift", "n"), "Creating New Folder", "Photos", select_all=False)
    wait_for(lambda: path_exists(env, env.home / "Desktop" / "Photos"), "the new folder")


def files_rename(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "pcmanfm")
    yield from file_manager_dialog(env, ("f2",), "Rename File", "new_name.txt", select_all=True)
    wait_for(lambda: path_exists(env, env.home / "Documents" / "new_name.txt"), "the renamed file")


def files_delete(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "pcmanfm")
    junk = env.home / "Downloads" / "junk.bin"
    yield from retry([Hotkey(("ctrl", "a")), Hotkey(("delete",))], lambda: bool(windows(env, "pcmanfm", "Confirm")),
                     "the delete confirmation")
    yield Hotkey(("enter",))
    wait_for(lambda: not path_exists(env, junk), "junk.bin to go to the trash")


def files_copy(env: TaskEnv) -> Iterator[Action]:
    yield from focus(env, "pcmanfm")
    yield from retry([Hotkey(("ctrl", "a")), Hotkey(("ctrl", "c"))], lambda: clipboard_owned(env), "pcmanfm to copy the file")
    yield Hotkey(("ctrl", "l"))
    yield TypeText(f"{env.home / 'Backup'}\n")
    wait_window(env, "pcmanfm", "Backup")
    # A folder view that is still loading drops the paste: paste again until the copy exists.
    yield from retry([Hotkey(("ctrl", "v"))], lambda: path_exists(env, env.home / "Backup" / "report.txt"),
                     "pcmanfm to paste the report")


SOLUTIONS: dict[str, Solution] = {
    "terminal-mkdir-project": _terminal_solution("mkdir -p ~/project/src ~/project/docs"),
    "terminal-rename-file": _terminal_solution("mv ~/Desktop/draft.txt ~/Desktop/final.txt"),
    "terminal-move-logs": _terminal_solution("mkdir ~/logs && mv ~/Desktop/*.log ~/logs/"),
    "terminal-delete-tmp": _terminal_solution("rm ~/Documents/*.tmp"),
    "terminal-write-greeting": _terminal_solution("echo 'Hello, pixelpilot!' > ~/hello.txt"),
    "terminal-count-lines": _terminal_solution("wc -l < ~/Documents/data.txt > ~/count.txt"),
    "terminal-sort-names": _terminal_solution("sort ~/names.txt > ~/sorted.txt"),
    "terminal-make-executable": _terminal_solution("chmod +x ~/run.sh"),
    "terminal-archive-documents": _terminal_solution("cd ~ && tar -czf backup.tar.gz Documents"),
    "terminal-symlink": _terminal_solution("ln -s ~/releases/v2 ~/latest"),
    "terminal-replace-word": _terminal_solution("sed -i 's/colour/color/g' ~/essay.txt"),
    "terminal-csv-filter": _terminal_solution(
        "grep -E " + shlex.quote("^name,|,(London|Nuenen)$") + " ~/Documents/people.csv > ~/Documents/selected.csv"),
    "editor-new-note": editor_new_note,
    "editor-append-line": editor_append_line,
    "editor-replace-greeting": editor_replace_greeting,
    "editor-delete-first-line": editor_delete_first_line,
    "editor-save-copy": editor_save_copy,
    "calculator-multiply": lambda env: calculate_and_paste(env, "1234*5678=", env.home / "result.txt"),
    "calculator-divide": lambda env: calculate_and_paste(env, "987654/3=", env.home / "Documents" / "quotient.txt"),
    "calculator-parentheses": lambda env: calculate_and_paste(env, "(125+375)*8=", env.home / "total.txt"),
    "calculator-plot-graph": _infeasible("galculator has no graphing mode; it cannot plot functions"),
    "files-new-folder": files_new_folder,
    "files-rename": files_rename,
    "files-delete": files_delete,
    "files-copy": files_copy,
    "files-restore-from-trash": _infeasible("the Trash is empty: there is no thesis.docx to restore"),
    "os-bluetooth-pair": _infeasible("this computer has no Bluetooth adapter"),
}


class ScriptedSolutionPolicy:
    """Plays the scripted solution of ``env.task`` one action at a time (see the module docstring).

    ``privileged`` is True: the solutions read window geometry, the clipboard and files.
    """

    privileged = True
    name = "scripted"

    def __init__(self, env: TaskEnv, solutions: Mapping[str, Solution] | None = None) -> None:
        if not isinstance(env, TaskEnv):
            raise TypeError(f"ScriptedSolutionPolicy needs the TaskEnv itself, got {type(env).__name__}")
        self.env = env
        self.solutions = SOLUTIONS if solutions is None else solutions
        self._plan: Iterator[Action] | None = None
        self._finished = False

    def has_solution(self, task_id: str) -> bool:
        return task_id in self.solutions

    def reset(self, instruction: str = "") -> None:
        """Forget the previous episode; the next ``next_action`` starts the current task's solution."""
        self._plan, self._finished = None, False

    def next_action(self, observation: Any = None) -> Action:
        """The next action of the solution; ``Done()`` once it has run out.

        Raises ``KeyError`` for a task without a solution and ``SolutionError`` when the
        solution waits in vain for an effect.
        """
        if self._finished:
            return Done()
        if self._plan is None:
            task = self.env.task
            if task is None:
                raise SolutionError("the env has no task; reset it with options={'task': task} first")
            if task.id not in self.solutions:
                raise KeyError(f"no scripted solution for task {task.id!r}; known: {sorted(self.solutions)}")
            self._plan = iter(self.solutions[task.id](self.env))
        action = next(self._plan, None)
        if action is None:
            self._finished = True
            return Done()
        return action


__all__ = ["SOLUTIONS", "ScriptedSolutionPolicy", "Solution", "SolutionError", "clipboard_owned", "focus", "geometry",
           "retry", "terminal", "wait_for", "windows"]
