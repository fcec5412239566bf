"""Replay: feed the actions of a recorded episode back, in order.

Used to re-run a trajectory on a fresh environment (to check a scripted solution, to debug
an evaluator, to measure an env's determinism). When the recorded actions run out the
policy answers ``Fail`` so an episode never loops forever.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.policy import PolicyInput, PolicyReply
from envs.actions import Action, Fail, action_from_json


class ReplayPolicy:
    """Returns the given actions one per step (with their recorded thoughts, if any)."""

    name = "replay"
    privileged = False
    output_format = None

    def __init__(self, actions: Sequence[Action], thoughts: Sequence[str | None] | None = None, model: str = "replay") -> None:
        if thoughts is not None and len(thoughts) != len(actions):
            raise ValueError(f"{len(thoughts)} thoughts for {len(actions)} actions")
        self.model = model
        self._actions = tuple(actions)
        self._thoughts = tuple(thoughts) if thoughts is not None else (None,) * len(self._actions)
        self._next = 0

    @classmethod
    def from_episode(cls, path: str) -> "ReplayPolicy":
        """Load the actions of a recorded episode directory (steps without an action are skipped)."""
        from trajectories.reader import read_episode

        episode = read_episode(path)
        steps = [s for s in episode.steps if s.action is not None]
        return cls([action_from_json(s.action) for s in steps], [s.thought for s in steps],
                   model=f"replay:{episode.meta.episode_id}")

    def reset(self, instruction: str) -> None:
        self._next = 0

    def act(self, inp: PolicyInput) -> PolicyReply:
        if self._next >= len(self._actions):
            return PolicyReply(actions=(Fail("replay: no recorded actions left"),))
        i = self._next
        self._next += 1
        return PolicyReply(actions=(self._actions[i],), thought=self._thoughts[i])
