"""MiniWoB++ in the browser env: the task list, ``MiniWoBEnv`` and privileged scripted experts.

``list_tasks()`` names every task shipped as HTML in the ``miniwob`` package; ``MiniWoBEnv``
runs one (reward from the task's own JavaScript); ``envs.miniwob.experts.EXPERTS`` holds
scripted solutions that read the DOM to decide where to click but act only through pixel
actions.
"""

from envs.miniwob.env import TASK_HEIGHT, TASK_WIDTH, MiniWoBConfig, MiniWoBEnv
from envs.miniwob.suite import html_dir, list_tasks, task_path, task_url

__all__ = ["MiniWoBConfig", "MiniWoBEnv", "TASK_HEIGHT", "TASK_WIDTH", "html_dir", "list_tasks", "task_path", "task_url"]
