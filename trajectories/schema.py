"""Trajectory schema v1: the typed records one episode is made of.

An episode is ``EpisodeMeta`` (who/what/where, written first), a sequence of ``Step`` (one per
model call + env step), and ``EpisodeEnd`` (the outcome, written last). Screenshots are not in
the records: a step carries a ``FrameRef`` (content hash + format + size) and the frame lives in
a content-addressed file (see ``trajectories.writer``).

Every record is a frozen dataclass with ``to_json()`` → JSON-ready dict and ``from_json(d)``;
constructors validate, and free-form dicts (``info``, ``extra``, ``env_config``, ...) are
converted to plain JSON types on construction (numpy scalars → Python numbers, tuples → lists)
so that a record that exists can always be written. This module does no I/O besides
``default_code_version`` (one ``git describe``, cached).
"""

from __future__ import annotations

import functools
import math
import re
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from envs.actions import Action, action_from_json, action_to_json
from envs.errors import InvalidActionError, PixelPilotError

SCHEMA_VERSION = 1
#: How an episode ended. ``infeasible``: the agent declared the task infeasible (``Fail``);
#: whether that scores is the evaluator's business (``reward``). ``setup_error``: the task's
#: setup failed its postconditions, so the agent never had a fair start.
OUTCOMES: tuple[str, ...] = (
    "success", "failure", "truncated", "error", "setup_error", "infeasible", "interrupted",
)
Outcome = Literal["success", "failure", "truncated", "error", "setup_error", "infeasible", "interrupted"]
FRAME_FORMATS: tuple[str, ...] = ("png", "jpeg", "webp")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


class SchemaError(PixelPilotError, ValueError):
    """A record is malformed, or was written by a newer schema version than this code reads."""


# ------------------------------------------------------------------------------------------
# helpers


def json_safe(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON types (dict/list/str/int/float/bool/None), or ``SchemaError``.

    numpy scalars and small arrays become numbers and lists, tuples become lists, ``Path``
    becomes ``str``. Non-finite floats are rejected (JSON has no NaN).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise SchemaError(f"{where} is {value!r}: JSON has no NaN/inf; store None or a finite number")
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise SchemaError(f"{where} has a non-string key {k!r}; JSON object keys must be strings")
            out[k] = json_safe(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        if value.size > 4096:
            raise SchemaError(f"{where} is a {value.shape} array; store images as frames, not in JSON fields")
        return json_safe(value.tolist(), where)
    raise SchemaError(f"{where} has type {type(value).__name__}, which is not JSON; convert it to str/number/list/dict")


def _check_type(name: str, value: Any, types: type | tuple[type, ...], optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"{name} must be {types}, got bool {value!r}")
    if not isinstance(value, types):
        raise SchemaError(f"{name} must be {getattr(types, '__name__', types)}{' or None' if optional else ''}, "
                          f"got {type(value).__name__} {value!r:.80}")


def _check_finite(name: str, value: Any) -> float:
    _check_type(name, value, (int, float, np.floating, np.integer))
    if not math.isfinite(float(value)):
        raise SchemaError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_id(name: str, value: Any) -> str:
    """Validate an id used as a file name: letters, digits, ``._-``, 1–128 chars, no leading dot."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise SchemaError(f"{name} {value!r} must be 1-128 characters of [A-Za-z0-9._-] starting with a letter "
                          "or digit (it names a directory); use trajectories.schema.new_episode_id()")
    return value


def new_episode_id() -> str:
    """A sortable, unique episode id: ``YYYYmmdd-HHMMSS-<8 hex>`` (UTC)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@functools.lru_cache(maxsize=1)
def default_code_version() -> str:
    """``git describe --always --dirty`` of the source tree, else the installed package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=5, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return "git:" + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass  # no git binary or not a checkout: fall back to the package version below
    try:
        from importlib.metadata import version

        return "pixelpilot " + version("pixelpilot")
    except Exception:  # noqa: BLE001 - metadata missing in odd installs; the record still needs a value
        return "unknown"


class _Record:
    """``to_json``/``from_json`` shared by the records (dataclass fields ↔ JSON object)."""

    record_type: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (nested records as dicts)."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = v.to_json() if isinstance(v, _Record) else v
        return out

    @classmethod
    def _kwargs(cls, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise SchemaError(f"{cls.__name__} record must be a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise SchemaError(f"{cls.__name__} has schema_version {version!r}; this pixelpilot reads up to "
                              f"{SCHEMA_VERSION}: upgrade pixelpilot to read it")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise SchemaError(f"{cls.__name__} record has unknown field(s) {sorted(unknown)}; known: {sorted(names)}")
        return dict(data)


# ------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class FrameRef(_Record):
    """A screenshot stored elsewhere: sha256 of ``b"{H}x{W}x3:" + raw RGB bytes``, file format, size."""

    sha256: str
    format: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if not isinstance(self.sha256, str) or not _HASH_RE.match(self.sha256):
            raise SchemaError(f"frame sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.format not in FRAME_FORMATS:
            raise SchemaError(f"frame format must be one of {FRAME_FORMATS}, got {self.format!r}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise SchemaError(f"frame {name} must be a positive int, got {v!r}")

    @property
    def filename(self) -> str:
        """``<sha256>.<ext>``: the frame's file name inside a frames directory."""
        return f"{self.sha256}.{'jpg' if self.format == 'jpeg' else self.format}"

    @classmethod
    def from_json(cls, data: Any) -> "FrameRef":
        return cls(**cls._kwargs(data))


@dataclass(frozen=True)
class EpisodeMeta(_Record):
    """What an episode is: written as the first line of ``episode.jsonl``.

    Attributes:
        episode_id: unique, file-name safe (``new_episode_id()``).
        task_id / suite / instruction: the task as the agent was given it.
        env_name / env_config: which environment and its resolved config.
        policy / model: the policy class and model name (``""`` when none).
        privileged: the policy saw information a deployed agent would not (a11y tree oracle,
            ground-truth targets): such episodes are kept out of fair evaluation.
        run_config: the resolved run config (max steps, history, output format, ...).
        seed: the reset seed, if any.  code_version: ``git describe`` or package version.
        started_at: ``time.time()`` at start.  hostname: the machine that ran it.
    """

    episode_id: str
    task_id: str
    instruction: str
    suite: str = ""
    env_name: str = ""
    env_config: dict[str, Any] = field(default_factory=dict)
    policy: str = ""
    model: str = ""
    privileged: bool = False
    run_config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    code_version: str = field(default_factory=default_code_version)
    started_at: float = field(default_factory=time.time)
    hostname: str = field(default_factory=socket.gethostname)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        check_id("episode_id", self.episode_id)
        for name in ("task_id", "instruction", "suite", "env_name", "policy", "model", "code_version", "hostname"):
            _check_type(name, getattr(self, name), str)
        _check_type("privileged", self.privileged, bool)
        _check_type("seed", self.seed, int, optional=True)
        object.__setattr__(self, "started_at", _check_finite("started_at", self.started_at))
        for name in ("env_config", "run_config"):
            _check_type(name, getattr(self, name), dict)
            object.__setattr__(self, name, json_safe(getattr(self, name), name))

    @classmethod
    def from_json(cls, data: Any) -> "EpisodeMeta":
        return cls(**cls._kwargs(data))


@dataclass(frozen=True)
class Step(_Record):
    """One agent step: what the model saw, said and did, and what the env answered.

    Attributes:
        index: 0-based position in the episode.
        screenshot: the frame the model saw before acting (``None`` for text-only steps).
        thought: the reasoning text the parser extracted (``None`` if the format has none).
        raw_text: the model's full output, unparsed.
        action: ``envs.actions.action_to_json`` dict, or ``None`` when nothing valid was parsed.
        error: why the step went wrong (parse error, invalid action, env error), else ``None``.
        token_ids / logprobs: sampled tokens and their log-probabilities, when the policy has them.
        timings: seconds spent per phase (``model_s``, ``env_s``, ...).
        info: the env's info dict for this step.  reward / terminated / truncated: the env's answer.
        extra: anything later stages attach (CoT levels, reflector labels, ...).
    """

    index: int
    screenshot: FrameRef | None = None
    thought: str | None = None
    raw_text: str = ""
    action: dict[str, Any] | None = None
    error: str | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise SchemaError(f"step index must be an int >= 0, got {self.index!r}")
        _check_type("screenshot", self.screenshot, FrameRef, optional=True)
        _check_type("thought", self.thought, str, optional=True)
        _check_type("raw_text", self.raw_text, str)
        _check_type("error", self.error, str, optional=True)
        _check_type("terminated", self.terminated, bool)
        _check_type("truncated", self.truncated, bool)
        object.__setattr__(self, "action", _canonical_action(self.action))
        object.__setattr__(self, "reward", _check_finite("reward", self.reward))
        object.__setattr__(self, "token_ids", _int_list("token_ids", self.token_ids))
        object.__setattr__(self, "logprobs", _float_list("logprobs", self.logprobs))
        _check_type("timings", self.timings, dict)
        object.__setattr__(self, "timings", {str(k): _check_finite(f"timings[{k!r}]", v) for k, v in self.timings.items()})
        for name in ("info", "extra"):
            _check_type(name, getattr(self, name), dict)
            object.__setattr__(self, name, json_safe(getattr(self, name), name))

    def parsed_action(self) -> Action | None:
        """The action as an ``envs.actions`` object (``None`` if the step has none)."""
        return None if self.action is None else action_from_json(self.action)

    @classmethod
    def from_json(cls, data: Any) -> "Step":
        kwargs = cls._kwargs(data)
        if kwargs.get("screenshot") is not None:
            kwargs["screenshot"] = FrameRef.from_json(kwargs["screenshot"])
        return cls(**kwargs)


def _canonical_action(action: Any) -> dict[str, Any] | None:
    if action is None:
        return None
    try:
        obj = action if not isinstance(action, dict) else action_from_json(action)
        return action_to_json(obj)
    except InvalidActionError as exc:
        raise SchemaError(f"step action is not a valid action: {exc}; store it as error text with action=None") from None


def _int_list(name: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    _check_type(name, value, (list, tuple))
    out = []
    for v in value:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise SchemaError(f"{name} must hold ints, got {v!r}")
        out.append(int(v))
    return out


def _float_list(name: str, value: Any) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    _check_type(name, value, (list, tuple))
    return [_check_finite(name, v) for v in value]


@dataclass(frozen=True)
class EpisodeEnd(_Record):
    """How an episode ended: the last line of ``episode.jsonl``.

    Attributes:
        outcome: one of ``OUTCOMES``.  reward: the final score (evaluator's).
        steps: number of steps recorded.  error: what went wrong for error outcomes.
        final_screenshot: the frame after the last action, if captured.
        info: evaluator details (metric, expected/actual, feasibility, ...).
    """

    outcome: str
    reward: float = 0.0
    steps: int = 0
    error: str | None = None
    ended_at: float = field(default_factory=time.time)
    final_screenshot: FrameRef | None = None
    info: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise SchemaError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        object.__setattr__(self, "reward", _check_finite("reward", self.reward))
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise SchemaError(f"steps must be an int >= 0, got {self.steps!r}")
        _check_type("error", self.error, str, optional=True)
        _check_type("final_screenshot", self.final_screenshot, FrameRef, optional=True)
        object.__setattr__(self, "ended_at", _check_finite("ended_at", self.ended_at))
        _check_type("info", self.info, dict)
        object.__setattr__(self, "info", json_safe(self.info, "info"))

    @classmethod
    def from_json(cls, data: Any) -> "EpisodeEnd":
        kwargs = cls._kwargs(data)
        if kwargs.get("final_screenshot") is not None:
            kwargs["final_screenshot"] = FrameRef.from_json(kwargs["final_screenshot"])
        return cls(**kwargs)


__all__ = [
    "EpisodeEnd", "EpisodeMeta", "FRAME_FORMATS", "FrameRef", "OUTCOMES", "Outcome", "SCHEMA_VERSION",
    "SchemaError", "Step", "check_id", "default_code_version", "json_safe", "new_episode_id",
]
