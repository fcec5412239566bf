"""A policy behind any OpenAI-compatible chat-completions endpoint.

This is how pixelpilot talks to UI-TARS, OpenCUA, Qwen2.5-VL or Kimi-VL served by vLLM, and
to its own model served by ``pixelpilot serve``. Screenshots go as data URLs after the
model's resize rule; the API key comes from an environment variable (never from the
command line or the trajectory). Each call has a timeout and failed calls are retried with
exponential backoff; what finally fails raises ``PolicyError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.images import ResizeRule, encode_data_url, resize_rgb
from agent.messages import build_messages
from agent.openai_client import ChatCallError, ChatClient
from agent.policy import PolicyError, PolicyInput, PolicyReply


@dataclass(frozen=True)
class OpenAIPolicyConfig:
    """Settings of an OpenAI-compatible backend."""

    base_url: str
    model: str
    output_format: str = "native"
    api_key_env: str = "OPENAI_API_KEY"
    resize: ResizeRule = field(default_factory=ResizeRule)
    history_images: int = 3
    max_tokens: int = 512
    temperature: float = 0.0
    timeout_s: float = 120.0
    retries: int = 3
    backoff_s: float = 1.0
    logprobs: bool = False
    image_format: str = "png"

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {self.base_url!r}")
        if self.retries < 0 or self.timeout_s <= 0 or self.history_images < 0 or self.max_tokens <= 0:
            raise ValueError(f"invalid OpenAI policy settings: {self}")


class OpenAIPolicy:
    """Chat-completions policy; replies are text for the loop's output format to parse."""

    name = "openai"
    privileged = False

    def __init__(self, config: OpenAIPolicyConfig) -> None:
        self.config = config
        self.model = config.model
        self.output_format = config.output_format
        self._chat = ChatClient(config.base_url, config.api_key_env, config.timeout_s)

    def reset(self, instruction: str) -> None:
        """Nothing is kept between episodes."""

    def _image_part(self, image_HWC: np.ndarray) -> dict[str, Any]:
        w, h = image_HWC.shape[1], image_HWC.shape[0]
        resized = resize_rgb(image_HWC, self.config.resize.target_size(w, h))
        return {"type": "image_url", "image_url": {"url": encode_data_url(resized, self.config.image_format)}}

    def system_prompt(self, screen_size: tuple[int, int]) -> str:
        """The output format's description of the action space for this screen."""
        from agent.formats import ModelFrame, get_format

        frame = ModelFrame(screen_size=screen_size, image_size=self.config.resize.target_size(*screen_size))
        return get_format(self.output_format).system_prompt(frame)

    def act(self, inp: PolicyInput) -> PolicyReply:
        size = inp.observation.size
        messages = build_messages(inp, self.system_prompt(size), self.config.history_images, self._image_part)
        t0 = time.perf_counter()
        response = self._call(messages)
        choice = response.choices[0]
        text = choice.message.content or ""
        reasoning = getattr(choice.message, "reasoning_content", None)  # servers that split out thinking
        if reasoning:
            text = f"<think>{reasoning}</think>{text}"
        logprobs = None
        if self.config.logprobs and getattr(choice, "logprobs", None) and choice.logprobs.content:
            logprobs = [float(t.logprob) for t in choice.logprobs.content]
        usage = {}
        if response.usage is not None:
            usage = {"prompt_tokens": response.usage.prompt_tokens, "completion_tokens": response.usage.completion_tokens}
        return PolicyReply(text=text, image_size=self.config.resize.target_size(*size), logprobs=logprobs,
                           usage=usage, model_s=time.perf_counter() - t0)

    def _call(self, messages: list[dict[str, Any]]) -> Any:
        cfg = self.config
        request: dict[str, Any] = {"model": cfg.model, "messages": messages, "max_tokens": cfg.max_tokens,
                                   "temperature": cfg.temperature}
        if cfg.logprobs:
            request["logprobs"] = True
        try:
            return self._chat.create(retries=cfg.retries, backoff_s=cfg.backoff_s, **request)
        except ChatCallError as exc:
            raise PolicyError(str(exc)) from exc
