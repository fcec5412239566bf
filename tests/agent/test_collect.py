"""Collection: parallel workers, resume, and a collector SIGKILLed mid-episode."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.collect import CollectConfig, collect, pending_items
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _episode_dirs(run: Path) -> list[Path]:
    return sorted(p for p in (run / "episodes").iterdir() if p.is_dir())


def test_parallel_collection_then_resume_skips_finished(tmp_path: Path) -> None:
    config = CollectConfig(out=str(tmp_path / "run"), tasks=("click-button", "focus-text"), episodes=2, workers=2)
    summary = collect(config, progress=False)
    assert summary.collected == 4 and summary.outcomes == {"success": 4}
    store = TrajectoryStore(config.out)
    rows = store.query()
    assert sorted(r.episode_id for r in rows) == sorted(i.episode_id for i in config.items())
    assert all(r.privileged and r.policy == "expert" for r in rows)
    episode = read_episode(_episode_dirs(tmp_path / "run")[0])
    assert episode.steps[0].thought and episode.steps[0].action["kind"] == "click"
    again = collect(CollectConfig(**{**config.__dict__, "resume": True}), progress=False)
    assert again.collected == 0 and again.skipped_done == 4
    with pytest.raises(FileExistsError, match="--resume"):
        pending_items(config)


def test_sigkilled_collector_leaves_readable_steps_and_resume_finishes_without_duplicates(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "agent.cli", "collect", "--tasks", "login-user,enter-password", "--episodes", "3",
           "--workers", "1", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = None
    deadline = time.monotonic() + 240
    try:
        while partial is None and proc.poll() is None and time.monotonic() < deadline:
            if (run / "episodes").is_dir():
                done = [d for d in _episode_dirs(run) if (d / "DONE").exists()]
                for d in _episode_dirs(run):
                    lines = (d / "episode.jsonl").read_bytes().count(b"\n") if (d / "episode.jsonl").exists() else 0
                    if done and not (d / "DONE").exists() and lines >= 2:  # meta + at least one step
                        partial = d
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert partial is not None, "the collector finished before it could be killed mid-episode"
    cut = read_episode(partial)
    assert cut.status == "incomplete" and len(cut.steps) >= 1
    for step, frame in cut.iter_frames():
        assert frame.shape == (420, 320, 3)
    finished_before = [d.name for d in _episode_dirs(run) if (d / "DONE").exists()]
    for d in finished_before:
        assert read_episode(run / "episodes" / d).status == "complete"

    out = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    dirs = _episode_dirs(run)
    assert len(dirs) == 6 and all((d / "DONE").exists() for d in dirs)
    assert sorted(d.name for d in dirs) == sorted({d.name for d in dirs})
    assert (run / "interrupted").is_dir() and len(list((run / "interrupted").iterdir())) == 1
    rows = TrajectoryStore(run).query()
    assert len(rows) == 6 and len({r.episode_id for r in rows}) == 6
    summary = json.loads((run / "collect.json").read_text())["summary"]
    assert summary["skipped_done"] == len(finished_before) and summary["requeued_partial"] == 1
