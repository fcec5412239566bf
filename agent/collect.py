"""Parallel, resumable trajectory collection.

A collection is a list of ``WorkItem`` (suite, task, seed), each recorded as one episode
with a deterministic id in one run directory (a ``TrajectoryStore``). ``K`` worker processes
each own one environment and one policy and take items from a shared queue; every step is
on disk (fsync) before the next one starts.

Resume: an item whose episode has a ``DONE`` marker is skipped; an episode that was cut off
(the collector was killed mid-episode) is moved to ``RUN/interrupted/`` — kept for
inspection, out of the index — and collected again, so the run ends with exactly one
finished episode per item.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import queue
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from agent.loop import LoopConfig, run_episode
from agent.risk import RiskConfig
from agent.recording import StoreRecorders

INTERRUPTED_DIRNAME = "interrupted"


class _HasEpisodeId(Protocol):
    @property
    def episode_id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=_HasEpisodeId)


@dataclass(frozen=True)
class WorkItem:
    """One episode to collect."""

    suite: str
    task: str
    seed: int

    @property
    def episode_id(self) -> str:
        return f"{self.suite}.{self.task}.s{self.seed:06d}"


@dataclass(frozen=True)
class CollectConfig:
    """What to collect and how.

    ``policy``: ``expert`` (privileged scripted experts) or a model spec for
    ``agent.factory.make_policy`` (URL or directory).
    """

    out: str
    tasks: tuple[str, ...]
    suite: str = "miniwob"
    episodes: int = 10
    seed_start: int = 0
    workers: int = 1
    policy: str = "expert"
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    max_steps: int = 20
    resume: bool = False
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Redact text typed into password fields. Turn off only for synthetic secrets (MiniWoB's
    #: made-up passwords) that training data must keep.
    redact_passwords: bool = True

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("give at least one task")
        if self.episodes <= 0 or self.workers <= 0 or self.max_steps <= 0:
            raise ValueError(f"episodes, workers and max_steps must be positive: {self}")
        if self.suite not in SUITES:
            raise ValueError(f"unknown suite {self.suite!r}; collect supports {sorted(SUITES)}")

    def items(self) -> list[WorkItem]:
        return [WorkItem(self.suite, t, self.seed_start + i) for t in self.tasks for i in range(self.episodes)]


# -- suites: how a worker builds its env and policy ---------------------------------------
def _miniwob_env(config: CollectConfig) -> Any:
    from envs.miniwob.env import MiniWoBConfig, MiniWoBEnv

    return MiniWoBEnv(MiniWoBConfig(task=config.tasks[0], max_steps=config.max_steps, **config.env_kwargs))


def _docker_env(config: CollectConfig) -> Any:
    from envs.docker.env import DockerConfig, DockerEnv

    return DockerEnv(DockerConfig(max_steps=config.max_steps, **config.env_kwargs))


def _vm_env(config: CollectConfig) -> Any:
    from envs.vm.env import VMConfig, VMEnv

    return VMEnv(VMConfig(max_steps=config.max_steps, **config.env_kwargs))


class SolutionPolicy:
    """Replays the env's scripted solution of the current episode (``env.solution()``; docker and VM tasks)."""

    name = "expert"
    model = "scripted-solution"
    privileged = True
    output_format = None

    def __init__(self, env: Any) -> None:
        self.env = env
        self._actions: tuple[Any, ...] = ()

    def reset(self, instruction: str) -> None:
        self._actions = tuple(self.env.solution())

    def act(self, inp: Any) -> Any:
        from agent.policy import PolicyReply
        from envs.actions import Fail

        i = inp.step_index
        action = self._actions[i] if i < len(self._actions) else Fail("scripted solution: no actions left")
        return PolicyReply(actions=(action,), thought=f"scripted solution step {i + 1}")


def _policy(config: CollectConfig, env: Any) -> Any:
    if config.policy == "expert":
        if config.suite in ("docker", "vm"):
            return SolutionPolicy(env)
        if config.suite != "miniwob":
            raise ValueError("the scripted expert exists for the miniwob, docker and vm suites only")
        from agent.policies.expert import MiniWoBExpertPolicy

        return MiniWoBExpertPolicy(env)
    from agent.factory import make_policy

    return make_policy(config.policy, **config.policy_kwargs)


SUITES: dict[str, Callable[[CollectConfig], Any]] = {"miniwob": _miniwob_env, "docker": _docker_env, "vm": _vm_env}


# -- resume -----------------------------------------------------------------------------
def pending_items(config: CollectConfig) -> tuple[list[WorkItem], int, int]:
    """Items still to collect, how many are already done, how many partials were set aside."""
    return split_pending(config.out, config.items(), config.resume)


def _was_interrupted(episode_dir: Path) -> bool:
    """True when the finished episode ended ``interrupted`` (the user stopped the run, not the task)."""
    from trajectories.reader import read_header

    return read_header(episode_dir).outcome == "interrupted"


def split_pending(out: str | Path, items: Sequence[ItemT], resume: bool) -> tuple[list[ItemT], int, int]:
    """Split ``items`` (anything with an ``episode_id``) of the run ``out`` into still-to-run ones.

    Returns ``(todo, done, moved)``: an item whose episode has a ``DONE`` marker is done; an
    episode directory without one (cut off), or one that ended ``interrupted`` (Ctrl-C), is
    moved to ``out/interrupted/`` and its item is run again. A run directory that already
    holds episodes needs ``resume=True``.
    """
    episodes_dir = Path(out) / "episodes"
    if episodes_dir.is_dir() and any(episodes_dir.iterdir()) and not resume:
        raise FileExistsError(f"{out} already holds episodes: pass --resume to continue it, or choose a new --out")
    todo, done, moved = [], 0, 0
    for item in items:
        path = episodes_dir / item.episode_id
        if (path / "DONE").is_file() and not _was_interrupted(path):
            done += 1
            continue
        if path.exists():
            target = Path(out) / INTERRUPTED_DIRNAME / f"{item.episode_id}.{int(time.time() * 1000)}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            moved += 1
        todo.append(item)
    return todo, done, moved


# -- workers ----------------------------------------------------------------------------
def die_with_parent() -> None:
    """Linux: get SIGKILLed when the parent (collector, eval runner) dies, so no orphan keeps writing episodes."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _worker(worker_id: int, config: CollectConfig, items: Any, results: Any) -> None:
    die_with_parent()
    from trajectories.store import TrajectoryStore

    store = TrajectoryStore(config.out)
    env = SUITES[config.suite](config)
    policy = _policy(config, env)
    loop_config = LoopConfig(max_steps=config.max_steps, risk=RiskConfig(redact_passwords=config.redact_passwords))
    try:
        while True:
            try:
                item = items.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                return
            results.put(_collect_one(item, env, policy, store, loop_config, worker_id))
    finally:
        env.close()
        store.close()


def _collect_one(item: WorkItem, env: Any, policy: Any, store: Any, loop_config: LoopConfig, worker_id: int) -> dict[str, Any]:
    t0 = time.perf_counter()

    recorder = StoreRecorders(store, env, policy, task_id=item.task, suite=item.suite, seed=item.seed,
                              episode_id=item.episode_id, run_config={"worker": worker_id})
    try:
        result = run_episode(env, policy, recorder=recorder, config=loop_config, seed=item.seed,
                             options={"task": item.task})
        outcome, reward, steps, error = result.outcome, result.reward, result.steps, result.error
    except Exception as exc:  # noqa: BLE001 - a crashed episode is recorded and counted, never dropped
        outcome, reward, steps, error = "error", 0.0, 0, f"{type(exc).__name__}: {exc}"
    return {"item": asdict(item), "outcome": outcome, "reward": reward, "steps": steps, "error": error,
            "seconds": time.perf_counter() - t0, "worker": worker_id}


@dataclass(frozen=True)
class CollectSummary:
    """What a collection did (also written to ``RUN/collect.json``)."""

    collected: int
    skipped_done: int
    requeued_partial: int
    outcomes: dict[str, int]
    per_task_success: dict[str, float]
    wall_s: float
    episodes_per_hour: float


def collect(config: CollectConfig, progress: bool = True) -> CollectSummary:
    """Run the collection; returns (and saves) a summary."""
    import json

    from rich.progress import Progress

    todo, done, moved = pending_items(config)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    items, results = ctx.Queue(), ctx.Queue()
    for item in todo:
        items.put(item)
    n_workers = min(config.workers, max(1, len(todo)))
    for _ in range(n_workers):
        items.put(None)
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(i, config, items, results), daemon=True) for i in range(n_workers)]
    records: list[dict[str, Any]] = []
    if todo:
        for p in procs:
            p.start()
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task(f"collect {config.suite}", total=len(todo))
            while len(records) < len(todo):
                try:
                    records.append(results.get(timeout=5.0))
                    bar.advance(task)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise RuntimeError(f"all collection workers exited with {len(todo) - len(records)} items left; "
                                           "see their stderr above, then rerun with --resume") from None
        for p in procs:
            p.join(timeout=30)
    wall = time.perf_counter() - t0
    summary = _summarize(records, done, moved, wall)
    with open(Path(config.out) / "collect.json", "w", encoding="utf-8") as f:
        json.dump({"config": asdict(config), "summary": asdict(summary), "episodes": records}, f, indent=1)
    return summary


def _summarize(records: list[dict[str, Any]], done: int, moved: int, wall: float) -> CollectSummary:
    outcomes = Counter(r["outcome"] for r in records)
    by_task: dict[str, list[bool]] = {}
    for r in records:
        by_task.setdefault(r["item"]["task"], []).append(r["outcome"] == "success")
    rate = {t: sum(v) / len(v) for t, v in sorted(by_task.items())}
    per_hour = len(records) / wall * 3600 if wall > 0 and records else 0.0
    return CollectSummary(len(records), done, moved, dict(outcomes), rate, wall, per_hour)

