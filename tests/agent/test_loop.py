"""The agent loop on a real browser page: parsing, retries, budget, errors as data, risk, recording."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.loop import LoopConfig, run_episode
from agent.policies.replay import ReplayPolicy
from agent.policy import PolicyError, PolicyInput, PolicyReply
from agent.recording import StoreRecorders
from agent.risk import REDACTED, RiskConfig, classify_risk
from envs.actions import Click, Done, Hotkey, TypeText, Wait
from envs.observation import Observation
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore

pytestmark = pytest.mark.integration


class TextPolicy:
    """Stands in for a language model: returns the given replies in order (native format)."""

    name = "scripted-text"
    model = "scripted"
    privileged = False
    output_format = "native"

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.inputs: list[PolicyInput] = []

    def reset(self, instruction: str) -> None:
        pass

    def act(self, inp: PolicyInput) -> PolicyReply:
        self.inputs.append(inp)
        if not self.replies:
            raise PolicyError("out of replies")
        return PolicyReply(text=self.replies.pop(0))


def _record(store: TrajectoryStore, env, policy):  # type: ignore[no-untyped-def]
    factory = StoreRecorders(store, env, policy, task_id="t")
    return factory, factory.made


def test_replay_clicks_the_button_and_records_every_step(browser, page_url: str, tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path / "run")
    policy = ReplayPolicy([Click(360, 230), Done("ok")])
    factory, made = _record(store, browser, policy)
    result = run_episode(browser, policy, recorder=factory, options={"url": page_url}, instruction="press go")
    assert result.outcome == "success" and result.steps == 2
    assert browser.evaluate("window.clicks") == 1
    episode = read_episode(made[0].path)
    assert episode.status == "complete" and episode.outcome == "success"
    assert [s.action["kind"] for s in episode.steps] == ["click", "done"]
    assert episode.frame(episode.steps[0]).shape == (400, 640, 3)
    assert store.query(outcome="success")[0].steps == 2


def test_unparseable_reply_is_retried_with_feedback(browser, page_url: str) -> None:
    policy = TextPolicy(["I think I should click", "click(x=360, y=230)", "done()"])
    steps = []
    result = run_episode(browser, policy, options={"url": page_url}, instruction="press go", on_step=steps.append)
    assert result.outcome == "success"
    assert steps[0].extra["parse_retries"] == 1 and steps[0].error is None
    retry_input = policy.inputs[1]
    assert retry_input.feedback and "could not be parsed" in retry_input.feedback
    assert retry_input.rejected_text == "I think I should click"


def test_hopeless_replies_become_error_steps_and_the_budget_truncates(browser, page_url: str) -> None:
    policy = TextPolicy(["nonsense"] * 2 + ["wait(seconds=0)"] * 5)
    steps = []
    config = LoopConfig(max_steps=3, max_parse_retries=1)
    result = run_episode(browser, policy, options={"url": page_url}, instruction="x", config=config, on_step=steps.append)
    assert result.outcome == "truncated" and result.steps == 3
    assert steps[0].action is None and "unparseable" in steps[0].error
    assert steps[1].action == {"kind": "wait", "seconds": 0.0} and steps[2].truncated


def test_invalid_actions_are_recorded_and_shown_to_the_model(browser, page_url: str) -> None:
    policy = TextPolicy(['hotkey(keys=["hyperdrive"])', "done()"])
    steps = []
    result = run_episode(browser, policy, options={"url": page_url}, instruction="x", on_step=steps.append)
    assert result.outcome == "success"
    # An unknown key is a parse-level error: fed back, then the model recovered with done().
    assert steps[0].extra["parse_retries"] == 1 and steps[0].action == {"kind": "done", "answer": None}


def test_off_screen_click_is_an_error_step_not_a_crash(browser, page_url: str) -> None:
    # Formats clamp model coordinates onto the screen, so an off-screen point comes from a replay.
    steps = []
    result = run_episode(browser, ReplayPolicy([Click(5000, 10), Done()]), options={"url": page_url},
                         instruction="x", on_step=steps.append)
    assert result.outcome == "success"
    assert "invalid action" in steps[0].error and "outside" in steps[0].error


def test_confirmation_hook_refuses_risky_actions(browser, page_url: str) -> None:
    asked = []

    def refuse(action, category, obs) -> bool:  # type: ignore[no-untyped-def]
        asked.append(category)
        return False

    steps = []
    config = LoopConfig(risk=RiskConfig(confirm=frozenset({"close_window"})))
    result = run_episode(browser, ReplayPolicy([Hotkey(("ctrl", "w")), Done()]), options={"url": page_url},
                         instruction="x", config=config, confirm=refuse, on_step=steps.append)
    assert asked == ["close_window"] and "refused" in steps[0].error and result.outcome == "success"


def test_password_text_is_redacted_from_the_record(browser, page_url: str) -> None:
    steps = []
    policy = TextPolicy(['click(x=120, y=55)', '<think>The password is hunter2.</think>type(text="hunter2")', "done()"])
    run_episode(browser, policy, options={"url": page_url}, instruction="log in", on_step=steps.append)
    assert browser.evaluate("document.getElementById('pw').value") == "hunter2"
    assert steps[1].action == {"kind": "type", "text": REDACTED}
    assert "hunter2" not in steps[1].raw_text and "hunter2" not in steps[1].thought
    # The model's own context keeps it (it typed it; a confirm-password field needs it again).
    assert "hunter2" in policy.inputs[-1].history[1].reply_text


def test_dry_run_records_without_acting(browser, page_url: str) -> None:
    steps = []
    run_episode(browser, ReplayPolicy([Click(360, 230), Done()]), options={"url": page_url}, instruction="x",
                config=LoopConfig(dry_run=True), on_step=steps.append)
    assert browser.evaluate("window.clicks || 0") == 0 and len(steps) == 2 and steps[0].extra["dry_run"]


def test_a_crashing_policy_still_finalises_the_trajectory(browser, page_url: str, tmp_path: Path) -> None:
    class Boom(ReplayPolicy):
        def act(self, inp: PolicyInput) -> PolicyReply:
            if inp.step_index == 1:
                raise RuntimeError("model exploded")
            return super().act(inp)

    store = TrajectoryStore(tmp_path / "run")
    policy = Boom([Wait(0), Wait(0)])
    factory, made = _record(store, browser, policy)
    with pytest.raises(RuntimeError, match="exploded"):
        run_episode(browser, policy, recorder=factory, options={"url": page_url}, instruction="x")
    episode = read_episode(made[0].path)
    assert episode.outcome == "error" and len(episode.steps) == 1 and "exploded" in episode.end.error


def test_unreachable_model_ends_the_episode_as_error(browser, page_url: str) -> None:
    result = run_episode(browser, TextPolicy([]), options={"url": page_url}, instruction="x")
    assert result.outcome == "error" and "out of replies" in result.error


def test_history_keeps_text_for_every_step_and_images_for_the_window(browser, page_url: str) -> None:
    policy = TextPolicy(["wait(seconds=0)"] * 4 + ["done()"])
    run_episode(browser, policy, options={"url": page_url}, instruction="x")
    last = policy.inputs[-1]
    assert len(last.history) == 4 and all(h.reply_text == "wait(seconds=0)" for h in last.history)
    from agent.messages import OMITTED, build_messages, count_images

    msgs = build_messages(last, "sys", 2, lambda img: {"type": "image", "shape": img.shape})
    assert count_images(msgs) == 3  # two history screenshots + the current one
    assert sum(OMITTED in str(m["content"]) for m in msgs) == 2


def test_risk_classification() -> None:
    import numpy as np

    obs = Observation(np.zeros((2, 2, 3), np.uint8))
    pw = Observation(np.zeros((2, 2, 3), np.uint8), extra={"focused_password": True})
    assert classify_risk(Hotkey(("alt", "f4")), obs) == "close_window"
    assert classify_risk(Hotkey(("shift", "delete")), obs) == "delete"
    assert classify_risk(TypeText("rm -rf /tmp/x\n"), obs) == "delete"
    assert classify_risk(TypeText("firm handshake"), obs) is None
    assert classify_risk(TypeText("secret"), pw) == "password"
    assert classify_risk(Click(1, 1), pw) is None
