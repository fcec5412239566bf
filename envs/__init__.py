"""pixelpilot environments: typed actions and observations, environments, task suites.

``envs`` imports nothing else of the project and never imports torch. Concrete environments
(``envs.desktop``, ``envs.browser``, ``envs.miniwob``, ...) are imported from their own
modules so that importing ``envs`` needs neither an X server nor a browser.
"""

from envs.actions import (
    ACTION_TYPES,
    Action,
    Click,
    Done,
    Drag,
    Fail,
    Hotkey,
    MouseDown,
    MouseUp,
    Move,
    Scroll,
    TypeText,
    Wait,
    action_from_json,
    action_to_json,
    is_terminal,
    validate_action,
)
from envs.base import Env, GUIEnv
from envs.checker import EnvConformanceError, check_env
from envs.errors import (
    BackendDiedError,
    EnvNotReadyError,
    EnvSetupError,
    InvalidActionError,
    OutOfScreenError,
    PixelPilotError,
    UnknownKeyError,
)
from envs.observation import Observation

__all__ = [
    "ACTION_TYPES", "Action", "BackendDiedError", "Click", "Done", "Drag", "Env", "EnvConformanceError",
    "EnvNotReadyError", "EnvSetupError", "Fail", "GUIEnv", "Hotkey", "InvalidActionError", "MouseDown",
    "MouseUp", "Move", "Observation", "OutOfScreenError", "PixelPilotError", "Scroll", "TypeText",
    "UnknownKeyError", "Wait", "action_from_json", "action_to_json", "check_env", "is_terminal",
    "validate_action",
]
