"""End to end on real MiniWoB++ episodes: collect with the expert, add a replayed episode with a repeated
no-op click, then ``pixelpilot cot`` with the offline expert teacher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.collect import CollectConfig, collect
from agent.loop import LoopConfig, run_episode
from agent.policies.replay import ReplayPolicy
from agent.recording import StoreRecorders
from envs.actions import Click, action_from_json
from trajectories.cot import REPORT_NAME
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore
from trajectories.viewer import write_episode_html

pytestmark = pytest.mark.integration
NOOP = Click(6, 6)  # on the instruction text: clicking it changes nothing


def _replay_episode(run: Path) -> str:
    """click-button seed 0 replayed as: no-op click, the same no-op click again, the expert's click."""
    from envs.miniwob.env import MiniWoBConfig, MiniWoBEnv

    expert = read_episode(run / "episodes" / "miniwob.click-button.s000000")
    good = action_from_json(expert.steps[0].action)
    policy = ReplayPolicy([NOOP, NOOP, good], model="replay-noop")
    with TrajectoryStore(run) as store, MiniWoBEnv(MiniWoBConfig(task="click-button", max_steps=5)) as env:
        recorder = StoreRecorders(store, env, policy, task_id="click-button", suite="miniwob", seed=0,
                                  episode_id="replay.click-button.s000000")
        result = run_episode(env, policy, recorder=recorder, config=LoopConfig(max_steps=5), seed=0,
                             options={"task": "click-button"})
    assert result.outcome == "success" and result.steps == 3
    return "replay.click-button.s000000"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("cot")
    run, out = root / "run", root / "cot"
    summary = collect(CollectConfig(out=str(run), tasks=("click-button", "enter-text"), episodes=2, workers=1),
                      progress=False)
    assert summary.outcomes == {"success": 4}
    replay_id = _replay_episode(run)
    assert main(["cot", "--in", str(run), "--out", str(out), "--teacher", "expert", "--levels", "1,2,3", "--quiet"]) == 0
    return run, out, replay_id


def test_expert_episodes_get_all_levels_consistent_and_labelled(synthesized: tuple[Path, Path, str]) -> None:
    run, out, replay_id = synthesized
    with TrajectoryStore(out) as store:
        episodes = {e.meta.episode_id: e for e in store.episodes()}
    assert len(episodes) == 5
    for episode_id, episode in episodes.items():
        if episode_id == replay_id:
            continue
        assert episode.meta.privileged and episode.status == "complete"
        for step in episode.steps:
            cot = step.extra["cot"]
            assert cot["consistent"] and cot["train"] and cot["reflection"]["label"] == "correct"
            assert all(cot[f"l{k}"] for k in (1, 2, 3)) and cot["l3"].startswith("<think>Observation: ")
            assert step.thought == cot["thought"] and step.extra["long_cot"] in cot["l3"]
        assert episode.end is not None and episode.end.info["summary"].startswith("Goal: ")
        assert episode.end.info["success"] is True  # the evaluator's details are kept
    focus, typing, submit = (s.extra["cot"] for s in episodes["miniwob.enter-text.s000000"].steps)
    assert typing["l1"].startswith("type(text=") and "type" in typing["thought"]
    assert typing["complexity"]["score"] > submit["complexity"]["score"]  # typing needs more reasoning
    assert "first-step" in focus["complexity"]["factors"]
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["episodes"] == 5 and report["dropped"] == 0 and report["steps"] == 11
    assert report["labels"] == {"correct": 9, "redundant": 2}


def test_repeated_noop_click_is_redundant(synthesized: tuple[Path, Path, str]) -> None:
    _, out, replay_id = synthesized
    episode = read_episode(out / "episodes" / replay_id)
    labels = [s.extra["cot"]["reflection"] for s in episode.steps]
    assert [r["label"] for r in labels] == ["redundant", "redundant", "correct"]
    assert labels[0]["screen_changed"] is False and labels[2]["screen_changed"] is True
    assert [s.extra["cot"]["train"] for s in episode.steps] == [False, False, True]
    # the step after the no-ops reflects on them and gets more reasoning than a plain click
    last = episode.steps[2].extra["cot"]
    assert "after-redundant" in last["complexity"]["factors"]
    assert "did not change the screen" in last["thought"] or "Nothing visible happened" in last["thought"]
    assert "2 step(s) redundant" in episode.end.info["summary"]  # type: ignore[union-attr]


def test_output_run_is_readable_and_viewable(synthesized: tuple[Path, Path, str]) -> None:
    run, out, replay_id = synthesized
    page = write_episode_html(out / "episodes" / replay_id)
    assert "redundant" in page.read_text()
    src = read_episode(run / "episodes" / "miniwob.enter-text.s000001")
    dst = read_episode(out / "episodes" / "miniwob.enter-text.s000001")
    assert [s.screenshot for s in src.steps] == [s.screenshot for s in dst.steps]
    assert [dst.frame(s).shape for s in dst.steps] == [(420, 320, 3)] * len(dst.steps)
    assert {p.name for p in (out / "frames").iterdir()} <= {p.name for p in (run / "frames").iterdir()}
