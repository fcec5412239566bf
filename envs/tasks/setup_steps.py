"""Typed setup steps of OSWorld task files (``config`` and ``evaluator.postconfig``).

Each step type that appears in the 369 Ubuntu tasks parses into a frozen dataclass with a
per-step ``timeout_s`` and a ``postcondition`` (what must hold after it ran, checked by
``envs.tasks.setup_runner``). Types we do not know parse into ``UnknownStep`` so new task files
still load; ``SUPPORTED_STEP_TYPES`` says which ones the runner can execute.

This module only parses; it runs nothing (see ``setup_runner``) and knows no controller.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

from envs.tasks.errors import TaskFormatError

Command = Union[str, tuple[str, ...]]

# Default per-step timeouts in seconds (a step may override with a "timeout" parameter).
DEFAULT_TIMEOUTS: dict[str, float] = {
    "download": 300.0, "upload_file": 120.0, "launch": 60.0, "open": 60.0, "execute": 120.0,
    "command": 120.0, "sleep": 600.0, "activate_window": 15.0, "close_window": 15.0,
    "chrome_open_tabs": 60.0, "chrome_close_tabs": 30.0, "update_browse_history": 60.0,
    "googledrive": 120.0, "login": 120.0,
}


def _frozen(value: Any) -> Any:
    """A read-only deep view of JSON data (dicts become mappingproxies, lists tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON data (dict/list) back from ``_frozen`` views."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def _command(raw: Any, where: str, path: str) -> Command:
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, (list, tuple)) and raw and all(isinstance(a, str) for a in raw):
        return tuple(raw)
    raise TaskFormatError(path, f"{where}.command", f"expected a non-empty string or list of strings, got {raw!r}",
                          "write the command as [\"prog\", \"arg\", ...] or a shell string with \"shell\": true")


def command_text(cmd: Command) -> str:
    """The command as one readable shell line."""
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


@dataclass(frozen=True, kw_only=True)
class StepBase:
    """Fields every step has: its ``type`` as written in the file and a timeout."""

    type: str
    timeout_s: float

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"{self.type}: timeout_s must be positive, got {self.timeout_s}")

    @property
    def postcondition(self) -> str:
        """What must hold after the step ran (checked by the runner)."""
        return "the step finished within its timeout"


@dataclass(frozen=True)
class DownloadFile:
    """One file of a ``download`` step: fetched on the host from ``url``, written to ``path``."""

    url: str
    path: str
    size: int | None = None  # expected size in bytes, when the task says so


@dataclass(frozen=True, kw_only=True)
class DownloadStep(StepBase):
    files: tuple[DownloadFile, ...]

    @property
    def postcondition(self) -> str:
        return "every file exists at its path with the downloaded size"


@dataclass(frozen=True, kw_only=True)
class UploadFileStep(StepBase):
    """Copy host files into the controlled machine: pairs of (local_path, path)."""

    files: tuple[tuple[str, str], ...]

    @property
    def postcondition(self) -> str:
        return "every file exists at its path with the local file's size"


@dataclass(frozen=True, kw_only=True)
class LaunchStep(StepBase):
    command: Command
    shell: bool = False

    @property
    def postcondition(self) -> str:
        return "the process started (and, for a known GUI app, its window appeared)"


@dataclass(frozen=True, kw_only=True)
class OpenStep(StepBase):
    path: str

    @property
    def postcondition(self) -> str:
        return f"a window whose title contains {self.path.rsplit('/', 1)[-1]!r} appeared"


@dataclass(frozen=True)
class Until:
    """Poll condition of an ``execute`` step: any listed condition ends the polling."""

    returncode: int | None = None
    stdout: str | None = None
    stderr: str | None = None

    def met(self, returncode: int, stdout: str, stderr: str) -> bool:
        return ((self.returncode is not None and returncode == self.returncode)
                or (self.stdout is not None and self.stdout in stdout)
                or (self.stderr is not None and self.stderr in stderr))


@dataclass(frozen=True, kw_only=True)
class ExecuteStep(StepBase):
    """Run a command and wait for it (``execute`` and its alias ``command``).

    ``stdout``/``stderr`` name files in the evaluation cache directory that receive the
    output (read back by the ``cache_file`` getter). The exit status is recorded, not
    enforced: OSWorld tasks run commands such as ``killall x`` whose status is irrelevant.
    """

    command: Command
    shell: bool = False
    stdout: str | None = None
    stderr: str | None = None
    until: Until | None = None
    poll_interval_s: float = 1.0

    @property
    def postcondition(self) -> str:
        if self.until is not None:
            return f"the command's result met {self.until} before the timeout"
        return "the command exited within its timeout"


@dataclass(frozen=True, kw_only=True)
class SleepStep(StepBase):
    seconds: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.seconds <= 600:
            raise ValueError(f"sleep seconds must be in [0, 600], got {self.seconds}")


@dataclass(frozen=True, kw_only=True)
class WindowStep(StepBase):
    """``activate_window`` / ``close_window``: match by title (or WM_CLASS with ``by_class``)."""

    window_name: str
    strict: bool = False
    by_class: bool = False

    def matches(self, title: str, wm_class: str) -> bool:
        """Does a window with this title / class match (OSWorld: exact if strict, else substring)?"""
        text = wm_class if self.by_class else title
        return text == self.window_name if self.strict else self.window_name in text

    @property
    def postcondition(self) -> str:
        what = "active" if self.type == "activate_window" else "gone"
        return f"the window {self.window_name!r} is {what}"


@dataclass(frozen=True, kw_only=True)
class ChromeTabsStep(StepBase):
    """``chrome_open_tabs`` (urls to open) / ``chrome_close_tabs`` (urls to close)."""

    urls: tuple[str, ...]

    @property
    def postcondition(self) -> str:
        verb = "open" if self.type == "chrome_open_tabs" else "closed"
        return f"{len(self.urls)} tab(s) {verb}"


@dataclass(frozen=True, kw_only=True)
class BrowseHistoryStep(StepBase):
    """``update_browse_history``: insert visits into Chrome's History database."""

    history: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, kw_only=True)
class CloudStep(StepBase):
    """``googledrive`` / ``login``: needs cloud credentials; never run here (network rule)."""

    parameters: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class UnknownStep(StepBase):
    """A step type this version does not know; kept verbatim so the file still loads."""

    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


SetupStep = Union[DownloadStep, UploadFileStep, LaunchStep, OpenStep, ExecuteStep, SleepStep, WindowStep,
                  ChromeTabsStep, BrowseHistoryStep, CloudStep, UnknownStep]

# Step types ``setup_runner.run_setup`` can execute against a controller.
SUPPORTED_STEP_TYPES: frozenset[str] = frozenset({
    "download", "upload_file", "launch", "open", "execute", "command", "sleep", "activate_window",
    "close_window", "chrome_open_tabs",
})
# Known but not runnable here, with the reason shown by ``pixelpilot tasks check``.
UNSUPPORTED_STEP_REASONS: dict[str, str] = {
    "googledrive": "needs Google Drive credentials and internet access",
    "login": "needs cloud-account credentials and internet access",
    "chrome_close_tabs": "needs a Chrome DevTools connection (not in the controller protocol yet)",
    "update_browse_history": "needs write access to Chrome's History database (not implemented)",
}


def _str(params: Mapping[str, Any], key: str, where: str, path: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise TaskFormatError(path, f"{where}.{key}", f"expected a non-empty string, got {value!r}")
    return value


def _bool(params: Mapping[str, Any], key: str, where: str, path: str) -> bool:
    value = params.get(key, False)
    # Some OSWorld files write "true"/"false" as strings (OSWorld passes them on as truthy).
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise TaskFormatError(path, f"{where}.{key}", f"expected true/false, got {value!r}")
    return value


def _download_files(params: Mapping[str, Any], where: str, path: str) -> tuple[DownloadFile, ...]:
    files = params.get("files")
    if not isinstance(files, list) or not files:
        raise TaskFormatError(path, f"{where}.files", "expected a non-empty list of {\"url\", \"path\"} objects")
    out = []
    for i, f in enumerate(files):
        if not isinstance(f, Mapping):
            raise TaskFormatError(path, f"{where}.files[{i}]", f"expected an object, got {f!r}")
        size = f.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise TaskFormatError(path, f"{where}.files[{i}].size", f"expected a byte count, got {size!r}")
        out.append(DownloadFile(_str(f, "url", f"{where}.files[{i}]", path), _str(f, "path", f"{where}.files[{i}]", path), size))
    return tuple(out)


def _until(raw: Any, where: str, path: str) -> Until | None:
    if raw in (None, {}):
        return None
    if not isinstance(raw, Mapping) or not set(raw) <= {"returncode", "stdout", "stderr"}:
        raise TaskFormatError(path, f"{where}.until", f"expected an object with returncode/stdout/stderr, got {raw!r}")
    return Until(raw.get("returncode"), raw.get("stdout"), raw.get("stderr"))


def _parse_known(kind: str, p: Mapping[str, Any], base: dict[str, Any], where: str, path: str) -> SetupStep:
    if kind == "download":
        return DownloadStep(files=_download_files(p, where, path), **base)
    if kind == "upload_file":
        files = p.get("files")
        if not isinstance(files, list) or not files:
            raise TaskFormatError(path, f"{where}.files", "expected a list of {\"local_path\", \"path\"} objects")
        return UploadFileStep(files=tuple((_str(f, "local_path", where, path), _str(f, "path", where, path)) for f in files), **base)
    if kind == "launch":
        return LaunchStep(command=_command(p.get("command"), where, path), shell=_bool(p, "shell", where, path), **base)
    if kind == "open":
        return OpenStep(path=_str(p, "path", where, path), **base)
    if kind in ("execute", "command"):
        return ExecuteStep(command=_command(p.get("command"), where, path), shell=_bool(p, "shell", where, path),
                           stdout=p.get("stdout") or None, stderr=p.get("stderr") or None,
                           until=_until(p.get("until"), where, path), **base)
    if kind == "sleep":
        seconds = p.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TaskFormatError(path, f"{where}.seconds", f"expected a number of seconds, got {seconds!r}")
        return SleepStep(seconds=float(seconds), **{**base, "timeout_s": max(base["timeout_s"], float(seconds) + 1)})
    if kind in ("activate_window", "close_window"):
        return WindowStep(window_name=_str(p, "window_name", where, path), strict=_bool(p, "strict", where, path),
                          by_class=_bool(p, "by_class", where, path), **base)
    if kind in ("chrome_open_tabs", "chrome_close_tabs"):
        key = "urls_to_open" if kind == "chrome_open_tabs" else "urls_to_close"
        urls = p.get(key)
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise TaskFormatError(path, f"{where}.{key}", f"expected a list of URLs, got {urls!r}")
        return ChromeTabsStep(urls=tuple(urls), **base)
    if kind == "update_browse_history":
        hist = p.get("history")
        if not isinstance(hist, list) or not all(isinstance(h, Mapping) and "url" in h for h in hist):
            raise TaskFormatError(path, f"{where}.history", "expected a list of {\"url\", \"title\", ...} objects")
        return BrowseHistoryStep(history=_frozen(hist), **base)
    return CloudStep(parameters=_frozen(p), **base)  # googledrive, login


def parse_step(raw: Any, where: str = "config[0]", path: str = "<memory>") -> SetupStep:
    """Parse one ``{"type": ..., "parameters": {...}}`` object into its typed step.

    Raises ``TaskFormatError`` (naming ``path`` and ``where``) for a malformed known step.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise TaskFormatError(path, where, f"expected {{\"type\": str, \"parameters\": {{...}}}}, got {raw!r}")
    kind = raw["type"]
    params = raw.get("parameters", {})
    if not isinstance(params, Mapping):
        raise TaskFormatError(path, f"{where}.parameters", f"expected an object, got {params!r}")
    timeout = params.get("timeout", DEFAULT_TIMEOUTS.get(kind, 60.0))
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise TaskFormatError(path, f"{where}.parameters.timeout", f"expected positive seconds, got {timeout!r}")
    base = {"type": kind, "timeout_s": float(timeout)}
    if kind not in DEFAULT_TIMEOUTS:
        return UnknownStep(parameters=_frozen(params), **base)
    try:
        return _parse_known(kind, params, base, where, path)
    except ValueError as exc:
        if isinstance(exc, TaskFormatError):
            raise
        raise TaskFormatError(path, where, str(exc)) from exc


def step_support(step: SetupStep) -> str | None:
    """``None`` when the runner can execute ``step``, else the reason it cannot."""
    if step.type in SUPPORTED_STEP_TYPES:
        return None
    return UNSUPPORTED_STEP_REASONS.get(step.type, f"unknown step type {step.type!r}")
