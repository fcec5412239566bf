"""``pixelpilot view`` / ``pixelpilot traj`` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from tests.trajectories.helpers import write_episode
from trajectories.store import TrajectoryStore


def test_view_traj_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    with TrajectoryStore(run):
        pass
    write_episode(run / "episodes", "ok", steps=2, frames_dir=run / "frames")
    write_episode(run / "episodes", "bad", steps=3, outcome="failure", frames_dir=run / "frames")
    assert main(["traj", "reindex", str(run)]) == 0
    assert "indexed 2 episodes" in capsys.readouterr().out
    assert main(["traj", "ls", str(run), "--outcome", "failure", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["episode_id"], r["steps"]) for r in rows] == [("bad", 3)]
    assert main(["traj", "show", str(run / "episodes" / "bad")]) == 0
    assert '"kind": "drag"' in capsys.readouterr().out
    assert main(["view", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "index.html")
    assert (run / "episodes" / "ok" / "index.html").is_file()
    out = tmp_path / "one.html"
    assert main(["view", str(run / "episodes" / "ok"), "--out", str(out), "--inline"]) == 0
    assert "data:image/png;base64," in out.read_text()
    assert main(["traj", "export", str(run), "--out", str(tmp_path / "s.parquet")]) == 0
    assert "wrote 5 steps of 2 episodes" in capsys.readouterr().out
    assert main(["view", str(tmp_path)]) == 2
