"""Eval building blocks without a browser: suite specs, env/policy choice, records, report figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.eval.policies import MeteredPolicy, NoopPolicy, PolicySpec, RandomClickPolicy
from agent.eval.records import EvalRecord, finalize_cut_episode, read_records, stub_meta
from agent.eval.report import build_report, group_stats, render_html, render_markdown
from agent.eval.runner import EvalConfig, env_kind_for
from agent.eval.suites import EvalItem, Suite, resolve_suite
from agent.policy import PolicyInput
from envs.actions import Click, Done
from envs.observation import Observation
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore

OSWORLD = Path("/work/shared/osworld")


def test_miniwob_specs_use_held_out_seeds_and_deterministic_ids() -> None:
    suite = resolve_suite("miniwob:click-button,enter-text", episodes=3)
    assert [(i.task_id, i.seed) for i in suite.items][:3] == [("click-button", 10000), ("click-button", 10001),
                                                               ("click-button", 10002)]
    assert suite.items[0].episode_id == "miniwob.click-button.s010000"
    assert suite.default_env == "browser" and len(suite.items) == 6
    assert resolve_suite("miniwob:click-button", seed_start=5).items[0].seed == 5
    assert len(resolve_suite("miniwob:all").items) > len(resolve_suite("miniwob").items) > 10
    with pytest.raises(Exception, match="click-buton"):
        resolve_suite("miniwob:click-buton")


@pytest.mark.skipif(not OSWORLD.is_dir(), reason="needs the OSWorld task files in /work/shared/osworld")
def test_a_task_list_longer_than_a_file_name_is_still_a_filter() -> None:
    from envs.miniwob.experts import EXPERTS

    spec = "miniwob:" + ",".join(sorted(EXPERTS))
    assert len(spec) > 255  # longer than a file name may be
    suite = resolve_suite(spec)
    assert sorted(i.task_id for i in suite.items) == sorted(EXPERTS)


def test_osworld_index_dir_file_and_filter() -> None:
    small = resolve_suite(str(OSWORLD / "test_small.json"))
    assert len(small.items) == 39 and small.kind == "osworld" and small.default_env == "desktop"
    assert {i.domain for i in small.items} >= {"chrome", "os"}
    assert all(Path(i.task_path).is_file() for i in small.items)
    infeasible = resolve_suite(str(OSWORLD / "test_infeasible.json"))
    assert not any(i.feasible for i in infeasible.items)
    one = small.items[0]
    only = resolve_suite(f"{OSWORLD / 'test_small.json'}:{one.task_id}", episodes=2)
    assert [i.task_id for i in only.items] == [one.task_id] * 2 and only.items[1].seed == 1
    assert only.items[0].load_task().id == one.task_id
    assert resolve_suite(one.task_path).items[0].task_id == one.task_id
    assert len(resolve_suite(str(OSWORLD / "examples" / "os")).items) == 24
    with pytest.raises(ValueError, match="not in"):
        resolve_suite(f"{OSWORLD / 'test_small.json'}:no-such-task")


def test_env_and_policy_choice_errors_say_what_to_do() -> None:
    miniwob = resolve_suite("miniwob:click-button")
    assert env_kind_for(miniwob, None) == "browser"
    with pytest.raises(ValueError, match="--env browser"):
        env_kind_for(miniwob, "desktop")
    from agent.factory import ENV_FACTORIES

    osworld = Suite("x", "osworld", "mem", (EvalItem("x", "osworld", "t", 0, task_path="/nonexistent.json"),))
    for kind in ("docker", "vm"):
        with pytest.raises(ValueError, match="not available yet" if kind not in ENV_FACTORIES else "desktop"):
            env_kind_for(osworld, kind)
    with pytest.raises(ValueError, match="--env desktop"):
        env_kind_for(osworld, "browser")
    assert env_kind_for(osworld, None) == "desktop"
    with pytest.raises(ValueError, match="--model"):
        PolicySpec.parse(None)
    with pytest.raises(ValueError, match="replay needs"):
        PolicySpec.parse("replay:/nonexistent")
    with pytest.raises(ValueError, match="unknown policy"):
        PolicySpec.parse("genius")
    assert PolicySpec.parse(None, "http://127.0.0.1:1/v1").label == "model:http://127.0.0.1:1/v1"
    with pytest.raises(ValueError, match="--env"):
        EvalConfig(suite="miniwob", out="x", env="cloud")


def test_baseline_policies_and_metering() -> None:
    obs = Observation(screenshot=np.zeros((40, 60, 3), np.uint8), instruction="x")
    inp = PolicyInput("x", obs)
    assert NoopPolicy().act(inp).actions == (Done(),)
    a, b = RandomClickPolicy(7), RandomClickPolicy(7)
    first = [a.act(inp).actions[0] for _ in range(5)]
    assert first == [b.act(inp).actions[0] for _ in range(5)]
    assert all(isinstance(c, Click) and 0 <= c.x < 60 and 0 <= c.y < 40 for c in first)
    a.reset("x")
    assert a.act(inp).actions[0] == first[0]  # reset replays the same sequence
    metered = MeteredPolicy(NoopPolicy())
    metered.reset("x")
    metered.act(inp)
    assert metered.usage["calls"] == 1 and metered.name == "noop"


def _record(task: str, domain: str, outcome: str, success: bool, feasible: bool = True, kind: str | None = None) -> EvalRecord:
    return EvalRecord(f"s.{task}", task, domain, feasible, 0, outcome, float(success), success, 3, 2.0, 0.5, 1.0,
                      10, 5, None, kind, f"episodes/s.{task}", f"episodes/s.{task}/episode.html")


def test_group_stats_separate_setup_errors_and_count_crashes_as_failures() -> None:
    records = [_record("a", "os", "success", True), _record("b", "os", "setup_error", False, kind="setup"),
               _record("c", "chrome", "error", False, kind="crash"), _record("d", "chrome", "error", False, kind="timeout")]
    g = group_stats(records)
    assert (g["episodes"], g["evaluated"], g["successes"]) == (4, 3, 1)
    assert g["success_rate"] == pytest.approx(1 / 3) and g["success_rate_all"] == pytest.approx(1 / 4)
    assert (g["setup_errors"], g["crashes"], g["timeouts"]) == (1, 1, 1)
    assert g["prompt_tokens"] == 40 and g["outcomes"] == {"error": 2, "setup_error": 1, "success": 1}
    assert group_stats([])["success_rate"] is None


def test_cut_episode_is_finished_with_its_steps_and_reported(tmp_path: Path) -> None:
    item = EvalItem("miniwob", "miniwob", "click-button", 10000, domain="miniwob")
    other = EvalItem("miniwob", "miniwob", "enter-text", 10000, domain="miniwob")
    store = TrajectoryStore(tmp_path)
    meta = stub_meta(item, env_name="miniwob", policy="p", model="m", run_config={"domain": "miniwob", "feasible": True})
    writer = store.new_episode(meta)
    frame = np.full((20, 30, 3), 7, np.uint8)
    for _ in range(2):
        writer.add_step(frame, action=Click(3, 4), thought="t", timings={"model_s": 0.25})
    writer.flush()  # a worker killed now leaves two steps and no end record
    finalize_cut_episode(store, meta, "error", "timeout: no result after 5 s", {"error_kind": "timeout", "wall_s": 5.0})
    ep = read_episode(tmp_path / "episodes" / item.episode_id)
    assert ep.status == "complete" and ep.outcome == "error" and len(ep.steps) == 2
    assert np.array_equal(ep.frame(ep.steps[1]), frame) and ep.end.info["eval"]["model_s"] == 0.5
    report = build_report(tmp_path, [item, other], {"suite": "t"})
    (row,) = report["episodes"]
    assert row["error_kind"] == "timeout" and row["success"] is False and row["steps"] == 2
    assert report["not_run"] == [other.episode_id] and report["summary"]["timeouts"] == 1
    assert "timeout" in render_markdown(report) and 'href="episodes/miniwob.click-button.s010000/episode.html"' in render_html(report)
    json.dumps(report)
    assert read_records(tmp_path, [other]) == []


def test_resume_redoes_cut_off_and_interrupted_episodes_only(tmp_path: Path) -> None:
    from agent.collect import split_pending

    items = [EvalItem("miniwob", "miniwob", "click-button", s) for s in (10000, 10001, 10002, 10003)]
    store = TrajectoryStore(tmp_path)
    frame = np.zeros((8, 8, 3), np.uint8)
    for item, outcome in zip(items, ("failure", "interrupted", None)):
        writer = store.new_episode(stub_meta(item, env_name="e", policy="p", model="m", run_config={}))
        writer.add_step(frame, action=Click(1, 1))
        if outcome is None:
            writer.flush()  # cut off: no end record
        else:
            writer.finish(outcome)
    with pytest.raises(FileExistsError, match="--resume"):
        split_pending(tmp_path, items, resume=False)
    todo, done, moved = split_pending(tmp_path, items, resume=True)
    assert [i.seed for i in todo] == [10001, 10002, 10003] and (done, moved) == (1, 2)
    assert len(list((tmp_path / "interrupted").iterdir())) == 2
