"""Score a finished episode: postconfig steps, getters, metrics, ``conj`` — OSWorld's rules, typed.

Order and semantics (OSWorld ``DesktopEnv.evaluate``):
1. ``postconfig`` steps run first (through ``run_setup``, so they have postconditions); a
   failure gives status ``postconfig_error`` (score 0, not the agent's fault).
2. ``infeasible`` tasks score 1 only when the agent's last action was ``Fail``; a feasible
   task whose last action was ``Fail`` scores 0 without running getters.
3. A single metric's score is the task score. A list of metrics is combined with ``conj``:
   "and" (default) returns 0 as soon as one metric scores 0, else the mean; "or" returns 1
   as soon as one scores 1, else the max.
4. A getter that finds no file (``FileNotFoundError``) makes that metric score 0. Any other
   error (unsupported controller call, missing mirror file, broken rule) gives status
   ``eval_error``: the score is 0 and the error is reported — the episode is never dropped.

Scores are floats; ``success`` is ``score >= threshold`` (``DEFAULT_SUCCESS_THRESHOLD`` =
1 - 1e-9, i.e. full marks; pass another threshold to count partial scores).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from envs.actions import Action, Fail
from envs.errors import PixelPilotError
from envs.tasks.errors import SetupError
from envs.tasks.getters import GETTERS, EvalContext, run_getter
from envs.tasks.metrics import METRICS, get_metric
from envs.tasks.model import Evaluator, MetricCall
from envs.tasks.setup_runner import SetupContext, run_setup

DEFAULT_SUCCESS_THRESHOLD = 1.0 - 1e-9
EvalStatus = Literal["scored", "unsupported", "postconfig_error", "eval_error"]


@dataclass(frozen=True)
class MetricRecord:
    """One metric call: its score, or the error that stopped it."""

    func: str
    score: float | None
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class EvalResult:
    score: float
    success: bool
    feasible: bool
    status: EvalStatus
    records: tuple[MetricRecord, ...] = ()
    error: str | None = None
    threshold: float = DEFAULT_SUCCESS_THRESHOLD

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "success": self.success, "feasible": self.feasible, "status": self.status,
                "error": self.error, "threshold": self.threshold,
                "records": [{"func": r.func, "score": r.score, "error": r.error, "duration_s": r.duration_s}
                            for r in self.records]}


class _EvalFailure(Exception):
    """Internal: an error that makes the whole evaluation ``eval_error``."""


def missing_pieces(evaluator: Evaluator) -> list[str]:
    """``metric:NAME`` / ``getter:NAME`` entries this evaluator needs but the registries lack."""
    missing: list[str] = []
    for call in evaluator.calls:
        if call.func not in METRICS:
            missing.append(f"metric:{call.func}")
        for spec in (call.result, call.expected):
            if spec is not None and spec.type not in GETTERS:
                missing.append(f"getter:{spec.type}")
    return list(dict.fromkeys(missing))


def _score_call(call: MetricCall, ctx: EvalContext) -> MetricRecord:
    t0 = time.monotonic()
    metric = get_metric(call.func)
    try:
        result = run_getter(ctx, call.result) if call.result is not None else None
        expected = run_getter(ctx, call.expected) if call.expected is not None else None
    except FileNotFoundError as exc:
        return MetricRecord(call.func, 0.0, f"file not found: {exc}", time.monotonic() - t0)
    except (PixelPilotError, OSError, ValueError, KeyError, TypeError) as exc:
        raise _EvalFailure(f"{call.func}: getter failed: {type(exc).__name__}: {exc}") from exc
    if metric.needs_expected and call.expected is None:
        raise _EvalFailure(f"{call.func} needs an 'expected' getter; the task file has none")
    try:
        score = float(metric.fn(result, expected, call.options))
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise _EvalFailure(f"{call.func}: metric failed: {type(exc).__name__}: {exc}") from exc
    return MetricRecord(call.func, score, None, time.monotonic() - t0)


def _combine(evaluator: Evaluator, ctx: EvalContext) -> tuple[float, list[MetricRecord]]:
    records: list[MetricRecord] = []
    if not evaluator.is_list:
        rec = _score_call(evaluator.calls[0], ctx)
        return float(rec.score or 0.0), [rec]
    for call in evaluator.calls:
        rec = _score_call(call, ctx)
        records.append(rec)
        score = float(rec.score or 0.0)
        if evaluator.conj == "and" and score == 0.0:
            return 0.0, records
        if evaluator.conj == "or" and score == 1.0:
            return 1.0, records
    scores = [float(r.score or 0.0) for r in records]
    return (sum(scores) / len(scores) if evaluator.conj == "and" else max(scores)), records


def evaluate(evaluator: Evaluator, ctx: EvalContext, last_action: Action | None, *,
             threshold: float = DEFAULT_SUCCESS_THRESHOLD, sleep_scale: float = 1.0) -> EvalResult:
    """Score an episode whose last action was ``last_action`` (``None`` if it took none)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    feasible = not evaluator.infeasible

    def result(score: float, status: EvalStatus, records: list[MetricRecord] | None = None, error: str | None = None) -> EvalResult:
        return EvalResult(score, status == "scored" and score >= threshold, feasible, status,
                          tuple(records or ()), error, threshold)

    missing = missing_pieces(evaluator)
    if missing:
        return result(0.0, "unsupported", error="not implemented here: " + ", ".join(missing))
    try:
        run_setup(evaluator.postconfig, ctx.controller, SetupContext(ctx.cache_dir, ctx.fetch, sleep_scale))
    except SetupError as exc:
        return result(0.0, "postconfig_error", error=str(exc))
    gave_up = isinstance(last_action, Fail)
    if not feasible:
        return result(1.0 if gave_up else 0.0, "scored")
    if gave_up:
        return result(0.0, "scored", error="the agent ended with fail on a feasible task")
    try:
        score, records = _combine(evaluator, ctx)
    except _EvalFailure as exc:
        return result(0.0, "eval_error", error=str(exc))
    return result(score, "scored", records)
