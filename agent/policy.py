"""The policy interface: what the agent loop asks a model (or a script) for at each step.

A policy sees a ``PolicyInput`` (instruction, current observation, earlier steps) and
returns a ``PolicyReply``: either model text, which the loop parses with an output format
(``agent.formats``), or actions directly (scripted experts, replay). Policies know nothing
about trajectories files; the loop records what they return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.actions import Action
from envs.observation import Observation


@dataclass(frozen=True)
class HistoryStep:
    """One earlier step as the model will see it again.

    ``reply_text`` is the assistant text of that step in the policy's output format (its
    thought and action); ``screenshot`` is the frame the model looked at before replying.
    """

    reply_text: str
    screenshot: np.ndarray | None = None
    thought: str | None = None
    action: Action | None = None


@dataclass(frozen=True)
class PolicyInput:
    """Everything a policy may use to choose the next action."""

    instruction: str
    observation: Observation
    history: tuple[HistoryStep, ...] = ()
    #: Set when the previous reply could not be parsed: the parser's message, to be shown to the model.
    feedback: str | None = None
    #: The rejected reply that ``feedback`` refers to.
    rejected_text: str | None = None
    step_index: int = 0


@dataclass(frozen=True)
class PolicyReply:
    """A policy's answer for one step.

    Exactly one of ``text`` (to be parsed by the loop's output format) and ``actions``
    (already typed, screen-space) is set.
    """

    text: str | None = None
    actions: tuple[Action, ...] | None = None
    thought: str | None = None
    #: (width, height) of the image the model saw, for coordinate conversion.
    image_size: tuple[int, int] | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.actions is None):
            raise ValueError("a PolicyReply carries either text (to parse) or actions, not both or neither")


class PolicyError(RuntimeError):
    """The policy could not produce a reply (model unreachable after retries, bad config)."""


@runtime_checkable
class Policy(Protocol):
    """Chooses actions. ``name`` is the backend kind, ``model`` the model identifier."""

    name: str
    model: str
    #: True when the policy reads state the agent could not see (DOM, JS globals).
    privileged: bool
    #: Output format name the loop parses ``text`` replies with (``agent.formats``); None for action policies.
    output_format: str | None

    def reset(self, instruction: str) -> None:
        """Forget everything from the previous episode."""

    def act(self, inp: PolicyInput) -> PolicyReply:
        """Return the reply for this step; raise ``PolicyError`` if none can be had."""
