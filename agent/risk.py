"""Risky actions: which actions need a human's yes, and redaction of typed secrets.

``classify_risk`` names the category of an action that may do damage or leak a secret:
``close_window`` (alt+f4, ctrl+w/q), ``delete`` (shift+delete, typing ``rm``/``del``/``DROP``
commands), ``password`` (typing while the focused field is a password field, as the env
reports in ``observation.extra["focused_password"]``). The agent loop asks the confirmation
hook before executing an action whose category is enabled, and can redact what was typed
into password fields from the trajectory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from envs.actions import Action, Hotkey, TypeText
from envs.observation import Observation

RISK_CATEGORIES: tuple[str, ...] = ("close_window", "delete", "password")
REDACTED = "[REDACTED]"
_CLOSE_CHORDS = ({"alt", "f4"}, {"ctrl", "w"}, {"ctrl", "q"}, {"ctrl", "shift", "w"}, {"win", "q"})
_DELETE_TEXT = re.compile(r"(^|[;&|\s])(rm|rmdir|del|shred|mkfs\S*)\s|\bDROP\s+(TABLE|DATABASE)\b|\bDELETE\s+FROM\b", re.I)

#: Called with (action, category, observation); returns True to allow the action.
ConfirmHook = Callable[[Action, str, Observation], bool]


def _base_key(key: str) -> str:
    for prefix in ("ctrl", "alt", "shift", "win"):
        if key.startswith(prefix):
            return prefix
    return key


def classify_risk(action: Action, obs: Observation) -> str | None:
    """The risk category of ``action`` on this screen, or None."""
    if isinstance(action, TypeText) and obs.extra.get("focused_password"):
        return "password"
    if isinstance(action, Hotkey):
        chord = {_base_key(k) for k in action.keys}
        if chord in _CLOSE_CHORDS:
            return "close_window"
        if chord == {"shift", "delete"}:
            return "delete"
    if isinstance(action, TypeText) and _DELETE_TEXT.search(action.text):
        return "delete"
    return None


@dataclass(frozen=True)
class RiskConfig:
    """Which categories need confirmation, and whether typed passwords are redacted."""

    confirm: frozenset[str] = frozenset()
    redact_passwords: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.confirm) - set(RISK_CATEGORIES)
        if unknown:
            raise ValueError(f"unknown risk categories {sorted(unknown)}; choose from {RISK_CATEGORIES}")


def deny_all(action: Action, category: str, obs: Observation) -> bool:
    """A confirmation hook that refuses every risky action (for unattended runs)."""
    return False


def ask_on_terminal(action: Action, category: str, obs: Observation) -> bool:
    """Ask on stdin; anything but 'y'/'yes' refuses."""
    try:
        answer = input(f"[pixelpilot] allow {category} action {action}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
