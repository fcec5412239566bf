"""The OSWorld task file as typed, frozen data, and loaders for task and index files.

A task file (``examples/<domain>/<id>.json``) holds ``id, snapshot, instruction, source,
config[...], related_apps, evaluator{func, result, expected, options, conj, postconfig},
proxy, fixed_ip, possibility_of_env_change`` and sometimes more (``hint``, ``trajectory``,
...). Fields we use are validated; every other field is kept in ``extra`` so newer files still
load and round-trip. An index file maps ``domain -> [task id, ...]``.

Single-metric and list-metric evaluators are normalised into one shape: ``Evaluator.calls``
is a tuple of ``MetricCall(func, result, expected, options)``; ``Evaluator.is_list`` remembers
which form the file used (it changes how OSWorld combines scores, see ``evaluate``).

This module loads and validates; it runs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from envs.tasks.errors import TaskFormatError
from envs.tasks.setup_steps import SetupStep, _frozen, parse_step, thaw

Conj = Literal["and", "or"]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


TASK_FIELDS = ("id", "snapshot", "instruction", "source", "config", "related_apps", "evaluator", "proxy",
               "fixed_ip", "possibility_of_env_change")
EVALUATOR_FIELDS = ("func", "result", "expected", "options", "conj", "postconfig")


@dataclass(frozen=True)
class GetterSpec:
    """Where a metric's input comes from: ``type`` names a getter, ``params`` are the rest."""

    type: str
    params: Mapping[str, Any] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise ValueError(f"getter type must be a non-empty string, got {self.type!r}")

    def get(self, key: str, default: Any = None) -> Any:
        """A parameter, as plain JSON data (dicts and lists)."""
        return thaw(self.params.get(key, default))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **thaw(self.params)}


@dataclass(frozen=True)
class MetricCall:
    """One metric applied to one result (and optionally one expected value)."""

    func: str
    result: GetterSpec | None
    expected: GetterSpec | None
    options: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True)
class Evaluator:
    """How a task is scored. ``calls`` is empty only for ``infeasible`` tasks."""

    calls: tuple[MetricCall, ...]
    conj: Conj = "and"
    is_list: bool = False
    infeasible: bool = False
    postconfig: tuple[SetupStep, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if self.conj not in ("and", "or"):
            raise ValueError(f"conj must be 'and' or 'or', got {self.conj!r}")
        if not self.infeasible and not self.calls:
            raise ValueError("a feasible task needs at least one metric call")

    @property
    def funcs(self) -> tuple[str, ...]:
        return ("infeasible",) if self.infeasible else tuple(c.func for c in self.calls)


@dataclass(frozen=True)
class Task:
    """One OSWorld-style task. ``domain`` comes from the directory (or index) it was found in."""

    id: str
    instruction: str
    config: tuple[SetupStep, ...]
    evaluator: Evaluator
    snapshot: str = ""
    source: str = ""
    related_apps: tuple[str, ...] = ()
    proxy: bool = False
    fixed_ip: bool = False
    possibility_of_env_change: str = "low"
    domain: str = ""
    path: str = ""
    extra: Mapping[str, Any] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        if not self.id or not self.instruction:
            raise ValueError("a task needs a non-empty id and instruction")

    @property
    def feasible(self) -> bool:
        return not self.evaluator.infeasible


@dataclass(frozen=True)
class TaskIndex:
    """An index file: ``domain -> task ids`` in file order."""

    path: str
    domains: Mapping[str, tuple[str, ...]] = field(default_factory=_empty)

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.domains.values())

    def entries(self) -> list[tuple[str, str]]:
        """``(domain, id)`` pairs in file order."""
        return [(d, i) for d, ids in self.domains.items() for i in ids]


# -- parsing --------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _getter(raw: Any, where: str, path: str) -> GetterSpec | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str) or not raw["type"]:
        raise TaskFormatError(path, where, f"expected a getter object with a \"type\", got {str(raw)[:120]!r}",
                              "write {\"type\": \"vm_file\", \"path\": ..., \"dest\": ...} or {\"type\": \"rule\", \"rules\": ...}")
    return GetterSpec(raw["type"], _frozen({k: v for k, v in raw.items() if k != "type"}))


def _getters(raw: Any, n: int, key: str, path: str) -> list[GetterSpec | None]:
    if raw is None:
        return [None] * n
    items = _as_list(raw) if n > 1 or isinstance(raw, list) else [raw]
    if len(items) != n:
        raise TaskFormatError(path, f"evaluator.{key}", f"has {len(items)} entries but func lists {n} metrics",
                              "give one entry per metric, in the same order")
    return [_getter(r, f"evaluator.{key}[{i}]", path) for i, r in enumerate(items)]


def _options(raw: Any, n: int, path: str) -> list[Mapping[str, Any]]:
    if raw is None or raw == {} or raw == []:
        return [_EMPTY] * n
    items = raw if isinstance(raw, list) else [raw] * n if n == 1 else None
    if items is None or len(items) != n:
        raise TaskFormatError(path, "evaluator.options", f"expected one options object per metric ({n}), got {str(raw)[:120]}",
                              "use a list of objects when func is a list")
    for i, o in enumerate(items):
        if not isinstance(o, Mapping):
            raise TaskFormatError(path, f"evaluator.options[{i}]", f"expected an object, got {o!r}")
    return [_frozen(o) for o in items]


def _steps(raw: Any, key: str, path: str) -> tuple[SetupStep, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TaskFormatError(path, key, f"expected a list of setup steps, got {type(raw).__name__}")
    return tuple(parse_step(s, f"{key}[{i}]", path) for i, s in enumerate(raw))


def parse_evaluator(raw: Any, path: str = "<memory>") -> Evaluator:
    """Validate and normalise an ``evaluator`` object."""
    if not isinstance(raw, Mapping):
        raise TaskFormatError(path, "evaluator", f"expected an object, got {type(raw).__name__}")
    func = raw.get("func")
    funcs = _as_list(func)
    if not funcs or not all(isinstance(f, str) and f for f in funcs):
        raise TaskFormatError(path, "evaluator.func", f"expected a metric name or a list of names, got {func!r}",
                              "see envs.tasks.metrics.METRICS for the names")
    conj = raw.get("conj", "and")
    if conj not in ("and", "or"):
        raise TaskFormatError(path, "evaluator.conj", f"expected \"and\" or \"or\", got {conj!r}")
    postconfig = _steps(raw.get("postconfig"), "evaluator.postconfig", path)
    extra = _frozen({k: v for k, v in raw.items() if k not in EVALUATOR_FIELDS})
    if funcs == ["infeasible"]:
        return Evaluator((), conj, False, True, postconfig, extra)
    n = len(funcs)
    results = _getters(raw.get("result"), n, "result", path)
    expected = _getters(raw.get("expected") or None, n, "expected", path)
    options = _options(raw.get("options"), n, path)
    calls = tuple(MetricCall(f, r, e, o) for f, r, e, o in zip(funcs, results, expected, options))
    return Evaluator(calls, conj, isinstance(func, list), False, postconfig, extra)


def _field(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str, default: Any) -> Any:
    value = raw.get(key, default)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise TaskFormatError(path, key, f"expected {names}, got {type(value).__name__}")
    return value


def parse_task(raw: Any, path: str = "<memory>", domain: str = "") -> Task:
    """Validate one task object; unknown top-level fields go to ``Task.extra``."""
    if not isinstance(raw, Mapping):
        raise TaskFormatError(path, "<root>", f"expected a JSON object, got {type(raw).__name__}")
    for key in ("id", "instruction", "evaluator"):
        if key not in raw:
            raise TaskFormatError(path, key, "missing", "every task needs id, instruction and evaluator")
    task_id = _field(raw, "id", str, path, "")
    instruction = _field(raw, "instruction", str, path, "")
    if not task_id.strip() or not instruction.strip():
        raise TaskFormatError(path, "id" if not task_id.strip() else "instruction", "is empty")
    apps = _field(raw, "related_apps", list, path, [])
    if not all(isinstance(a, str) for a in apps):
        raise TaskFormatError(path, "related_apps", f"expected a list of app names, got {apps!r}")
    return Task(
        id=task_id, instruction=instruction,
        config=_steps(raw.get("config"), "config", path),
        evaluator=parse_evaluator(raw["evaluator"], path),
        snapshot=_field(raw, "snapshot", str, path, ""), source=str(raw.get("source", "")),
        related_apps=tuple(apps), proxy=_field(raw, "proxy", bool, path, False),
        fixed_ip=_field(raw, "fixed_ip", bool, path, False),
        possibility_of_env_change=str(raw.get("possibility_of_env_change", "low")),
        domain=domain, path=path,
        extra=_frozen({k: v for k, v in raw.items() if k not in TASK_FIELDS}),
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskFormatError(str(path), "<file>", "does not exist", "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TaskFormatError(str(path), "<file>", f"is not valid UTF-8 JSON ({exc})", "fix the JSON syntax") from exc


def load_task(path: str | Path, domain: str | None = None) -> Task:
    """Load one task file; ``domain`` defaults to the name of its directory."""
    p = Path(path)
    return parse_task(_read_json(p), str(p), p.parent.name if domain is None else domain)


def load_tasks_dir(root: str | Path) -> list[Task]:
    """Every ``*.json`` task under ``root`` (recursively), sorted by path."""
    base = Path(root)
    if not base.is_dir():
        raise TaskFormatError(str(base), "<dir>", "is not a directory", "pass an examples directory")
    return [load_task(p) for p in sorted(base.rglob("*.json"))]


def load_index(path: str | Path) -> TaskIndex:
    """Load an index file (``{"domain": ["id", ...], ...}``)."""
    p = Path(path)
    raw = _read_json(p)
    if not isinstance(raw, Mapping):
        raise TaskFormatError(str(p), "<root>", "expected an object mapping domain -> list of task ids")
    domains: dict[str, tuple[str, ...]] = {}
    for domain, ids in raw.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise TaskFormatError(str(p), domain, "expected a list of task ids (strings)")
        domains[domain] = tuple(ids)
    return TaskIndex(str(p), MappingProxyType(domains))


def resolve_index(index: TaskIndex, examples_dir: str | Path) -> tuple[list[Task], list[tuple[str, str]]]:
    """Load the tasks an index names from ``examples_dir/<domain>/<id>.json``.

    Returns ``(tasks, missing)`` where ``missing`` lists the ``(domain, id)`` entries without a file.
    """
    root = Path(examples_dir)
    tasks: list[Task] = []
    missing: list[tuple[str, str]] = []
    for domain, task_id in index.entries():
        p = root / domain / f"{task_id}.json"
        if p.is_file():
            tasks.append(load_task(p, domain))
        else:
            missing.append((domain, task_id))
    return tasks, missing


def task_to_json(task: Task) -> dict[str, Any]:
    """Plain JSON of the fields the task model keeps (config steps are not re-serialised)."""
    return {"id": task.id, "domain": task.domain, "instruction": task.instruction, "snapshot": task.snapshot,
            "related_apps": list(task.related_apps), "feasible": task.feasible,
            "config": [s.type for s in task.config], "funcs": list(task.evaluator.funcs), **thaw(task.extra)}
