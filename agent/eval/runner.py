"""The evaluation runner: K worker processes, per-task timeouts, crash isolation, resume, live progress.

Work items are (task, seed) pairs of a suite (``agent.eval.suites``). Each spawned worker owns
one environment and gets items one at a time through its own inbox, so the runner always
knows which item a worker holds and since when:

- a worker that holds an item longer than ``task_timeout_s`` is killed with its whole process
  tree (by PID) and replaced; the item is recorded as ``error`` / ``timeout`` (``setup_error``
  if it never got past setup);
- a worker that dies (segfault, ``os._exit``, OOM kill) is replaced; its item is recorded as
  ``error`` / ``crash``; steps it had written are kept (``records.finalize_cut_episode``);
- every item therefore ends as exactly one finished episode in the run's trajectory store, with
  a deterministic id: ``--resume`` skips finished ones and redoes cut-off ones (``agent.collect``).

At the end the report (``report.json``, ``report.md``, ``report.html``) and one viewer page per
episode are written from the store. The runner never sleeps for a fixed time: it waits on the
workers' message queue with a short timeout and checks deadlines in between.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import signal
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.collect import split_pending
from agent.eval.policies import PolicyFactory, PolicySpec
from agent.eval.records import episode_success, finalize_cut_episode, item_run_config, stub_meta
from agent.eval.suites import EvalItem, Suite, resolve_suite
from agent.eval.worker import WorkerConfig, worker_main

ENV_KINDS = ("desktop", "browser", "docker", "vm")
#: Policies ``--baseline`` may name: they need no model.
BASELINES = ("random", "noop")
CONFIG_NAME = "eval_config.json"
#: Fields that must match when a run is resumed (mixing them would make the report meaningless).
_RESUME_KEYS = ("suite", "env", "policy", "model", "max_steps")
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run.

    Attributes:
        suite: ``--suite`` spec (``miniwob:click-button``, ``desktop``, an index file, ...).
        out: run directory (trajectory store + reports).
        env: ``desktop``, ``browser``, ``docker`` or ``vm``; None picks the suite's default.
        policy: ``model``, ``scripted``, ``replay:RUN_DIR``, ``noop`` or ``random`` (None: ``model``).
        model / model_name / output_format: for the model policy (``agent.factory.make_policy``).
        workers: parallel worker processes, one env each.
        max_steps: step budget per episode.  episodes: seeds per task.
        seed_start: first seed (None: the suite's default, 10 000 for MiniWoB).
        task_timeout_s: wall-clock limit per episode, setup and evaluation included.
        resume: continue an existing run directory.
        baseline: a baseline policy (``random``, ``noop``) played on the same items into
            ``out/baseline-<policy>``; the report then sets each task's success beside it.
    """

    suite: str
    out: str
    env: str | None = None
    policy: str | None = None
    model: str | None = None
    model_name: str | None = None
    output_format: str | None = None
    workers: int = 1
    max_steps: int = 15
    episodes: int = 1
    seed_start: int | None = None
    task_timeout_s: float = 600.0
    resume: bool = False
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    def __post_init__(self) -> None:
        if self.env is not None and self.env not in ENV_KINDS:
            raise ValueError(f"--env must be one of {ENV_KINDS}, got {self.env!r}")
        if self.workers <= 0 or self.max_steps <= 0 or self.episodes <= 0:
            raise ValueError(f"workers, max_steps and episodes must be positive, got {self.workers}, "
                             f"{self.max_steps}, {self.episodes}")
        if not self.task_timeout_s > 0:
            raise ValueError(f"task_timeout_s must be positive, got {self.task_timeout_s}")
        if self.baseline is not None and self.baseline not in BASELINES:
            raise ValueError(f"--baseline must be one of {BASELINES} (a policy that needs no model), "
                             f"got {self.baseline!r}")

    def policy_spec(self) -> PolicySpec:
        return PolicySpec.parse(self.policy, self.model, model_name=self.model_name, output_format=self.output_format)


def env_kind_for(suite: Suite, requested: str | None) -> str:
    """The env to run ``suite`` on; raises ``ValueError`` for a combination that cannot work here."""
    from agent.factory import ENV_FACTORIES

    kind = requested or suite.default_env
    if suite.kind == "miniwob" and kind != "browser":
        raise ValueError(f"MiniWoB++ runs in the browser env; use --env browser (got {kind})")
    if suite.kind == "osworld" and kind == "browser":
        raise ValueError("OSWorld-format tasks need a desktop: use --env desktop (or docker/vm once available)")
    if kind in ("docker", "vm") and kind not in ENV_FACTORIES:
        raise ValueError(f"the {kind} env is not available yet (agent.factory.ENV_FACTORIES has "
                         f"{sorted(ENV_FACTORIES)}); run this suite with --env desktop")
    if suite.kind == "osworld" and kind != "desktop":
        raise ValueError(f"OSWorld-format tasks run on TaskEnv (--env desktop) only so far; the {kind} env does not "
                         "take OSWorld tasks yet")
    return kind


# -- processes --------------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it (browsers, X servers it started), by PID."""
    tree = [pid] + _descendants(pid)
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class _Slot:
    """One worker process and the item it holds."""

    index: int
    proc: Any
    inbox: Any
    ready: bool = False
    item: EvalItem | None = None
    since: float = 0.0
    phase: str = "setup"


class _Runner:
    """The scheduling loop of ``run_eval`` (one instance per run)."""

    def __init__(self, config: EvalConfig, suite: Suite, wconfig: WorkerConfig, todo: list[EvalItem]) -> None:
        self.config, self.suite, self.wconfig = config, suite, wconfig
        self.ctx = mp.get_context("spawn")
        self.outbox = self.ctx.Queue()
        self.pending = deque(todo)
        self.slots: list[_Slot] = []
        self.outcomes: Counter[str] = Counter()
        self.successes = 0
        self.finished = 0
        self.next_id = 0

    # -- workers ------------------------------------------------------------------------------
    def spawn(self) -> _Slot:
        inbox = self.ctx.Queue()
        proc = self.ctx.Process(target=worker_main, args=(self.next_id, self.wconfig, inbox, self.outbox), daemon=True)
        proc.start()
        slot = _Slot(self.next_id, proc, inbox, since=time.monotonic())
        self.next_id += 1
        return slot

    def replace(self, slot: _Slot) -> None:
        """Kill ``slot``'s process tree; start a fresh worker in its place while items remain."""
        kill_tree(slot.proc.pid)
        slot.proc.join(timeout=10)
        i = self.slots.index(slot)
        if self.pending:
            self.slots[i] = self.spawn()
        else:
            self.slots.pop(i)

    def shutdown(self) -> None:
        for slot in self.slots:
            if slot.proc.is_alive():
                slot.inbox.put(None)
        deadline = time.monotonic() + 30
        for slot in self.slots:
            slot.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if slot.proc.is_alive():
                kill_tree(slot.proc.pid)
                slot.proc.join(timeout=5)

    # -- bookkeeping --------------------------------------------------------------------------
    def count(self, outcome: str, success: bool) -> None:
        self.outcomes[outcome] += 1
        self.finished += 1
        self.successes += int(success)

    def fail_item(self, slot: _Slot, kind: str, detail: str) -> None:
        """Record the item of a killed/dead worker: ``timeout`` or ``crash``."""
        from trajectories.store import TrajectoryStore

        item = slot.item
        assert item is not None
        slot.item = None
        if (Path(self.config.out) / "episodes" / item.episode_id / "DONE").is_file():
            self.count(*self._verdict(item.episode_id))  # it finished just before the end came
            return
        in_setup = slot.phase == "setup"
        outcome = "setup_error" if (kind == "timeout" and in_setup) else "error"
        error = f"{kind}: {detail}" + (" (during setup)" if in_setup else "")
        spec = self.wconfig.policy
        meta = stub_meta(item, env_name=self.wconfig.env_kind, policy=spec.kind, model=spec.model or "",
                         run_config=item_run_config(item, worker=slot.index, policy=spec.label))
        info = {"wall_s": time.monotonic() - slot.since, "error_kind": kind, "worker": slot.index, "phase": slot.phase}
        with TrajectoryStore(self.config.out) as store:
            finalize_cut_episode(store, meta, outcome, error, info)
        self.count(outcome, False)

    def handle(self, msg: tuple[str, int, str | None, Any]) -> None:
        kind, wid, episode_id, payload = msg
        slot = next((s for s in self.slots if s.index == wid), None)
        if slot is None:
            return  # a message from a worker already killed and replaced
        if kind == "ready":
            slot.ready = True
        elif kind == "agent":
            slot.phase = "agent"
        elif kind == "done" and slot.item is not None and slot.item.episode_id == episode_id:
            self.count(*self._verdict(episode_id))
            slot.item = None
        elif kind == "fatal":
            raise RuntimeError(f"worker {wid} cannot run {episode_id}: {payload}; fix the environment and rerun "
                               "with --resume")

    def _verdict(self, episode_id: str) -> tuple[str, bool]:
        """(outcome, success) of a finished episode, read from its record."""
        from trajectories.reader import read_header

        header = read_header(Path(self.config.out) / "episodes" / episode_id)
        return header.outcome, episode_success(header.end)

    def check(self) -> None:
        """Deadlines and deaths: kill hung workers, record dead ones, assign idle ones."""
        now = time.monotonic()
        for slot in list(self.slots):
            if slot.item is not None and now - slot.since > self.config.task_timeout_s:
                self.drain()
                if slot.item is not None:  # still not done after draining the queue
                    kill_tree(slot.proc.pid)
                    slot.proc.join(timeout=10)
                    self.fail_item(slot, "timeout", f"no result after {self.config.task_timeout_s:g} s")
                    self.replace(slot)
            elif not slot.proc.is_alive():
                self.drain()
                if slot.item is not None:
                    self.fail_item(slot, "crash", f"worker process exited with code {slot.proc.exitcode}")
                elif not slot.ready and self.pending:
                    raise RuntimeError(f"worker {slot.index} exited with code {slot.proc.exitcode} before it was "
                                       "ready; see its stderr above")
                self.replace(slot)
            elif not slot.ready and now - slot.since > READY_TIMEOUT_S:
                raise RuntimeError(f"worker {slot.index} did not start within {READY_TIMEOUT_S:g} s")
        for slot in self.slots:
            if slot.ready and slot.item is None and self.pending:
                slot.item = self.pending.popleft()
                slot.since, slot.phase = time.monotonic(), "setup"
                slot.inbox.put(slot.item)

    def drain(self) -> None:
        while True:
            try:
                self.handle(self.outbox.get_nowait())
            except queue.Empty:
                return

    def busy(self) -> bool:
        return bool(self.pending) or any(s.item is not None for s in self.slots)

    def run(self, progress: bool) -> None:
        from rich.progress import Progress

        total = len(self.pending)
        self.slots = [self.spawn() for _ in range(min(self.config.workers, max(1, total)))]
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task(self.describe(), total=total)
            try:
                while self.busy():
                    self.check()
                    try:
                        self.handle(self.outbox.get(timeout=0.25))
                    except queue.Empty:
                        pass
                    bar.update(task, completed=self.finished, description=self.describe())
            finally:
                self.shutdown()

    def describe(self) -> str:
        rate = f"{self.successes / self.finished:.0%}" if self.finished else "-"
        o = self.outcomes
        return (f"eval {self.suite.name}: success {self.successes}/{self.finished} ({rate}) · "
                f"setup_error {o['setup_error']} · error {o['error']}")


# -- entry point ------------------------------------------------------------------------------
def _check_resume(config: EvalConfig, spec: PolicySpec, env_kind: str) -> None:
    path = Path(config.out) / CONFIG_NAME
    current = {"suite": config.suite, "env": env_kind, "policy": spec.label, "model": config.model,
               "max_steps": config.max_steps}
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        diff = {k: (saved.get(k), current[k]) for k in _RESUME_KEYS if saved.get(k) != current[k]}
        if diff and config.resume:
            raise ValueError(f"{config.out} was run with other settings {diff} (saved, now); use a new --out")
    Path(config.out).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(config), **current}, indent=1), encoding="utf-8")


@dataclass(frozen=True)
class EvalRun:
    """What ``run_eval`` did and where the report is."""

    suite: Suite
    ran: int
    skipped_done: int
    requeued_partial: int
    wall_s: float
    report: dict[str, Any]
    report_paths: tuple[Path, ...]


def run_eval(config: EvalConfig, *, progress: bool = True, policy_factory: PolicyFactory | None = None) -> EvalRun:
    """Run (or resume) an evaluation and write its report; see the module docstring."""
    from agent.eval.report import attach_baseline, build_report, write_report

    suite = resolve_suite(config.suite, episodes=config.episodes, seed_start=config.seed_start)
    env_kind = env_kind_for(suite, config.env)
    spec = PolicySpec.custom(policy_factory) if policy_factory is not None else config.policy_spec()
    todo, done, moved = split_pending(config.out, list(suite.items), config.resume)
    _check_resume(config, spec, env_kind)
    wconfig = WorkerConfig(out=config.out, env_kind=env_kind, policy=spec, max_steps=config.max_steps,
                           env_kwargs=dict(config.env_kwargs), policy_factory=policy_factory)
    t0 = time.perf_counter()
    if todo:
        _Runner(config, suite, wconfig, todo).run(progress)
    wall = time.perf_counter() - t0
    settings = {"suite": config.suite, "suite_source": suite.source, "env": env_kind, "policy": spec.label,
                "max_steps": config.max_steps, "episodes_per_task": config.episodes,
                "task_timeout_s": config.task_timeout_s, "workers": config.workers}
    report = build_report(config.out, list(suite.items), settings)
    if config.baseline is not None:
        where = f"baseline-{config.baseline}"
        base = run_eval(replace(config, out=str(Path(config.out) / where), policy=config.baseline, model=None,
                                model_name=None, output_format=None, baseline=None), progress=progress)
        report = attach_baseline(report, base.report, where)
    paths = write_report(config.out, report)
    return EvalRun(suite, len(todo), done, moved, wall, report, paths)


__all__ = ["BASELINES", "ENV_KINDS", "EvalConfig", "EvalRun", "env_kind_for", "kill_tree", "run_eval"]
