"""The desktop suite's scripted solutions as a ``Policy`` (``pixelpilot eval --policy scripted``).

The solutions live with the suite (``envs.suites.desktop.solutions``): privileged generators
that read window state between actions. This adapter asks them for one action per step. A
solution that waits in vain raises ``PolicyError``, so the episode is recorded as ``error``
— never as a ``Fail``, which would score on an infeasible task.
"""

from __future__ import annotations

from typing import Any

from agent.eval.suites import EvalItem
from agent.policy import PolicyError, PolicyInput, PolicyReply


class DesktopScriptedPolicy:
    """Plays ``ScriptedSolutionPolicy`` of the desktop suite through the agent loop."""

    name: str = "scripted"
    model: str = "desktop-solutions"
    privileged: bool = True
    output_format: str | None = None

    def __init__(self, env: Any) -> None:
        from envs.suites.desktop.solutions import ScriptedSolutionPolicy

        self.inner = ScriptedSolutionPolicy(env)

    def reset(self, instruction: str) -> None:
        self.inner.reset(instruction)

    def act(self, inp: PolicyInput) -> PolicyReply:
        from envs.suites.desktop.solutions import SolutionError

        try:
            action = self.inner.next_action(inp.observation)
        except SolutionError as exc:
            raise PolicyError(str(exc)) from exc
        return PolicyReply(actions=(action,), thought=f"scripted solution step {inp.step_index}")


def scripted_desktop_policy(item: EvalItem, env: Any) -> DesktopScriptedPolicy:
    """The scripted solution for ``item`` on ``env`` (the ``TaskEnv`` itself, not a wrapper)."""
    try:
        policy = DesktopScriptedPolicy(env)
    except ImportError as exc:
        raise ValueError(f"the desktop suite's scripted solutions are not installed: {exc}") from exc
    except TypeError as exc:
        raise ValueError(f"scripted solutions need the desktop env (--env desktop): {exc}") from exc
    if not policy.inner.has_solution(item.task_id):
        raise ValueError(f"no scripted solution for task {item.task_id} (suite {item.suite}); use another --policy")
    return policy
