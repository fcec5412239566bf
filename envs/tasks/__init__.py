"""OSWorld-style tasks: typed task model, setup steps and runner, evaluator registries, support check.

Modules: ``model`` (task / index files), ``setup_steps`` (typed steps), ``controller`` (the
protocol setup and getters run against), ``local_controller`` (this machine), ``setup_runner``
(``run_setup`` with postconditions), ``fetch`` (network rule: local URLs or a mirror),
``getters`` / ``metrics`` (explicit registries), ``evaluate`` (postconfig + conj + infeasible),
``check`` (what is supported here). See ``INVENTORY.md`` for what the 369 Ubuntu tasks use.
"""

from envs.tasks.errors import (
    ControllerUnsupportedError, NetworkPolicyError, SetupError, SetupTimeoutError, TaskFormatError,
)
from envs.tasks.evaluate import DEFAULT_SUCCESS_THRESHOLD, EvalResult, evaluate
from envs.tasks.getters import GETTERS, EvalContext
from envs.tasks.metrics import METRICS
from envs.tasks.model import (
    Evaluator, GetterSpec, MetricCall, Task, TaskIndex, load_index, load_task, load_tasks_dir, parse_task,
    resolve_index,
)
from envs.tasks.setup_runner import SetupContext, SetupResult, run_setup
from envs.tasks.setup_steps import SetupStep, parse_step

__all__ = [
    "ControllerUnsupportedError", "DEFAULT_SUCCESS_THRESHOLD", "EvalContext", "EvalResult", "Evaluator", "GETTERS",
    "GetterSpec", "METRICS", "MetricCall", "NetworkPolicyError", "SetupContext", "SetupError", "SetupResult", "SetupTimeoutError",
    "SetupStep", "Task", "TaskFormatError", "TaskIndex", "evaluate", "load_index", "load_task", "load_tasks_dir",
    "parse_step", "parse_task", "resolve_index", "run_setup",
]
