"""The closed set of GUI actions, as frozen dataclasses with validation and JSON round-trip.

Coordinates are integer pixels of the screenshot the model saw (screen space). Converting
from model spaces (0–1000, 0–1, resized pixels) is ``envs.geometry``'s job; checking that a
point lies on a given screen is ``validate_action``'s. Constructing an action validates
everything that does not depend on the screen (button names, key names, non-empty text).

This module knows nothing about how actions are executed.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, ClassVar, Literal, Union

from envs.errors import InvalidActionError, OutOfScreenError
from envs.keys import normalize_key

Button = Literal["left", "right", "middle"]
BUTTONS: tuple[str, ...] = ("left", "right", "middle")
MAX_WAIT_SECONDS = 600.0
MAX_CLICKS = 3
MAX_TEXT_CHARS = 10_000


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidActionError(
            f"{name} must be an integer pixel coordinate, got {value!r}; round model "
            "coordinates with envs.geometry.to_screen"
        )


def _check_button(button: Any) -> None:
    if button not in BUTTONS:
        raise InvalidActionError(f"button must be one of {BUTTONS}, got {button!r}")


@dataclass(frozen=True)
class Click:
    """Press and release ``button`` ``count`` times at (x, y)."""

    x: int
    y: int
    button: Button = "left"
    count: int = 1
    kind: ClassVar[str] = "click"

    def __post_init__(self) -> None:
        _check_int("x", self.x)
        _check_int("y", self.y)
        _check_button(self.button)
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= MAX_CLICKS:
            raise InvalidActionError(f"count must be 1..{MAX_CLICKS} (1=single, 2=double, 3=triple), got {self.count!r}")


@dataclass(frozen=True)
class Move:
    """Move the pointer to (x, y) without pressing anything."""

    x: int
    y: int
    kind: ClassVar[str] = "move"

    def __post_init__(self) -> None:
        _check_int("x", self.x)
        _check_int("y", self.y)


@dataclass(frozen=True)
class Drag:
    """Press ``button`` at (x1, y1), move to (x2, y2), release."""

    x1: int
    y1: int
    x2: int
    y2: int
    button: Button = "left"
    kind: ClassVar[str] = "drag"

    def __post_init__(self) -> None:
        for name in ("x1", "y1", "x2", "y2"):
            _check_int(name, getattr(self, name))
        _check_button(self.button)


@dataclass(frozen=True)
class Scroll:
    """Scroll at (x, y) by ``dx``/``dy`` wheel notches (positive dy = down, positive dx = right)."""

    x: int
    y: int
    dx: int = 0
    dy: int = 0
    kind: ClassVar[str] = "scroll"

    def __post_init__(self) -> None:
        _check_int("x", self.x)
        _check_int("y", self.y)
        for name in ("dx", "dy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidActionError(f"{name} must be an integer number of wheel notches, got {value!r}")
        if self.dx == 0 and self.dy == 0:
            raise InvalidActionError("scroll needs a non-zero dx or dy (wheel notches; positive dy scrolls down)")


@dataclass(frozen=True)
class TypeText:
    """Type ``text`` as keystrokes into the focused element."""

    text: str
    kind: ClassVar[str] = "type"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or self.text == "":
            raise InvalidActionError(f"type needs non-empty text, got {self.text!r}; use wait to do nothing")
        if len(self.text) > MAX_TEXT_CHARS:
            raise InvalidActionError(f"text is {len(self.text)} characters; split it into parts of at most {MAX_TEXT_CHARS}")


@dataclass(frozen=True)
class Hotkey:
    """Press ``keys`` together (in order, released in reverse): ``("ctrl", "c")`` or ``("enter",)``.

    Key names are normalised to the canonical table on construction.
    """

    keys: tuple[str, ...]
    kind: ClassVar[str] = "hotkey"

    def __post_init__(self) -> None:
        keys = self.keys
        if isinstance(keys, str):
            keys = tuple(k for k in keys.replace("+", " ").split() if k) if len(keys) > 1 else (keys,)
        if not isinstance(keys, (tuple, list)) or len(keys) == 0:
            raise InvalidActionError(f"hotkey needs at least one key name, got {self.keys!r}")
        object.__setattr__(self, "keys", tuple(normalize_key(k) for k in keys))


@dataclass(frozen=True)
class MouseDown:
    """Press and hold ``button`` at the current pointer position, or at (x, y) if given."""

    button: Button = "left"
    x: int | None = None
    y: int | None = None
    kind: ClassVar[str] = "mouse_down"

    def __post_init__(self) -> None:
        _check_button(self.button)
        _check_optional_point(self.x, self.y)


@dataclass(frozen=True)
class MouseUp:
    """Release ``button`` at the current pointer position, or at (x, y) if given."""

    button: Button = "left"
    x: int | None = None
    y: int | None = None
    kind: ClassVar[str] = "mouse_up"

    def __post_init__(self) -> None:
        _check_button(self.button)
        _check_optional_point(self.x, self.y)


@dataclass(frozen=True)
class Wait:
    """Do nothing for ``seconds`` and look again."""

    seconds: float = 1.0
    kind: ClassVar[str] = "wait"

    def __post_init__(self) -> None:
        s = self.seconds
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or not 0 <= s <= MAX_WAIT_SECONDS:
            raise InvalidActionError(f"wait seconds must be a number in [0, {MAX_WAIT_SECONDS}], got {s!r}")
        object.__setattr__(self, "seconds", float(s))


@dataclass(frozen=True)
class Done:
    """The agent believes the task is complete; ``answer`` carries a requested answer, if any."""

    answer: str | None = None
    kind: ClassVar[str] = "done"

    def __post_init__(self) -> None:
        if self.answer is not None and not isinstance(self.answer, str):
            raise InvalidActionError(f"done answer must be a string or None, got {self.answer!r}")


@dataclass(frozen=True)
class Fail:
    """The agent gives up, or judges the task infeasible, for ``reason``."""

    reason: str = ""
    kind: ClassVar[str] = "fail"

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str):
            raise InvalidActionError(f"fail reason must be a string, got {self.reason!r}")


def _check_optional_point(x: Any, y: Any) -> None:
    if (x is None) != (y is None):
        raise InvalidActionError("give both x and y, or neither (to use the current pointer position)")
    if x is not None:
        _check_int("x", x)
        _check_int("y", y)


Action = Union[Click, Move, Drag, Scroll, TypeText, Hotkey, MouseDown, MouseUp, Wait, Done, Fail]
ACTION_TYPES: tuple[type, ...] = (Click, Move, Drag, Scroll, TypeText, Hotkey, MouseDown, MouseUp, Wait, Done, Fail)
ACTIONS_BY_KIND: dict[str, type] = {cls.kind: cls for cls in ACTION_TYPES}
# Spellings other tools use for the same kinds.
_KIND_ALIASES = {"key": "hotkey", "press": "hotkey", "type_text": "type", "typing": "type",
                 "left_click": "click", "mouse_move": "move", "move_to": "move", "finished": "done",
                 "terminate": "done", "failed": "fail", "infeasible": "fail", "drag_and_drop": "drag"}
TERMINAL_KINDS = frozenset({"done", "fail"})


def is_terminal(action: Action) -> bool:
    """True for ``Done`` and ``Fail``: the actions that end an episode."""
    return action.kind in TERMINAL_KINDS


def action_to_json(action: Action) -> dict[str, Any]:
    """A JSON-ready dict: ``{"kind": ..., **fields}`` (tuples become lists)."""
    if not isinstance(action, ACTION_TYPES):
        raise InvalidActionError(f"not an action: {action!r}")
    data: dict[str, Any] = {"kind": action.kind}
    for key, value in asdict(action).items():
        data[key] = list(value) if isinstance(value, tuple) else value
    return data


def action_from_json(data: Any) -> Action:
    """Inverse of ``action_to_json``; raises ``InvalidActionError`` on anything else."""
    if not isinstance(data, dict):
        raise InvalidActionError(f"an action must be a JSON object with a 'kind' field, got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise InvalidActionError(f"action object has no string 'kind' field: {data!r}")
    kind = _KIND_ALIASES.get(kind, kind)
    cls = ACTIONS_BY_KIND.get(kind)
    if cls is None:
        raise InvalidActionError(f"unknown action kind {data.get('kind')!r}; known kinds: {sorted(ACTIONS_BY_KIND)}")
    names = {f.name for f in fields(cls)}
    extra = set(data) - names - {"kind"}
    if extra:
        raise InvalidActionError(f"{kind} action has unknown field(s) {sorted(extra)}; allowed: {sorted(names)}")
    kwargs = {k: v for k, v in data.items() if k != "kind"}
    if cls is Hotkey and isinstance(kwargs.get("keys"), list):
        kwargs["keys"] = tuple(kwargs["keys"])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # missing required field
        raise InvalidActionError(f"{kind} action: {exc}; required fields: {_required(cls)}") from None


def _required(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]


def action_points(action: Action) -> list[tuple[int, int]]:
    """Every screen point an action touches (for validation and for drawing markers)."""
    if isinstance(action, (Click, Move, Scroll)):
        return [(action.x, action.y)]
    if isinstance(action, Drag):
        return [(action.x1, action.y1), (action.x2, action.y2)]
    if isinstance(action, (MouseDown, MouseUp)) and action.x is not None:
        return [(action.x, action.y)]  # type: ignore[list-item]
    return []


def validate_action(action: Any, screen_size: tuple[int, int]) -> Action:
    """Check ``action`` is an Action whose points lie on a ``(width, height)`` screen.

    Returns the action unchanged; raises ``InvalidActionError`` / ``OutOfScreenError``.
    """
    if not isinstance(action, ACTION_TYPES):
        raise InvalidActionError(
            f"expected one of {[c.__name__ for c in ACTION_TYPES]} from envs.actions, got {type(action).__name__}: {action!r}"
        )
    w, h = screen_size
    for x, y in action_points(action):
        if not (0 <= x < w and 0 <= y < h):
            raise OutOfScreenError(x, y, (w, h), what=f"{action.kind} point")
    return action


__all__ = [
    "Action", "ACTION_TYPES", "ACTIONS_BY_KIND", "BUTTONS", "Button", "Click", "Done", "Drag", "Fail",
    "Hotkey", "MouseDown", "MouseUp", "Move", "Scroll", "TypeText", "Wait", "action_from_json",
    "action_points", "action_to_json", "is_terminal", "validate_action",
]
