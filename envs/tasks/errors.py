"""Typed errors of the task layer: malformed task files, broken setups, evaluation failures.

Every message names the file / step / getter involved and says what to do about it.
"""

from __future__ import annotations

from envs.errors import PixelPilotError


class TaskFormatError(PixelPilotError, ValueError):
    """A task or index file is malformed: the message names the file, the field and the fix."""

    def __init__(self, path: str, field: str, problem: str, fix: str = "") -> None:
        self.path, self.field, self.problem = path, field, problem
        msg = f"{path}: field {field!r}: {problem}"
        super().__init__(f"{msg}; {fix}" if fix else msg)


class SetupError(PixelPilotError, RuntimeError):
    """A setup (or postconfig) step failed or its postcondition did not hold.

    The episode is reported as ``setup_error``, never as an agent failure.
    """

    def __init__(self, index: int, step_type: str, reason: str, fix: str = "") -> None:
        self.index, self.step_type, self.reason, self.fix = index, step_type, reason, fix
        msg = f"setup step {index} ({step_type}) failed: {reason}"
        super().__init__(f"{msg}; {fix}" if fix else msg)


class SetupTimeoutError(SetupError):
    """The whole setup ran past its overall budget (``TaskEnv(setup_timeout_s=...)``)."""


class ControllerUnsupportedError(PixelPilotError, NotImplementedError):
    """The controller cannot do this here (no DISPLAY, no xdotool, no accessibility bus, ...)."""


class NetworkPolicyError(PixelPilotError, PermissionError):
    """A URL outside file:// and http://127.0.0.1 was requested without a local mirror for it."""


class UnknownEvaluatorPieceError(PixelPilotError, KeyError):
    """A getter or metric name is not in the registry (``envs.tasks.getters`` / ``metrics``)."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name = kind, name
        super().__init__(
            f"unknown {kind} {name!r}: it is not implemented here; known {kind}s: {', '.join(sorted(known))}. "
            f"Run `pixelpilot tasks check PATH` to see which tasks need it"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
