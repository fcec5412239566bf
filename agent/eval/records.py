"""Evaluation records: what one episode contributes to a report, always read back from the store.

The trajectory store is the single source of truth of an evaluation run: every item ends as
one finished episode (``DONE``) — including setup errors (zero steps, outcome
``setup_error``), hung episodes killed by the runner (outcome ``error``, ``error_kind``
``timeout``) and crashed workers (``crash``). The runner-level numbers (wall/setup/model
seconds, tokens, the evaluator's details) go into the end record's ``info["eval"]``, so a
report can be rebuilt from the run directory alone.

A worker killed mid-episode leaves steps without an end record; ``finalize_cut_episode``
rewrites them into a finished episode through the public writer API (steps, thoughts and
frames kept) with the runner's verdict as the end.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.eval.suites import EvalItem
from agent.recording import WriterRecorder
from trajectories.reader import CorruptTrajectoryError, EpisodeHeader, read_episode, read_header
from trajectories.schema import EpisodeEnd, EpisodeMeta, SchemaError
from trajectories.store import TrajectoryStore

VIEWER_PAGE = "episode.html"
#: ``error_kind`` values: why an episode ended without a fair verdict from the task.
ERROR_KINDS = ("setup", "timeout", "crash", "exception", "agent")


@dataclass(frozen=True)
class EvalRecord:
    """One episode of an evaluation, as the report lists it."""

    episode_id: str
    task_id: str
    domain: str
    feasible: bool
    seed: int | None
    outcome: str
    score: float
    success: bool
    steps: int
    wall_s: float
    setup_s: float
    model_s: float
    prompt_tokens: int
    completion_tokens: int
    error: str | None
    error_kind: str | None
    trajectory: str
    viewer: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def item_run_config(item: EvalItem, **extra: Any) -> dict[str, Any]:
    """What every episode's ``run_config`` says about its item (the report reads it back)."""
    return {"domain": item.domain, "feasible": item.feasible, "suite_kind": item.kind, **extra}


class EvalRecorder(WriterRecorder):
    """A ``WriterRecorder`` that adds runner-level numbers to the end record's ``info["eval"]``."""

    def __init__(self, writer: Any, extra: Any) -> None:
        super().__init__(writer)
        self.extra = extra  # callable () -> dict, evaluated when the episode ends

    def finish(self, end: EpisodeEnd, final_frame: np.ndarray | None) -> None:
        info = {**end.info, "eval": self.extra()}
        self.writer.finish(end.outcome, end.reward, error=end.error, final_screenshot=final_frame, info=info)


def stub_meta(item: EvalItem, *, env_name: str, policy: str, model: str, run_config: dict[str, Any]) -> EpisodeMeta:
    """Meta for an episode the runner writes itself (setup never finished, worker died)."""
    return EpisodeMeta(episode_id=item.episode_id, task_id=item.task_id, instruction=item.instruction,
                       suite=item.suite, env_name=env_name, policy=policy, model=model, seed=item.seed,
                       run_config=run_config)


def write_stub_episode(store: TrajectoryStore, meta: EpisodeMeta, outcome: str, error: str,
                       eval_info: dict[str, Any]) -> Path:
    """A finished zero-step episode (``setup_error`` / ``error``) so that no item is ever dropped."""
    writer = store.new_episode(meta)
    writer.finish(outcome, 0.0, error=error, info={"eval": eval_info})
    return writer.path


def finalize_cut_episode(store: TrajectoryStore, meta: EpisodeMeta, outcome: str, error: str,
                         eval_info: dict[str, Any]) -> Path:
    """Finish the episode ``meta.episode_id`` that a killed worker left without an end record.

    Its steps are copied into a fresh episode (same id and meta) ending with ``outcome`` /
    ``error``; a directory too damaged to read becomes a zero-step episode. Already finished
    episodes are left alone.
    """
    path = store.episodes_dir / meta.episode_id
    if (path / "DONE").is_file():
        return path
    if not path.exists():
        return write_stub_episode(store, meta, outcome, error, eval_info)
    aside = store.root / "interrupted" / f"{meta.episode_id}.{int(time.time() * 1000)}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(aside))
    try:
        cut = read_episode(aside)
    except (CorruptTrajectoryError, SchemaError, FileNotFoundError):
        return write_stub_episode(store, meta, outcome, error, eval_info)  # the damaged copy stays in interrupted/
    writer = store.new_episode(cut.meta)
    for step in cut.steps:
        frame = cut.frame(step) if step.screenshot is not None else None
        writer.add_step(frame, action=step.action, thought=step.thought, raw_text=step.raw_text, error=step.error,
                        token_ids=step.token_ids, logprobs=step.logprobs, timings=step.timings, info=step.info,
                        reward=step.reward, terminated=step.terminated, truncated=step.truncated, extra=step.extra)
    eval_info = {**eval_info, "model_s": sum(s.timings.get("model_s", 0.0) for s in cut.steps)}
    writer.finish(outcome, 0.0, error=error, info={"eval": eval_info})
    shutil.rmtree(aside)  # everything it held is in the rewritten episode now
    return writer.path


def episode_success(end: EpisodeEnd | None) -> bool:
    """The task's verdict (``info["success"]``) when the env gave one, else ``outcome == "success"``."""
    if end is None:
        return False
    flag = end.info.get("success")
    return bool(flag) if isinstance(flag, bool) else end.outcome == "success"


def record_from_header(header: EpisodeHeader, root: Path) -> EvalRecord:
    """The report row of one finished (or, if the run was cut, unfinished) episode."""
    meta, end = header.meta, header.end
    ev = dict(end.info.get("eval", {})) if end is not None else {}
    rel = Path(header.path).resolve().relative_to(root.resolve()).as_posix()
    kind = ev.get("error_kind")
    if end is not None and kind is None:
        kind = "setup" if end.outcome == "setup_error" else "exception" if end.outcome == "error" else None
    score = end.info.get("score", end.reward) if end is not None else 0.0
    return EvalRecord(
        episode_id=meta.episode_id, task_id=meta.task_id, domain=str(meta.run_config.get("domain", "")),
        feasible=bool(meta.run_config.get("feasible", True)), seed=meta.seed, outcome=header.outcome,
        score=float(score) if isinstance(score, (int, float)) else 0.0, success=episode_success(end), steps=header.steps,
        wall_s=float(ev.get("wall_s", (end.ended_at - meta.started_at) if end else 0.0)),
        setup_s=float(ev.get("setup_s", 0.0)), model_s=float(ev.get("model_s", 0.0)),
        prompt_tokens=int(ev.get("prompt_tokens", 0)), completion_tokens=int(ev.get("completion_tokens", 0)),
        error=end.error if end is not None else "episode has no end record (run cut off?)", error_kind=kind,
        trajectory=rel, viewer=f"{rel}/{VIEWER_PAGE}",
    )


def read_records(root: Path | str, items: list[EvalItem]) -> list[EvalRecord]:
    """Report rows for ``items`` of the run ``root``; items never started are left out (the caller counts them)."""
    base = Path(root)
    rows = []
    for item in items:
        path = base / "episodes" / item.episode_id
        if (path / "episode.jsonl").is_file():
            rows.append(record_from_header(read_header(path), base))
    return rows


__all__ = [
    "ERROR_KINDS",
    "VIEWER_PAGE",
    "EvalRecord",
    "EvalRecorder",
    "episode_success",
    "finalize_cut_episode",
    "item_run_config",
    "read_records",
    "record_from_header",
    "stub_meta",
    "write_stub_episode",
]
