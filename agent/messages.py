"""Chat messages for a step: system prompt, history window, current screenshot.

Layout (the UI-TARS / OpenCUA convention)::

    system:    <format's action-space prompt>
    user:      Task: <instruction>
    [for each earlier step]
    user:      <screenshot>            (only for the last ``history_images`` steps, else a note)
    assistant: <that step's reply text>
    user:      <current screenshot>
    [if the last reply was rejected]
    assistant: <rejected text>
    user:      <parser feedback>

Images stay numpy arrays here; ``image_part`` turns each into the backend's content part
(a data URL for OpenAI-compatible servers, a placeholder for local processors).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from agent.policy import PolicyInput

ImagePart = Callable[[np.ndarray], dict[str, Any]]
OMITTED = "(earlier screenshot omitted)"


def build_messages(inp: PolicyInput, system_prompt: str, history_images: int, image_part: ImagePart) -> list[dict[str, Any]]:
    """OpenAI-style messages for ``inp``; at most ``history_images`` earlier screenshots kept."""
    if history_images < 0:
        raise ValueError(f"history_images must be >= 0, got {history_images}")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": f"Task: {inp.instruction}"},
    ]
    n = len(inp.history)
    for i, step in enumerate(inp.history):
        keep_image = step.screenshot is not None and i >= n - history_images
        content = [image_part(step.screenshot)] if keep_image else [{"type": "text", "text": OMITTED}]
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": step.reply_text})
    messages.append({"role": "user", "content": [image_part(inp.observation.screenshot)]})
    if inp.feedback is not None:
        messages.append({"role": "assistant", "content": inp.rejected_text or ""})
        messages.append({"role": "user", "content": inp.feedback})
    return messages


def count_images(messages: list[dict[str, Any]]) -> int:
    """How many image parts the messages hold (for tests and usage accounting)."""
    total = 0
    for m in messages:
        if isinstance(m["content"], list):
            total += sum(1 for part in m["content"] if part.get("type") in ("image", "image_url"))
    return total
