"""synthesize_run on hand-built runs: levels, labels, the consistency filter, frames reused, resume, report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.teachers import ExpertRationaleTeacher, NativeSyntax
from envs.actions import Click, Done, TypeText
from tests.trajectories.helpers import make_meta
from tests.trajectories.test_cot_reflect import frame, record
from trajectories.cot import (REPORT_NAME, CoTConfig, SummaryRequest, TeacherReply, TeacherRequest, synthesize_run,
                             thought_mismatch)
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore
from trajectories.viewer import write_episode_html, write_run_html

RATIONALE = 'The instruction asks for the "okay" button. The page shows <button> "okay" at (40, 30), so I click there.'


def _source(run: Path) -> None:
    """Two episodes: a clean one, and one with a no-op click and a failed done."""
    record(run, "clean", [(0, TypeText("hello"), {"thought": "The text field is focused and empty; I type 'hello'."}),
                          (1, Click(40, 30), {"thought": RATIONALE, "extra": {"parse_retries": 0}}),
                          (2, Done(), {"thought": "The form is submitted."})], final=3, privileged=True)
    record(run, "messy", [(0, Click(10, 10), {}), (1, Click(50, 50), {}), (1, Done(), {})],
           final=1, outcome="failure", reward=0.0)


@dataclass(frozen=True)
class ElsewhereTeacher:
    """A teacher whose thought leads somewhere else: it clicks 40 px right of every recorded click."""

    name: str = "elsewhere"

    def think(self, request: TeacherRequest) -> TeacherReply:
        action = request.action
        text = f"click(x={action.x + 40}, y={action.y})" if isinstance(action, Click) else request.action_text
        return TeacherReply("a page", "I click to the right of the button.", text, raw=text)

    def summarize(self, request: SummaryRequest) -> str:
        return f"{len(request.steps)} steps"


def test_expert_teacher_writes_every_level_label_and_summary(tmp_path: Path) -> None:
    _source(tmp_path / "in")
    report = synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(),
                            CoTConfig(progress=False))
    assert (report.episodes, report.steps, report.kept, report.dropped) == (2, 6, 6, 0)
    assert report.labels == {"correct": 4, "redundant": 1, "incorrect": 1}
    assert report.train == 4 and report.lengths["l3"]["mean"] > report.lengths["l2"]["mean"] > report.lengths["l1"]["mean"]
    assert json.loads((tmp_path / "out" / REPORT_NAME).read_text())["kept"] == 6
    clean = read_episode(tmp_path / "out" / "episodes" / "clean")
    for step in clean.steps:
        cot = step.extra["cot"]
        assert cot["consistent"] and cot["teacher"] == "expert-rationale" and cot["reflection"]["label"] == "correct"
        assert cot["l1"] == cot["action_text"] and cot["l2"].endswith("\n" + cot["l1"])
        assert cot["l3"].startswith("<think>Observation: ") and step.thought == cot["thought"]
        assert step.extra["long_cot"].startswith("Observation: ") and step.extra.get("parse_retries", 0) == 0
    click = clean.steps[1].extra["cot"]
    assert click["l1"] == "click(x=40, y=30)" and '"okay" button' in click["thought"]
    assert "<button>" in click["observation"]
    assert clean.end is not None and clean.end.info["summary"].startswith("Goal: do task-a")
    assert clean.end.info["cot"] == {"teacher": "expert-rationale", "kept": 3, "dropped": 0, "labels": {"correct": 3}}
    messy = read_episode(tmp_path / "out" / "episodes" / "messy")
    assert [s.extra["cot"]["reflection"]["label"] for s in messy.steps] == ["correct", "redundant", "incorrect"]
    assert [s.extra["cot"]["train"] for s in messy.steps] == [True, False, False]
    assert "did not change the screen" in messy.steps[2].extra["cot"]["thought"] or \
        "Nothing visible happened" in messy.steps[2].extra["cot"]["thought"]
    assert "1 step(s) redundant and 1 incorrect" in messy.end.info["summary"]


def test_records_frames_and_index_are_carried_over(tmp_path: Path) -> None:
    _source(tmp_path / "in")
    synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(), CoTConfig(progress=False))
    src, out = (read_episode(tmp_path / r / "episodes" / "clean") for r in ("in", "out"))
    assert out.meta.run_config["cot"]["teacher"] == "expert-rationale"
    assert out.meta.episode_id == src.meta.episode_id and out.meta.privileged and out.meta.started_at == src.meta.started_at
    for a, b in zip(src.steps, out.steps):
        assert (a.action, a.screenshot, a.timings, a.reward) == (b.action, b.screenshot, b.timings, b.reward)
    assert out.end is not None and src.end is not None and out.end.final_screenshot == src.end.final_screenshot
    # frames are hard links of the source files (same inode), not re-encoded copies
    ref = src.steps[0].screenshot
    assert (tmp_path / "out" / "frames" / ref.filename).stat().st_ino == (tmp_path / "in" / "frames" / ref.filename).stat().st_ino
    with TrajectoryStore(tmp_path / "out") as store:
        assert {r.episode_id: r.outcome for r in store.query()} == {"clean": "success", "messy": "failure"}
        assert "clean" in write_run_html(store).read_text()
    html = write_episode_html(tmp_path / "out" / "episodes" / "clean").read_text()
    assert "long_cot" in html and "Observation:" in html and "expert-rationale" in html


def test_inconsistent_teacher_is_filtered_and_reported(tmp_path: Path) -> None:
    _source(tmp_path / "in")
    report = synthesize_run(tmp_path / "in", tmp_path / "out", ElsewhereTeacher(), NativeSyntax(),
                            CoTConfig(progress=False))
    assert report.steps == 6 and report.dropped == 3 and report.kept == 3  # the three clicks; type/done kept
    assert report.drop_reasons == {"different action": 3}
    clean = read_episode(tmp_path / "out" / "episodes" / "clean")
    bad = clean.steps[1]
    cot = bad.extra["cot"]
    assert not cot["consistent"] and not cot["train"] and "px from recorded" in cot["mismatch"]
    assert cot["teacher_action"] == {"kind": "click", "x": 80, "y": 30, "button": "left", "count": 1}
    assert "l2" not in cot and "long_cot" not in bad.extra and bad.thought == RATIONALE  # recorded thought kept
    assert clean.steps[0].extra["cot"]["consistent"] and clean.end.info["cot"]["dropped"] == 1
    # a wide tolerance lets the same teacher through
    wide = synthesize_run(tmp_path / "in", tmp_path / "wide", ElsewhereTeacher(), NativeSyntax(),
                          CoTConfig(progress=False, tolerance_px=50))
    assert wide.dropped == 0


def test_levels_choose_what_is_written(tmp_path: Path) -> None:
    _source(tmp_path / "in")
    synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(),
                   CoTConfig(levels=(1,), thought_level=1, progress=False))
    step = read_episode(tmp_path / "out" / "episodes" / "clean").steps[1]
    assert step.thought is None and "l1" in step.extra["cot"] and "l2" not in step.extra["cot"]
    assert "long_cot" not in step.extra
    synthesize_run(tmp_path / "in", tmp_path / "l3", ExpertRationaleTeacher(), NativeSyntax(),
                   CoTConfig(levels=(3,), thought_level=3, progress=False))
    step = read_episode(tmp_path / "l3" / "episodes" / "clean").steps[1]
    assert step.thought is not None and step.thought.startswith("Observation: ") and "l1" not in step.extra["cot"]


def test_existing_output_resume_and_incomplete_sources(tmp_path: Path) -> None:
    _source(tmp_path / "in")
    with TrajectoryStore(tmp_path / "in") as store:  # an episode whose writer died: no end record
        writer = store.new_episode(make_meta("cut"))
        writer.add_step(frame(0), action=Click(1, 1))
        writer.flush()
    synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(), CoTConfig(progress=False))
    with pytest.raises(FileExistsError, match="--resume"):
        synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(), CoTConfig(progress=False))
    (tmp_path / "out" / "episodes" / "messy" / "DONE").unlink()  # as if cut off mid-episode
    again = synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(),
                           CoTConfig(progress=False, resume=True))
    assert (again.episodes, again.skipped_done, again.skipped_incomplete) == (1, 1, 1)
    assert read_episode(tmp_path / "out" / "episodes" / "messy").status == "complete"
    with pytest.raises(ValueError, match="new run directory"):
        synthesize_run(tmp_path / "in", tmp_path / "in", ExpertRationaleTeacher(), NativeSyntax(), CoTConfig())
    with pytest.raises(FileNotFoundError, match="not a trajectory run"):
        synthesize_run(tmp_path / "nothing", tmp_path / "x", ExpertRationaleTeacher(), NativeSyntax(), CoTConfig())


def test_thought_length_follows_complexity(tmp_path: Path) -> None:
    # typing first (high), a routine click (low), a click after a no-op (medium/high)
    record(tmp_path / "in", "cx", [(0, TypeText("abc"), {"thought": "The field is focused; I type 'abc'."}),
                                   (1, Click(5, 5), {"thought": RATIONALE}), (2, Click(30, 30), {"thought": RATIONALE}),
                                   (2, Click(60, 40), {"thought": RATIONALE}), (3, Done(), {})], final=3)
    report = synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(),
                            CoTConfig(progress=False))
    steps = read_episode(tmp_path / "out" / "episodes" / "cx").steps
    words = {s.index: len(s.extra["cot"]["thought"].split()) for s in steps}
    levels = {s.index: s.extra["cot"]["complexity"]["level"] for s in steps}
    assert levels[0] == "high" and levels[2] == "low"
    assert words[0] > words[2] and words[3] > words[2]
    assert report.complexity["high"]["mean"] > report.complexity["low"]["mean"]


def test_a_thought_that_types_other_text_than_the_action_is_dropped(tmp_path: Path) -> None:
    # as after password redaction: the recorded rationale quotes the secret, the action holds the marker
    record(tmp_path / "in", "pw", [(0, TypeText("[REDACTED]"), {"thought": "The password field is focused; I type 'AU'."}),
                                   (1, Done(), {})], final=2)
    report = synthesize_run(tmp_path / "in", tmp_path / "out", ExpertRationaleTeacher(), NativeSyntax(),
                            CoTConfig(progress=False))
    assert report.drop_reasons == {"thought contradicts action": 1} and report.kept == 1
    cot = read_episode(tmp_path / "out" / "episodes" / "pw").steps[0].extra["cot"]
    assert "types 'AU' but the recorded action types '[REDACTED]'" in cot["mismatch"] and not cot["train"]
    assert thought_mismatch("I type 'abc', typing \"abc\".", TypeText("abc")) is None
    assert thought_mismatch("I type 'Bob\\n'.", TypeText("Bob\n")) is None  # the rationale's repr of a newline
    assert thought_mismatch("I type 'abc'.", Click(1, 1)) is None
