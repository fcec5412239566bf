"""Privileged scripted experts as a policy: MiniWoB++ experts that read the DOM, act in pixels.

The expert looks at page state the agent cannot see (marked ``privileged`` in every
trajectory it produces) and answers with one pixel action plus a grounded rationale, which
becomes the step's thought. An expert that finds nothing sensible to do answers ``Fail``.
"""

from __future__ import annotations

from agent.policy import PolicyInput, PolicyReply
from envs.actions import Fail
from envs.miniwob.env import MiniWoBEnv
from envs.miniwob.experts import EXPERTS, ExpertError
from envs.miniwob.view import PageView


class MiniWoBExpertPolicy:
    """Plays the registered expert of the env's current task."""

    name = "expert"
    model = "miniwob-expert"
    privileged = True
    output_format = "native"

    def __init__(self, env: MiniWoBEnv) -> None:
        self.env = env
        self.view = PageView(env)

    def reset(self, instruction: str) -> None:
        task = self.env.task
        if task not in EXPERTS:
            raise ValueError(f"no scripted expert for MiniWoB task {task!r}; experts exist for {sorted(EXPERTS)}")

    def act(self, inp: PolicyInput) -> PolicyReply:
        expert = EXPERTS[str(self.env.task)]
        try:
            step = expert(self.view)
        except ExpertError as exc:
            return PolicyReply(actions=(Fail(f"expert: {exc}"),), thought=f"I cannot continue: {exc}")
        return PolicyReply(actions=(step.action,), thought=step.rationale)
