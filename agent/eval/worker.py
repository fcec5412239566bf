"""An evaluation worker process: one environment, items from its own inbox, one episode each.

Messages to the runner (``outbox``), all tuples ``(kind, worker_id, episode_id, payload)``:
``ready`` (imports done, store open), ``started`` (item taken), ``agent`` (setup finished,
the agent acts), ``done`` (episode finished and on disk; payload: outcome and success),
``fatal`` (the environment cannot even be built; payload: the message — the runner stops).

Outcomes: a setup failure (``SetupError`` / ``EnvSetupError`` while resetting) is recorded as
``setup_error`` with zero steps; any other exception is recorded as ``error`` and the env is
rebuilt for the next item. Hangs and hard crashes are the runner's business (it kills this
process and finishes the record).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from agent.eval.policies import PolicyFactory, PolicySource, PolicySpec
from agent.eval.records import EvalRecorder, item_run_config, stub_meta, write_stub_episode
from agent.eval.suites import EvalItem
from envs.base import Env
from envs.errors import EnvSetupError
from envs.tasks.errors import SetupError


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of a run needs (picklable: it crosses the spawn boundary)."""

    out: str
    env_kind: str
    policy: PolicySpec
    max_steps: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_factory: PolicyFactory | None = None


class EnvBuildError(RuntimeError):
    """The environment could not be constructed at all (missing binary, bad option)."""


def build_env(config: WorkerConfig, item: EvalItem) -> Env:
    """The env for ``item``'s suite kind: ``MiniWoBEnv`` or ``TaskEnv`` (``runner.env_kind_for`` checked the pair)."""
    try:
        if item.kind == "miniwob":
            from envs.miniwob.env import MiniWoBConfig, MiniWoBEnv

            return MiniWoBEnv(MiniWoBConfig(task=item.task_id, max_steps=config.max_steps, **config.env_kwargs))
        from envs.desktop.env import DesktopConfig
        from envs.tasks.task_env import TaskEnv

        return TaskEnv(DesktopConfig(max_steps=config.max_steps, **config.env_kwargs))
    except (ImportError, ValueError, TypeError, OSError) as exc:
        raise EnvBuildError(f"cannot build the {config.env_kind} env for {item.suite}: {type(exc).__name__}: {exc}") from exc


def reset_options(item: EvalItem) -> dict[str, Any]:
    return {"task": item.task_id} if item.kind == "miniwob" else {"task": item.load_task()}


class InfoTap(Env):
    """Passes everything to ``inner`` and keeps the last step's full info (the loop keeps scalars only)."""

    def __init__(self, inner: Env) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.last_info: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self.last_info = {}
        return self.inner.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        result = self.inner.step(action)
        self.last_info = result[4]
        return result

    def close(self) -> None:
        self.inner.close()

    @property
    def screen_size(self) -> tuple[int, int]:
        return self.inner.screen_size


class _Episode:
    """Runs one item on a worker's env; always leaves a finished episode in the store."""

    def __init__(self, worker: _Worker, item: EvalItem) -> None:
        self.w, self.item = worker, item
        self.t0 = time.monotonic()
        self.setup_s: float | None = None
        self.policy: Any = None

    def eval_info(self, **extra: Any) -> dict[str, Any]:
        usage = dict(self.policy.usage) if self.policy is not None and self.policy.usage else {}
        details = self.w.tap.last_info.get("eval") if self.w.tap is not None else None
        info = {"wall_s": time.monotonic() - self.t0, "setup_s": self.setup_s or 0.0, "worker": self.w.worker_id,
                **usage, **extra}
        if isinstance(details, dict):
            info["details"] = details
        return info

    def recorder(self, instruction: str) -> EvalRecorder:
        from agent.loop import episode_meta

        self.setup_s = time.monotonic() - self.t0
        self.w.send("agent", self.item.episode_id, None)
        assert self.w.tap is not None  # the recorder is made after the env's reset
        meta = episode_meta(self.w.tap, self.policy, task_id=self.item.task_id, instruction=instruction,
                            suite=self.item.suite, seed=self.item.seed, episode_id=self.item.episode_id,
                            run_config=item_run_config(self.item, worker=self.w.worker_id, max_steps=self.w.config.max_steps,
                                                       policy=self.w.config.policy.label))
        return EvalRecorder(self.w.store.new_episode(meta), self.eval_info)

    def stub(self, outcome: str, kind: str, exc: BaseException) -> None:
        cfg = self.w.config
        meta = stub_meta(self.item, env_name=self.w.tap.name if self.w.tap else cfg.env_kind,
                         policy=self.policy.name if self.policy else cfg.policy.kind,
                         model=self.policy.model if self.policy else "",
                         run_config=item_run_config(self.item, worker=self.w.worker_id, policy=cfg.policy.label))
        error = f"{type(exc).__name__}: {exc}" if kind == "setup" else traceback.format_exc()[-4000:]
        write_stub_episode(self.w.store, meta, outcome, error, self.eval_info(error_kind=kind))

    def run(self) -> str:
        from agent.loop import LoopConfig, run_episode

        w = self.w
        try:
            tap = w.ensure_env(self.item)
            self.policy = w.source.for_item(self.item, tap.inner)
            result = run_episode(tap, self.policy, recorder=self.recorder, config=LoopConfig(max_steps=w.config.max_steps),
                                 seed=self.item.seed, options=reset_options(self.item))
            return result.outcome
        except EnvBuildError:
            raise
        except (SetupError, EnvSetupError) as exc:
            if self.setup_s is None:
                self.stub("setup_error", "setup", exc)
                return "setup_error"
            w.drop_env()
            return "error"
        except Exception as exc:  # noqa: BLE001 - recorded as the episode's error, never dropped
            if self.setup_s is None:
                self.stub("error", "exception", exc)
            w.drop_env()  # whatever broke may have broken the env too
            return "error"


class _Worker:
    def __init__(self, worker_id: int, config: WorkerConfig, outbox: Any) -> None:
        from trajectories.store import TrajectoryStore

        self.worker_id, self.config, self.outbox = worker_id, config, outbox
        self.store = TrajectoryStore(config.out)
        self.source = PolicySource(config.policy, config.policy_factory)
        self.tap: InfoTap | None = None

    def send(self, kind: str, episode_id: str | None, payload: Any) -> None:
        self.outbox.put((kind, self.worker_id, episode_id, payload))

    def ensure_env(self, item: EvalItem) -> InfoTap:
        if self.tap is None:
            self.tap = InfoTap(build_env(self.config, item))
        return self.tap

    def drop_env(self) -> None:
        if self.tap is not None:
            try:
                self.tap.close()
            finally:
                self.tap = None

    def close(self) -> None:
        try:
            self.drop_env()
        finally:
            self.store.close()


def worker_main(worker_id: int, config: WorkerConfig, inbox: Any, outbox: Any) -> None:
    """Entry point of a spawned worker: run items from ``inbox`` until it sends ``None``."""
    from agent.collect import die_with_parent

    die_with_parent()
    worker = _Worker(worker_id, config, outbox)
    worker.send("ready", None, None)
    try:
        while True:
            item = inbox.get()
            if item is None:
                return
            worker.send("started", item.episode_id, None)
            try:
                outcome = _Episode(worker, item).run()
            except EnvBuildError as exc:
                worker.send("fatal", item.episode_id, str(exc))
                return
            worker.send("done", item.episode_id, outcome)
    finally:
        worker.close()


__all__ = ["EnvBuildError", "InfoTap", "WorkerConfig", "build_env", "reset_options", "worker_main"]
