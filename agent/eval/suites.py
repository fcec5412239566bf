"""Resolve ``pixelpilot eval --suite SPEC`` into a list of work items (task × seed).

SPEC is one of:

- ``miniwob`` — every MiniWoB++ task that has a scripted expert; ``miniwob:all`` — every task
  shipped with the ``miniwob`` package; ``miniwob:click-button,enter-text`` — those tasks;
- ``desktop`` — the project's desktop suite (``envs/suites/desktop/test_all.json``);
  ``desktop:ID1,ID2`` — those tasks of it;
- a path: an OSWorld index file (``{"domain": [ids]}``, tasks in ``examples/<domain>/<id>.json``
  next to it), a directory of task files, or one task file; ``PATH:ID1,ID2`` filters ids.

Each task runs ``episodes`` times with seeds ``seed_start, seed_start + 1, ...``. MiniWoB's
seeds start at ``HELD_OUT_SEED_BASE`` (10 000) by default, so evaluation never reuses the
seeds that tests and expert data use. Episode ids are deterministic (``suite.task.sNNNNNN``),
which is what makes ``--resume`` possible.

This module only reads files: it starts no environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from envs.miniwob.report import HELD_OUT_SEED_BASE
from envs.tasks.errors import TaskFormatError
from envs.tasks.model import Task, load_index, load_task, load_tasks_dir

SuiteKind = Literal["miniwob", "osworld"]
#: The env each suite kind runs on when ``--env`` is not given.
DEFAULT_ENV: dict[str, str] = {"miniwob": "browser", "osworld": "desktop"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def desktop_suite_index() -> Path:
    """Where the project's desktop suite index lives (it may not be installed)."""
    import envs

    return Path(envs.__file__).resolve().parent / "suites" / "desktop" / "test_all.json"


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-.") or "x"


@dataclass(frozen=True)
class EvalItem:
    """One episode to run: a task of a suite with one seed.

    ``task_path`` is the task file of OSWorld-style items (workers load it themselves: typed
    tasks do not cross process boundaries); MiniWoB items have none.
    """

    suite: str
    kind: SuiteKind
    task_id: str
    seed: int
    domain: str = ""
    feasible: bool = True
    instruction: str = ""
    task_path: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEFAULT_ENV:
            raise ValueError(f"suite kind must be one of {sorted(DEFAULT_ENV)}, got {self.kind!r}")
        if self.kind == "osworld" and not self.task_path:
            raise ValueError(f"OSWorld item {self.task_id} needs its task_path")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    @property
    def episode_id(self) -> str:
        return f"{_safe(self.suite)}.{_safe(self.task_id)}.s{self.seed:06d}"[:128]

    def load_task(self) -> Task:
        """The typed OSWorld task of this item (raises ``TaskFormatError`` if its file broke)."""
        if self.task_path is None:
            raise ValueError(f"{self.task_id} is a MiniWoB item; it has no task file")
        return load_task(self.task_path, self.domain)


@dataclass(frozen=True)
class Suite:
    """A resolved suite: its name, kind, where it came from, and its items in run order."""

    name: str
    kind: SuiteKind
    source: str
    items: tuple[EvalItem, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError(f"suite {self.name} ({self.source}) has no tasks: check the spec or its filter")
        ids = [i.episode_id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"suite {self.name} has duplicate task ids; every task id must be unique")

    @property
    def default_env(self) -> str:
        return DEFAULT_ENV[self.kind]


def _is_path(spec: str) -> bool:
    try:
        return Path(spec).exists()
    except OSError:  # e.g. a long task list is not a valid file name
        return False


def _split_filter(spec: str) -> tuple[str, tuple[str, ...]]:
    """``NAME:a,b`` -> (``NAME``, (a, b)); a spec that exists as a path is never split."""
    if ":" not in spec or _is_path(spec):
        return spec, ()
    head, _, tail = spec.rpartition(":")
    return head, tuple(t.strip() for t in tail.split(",") if t.strip())


def _seeds(episodes: int, seed_start: int) -> range:
    if episodes <= 0 or seed_start < 0:
        raise ValueError(f"episodes must be > 0 and seed_start >= 0, got {episodes}, {seed_start}")
    return range(seed_start, seed_start + episodes)


def miniwob_suite(tasks: tuple[str, ...] = (), *, episodes: int = 1, seed_start: int = HELD_OUT_SEED_BASE,
                  every_task: bool = False) -> Suite:
    """MiniWoB++ tasks (default: those with a scripted expert) × ``episodes`` held-out seeds."""
    from envs.miniwob.experts import EXPERTS
    from envs.miniwob.suite import list_tasks, task_path

    names = tasks or (list_tasks() if every_task else tuple(sorted(EXPERTS)))
    for name in names:
        task_path(name)  # EnvSetupError naming close matches for a typo
    items = tuple(EvalItem("miniwob", "miniwob", name, seed, domain="miniwob")
                  for name in names for seed in _seeds(episodes, seed_start))
    return Suite("miniwob", "miniwob", "miniwob package", items)


def _examples_dir(index: Path) -> Path:
    nested = index.parent / "examples"
    return nested if nested.is_dir() else index.parent


def _load_osworld(path: Path) -> list[Task]:
    """Tasks of an index file, a directory of task files, or one task file."""
    if path.is_dir():
        return load_tasks_dir(path / "examples" if (path / "examples").is_dir() else path)
    raw = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and "evaluator" in raw:
        return [load_task(path)]
    index = load_index(path)
    root = _examples_dir(path)
    tasks, missing = [], []
    for domain, task_id in index.entries():
        p = root / domain / f"{task_id}.json"
        if p.is_file():
            tasks.append(load_task(p, domain))
        else:
            missing.append(f"{domain}/{task_id}")
    if missing:
        raise TaskFormatError(str(path), "<index>", f"{len(missing)} entries have no task file under {root} "
                              f"(first: {missing[0]})", "fix the index or add the task files")
    return tasks


def osworld_suite(path: str | Path, ids: tuple[str, ...] = (), *, name: str | None = None, episodes: int = 1,
                  seed_start: int = 0) -> Suite:
    """OSWorld-format tasks from ``path`` (index / directory / file), optionally only ``ids``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"suite {path} does not exist; give an index file, a task directory, a task file, "
                                "or a suite name (miniwob, desktop)")
    tasks = _load_osworld(p)
    if ids:
        known = {t.id for t in tasks}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"tasks {unknown} are not in {path}; it has {sorted(known)[:20]}")
        tasks = [t for t in tasks if t.id in ids]
    suite_name = name or (p.stem if p.is_file() else p.name)
    items = tuple(EvalItem(suite_name, "osworld", t.id, seed, domain=t.domain, feasible=t.feasible,
                           instruction=t.instruction, task_path=str(Path(t.path).resolve()))
                  for t in tasks for seed in _seeds(episodes, seed_start))
    return Suite(suite_name, "osworld", str(p), items)


def resolve_suite(spec: str, *, episodes: int = 1, seed_start: int | None = None) -> Suite:
    """The suite ``spec`` names (see the module docstring); ``seed_start`` None picks the suite's default."""
    base, ids = _split_filter(spec)
    if base == "miniwob":
        every = ids == ("all",)
        return miniwob_suite(() if every else ids, episodes=episodes, every_task=every,
                             seed_start=HELD_OUT_SEED_BASE if seed_start is None else seed_start)
    if base == "desktop" and not Path(base).exists():
        index = desktop_suite_index()
        if not index.is_file():
            raise FileNotFoundError(f"the desktop suite is not installed: {index} is missing")
        return osworld_suite(index, ids, name="desktop", episodes=episodes,
                             seed_start=0 if seed_start is None else seed_start)
    return osworld_suite(base, ids, episodes=episodes, seed_start=0 if seed_start is None else seed_start)


__all__ = ["DEFAULT_ENV", "EvalItem", "Suite", "desktop_suite_index", "miniwob_suite", "osworld_suite",
           "resolve_suite"]
