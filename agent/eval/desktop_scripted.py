"""Scripted solutions of the project's desktop suite as a policy (``--policy scripted``).

The solutions live with the suite (``envs/suites/desktop/solutions.py``); this module adapts
them to the ``Policy`` interface for the runner.
"""

from __future__ import annotations

from agent.eval.suites import EvalItem
from agent.policy import Policy


def scripted_desktop_policy(item: EvalItem) -> Policy:
    """The scripted solution of ``item``'s task, as a replay of its actions."""
    try:
        from envs.suites.desktop import solutions
    except ImportError as exc:
        raise ValueError(f"no scripted solutions for {item.suite}: the desktop suite's solutions module is not "
                         f"installed ({exc})") from exc
    raise ValueError(f"no scripted solution adapter for {item.task_id} yet ({solutions.__name__})")
