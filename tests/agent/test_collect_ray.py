"""Ray collection on a real local Ray instance: 2 actors, episodes shipped to the driver, resume, a killed actor."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from agent.collect import CollectConfig, WorkItem
from agent.collect_ray import RayCollectError, RayConfig, collect_ray, ingest_episode
from trajectories.store import TrajectoryStore

ROOT = Path(__file__).resolve().parents[2]
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pixelpilot[ray])")


def _actor_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("pixelpilot-ray-w*")}


def test_ray_config_validates_address() -> None:
    assert RayConfig("local").address == "local"
    assert RayConfig("ray://head.example:10001").address.startswith("ray://")
    assert RayConfig("10.1.2.3:6379").address == "10.1.2.3:6379"
    for bad in ("", "head", "http://head:80", "ray://head", "head:port"):
        with pytest.raises(ValueError, match="--ray takes"):
            RayConfig(bad)
    with pytest.raises(ValueError, match="object_store_mb"):
        RayConfig("local", object_store_mb=10)


@pytest.mark.parametrize("kind", ["traversal", "symlink", "other-episode"])
def test_ingest_rejects_foreign_archive_members(tmp_path: Path, kind: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo({"traversal": "episodes/e1/../../evil", "symlink": "episodes/e1/episode.jsonl",
                                "other-episode": "episodes/e2/episode.jsonl"}[kind])
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    with TrajectoryStore(tmp_path / "run") as store:
        with pytest.raises(RayCollectError, match="unexpected archive member"):
            ingest_episode(store, "e1", buf.getvalue())
        assert not (tmp_path / "evil").exists() and list(store.episodes_dir.iterdir()) == []


@needs_ray
@pytest.mark.integration
@pytest.mark.slow
def test_ray_collection_ships_episodes_to_the_driver_then_resume_collects_nothing(tmp_path: Path) -> None:
    before = _actor_dirs()
    config = CollectConfig(out=str(tmp_path / "run"), tasks=("click-button", "focus-text"), episodes=2, workers=2)
    summary = collect_ray(config, RayConfig("local"), progress=False)
    assert summary.collected == 4 and summary.outcomes == {"success": 4}
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "episodes").iterdir()) == sorted(i.episode_id for i in config.items())
    with TrajectoryStore(run) as store:
        rows = store.query()
        assert sorted(r.episode_id for r in rows) == sorted(i.episode_id for i in config.items())
        assert all(r.outcome == "success" and r.privileged for r in rows)
        for episode in store.episodes():
            assert episode.status == "complete" and episode.frames_dir == (run / "frames").resolve()
            frames = [frame for _, frame in episode.iter_frames()]
            assert frames and all(f.shape == (420, 320, 3) for f in frames)
    saved = json.loads((run / "collect.json").read_text())
    assert saved["ray"]["workers"] == 2 and saved["worker_crashes"] == []
    assert {e["worker"] for e in saved["episodes"]} == {0, 1}
    assert _actor_dirs() == before  # actors removed their private run directories

    cmd = [sys.executable, "-m", "agent.cli", "collect", "--tasks", "click-button,focus-text", "--episodes", "2",
           "--workers", "2", "--ray", "local", "--resume", "--out", str(run)]
    out = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    again = json.loads((run / "collect.json").read_text())["summary"]
    assert again["collected"] == 0 and again["skipped_done"] == 4
    assert len(list((run / "episodes").iterdir())) == 4


@needs_ray
@pytest.mark.integration
@pytest.mark.slow
def test_killed_actor_is_recorded_replaced_and_its_item_requeued_once(tmp_path: Path) -> None:
    from agent.collect_ray import _Driver, _RaySession

    config = CollectConfig(out=str(tmp_path / "run"), tasks=("click-button",), episodes=1, workers=1)
    item = WorkItem("miniwob", "click-button", 0)
    with TrajectoryStore(config.out) as store, _RaySession(RayConfig("local"), num_cpus=1) as ray:
        driver = _Driver(ray, config, store, 1, on_result=lambda record: None)
        try:
            os.kill(ray.get(driver.actors[0].pid.remote()), signal.SIGKILL)
            driver.run([item])
        finally:
            driver.close()
        assert [c["actor_died"] for c in driver.crashes] == [True]
        assert driver.crashes[0]["item"]["task"] == "click-button"
        assert [r["outcome"] for r in driver.records] == ["success"]
        assert [r.episode_id for r in store.query()] == [item.episode_id]


@needs_ray
@pytest.mark.integration
def test_actor_that_cannot_build_its_env_ends_as_error_outcome_after_one_retry(tmp_path: Path) -> None:
    config = CollectConfig(out=str(tmp_path / "run"), tasks=("click-button",), episodes=1, workers=1,
                           env_kwargs={"no_such_option": 1})
    summary = collect_ray(config, RayConfig("local"), progress=False)
    assert summary.collected == 1 and summary.outcomes == {"error": 1}
    saved = json.loads((tmp_path / "run" / "collect.json").read_text())
    assert len(saved["worker_crashes"]) == 2 and all(c["actor_died"] for c in saved["worker_crashes"])
    assert "no_such_option" in saved["episodes"][0]["error"]
