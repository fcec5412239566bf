"""The project's own VLM, in process: a saved ``pixelpilot_vl`` directory behind the policy interface.

It runs the same ``model.serve.ChatEngine`` that ``pixelpilot serve`` puts behind HTTP, so a
model behaves identically in process and served: same chat layout, same processor, same
KV-prefix and vision-embedding reuse across steps (the history of an episode is resent each
step and only the new part is computed). Screenshots go in as arrays at native resolution;
the processor scales them to its token limit, and that scaled size is the image size the
native output format's coordinates refer to.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.messages import build_messages
from agent.policy import PolicyError, PolicyInput, PolicyReply


@dataclass(frozen=True)
class LocalModelPolicyConfig:
    """Settings of the in-process project model."""

    model_dir: str
    output_format: str = "native"
    history_images: int = 1
    max_new_tokens: int = 96
    temperature: float = 0.0
    seed: int = 0
    device: str = "cpu"
    thinking: bool = True

    def __post_init__(self) -> None:
        if not os.path.isfile(os.path.join(self.model_dir, "config.json")):
            raise ValueError(f"{self.model_dir!r} holds no config.json: give a directory written by save_pretrained")
        if self.max_new_tokens <= 0 or self.temperature < 0 or self.history_images < 0:
            raise ValueError(f"invalid local model settings: {self}")


class LocalModelPolicy:
    """Chooses actions with the project's model; replies are text in the native format."""

    name = "pixelpilot"
    privileged = False

    def __init__(self, config: LocalModelPolicyConfig) -> None:
        from model.serve import ChatEngine, ServerConfig

        self.config = config
        self.model = Path(config.model_dir).resolve().name
        self.output_format = config.output_format
        self.engine = ChatEngine.load(ServerConfig(model_dir=Path(config.model_dir), device=config.device,
                                                   max_tokens_limit=max(4096, config.max_new_tokens)))

    def reset(self, instruction: str) -> None:
        """Nothing to forget: prefix reuse keys on content, not on episodes."""

    @staticmethod
    def _image_part(image_HWC: np.ndarray) -> dict[str, Any]:
        return {"type": "image", "image": image_HWC}

    def act(self, inp: PolicyInput) -> PolicyReply:
        from agent.formats import ModelFrame, get_format
        from model.serve import APIError, CompletionRequest

        size = inp.observation.size
        image_size = self.engine.processor.image_metas([inp.observation.screenshot])[0].resized_size
        system = get_format(self.output_format).system_prompt(ModelFrame(size, image_size))
        messages = build_messages(inp, system, self.config.history_images, self._image_part)
        request = CompletionRequest(messages=messages, max_tokens=self.config.max_new_tokens,
                                    temperature=self.config.temperature, seed=self.config.seed, logprobs=True)
        t0 = time.perf_counter()
        try:
            body = self.engine.complete(request)
        except APIError as exc:
            raise PolicyError(f"local model {self.config.model_dir}: {exc}") from exc
        choice = body["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content")
        if reasoning and self.config.thinking:
            text = f"<think>{reasoning}</think>{text}"
        logprobs = [t["logprob"] for t in (choice.get("logprobs") or {}).get("content") or []]
        usage = {k: body["usage"][k] for k in ("prompt_tokens", "completion_tokens")}
        return PolicyReply(text=text, image_size=image_size, logprobs=logprobs or None, usage=usage,
                           model_s=time.perf_counter() - t0,
                           extra={"cached_tokens": body["usage"].get("prompt_tokens_details", {}).get("cached_tokens", 0)})
