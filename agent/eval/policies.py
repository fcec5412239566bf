"""The policies an evaluation can run, built per work item inside a worker process.

``--policy`` spec → ``PolicySpec``:

- ``model`` (the default when ``--model`` is given): ``agent.factory.make_policy(--model)``,
  built once per worker and reused;
- ``scripted``: MiniWoB's privileged experts, or the desktop suite's scripted solutions;
- ``replay:RUN_DIR``: the recorded actions of the same task (same seed preferred) in another run;
- ``noop``: does nothing and declares ``Done`` — the do-nothing baseline;
- ``random``: random left clicks anywhere on the screen (seeded per episode) — the random baseline.

Every policy is wrapped in ``MeteredPolicy``, which sums model time and token usage per
episode for the report. Library users can pass their own picklable
``policy_factory(item, env) -> Policy`` to the runner instead.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from agent.eval.suites import EvalItem
from agent.policy import Policy, PolicyInput, PolicyReply
from envs.actions import Click, Done
from envs.base import Env

PolicyFactory = Callable[[EvalItem, Env], Policy]
POLICY_KINDS = ("model", "scripted", "replay", "noop", "random")
#: A ``policy_factory`` passed to the runner by library code (never from the command line).
CUSTOM = "custom"


@dataclass(frozen=True)
class PolicySpec:
    """A parsed ``--policy`` value (``arg`` is the replay run directory)."""

    kind: str
    arg: str = ""
    model: str | None = None
    model_kwargs: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in POLICY_KINDS + (CUSTOM,):
            raise ValueError(f"unknown policy {self.kind!r}; choose model, scripted, replay:RUN_DIR, noop or random")
        if self.kind == "model" and not self.model:
            raise ValueError("the model policy needs --model (an OpenAI-compatible URL or a model directory)")
        if self.kind == "replay" and not (Path(self.arg) / "episodes").is_dir():
            raise ValueError(f"replay needs a run directory with episodes/, got {self.arg!r}")

    @classmethod
    def parse(cls, text: str | None, model: str | None = None, **model_kwargs: Any) -> PolicySpec:
        kind, _, arg = (text or ("model" if model else "")).partition(":")
        if kind == CUSTOM:
            raise ValueError("a custom policy is given as a policy_factory in code, not as --policy")
        if not kind:
            raise ValueError("give --policy (scripted, noop, random, replay:RUN_DIR) or --model")
        kwargs = tuple(sorted((k, v) for k, v in model_kwargs.items() if v is not None))
        return cls(kind, arg, model, kwargs)

    @property
    def label(self) -> str:
        """How the policy is named in reports."""
        return {"model": f"model:{self.model}", "replay": f"replay:{self.arg}",
                CUSTOM: f"custom:{self.arg}"}.get(self.kind, self.kind)

    @classmethod
    def custom(cls, factory: PolicyFactory) -> PolicySpec:
        """The spec recorded for a library-provided ``policy_factory``."""
        return cls(CUSTOM, f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}")


class NoopPolicy:
    """Declares the task done at once: what a task scores when nobody does anything."""

    name: str = "noop"
    model: str = "noop"
    privileged: bool = False
    output_format: str | None = None

    def reset(self, instruction: str) -> None:
        pass

    def act(self, inp: PolicyInput) -> PolicyReply:
        return PolicyReply(actions=(Done(),), thought="Baseline: do nothing and declare the task done.")


class RandomClickPolicy:
    """Left-clicks uniformly random screen pixels, never ends the episode (the budget does)."""

    name: str = "random"
    model: str = "random-click"
    privileged: bool = False
    output_format: str | None = None

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)

    def reset(self, instruction: str) -> None:
        self.rng = random.Random(self.seed)

    def act(self, inp: PolicyInput) -> PolicyReply:
        w, h = inp.observation.size
        return PolicyReply(actions=(Click(self.rng.randrange(w), self.rng.randrange(h)),), thought="Baseline: random click.")


class MeteredPolicy:
    """Wraps a policy; sums calls, model seconds and token usage since the last ``reset``."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.privileged = bool(getattr(inner, "privileged", False))
        self.output_format = inner.output_format
        self.usage: dict[str, float] = {}

    def reset(self, instruction: str) -> None:
        self.usage = {"calls": 0, "model_s": 0.0, "prompt_tokens": 0, "completion_tokens": 0}
        self.inner.reset(instruction)

    def act(self, inp: PolicyInput) -> PolicyReply:
        reply = self.inner.act(inp)
        self.usage["calls"] += 1
        self.usage["model_s"] += reply.model_s
        for key in ("prompt_tokens", "completion_tokens"):
            self.usage[key] += int(reply.usage.get(key, 0))
        if not reply.usage and reply.token_ids:
            self.usage["completion_tokens"] += len(reply.token_ids)
        return reply


def _replay(run_dir: str, item: EvalItem) -> Policy:
    """The recorded episode of the same task in ``run_dir`` (same seed first)."""
    from agent.policies.replay import ReplayPolicy
    from trajectories.reader import read_header

    candidates = []
    for done in sorted(Path(run_dir, "episodes").glob("*/DONE")):
        header = read_header(done.parent)
        if header.meta.task_id == item.task_id:
            candidates.append((header.meta.seed != item.seed, header.path))
    if not candidates:
        raise ValueError(f"replay: {run_dir} holds no finished episode of task {item.task_id}")
    return cast(Policy, ReplayPolicy.from_episode(str(min(candidates)[1])))


def _scripted(item: EvalItem, env: Env) -> Policy:
    if item.kind == "miniwob":
        from agent.policies.expert import MiniWoBExpertPolicy

        return cast(Policy, MiniWoBExpertPolicy(env))  # type: ignore[arg-type]  # env is a MiniWoBEnv here
    from agent.eval.desktop_scripted import scripted_desktop_policy

    return scripted_desktop_policy(item, env)


class PolicySource:
    """Builds the policy for each item of a worker (a model policy is built once and reused)."""

    def __init__(self, spec: PolicySpec, factory: PolicyFactory | None = None) -> None:
        self.spec, self.factory = spec, factory
        self._model: Policy | None = None

    def for_item(self, item: EvalItem, env: Env) -> MeteredPolicy:
        kind = self.spec.kind
        if self.factory is not None:
            return MeteredPolicy(self.factory(item, env))
        if kind == CUSTOM:
            raise ValueError(f"policy {self.spec.label} needs its policy_factory")
        if kind == "noop":
            return MeteredPolicy(NoopPolicy())
        if kind == "random":
            return MeteredPolicy(RandomClickPolicy(zlib.crc32(item.episode_id.encode())))
        if kind == "replay":
            return MeteredPolicy(_replay(self.spec.arg, item))
        if kind == "scripted":
            return MeteredPolicy(_scripted(item, env))
        if self._model is None:
            from agent.factory import make_policy

            assert self.spec.model is not None
            self._model = make_policy(self.spec.model, **dict(self.spec.model_kwargs))
        return MeteredPolicy(self._model)


__all__ = [
    "POLICY_KINDS",
    "MeteredPolicy",
    "NoopPolicy",
    "PolicyFactory",
    "PolicySource",
    "PolicySpec",
    "RandomClickPolicy",
]
