"""Evaluator getters: turn a ``GetterSpec`` into the value a metric compares.

``GETTERS`` is the explicit registry (name -> function); nothing is looked up by ``getattr``.
Semantics follow OSWorld's ``desktop_env/evaluators/getters`` for the getters listed here:

- ``rule``: the spec's ``rules`` object, as is.
- ``vm_file`` / ``cloud_file``: copy the file(s) into the cache directory and return the local
  path (``multi``: lists of ``path``/``dest``; ``gives``: which indices are returned — one
  index gives a path, several a list). A missing VM file gives ``None`` (metrics score 0);
  a cloud file comes from ``FetchPolicy`` (local URL or mirror), never the internet.
- ``cache_file``: path of a file a postconfig step wrote into the cache directory.
- ``vm_command_line`` / ``vm_command_error``: stdout / stderr of a command run on the machine.
- ``accessibility_tree``, ``vm_terminal_output``: asked from the controller.
- ``list_directory``: ``{"type", "name", "children"}`` tree of a directory.
- ``vm_screen_size``: ``{"width", "height"}`` of a screenshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.tasks.controller import Controller
from envs.tasks.errors import UnknownEvaluatorPieceError
from envs.tasks.fetch import FetchPolicy
from envs.tasks.model import GetterSpec

COMMAND_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class EvalContext:
    """What getters read from: the controller, the cache directory, the fetch policy."""

    controller: Controller
    cache_dir: Path
    fetch: FetchPolicy = field(default_factory=FetchPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    def cache_path(self, name: str) -> Path:
        """``cache_dir / name``, refusing names that leave the cache directory."""
        p = (self.cache_dir / name).resolve()
        if not p.is_relative_to(self.cache_dir.resolve()):
            raise ValueError(f"cache file name {name!r} leaves the cache directory {self.cache_dir}")
        return p


Getter = Callable[[EvalContext, GetterSpec], Any]


def _file_lists(spec: GetterSpec) -> tuple[list[str], list[str], set[int]]:
    if spec.get("multi", False):
        paths, dests = spec.get("path"), spec.get("dest")
        if not isinstance(paths, list) or not isinstance(dests, list) or len(paths) != len(dests):
            raise ValueError(f"{spec.type} with multi=true needs lists 'path' and 'dest' of equal length")
    else:
        paths, dests = [spec.get("path")], [spec.get("dest")]
    if not all(isinstance(p, str) and p for p in paths + dests):
        raise ValueError(f"{spec.type} needs string 'path' and 'dest', got {paths!r} / {dests!r}")
    return paths, dests, set(spec.get("gives", [0]))


def _collect(paths: list[str], gives: set[int]) -> Any:
    picked = [p for i, p in enumerate(paths) if i in gives]
    return picked[0] if len(picked) == 1 else picked


def get_vm_file(ctx: EvalContext, spec: GetterSpec) -> Any:
    paths, dests, gives = _file_lists(spec)
    local: list[str | None] = []
    for src, dest in zip(paths, dests):
        try:
            data = ctx.controller.read_file(src)
        except (FileNotFoundError, IsADirectoryError):
            local.append(None)
            continue
        target = ctx.cache_path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        local.append(str(target))
    return _collect(local, gives)


def get_cloud_file(ctx: EvalContext, spec: GetterSpec) -> Any:
    urls, dests, gives = _file_lists(spec)
    local: list[str] = []
    for url, dest in zip(urls, dests):
        target = ctx.cache_path(dest)
        if not target.is_file():  # OSWorld downloads gold files once per cache directory
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(ctx.fetch.fetch(url))
        local.append(str(target))
    return _collect(local, gives)


def get_cache_file(ctx: EvalContext, spec: GetterSpec) -> str:
    path = ctx.cache_path(str(spec.get("path", "")))
    if not path.is_file():
        raise FileNotFoundError(f"cache file {path} was not written (a postconfig step should have created it)")
    return str(path)


def _command(ctx: EvalContext, spec: GetterSpec) -> Any:
    command = spec.get("command")
    if not command:
        raise ValueError(f"{spec.type} needs a 'command'")
    shell = spec.get("shell", False)
    shell = shell.lower() == "true" if isinstance(shell, str) else bool(shell)
    return ctx.controller.run(command, shell=shell, timeout_s=COMMAND_TIMEOUT_S)


def get_vm_command_line(ctx: EvalContext, spec: GetterSpec) -> str:
    return _command(ctx, spec).stdout


def get_vm_command_error(ctx: EvalContext, spec: GetterSpec) -> str:
    return _command(ctx, spec).stderr


def get_rule(ctx: EvalContext, spec: GetterSpec) -> Any:
    return spec.get("rules")


def get_accessibility_tree(ctx: EvalContext, spec: GetterSpec) -> str:
    return ctx.controller.accessibility_tree()


def get_vm_terminal_output(ctx: EvalContext, spec: GetterSpec) -> str:
    return ctx.controller.terminal_output()


def get_list_directory(ctx: EvalContext, spec: GetterSpec) -> dict[str, Any]:
    return ctx.controller.list_directory(str(spec.get("path"))).to_json()


def get_vm_screen_size(ctx: EvalContext, spec: GetterSpec) -> dict[str, int]:
    shot = ctx.controller.screenshot()
    return {"width": int(shot.shape[1]), "height": int(shot.shape[0])}


GETTERS: dict[str, Getter] = {
    "rule": get_rule,
    "vm_file": get_vm_file,
    "cloud_file": get_cloud_file,
    "cache_file": get_cache_file,
    "vm_command_line": get_vm_command_line,
    "vm_command_error": get_vm_command_error,
    "accessibility_tree": get_accessibility_tree,
    "vm_terminal_output": get_vm_terminal_output,
    "list_directory": get_list_directory,
    "vm_screen_size": get_vm_screen_size,
}


def get_getter(name: str) -> Getter:
    """The registered getter ``name``; raises ``UnknownEvaluatorPieceError`` otherwise."""
    try:
        return GETTERS[name]
    except KeyError:
        raise UnknownEvaluatorPieceError("getter", name, list(GETTERS)) from None


def run_getter(ctx: EvalContext, spec: GetterSpec) -> Any:
    """Apply the getter ``spec.type``."""
    return get_getter(spec.type)(ctx, spec)


__all__ = ["EvalContext", "GETTERS", "Getter", "get_getter", "run_getter"]
