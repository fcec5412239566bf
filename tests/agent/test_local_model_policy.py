"""The project's own model as a policy, in process and served: same replies, prefix reuse, the loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.factory import make_policy
from agent.loop import LoopConfig, run_episode
from agent.policies.local_model import LocalModelPolicy, LocalModelPolicyConfig
from agent.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig
from agent.policy import HistoryStep, PolicyInput
from envs.observation import Observation

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from model.config import tiny
    from model.modeling import build_model
    from model.processing import Processor

    directory = tmp_path_factory.mktemp("pp") / "tiny-pp"
    torch.manual_seed(0)
    build_model(tiny()).save_pretrained(str(directory))
    Processor.default().save_pretrained(directory)
    return directory


def _obs(seed: int, size: tuple[int, int] = (320, 210)) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), instruction="click ok")


def test_factory_picks_the_project_model_for_its_directories(model_dir: Path) -> None:
    policy = make_policy(str(model_dir), max_tokens=8)
    assert isinstance(policy, LocalModelPolicy) and policy.output_format == "native"


def test_agent_json_sets_how_the_model_runs_and_flags_override_it(model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from agent.factory import agent_settings

    assert agent_settings(str(model_dir)) == {}
    tuned = tmp_path / "tuned"
    shutil.copytree(model_dir, tuned)
    (tuned / "agent.json").write_text(json.dumps({"output_format": "native-compact", "history_images": 0,
                                                  "max_tokens": 12}))
    policy = make_policy(str(tuned))
    assert isinstance(policy, LocalModelPolicy)
    assert (policy.output_format, policy.config.history_images, policy.config.max_new_tokens) == ("native-compact", 0, 12)
    reply = policy.act(PolicyInput("click ok", _obs(0), history=(HistoryStep("wait(seconds=1)", _obs(1).screenshot),)))
    assert reply.usage["completion_tokens"] <= 12
    override = make_policy(str(tuned), output_format="native", history_images=2, max_tokens=5)
    assert (override.output_format, override.config.history_images, override.config.max_new_tokens) == ("native", 2, 5)
    for bad, message in (("{", "not valid JSON"), ('{"history_images": "0"}', "must be an integer"),
                         ('{"temperature": 1}', "unknown key 'temperature'"), ("[1]", "JSON object")):
        (tuned / "agent.json").write_text(bad)
        with pytest.raises(ValueError, match=message):
            make_policy(str(tuned))


def test_in_process_and_served_replies_are_identical(model_dir: Path) -> None:
    from model.serve import ChatServer, ServerConfig

    local = LocalModelPolicy(LocalModelPolicyConfig(str(model_dir), max_new_tokens=10))
    inp = PolicyInput("click ok", _obs(0), history=(HistoryStep("wait(seconds=1)", _obs(1).screenshot),))
    a = local.act(inp)
    assert a.text is not None and a.image_size == (320, 210)
    assert a.logprobs and all(lp <= 0 for lp in a.logprobs) and a.usage["completion_tokens"] == len(a.logprobs)
    with ChatServer.from_config(ServerConfig(model_dir=model_dir, port=0)) as server:
        remote = OpenAIPolicy(OpenAIPolicyConfig(base_url=server.base_url, model="tiny-pp", history_images=1,
                                                 max_tokens=10, logprobs=True))
        b = remote.act(inp)
    # PNG data URLs are lossless, so the served model sees the same pixels and decodes greedily the same.
    assert b.text == a.text and np.allclose(b.logprobs, a.logprobs, atol=1e-4)


def test_the_next_step_reuses_the_cached_prefix(model_dir: Path) -> None:
    policy = LocalModelPolicy(LocalModelPolicyConfig(str(model_dir), max_new_tokens=4))
    first = policy.act(PolicyInput("click ok", _obs(0)))
    second = policy.act(PolicyInput("click ok", _obs(2), history=(HistoryStep(first.text or "", _obs(0).screenshot),)))
    assert second.extra["cached_tokens"] > 0


@pytest.mark.integration
def test_the_untrained_model_runs_in_the_loop(model_dir: Path, browser, page_url: str) -> None:
    policy = LocalModelPolicy(LocalModelPolicyConfig(str(model_dir), max_new_tokens=8))
    steps = []
    result = run_episode(browser, policy, options={"url": page_url}, instruction="click the green button",
                         config=LoopConfig(max_steps=2, max_parse_retries=0), on_step=steps.append)
    assert len(steps) == result.steps <= 2 and result.outcome in ("truncated", "success", "infeasible", "failure")
