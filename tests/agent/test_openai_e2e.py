"""End to end: OpenAI client → real HTTP server on 127.0.0.1 → UI-TARS text → real Chromium → viewer.

The server is the only stand-in: a small scripted responder (tests/agent/responder.py) that
reads the screenshot it is sent and answers like a served UI-TARS model would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.images import ResizeRule
from agent.loop import run_episode
from agent.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig
from agent.policy import PolicyError, PolicyInput
from agent.recording import StoreRecorders
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore
from trajectories.viewer import render_episode

from .responder import ScriptedServer

pytestmark = pytest.mark.integration


def test_openai_policy_drives_a_real_browser_task_to_success(browser, page_url: str, tmp_path: Path) -> None:
    store = TrajectoryStore(tmp_path / "run")
    with ScriptedServer() as server:
        policy = OpenAIPolicy(OpenAIPolicyConfig(
            base_url=server.base_url, model="ui-tars-scripted", output_format="uitars",
            resize=ResizeRule("smart", min_pixels=56 * 56, max_pixels=28 * 28 * 1280)))
        recorder = StoreRecorders(store, browser, policy, task_id="green")
        made = recorder.made
        result = run_episode(browser, policy, recorder=recorder, options={"url": page_url},
                             instruction="Click the green button")
        requests = server.requests
    assert result.outcome == "success" and result.steps == 2
    assert browser.evaluate("window.clicks") == 1  # the click landed on the button
    first = requests[0]
    assert first["model"] == "ui-tars-scripted"
    image_part = first["messages"][-1]["content"][0]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    # Second request carries the first reply back as history.
    assert any(m["role"] == "assistant" and "click(start_box" in m["content"] for m in requests[1]["messages"])
    episode = read_episode(made[0].path)
    assert episode.steps[0].action["kind"] == "click" and episode.steps[0].thought.startswith("The green button")
    html = render_episode(made[0].path)
    assert "marker" in html and "Click the green button" in html
    (tmp_path / "episode.html").write_text(html)


def test_unreachable_server_raises_policy_error_after_retries(browser, page_url: str) -> None:
    policy = OpenAIPolicy(OpenAIPolicyConfig(base_url="http://127.0.0.1:9/v1", model="m", retries=1,
                                             backoff_s=0.01, timeout_s=2))
    obs, _ = browser.reset(options={"url": page_url})
    with pytest.raises(PolicyError, match="after 2 attempts"):
        policy.act(PolicyInput("x", obs))
