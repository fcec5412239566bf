"""Per-task success summaries and results JSON for MiniWoB++ runs (experts now, models later).

Anything with ``task``, ``seed``, ``success``, ``raw_reward``, ``steps`` and ``elapsed_s``
attributes (an ``EpisodeLike``, e.g. ``ExpertEpisode``) can be summarised; ``write_results``
stores the summary table, every episode and the run settings in one JSON file. Rendering
the table for a terminal is the CLI's job.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

#: Seeds from here on are never used by tests or expert data generation ("held-out").
HELD_OUT_SEED_BASE = 10_000


class EpisodeLike(Protocol):
    task: str
    seed: int
    success: bool
    raw_reward: float
    steps: int
    elapsed_s: float


@dataclass(frozen=True)
class TaskSummary:
    """Success statistics of one task over a set of episodes."""

    task: str
    episodes: int
    successes: int
    success_rate: float
    mean_raw_reward: float
    mean_steps: float
    mean_elapsed_s: float


def summarize(episodes: Iterable[EpisodeLike]) -> list[TaskSummary]:
    """One ``TaskSummary`` per task (in first-seen order) plus a final ``"ALL"`` row."""
    by_task: dict[str, list[EpisodeLike]] = {}
    for ep in episodes:
        by_task.setdefault(ep.task, []).append(ep)
    rows = [_summary(task, eps) for task, eps in by_task.items()]
    if rows:
        rows.append(_summary("ALL", [ep for eps in by_task.values() for ep in eps]))
    return rows


def _summary(task: str, eps: Sequence[EpisodeLike]) -> TaskSummary:
    wins = sum(1 for e in eps if e.success)
    return TaskSummary(
        task=task, episodes=len(eps), successes=wins, success_rate=wins / len(eps),
        mean_raw_reward=statistics.fmean(e.raw_reward for e in eps),
        mean_steps=statistics.fmean(e.steps for e in eps),
        mean_elapsed_s=statistics.fmean(e.elapsed_s for e in eps),
    )


def write_results(out_dir: str | Path, episodes: Sequence[Any], settings: dict[str, Any], name: str = "results.json") -> Path:
    """Write ``{"settings", "summary", "episodes"}`` to ``out_dir/name``; return the path.

    Episodes are serialised with their ``to_json()`` when they have one, else ``asdict``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "settings": settings,
        "summary": [asdict(s) for s in summarize(episodes)],
        "episodes": [ep.to_json() if hasattr(ep, "to_json") else asdict(ep) for ep in episodes],
    }
    path = out / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)  # never leave a half-written results file
    return path
