"""``run_setup``: execute typed setup steps against a ``Controller`` and check postconditions.

Unlike OSWorld, a step that fails or whose postcondition does not hold raises ``SetupError``
(the episode becomes ``setup_error``, never a silent agent failure), and readiness is polled
(window appeared, file has its size) instead of assumed after a fixed sleep. ``sleep`` steps
still sleep — scaled by ``SetupContext.sleep_scale`` — because the task files ask for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envs.tasks.controller import Controller, WindowInfo
from envs.tasks.errors import ControllerUnsupportedError, NetworkPolicyError, SetupError
from envs.tasks.fetch import FetchPolicy
from envs.tasks.setup_steps import (
    ChromeTabsStep, DownloadStep, ExecuteStep, LaunchStep, OpenStep, SetupStep, SleepStep, UploadFileStep,
    WindowStep, command_text, step_support,
)

# Substrings of WM_CLASS that show a known GUI app's window is up (by the launched program's name).
APP_WINDOW_CLASSES: dict[str, tuple[str, ...]] = {
    "google-chrome": ("chrome",), "chromium": ("chromium",), "soffice": ("office",), "libreoffice": ("office",),
    "gimp": ("gimp",), "code": ("code",), "vlc": ("vlc",), "thunderbird": ("thunderbird",), "xterm": ("xterm",),
    "gnome-terminal": ("terminal",), "nautilus": ("nautilus",), "mousepad": ("mousepad",),
    "galculator": ("galculator",), "pcmanfm": ("pcmanfm",), "xcalc": ("xcalc",), "xedit": ("xedit",),
}
POLL_S = 0.1


@dataclass(frozen=True)
class SetupContext:
    """What the runner needs besides the controller."""

    cache_dir: Path
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    sleep_scale: float = 1.0
    check_windows: bool = True  # poll for windows after launch/open when the controller can list them

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        if not 0 <= self.sleep_scale <= 10:
            raise ValueError(f"sleep_scale must be in [0, 10], got {self.sleep_scale}")


@dataclass(frozen=True)
class StepOutcome:
    """How one step went: ``detail`` says what was done and which postcondition was checked."""

    index: int
    type: str
    duration_s: float
    detail: str


@dataclass(frozen=True)
class SetupResult:
    steps: tuple[StepOutcome, ...]
    duration_s: float


def _poll(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def _windows(controller: Controller) -> list[WindowInfo] | None:
    try:
        return controller.list_windows()
    except ControllerUnsupportedError:
        return None


def _download(step: DownloadStep, c: Controller, ctx: SetupContext) -> str:
    for f in step.files:
        data = ctx.fetch.fetch(f.url, timeout_s=step.timeout_s)
        if f.size is not None and len(data) != f.size:
            raise RuntimeError(f"{f.url} has {len(data)} bytes, the task expects {f.size}")
        c.write_file(f.path, data)
        got = c.file_size(f.path)
        if got != len(data):
            raise RuntimeError(f"postcondition: {f.path} has size {got}, expected {len(data)}")
    return f"{len(step.files)} file(s) written with their sizes checked"


def _upload(step: UploadFileStep, c: Controller, ctx: SetupContext) -> str:
    for local, remote in step.files:
        data = Path(local).read_bytes()
        c.write_file(remote, data)
        if c.file_size(remote) != len(data):
            raise RuntimeError(f"postcondition: {remote} does not have the size of {local} ({len(data)} bytes)")
    return f"{len(step.files)} file(s) uploaded"


def _program(command: str | tuple[str, ...]) -> str:
    first = command.split()[0] if isinstance(command, str) else command[0]
    return first.rsplit("/", 1)[-1]


def _launch(step: LaunchStep, c: Controller, ctx: SetupContext) -> str:
    hints = APP_WINDOW_CLASSES.get(_program(step.command)) if not step.shell else None
    before = _windows(c) if hints and ctx.check_windows else None
    pid = c.launch(step.command, shell=step.shell)
    if hints and before is not None:
        old = {w.id for w in before}

        def new_window() -> bool:  # a window that was not there before the launch
            return any(w.id not in old and h in w.wm_class.lower() for w in c.list_windows() for h in hints)

        seen = _poll(new_window, step.timeout_s)
        if not seen:
            raise RuntimeError(f"postcondition: no window of class {hints} appeared within {step.timeout_s:.0f}s")
        return f"pid {pid}; window {hints} appeared"
    time.sleep(min(0.2, step.timeout_s))  # a command that cannot start fails at once
    code = c.process_returncode(pid)
    if code in (126, 127):
        raise RuntimeError(f"{command_text(step.command)!r} could not be started (exit status {code}: not found / not executable)")
    return f"pid {pid}; " + ("running" if code is None else f"exited with status {code}")


def _open(step: OpenStep, c: Controller, ctx: SetupContext) -> str:
    c.open_path(step.path)
    name = step.path.rsplit("/", 1)[-1]
    if not ctx.check_windows or _windows(c) is None:
        return f"opened {step.path} (window check unavailable on this controller)"
    if not _poll(lambda: any(name in w.title for w in c.list_windows()), step.timeout_s):
        raise RuntimeError(f"postcondition: no window titled with {name!r} appeared within {step.timeout_s:.0f}s")
    return f"opened {step.path}; its window appeared"


def _execute(step: ExecuteStep, c: Controller, ctx: SetupContext) -> str:
    deadline = time.monotonic() + step.timeout_s
    while True:
        res = c.run(step.command, shell=step.shell, timeout_s=max(0.1, deadline - time.monotonic()))
        for name, text in ((step.stdout, res.stdout), (step.stderr, res.stderr)):
            if name:
                ctx.cache_dir.mkdir(parents=True, exist_ok=True)
                (ctx.cache_dir / name).write_text(text, encoding="utf-8")
        if res.timed_out:
            raise RuntimeError(f"{command_text(step.command)!r} did not finish within {step.timeout_s:.0f}s")
        if step.until is None or step.until.met(res.returncode, res.stdout, res.stderr):
            return f"exit status {res.returncode}" + ("" if step.until is None else f"; {step.until} met")
        if time.monotonic() + step.poll_interval_s >= deadline:
            raise RuntimeError(f"postcondition: {step.until} not met within {step.timeout_s:.0f}s "
                               f"(last exit status {res.returncode})")
        time.sleep(step.poll_interval_s)


def _find_window(step: WindowStep, c: Controller) -> WindowInfo | None:
    return next((w for w in c.list_windows() if step.matches(w.title, w.wm_class)), None)


def _window(step: WindowStep, c: Controller, ctx: SetupContext) -> str:
    found: list[WindowInfo] = []

    def look() -> bool:
        win = _find_window(step, c)
        if win is not None:
            found.append(win)
        return win is not None

    if not _poll(look, step.timeout_s):
        if step.type == "close_window":
            return f"no window {step.window_name!r} to close"
        raise RuntimeError(f"no window matching {step.window_name!r} (strict={step.strict}, by_class={step.by_class})")
    win = found[-1]
    if step.type == "activate_window":
        c.activate_window(win.id)
        ok = _poll(lambda: (a := c.active_window()) is not None and a.id == win.id, step.timeout_s)
    else:
        c.close_window(win.id)
        ok = _poll(lambda: all(w.id != win.id for w in c.list_windows()), step.timeout_s)
    if not ok:
        raise RuntimeError(f"postcondition: {step.postcondition} did not hold within {step.timeout_s:.0f}s")
    return f"window {win.title!r} ({win.id}): {step.postcondition}"


def _step(step: SetupStep, c: Controller, ctx: SetupContext) -> str:
    if isinstance(step, DownloadStep):
        return _download(step, c, ctx)
    if isinstance(step, UploadFileStep):
        return _upload(step, c, ctx)
    if isinstance(step, LaunchStep):
        return _launch(step, c, ctx)
    if isinstance(step, OpenStep):
        return _open(step, c, ctx)
    if isinstance(step, ExecuteStep):
        return _execute(step, c, ctx)
    if isinstance(step, SleepStep):
        time.sleep(step.seconds * ctx.sleep_scale)
        return f"slept {step.seconds * ctx.sleep_scale:.2f}s"
    if isinstance(step, WindowStep):
        return _window(step, c, ctx)
    if isinstance(step, ChromeTabsStep) and step.type == "chrome_open_tabs":
        for url in step.urls:
            c.open_url(url)
        return f"opened {len(step.urls)} URL(s)"
    raise AssertionError(f"step type {step.type} passed the support check but has no runner")


def run_setup(steps: Sequence[SetupStep], controller: Controller, ctx: SetupContext) -> SetupResult:
    """Run ``steps`` in order; raise ``SetupError`` at the first failure or unmet postcondition."""
    t0 = time.monotonic()
    outcomes: list[StepOutcome] = []
    for i, step in enumerate(steps):
        reason = step_support(step)
        if reason is not None:
            raise SetupError(i, step.type, f"not supported here: {reason}",
                             "run this task on a controller that supports it, or skip it (see `pixelpilot tasks check`)")
        s0 = time.monotonic()
        try:
            detail = _step(step, controller, ctx)
        except NetworkPolicyError as exc:
            raise SetupError(i, step.type, str(exc), "mirror the file locally (FetchPolicy(mirror=DIR))") from exc
        except ControllerUnsupportedError as exc:
            raise SetupError(i, step.type, str(exc), "use a controller with a desktop session") from exc
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise SetupError(i, step.type, f"{type(exc).__name__}: {exc}",
                             f"check the step's parameters; postcondition was: {step.postcondition}") from exc
        outcomes.append(StepOutcome(i, step.type, time.monotonic() - s0, detail))
    return SetupResult(tuple(outcomes), time.monotonic() - t0)
