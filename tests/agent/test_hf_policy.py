"""The transformers backend with a tiny randomly initialised Qwen2-VL saved to disk and reloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.images import ResizeRule
from agent.loop import LoopConfig, run_episode
from agent.policies.hf_policy import HFPolicy, HFPolicyConfig
from agent.policy import HistoryStep, PolicyInput
from envs.observation import Observation

from .tiny_qwen import build_tiny_qwen2vl

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> HFPolicy:
    model_dir = build_tiny_qwen2vl(tmp_path_factory.mktemp("tinyqwen"))
    return HFPolicy(HFPolicyConfig(str(model_dir), output_format="uitars", max_new_tokens=12,
                                   resize=ResizeRule("smart", min_pixels=56 * 56, max_pixels=112 * 112)))


def _obs(seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(rng.integers(0, 255, (200, 320, 3), dtype=np.uint8), instruction="click ok")


def test_reply_has_text_tokens_and_logprobs_that_match_a_forward_pass(policy: HFPolicy) -> None:
    import torch

    inp = PolicyInput("click ok", _obs(0), history=(HistoryStep("Action: wait()", _obs(1).screenshot),))
    reply = policy.act(inp)
    assert reply.text is not None and reply.token_ids and len(reply.token_ids) == len(reply.logprobs)
    assert reply.image_size == (140, 84) and reply.usage["completion_tokens"] == len(reply.token_ids)
    assert len(policy._images) == 2  # one history screenshot (window 1) + the current one
    # Greedy decoding picks the arg-max: each logprob is the max of its step's distribution,
    # and a teacher-forced forward pass over prompt + reply gives the same numbers.
    assert all(lp <= 0 for lp in reply.logprobs)
    vision = dict(policy.image_processor(images=policy._images, return_tensors="pt"))
    from agent.messages import build_messages

    policy._images = []
    msgs = build_messages(inp, "sys", policy.config.history_images, policy._image_part)
    from agent.formats import ModelFrame, get_format

    msgs[0]["content"] = get_format("uitars").system_prompt(ModelFrame(inp.observation.size, reply.image_size))
    prompt = policy.tokenizer(policy._prompt(msgs, vision["image_grid_thw"]), return_tensors="pt")["input_ids"]
    full = torch.cat([prompt, torch.tensor([reply.token_ids])], dim=1)
    with torch.no_grad():
        mm = (full == policy.net.config.image_token_id).int()
        logits = policy.net(input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=mm, **vision).logits
    n = len(reply.token_ids)
    ref = torch.log_softmax(logits[0, -n - 1:-1].float(), -1).gather(-1, torch.tensor(reply.token_ids)[:, None])[:, 0]
    assert np.allclose(ref.numpy(), np.array(reply.logprobs), atol=1e-3)


@pytest.mark.integration
def test_a_random_model_in_the_loop_ends_cleanly(policy: HFPolicy, browser, page_url: str) -> None:
    steps = []
    result = run_episode(browser, policy, options={"url": page_url}, instruction="click the green button",
                         config=LoopConfig(max_steps=2, max_parse_retries=0), on_step=steps.append)
    # Random weights rarely write a valid action: the loop records error steps and truncates.
    assert result.outcome in ("truncated", "success", "infeasible", "failure")
    assert len(steps) == result.steps <= 2
    assert all(s.raw_text is not None and s.timings["model_s"] > 0 for s in steps)
