"""Typed errors raised by environments and action validation.

Every message says what was wrong and what to do about it. Errors that come from bad input
(``InvalidActionError`` and subclasses) leave the environment usable; ``BackendDiedError``
means the X server / browser / container went away and the next ``reset()`` recreates it.
"""

from __future__ import annotations


class PixelPilotError(Exception):
    """Base class of every error pixelpilot raises on purpose."""


class InvalidActionError(PixelPilotError, ValueError):
    """An action is malformed (unknown kind, wrong field, bad value). The env is unchanged."""


class UnknownKeyError(InvalidActionError):
    """A key name is not in the key table (``envs.keys``)."""

    def __init__(self, key: str, hint: str = "") -> None:
        self.key = key
        msg = (
            f"unknown key {key!r}: use a name from envs.keys.KEYBOARD_KEYS "
            "(e.g. 'enter', 'ctrl', 'shift', 'tab', 'f5', 'pageup', 'a') or an alias such as "
            "'Control', 'ArrowUp', 'Super_L'"
        )
        super().__init__(f"{msg} ({hint})" if hint else msg)


class OutOfScreenError(InvalidActionError):
    """A coordinate lies outside the screenshot the action refers to."""

    def __init__(self, x: int, y: int, size: tuple[int, int], what: str = "point") -> None:
        self.x, self.y, self.size = x, y, size
        w, h = size
        super().__init__(
            f"{what} ({x}, {y}) is outside the {w}x{h} screen: coordinates are integer pixels "
            f"of the screenshot, 0 <= x < {w} and 0 <= y < {h}; convert model coordinates with "
            "envs.geometry.to_screen first"
        )


class EnvNotReadyError(PixelPilotError, RuntimeError):
    """``step`` was called before ``reset`` or after the episode ended or after ``close``."""


class BackendDiedError(PixelPilotError, RuntimeError):
    """The process behind the env (X server, browser, container, VM) is gone.

    The episode cannot continue; call ``reset()`` to recreate the backend.
    """


class EnvSetupError(PixelPilotError, RuntimeError):
    """The environment could not be started (missing binary, display in use, ...)."""
