"""The reflector's labels, step complexity and action matching (trajectories.reflect), on hand-built episodes.

``frame`` and ``record`` here are shared with the other CoT tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.actions import Action, Click, Done, Drag, Fail, Hotkey, Move, Scroll, TypeText, Wait
from tests.trajectories.helpers import make_meta, screen
from trajectories.cot import CoTConfig
from trajectories.reader import Episode, read_episode
from trajectories.store import TrajectoryStore
from trajectories.writer import WriterConfig
from trajectories.reflect import (Complexity, action_mismatch, describe_action, reflect_episode, screen_changed,
                                  step_complexity, target_box)
from trajectories.schema import Step

SIZE = (96, 64)


def frame(seed: int) -> np.ndarray:
    """A distinct 96x64 frame per seed (equal seeds give identical content)."""
    return screen(seed, SIZE)


def record(run: Path, episode_id: str, steps: Sequence[tuple[int, Action | None, dict[str, Any]]], *,
           final: int | None, outcome: str = "success", reward: float = 1.0, **meta: Any) -> Episode:
    """Write one episode into the run ``run``: ``steps`` are (frame seed, action, step fields)."""
    with TrajectoryStore(run, config=WriterConfig(fsync=False)) as store:
        writer = store.new_episode(make_meta(episode_id, **meta))
        for seed, action, fields in steps:
            writer.add_step(frame(seed), action=action, **fields)
        writer.finish(outcome, reward, final_screenshot=frame(final) if final is not None else None)
    return read_episode(run / "episodes" / episode_id)


def test_no_visible_effect_and_repeated_click_are_redundant(tmp_path: Path) -> None:
    # frames: 0 → click → 1 → click (no-op, stays 1) → 1 → same click again (now it changes) → 2 → done
    ep = record(tmp_path, "ep", [(0, Click(10, 12), {}), (1, Click(40, 30), {}), (1, Click(40, 30), {}),
                                 (2, Done(), {})], final=2)
    labels = reflect_episode(ep)
    assert [r.label for r in labels] == ["correct", "redundant", "redundant", "correct"]
    assert "no visible effect" in labels[1].why and "repeats the previous click" in labels[2].why
    assert [r.screen_changed for r in labels] == [True, False, True, False]
    # a terminal step never counts as redundant, even though the screen stays the same after it
    assert labels[3].label == "correct"


def test_repeated_keys_that_change_the_screen_are_progress(tmp_path: Path) -> None:
    ep = record(tmp_path, "keys", [(0, Hotkey(("tab",)), {}), (1, Hotkey(("tab",)), {}), (2, Done(), {})], final=2)
    assert [r.label for r in reflect_episode(ep)] == ["correct", "correct", "correct"]


def test_errors_and_failures_are_incorrect(tmp_path: Path) -> None:
    ep = record(tmp_path, "bad", [(0, Click(5, 5), {"error": "invalid action: off screen"}), (0, None,
                {"error": "unparseable reply", "raw_text": "blah"}), (0, Click(7, 7), {}), (1, Done(), {})],
                final=1, outcome="failure", reward=0.0)
    labels = reflect_episode(ep)
    assert [r.label for r in labels] == ["incorrect", "incorrect", "correct", "incorrect"]
    assert "off screen" in labels[0].why and "no valid action" in labels[1].why
    assert "ended in failure" in labels[3].why
    gave_up = record(tmp_path, "fail", [(0, Fail("stuck"), {})], final=0, outcome="infeasible", reward=0.0)
    assert reflect_episode(gave_up)[0].label == "incorrect"
    rewarded = record(tmp_path, "infeasible", [(0, Fail("cannot"), {})], final=0, outcome="infeasible", reward=1.0)
    assert reflect_episode(rewarded)[0].label == "correct"


def test_missing_final_frame_leaves_the_last_effect_unknown(tmp_path: Path) -> None:
    ep = record(tmp_path, "nofinal", [(0, Click(1, 1), {}), (1, Click(2, 2), {})], final=None, outcome="truncated")
    assert screen_changed(ep, 1) is None and reflect_episode(ep)[1].label == "correct"


def test_complexity_rewards_first_steps_typing_and_recovery(tmp_path: Path) -> None:
    ep = record(tmp_path, "cx", [(0, TypeText("hello"), {}), (1, Click(3, 3), {}), (2, Click(9, 9), {}),
                                 (2, Click(20, 20), {}), (3, Wait(1.0), {})], final=4)
    refl = reflect_episode(ep)
    scores = [step_complexity(ep, i, refl) for i in range(len(ep.steps))]
    assert scores[0].level == "high" and "first-step" in scores[0].factors        # typing first: 2 + 1.5
    assert scores[2].level == "low" and "routine-repeat" in scores[2].factors     # click after a working click
    assert "after-redundant" in scores[3].factors and scores[3].score > scores[2].score  # step 2 was a no-op
    assert scores[4].score < scores[3].score
    assert [s.budget_words for s in scores] == [int(15 + 12 * s.score) for s in scores]
    with pytest.raises(ValueError, match="complexity score"):
        Complexity(-1.0)


def test_action_mismatch_tolerance_box_and_content() -> None:
    assert action_mismatch(Click(100, 100), Click(105, 106)) is None       # 7.8 px
    assert "px from recorded" in action_mismatch(Click(100, 100), Click(110, 100))
    assert action_mismatch(Click(100, 100), Click(110, 100), box=(90, 90, 130, 120)) is None
    assert "kind click != recorded type" in action_mismatch(Click(1, 1), TypeText("a"))
    assert "text" in action_mismatch(TypeText("abc"), TypeText("abd"))
    assert "keys" in action_mismatch(Hotkey(("ctrl", "c")), Hotkey(("ctrl", "v")))
    assert "count" in action_mismatch(Click(5, 5, count=2), Click(5, 5))
    assert "dy" in action_mismatch(Scroll(5, 5, dy=3), Scroll(5, 5, dy=-3))
    assert "drag end" in action_mismatch(Drag(0, 0, 50, 50), Drag(0, 0, 90, 90))
    assert action_mismatch(Wait(2.0), Wait(1.0)) is None and action_mismatch(Done("42"), Done("42")) is None
    assert "answer" in action_mismatch(Done("41"), Done("42"))


def test_target_box_is_read_from_the_recording() -> None:
    assert target_box(Step(index=0, extra={"target_box": [1, 2, 30, 40]})) == (1, 2, 30, 40)
    assert target_box(Step(index=0, info={"target_box": [5, 5, 5, 9]})) is None  # empty box
    assert target_box(Step(index=0)) is None


def test_describe_action_names_every_kind() -> None:
    assert describe_action(Click(48, 147)) == "click at (48, 147)"
    assert describe_action(Click(1, 2, button="right", count=2)) == "double-click at (1, 2) with the right button"
    assert describe_action(Scroll(3, 4, dy=2)) == "scroll 2 notches down at (3, 4)"
    assert describe_action(TypeText("hi")) == "type 'hi'" and describe_action(Hotkey(("ctrl", "a"))) == "press ctrl+a"
    assert describe_action(Move(1, 1)).startswith("move") and describe_action(Drag(0, 0, 1, 1)).startswith("drag")
    assert describe_action(Done("x")) == "declare the task done with the answer 'x'"
    assert describe_action(Fail("no")) == "give up (no)"


def test_cot_config_validates() -> None:
    assert CoTConfig(levels=(3, 1, 2, 2)).levels == (1, 2, 3)
    with pytest.raises(ValueError, match="subset"):
        CoTConfig(levels=(4,))
    with pytest.raises(ValueError, match="thought_level"):
        CoTConfig(levels=(1, 3), thought_level=2)
    with pytest.raises(ValueError, match="tolerance_px"):
        CoTConfig(tolerance_px=-1)
