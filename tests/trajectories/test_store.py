"""TrajectoryStore: indexing on start/finish, queries, reindex, several writer processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envs.actions import Click
from tests.trajectories.helpers import make_meta, screen
from trajectories.store import INDEX_NAME, TrajectoryStore
from trajectories.writer import WriterConfig

ROOT = Path(__file__).resolve().parents[2]


def _fill(store: TrajectoryStore) -> None:
    plan = [("a1", "task-a", "success", "m1"), ("a2", "task-a", "failure", "m1"),
            ("b1", "task-b", "success", "m2"), ("b2", "task-b", "truncated", "m1")]
    for episode_id, task, outcome, model in plan:
        with store.new_episode(make_meta(episode_id, task, model=model)) as w:
            for i in range(2):
                w.add_step(screen(i), action=Click(1, 2))
            w.finish(outcome, 1.0 if outcome == "success" else 0.0)


def test_query_filters_and_counts(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path, config=WriterConfig(fsync=False)) as store:
        _fill(store)
        assert len(store) == 4
        assert [r.episode_id for r in store.query(task="task-a")] == ["a1", "a2"]
        assert [r.episode_id for r in store.query(outcome="success")] == ["a1", "b1"]
        assert [r.episode_id for r in store.query(model="m1", outcome="truncated")] == ["b2"]
        assert store.query(task="nope") == []
        assert store.counts() == {"success": 2, "failure": 1, "truncated": 1}
        row = store.query(task="task-b", model="m2")[0]
        assert row.steps == 2 and row.reward == 1.0 and row.path == (tmp_path / "episodes" / "b1").resolve()
        assert row.ended_at is not None and row.ended_at >= row.started_at
        assert store.open("b1").meta.model == "m2"
        assert len(list(p for p in (tmp_path / "frames").iterdir())) == 2  # shared across episodes
        with pytest.raises(KeyError, match="reindex"):
            store.open("zz")


def test_running_and_crashed_episodes_are_visible(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path, config=WriterConfig(fsync=False)) as store:
        w = store.new_episode(make_meta("live"))
        w.add_step(screen(0))
        assert store.query(outcome="incomplete")[0].episode_id == "live"
        w.finish("success", 1.0)
        assert store.query(outcome="success")[0].steps == 1


def test_reindex_after_deleting_the_index(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path, config=WriterConfig(fsync=False)) as store:
        _fill(store)
        before = store.query()
    for name in (INDEX_NAME, INDEX_NAME + "-wal", INDEX_NAME + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "episodes" / "a2" / "DONE").unlink()  # headers then come from the JSONL itself
    (tmp_path / "episodes" / "junk").mkdir()
    (tmp_path / "episodes" / "junk" / "episode.jsonl").write_text("not json\nnot json\n")
    with TrajectoryStore(tmp_path) as store:  # a fresh index is rebuilt on open
        assert store.query() == before
        report = store.reindex()
        assert report.indexed == 4 and [p.name for p, _ in report.skipped] == ["junk"]
        assert store.query() == before


CHILD = """
import sys
from envs.actions import Click
from tests.trajectories.helpers import make_meta, screen
from trajectories.store import TrajectoryStore
from trajectories.writer import WriterConfig
store = TrajectoryStore(sys.argv[1], config=WriterConfig(fsync=False), busy_timeout_s=60)
for k in range(6):
    with store.new_episode(make_meta(f"p{sys.argv[2]}-{k}", f"task-{k % 2}")) as w:
        w.add_step(screen(k), action=Click(1, 1))
        w.finish("success" if k % 3 else "failure")
store.close()
"""


def test_several_writer_processes_share_one_index(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(i)], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE) for i in range(3)]
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        if p.returncode != 0:
            errors.append(err.decode()[-2000:])
    assert not errors, errors
    with TrajectoryStore(tmp_path) as store:
        assert len(store) == 18
        assert store.counts() == {"success": 12, "failure": 6}
        assert len(store.query(task="task-1")) == 9
        rebuilt = store.reindex()
        assert rebuilt.indexed == 18 and not rebuilt.skipped
