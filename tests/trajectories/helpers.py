"""Shared helpers for the trajectory tests: small synthetic screens and episodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from envs.actions import Click, Done, Drag, Scroll
from trajectories.schema import EpisodeMeta
from trajectories.writer import EpisodeWriter, WriterConfig


def screen(seed: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A deterministic RGB frame, different per seed."""
    w, h = size
    frame = np.full((h, w, 3), 240, np.uint8)
    rng = np.random.default_rng(seed)
    frame[rng.integers(0, h), :, :] = rng.integers(0, 255, 3, dtype=np.uint8)
    frame[:, seed % w, 1] = 7
    return frame


def make_meta(episode_id: str, task_id: str = "task-a", **kw: object) -> EpisodeMeta:
    fields = {"instruction": f"do {task_id}", "suite": "unit", "env_name": "fake-screen", "policy": "scripted",
              "model": "none", "seed": 0}
    fields.update(kw)
    return EpisodeMeta(episode_id=episode_id, task_id=task_id, **fields)  # type: ignore[arg-type]


def write_episode(directory: Path, episode_id: str, *, steps: int = 3, outcome: str = "success",
                  frames_dir: Path | None = None, **meta_kw: object) -> Path:
    """Write a complete small episode with click/drag/scroll actions; returns its directory."""
    path = directory / episode_id
    with EpisodeWriter(path, make_meta(episode_id, **meta_kw), frames_dir=frames_dir,
                       config=WriterConfig(fsync=False)) as w:
        actions = [Click(10, 12), Drag(5, 6, 40, 30), Scroll(20, 20, dy=3), Done()]
        for i in range(steps):
            w.add_step(screen(i), action=actions[i % len(actions)], thought=f"step {i}",
                       raw_text=f"Thought: step {i}\nAction: ...", timings={"model_s": 0.1, "env_s": 0.01})
        w.finish(outcome, 1.0 if outcome == "success" else 0.0, final_screenshot=screen(99))
    return path
