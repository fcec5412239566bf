"""What every output format shares: the frame, the parsed reply, errors, coordinate systems.

An *output format* (codec) turns model text into ``envs.actions`` and back:

- ``parse(text, frame)`` reads a model reply and returns screen-space actions, or raises
  ``ParseError`` whose message says what was wrong and what the expected syntax is (the agent
  loop feeds it back to the model);
- ``format(actions, frame, thought)`` writes actions the way the model would (training data,
  few-shot examples); an action the format cannot express raises ``UnsupportedActionError``;
- ``system_prompt(frame)`` describes the action space in that format.

Coordinates go through ``CoordSystem``, which only calls ``envs.geometry`` (``to_screen`` /
``from_screen`` / ``smart_resize``): no format scales coordinates on its own.
This module knows nothing about any particular format's syntax.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Sequence, runtime_checkable

from envs.actions import Action
from envs.errors import InvalidActionError
from envs.geometry import Size, from_screen, smart_resize, to_screen

#: Longest reply any parser looks at; longer text is rejected before parsing.
MAX_REPLY_CHARS = 100_000


@dataclass(frozen=True)
class ModelFrame:
    """What the model saw: needed to convert its coordinates to screen pixels.

    ``screen_size``: (w, h) of the real screenshot (screen space, what actions carry).
    ``image_size``: (w, h) of the image sent to the model (after any client-side resize).
    """

    screen_size: tuple[int, int]
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        for name in ("screen_size", "image_size"):
            size = getattr(self, name)
            if isinstance(size, list):  # sizes read back from JSON
                size = tuple(size)
                object.__setattr__(self, name, size)
            if (not isinstance(size, tuple) or len(size) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in size)):
                raise ValueError(f"ModelFrame.{name} must be (width, height) positive ints, got {size!r}")

    @classmethod
    def same(cls, size: tuple[int, int]) -> "ModelFrame":
        """A frame where the model saw the screenshot at its native size."""
        return cls(screen_size=size, image_size=size)


@dataclass(frozen=True)
class ParsedReply:
    """A parsed model reply: screen-space actions, the thought (if any) and the raw text."""

    actions: tuple[Action, ...]
    thought: str | None = None
    raw: str = ""


class ParseError(ValueError):
    """The model text is not valid in this format.

    The message says what was wrong and what the expected syntax is; it is fed back to the model.
    """


class UnsupportedActionError(ValueError):
    """``format`` was given an action this output format cannot express."""


@runtime_checkable
class OutputFormat(Protocol):
    """A codec between model text and ``envs.actions``."""

    name: str

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """Model text → screen-space actions; raises ``ParseError``."""
        ...

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Screen-space actions → model text; raises ``UnsupportedActionError``."""
        ...

    def system_prompt(self, frame: ModelFrame) -> str:
        """A description of the action space in this format, for this frame."""
        ...


CoordKind = Literal["image", "smart_resize", "norm1000", "unit"]
COORD_KINDS: tuple[str, ...] = ("image", "smart_resize", "norm1000", "unit")


@dataclass(frozen=True)
class CoordSystem:
    """The space a model's coordinates live in.

    - ``image``: integer pixels of the image the model was sent (``frame.image_size``);
    - ``smart_resize``: integer pixels of Qwen2-VL's smart-resized copy of that image (the
      processor resizes again on the server; UI-TARS 1.5, Qwen2.5-VL, OpenCUA absolute);
    - ``norm1000``: 0..1000 on both axes (UI-TARS 1.0);
    - ``unit``: 0..1 on both axes (OpenCUA relative).
    """

    kind: CoordKind = "image"
    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280

    def __post_init__(self) -> None:
        if self.kind not in COORD_KINDS:
            raise ValueError(f"CoordSystem.kind must be one of {COORD_KINDS}, got {self.kind!r}")
        if self.factor <= 0 or not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"CoordSystem needs factor > 0 and 0 < min_pixels <= max_pixels, got "
                f"factor={self.factor}, min_pixels={self.min_pixels}, max_pixels={self.max_pixels}")

    def model_size(self, frame: ModelFrame) -> tuple[float, float]:
        """(width, height) extent of the model's coordinate space for ``frame``."""
        if self.kind == "image":
            return float(frame.image_size[0]), float(frame.image_size[1])
        if self.kind == "smart_resize":
            w, h = self._resized(frame)
            return float(w), float(h)
        return (1000.0, 1000.0) if self.kind == "norm1000" else (1.0, 1.0)

    def _resized(self, frame: ModelFrame) -> Size:
        w, h = frame.image_size
        h_bar, w_bar = smart_resize(h, w, factor=self.factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return w_bar, h_bar

    def _space(self, frame: ModelFrame) -> tuple[str, Size | None]:
        if self.kind == "image":
            return "resized", frame.image_size
        if self.kind == "smart_resize":
            return "resized", self._resized(frame)
        return self.kind, None

    def to_screen(self, x: Any, y: Any, frame: ModelFrame) -> tuple[int, int]:
        """Model coordinates → screen pixels; ``ParseError`` if not numbers inside the space."""
        ex, ey = self.model_size(frame)
        for name, value, extent in (("x", x, ex), ("y", y, ey)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ParseError(f"coordinate {name} must be a number, got {value!r}; {self.describe(frame)}")
            if not 0 <= value <= extent:
                raise ParseError(f"coordinate {name}={value!r} is outside the model space; {self.describe(frame)}")
        space, resized = self._space(frame)
        return to_screen(float(x), float(y), space=space, screen_size=frame.screen_size,  # type: ignore[arg-type]
                         resized_size=resized)

    def from_screen(self, x: int, y: int, frame: ModelFrame) -> tuple[float, float]:
        """Screen pixels → model coordinates (ints for pixel spaces, 4-decimal floats for ``unit``)."""
        space, resized = self._space(frame)
        return from_screen(x, y, space=space, screen_size=frame.screen_size, resized_size=resized)  # type: ignore[arg-type]

    def describe(self, frame: ModelFrame) -> str:
        """One sentence for prompts and error messages: what coordinates mean here."""
        ex, ey = self.model_size(frame)
        if self.kind == "unit":
            return "coordinates are fractions of the screenshot, 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 (top-left is 0, 0)"
        if self.kind == "norm1000":
            return "coordinates are relative, 0 <= x <= 1000 and 0 <= y <= 1000 (top-left is 0, 0)"
        return f"coordinates are integer pixels of the {int(ex)}x{int(ey)} screenshot, 0 <= x < {int(ex)} and 0 <= y < {int(ey)}"


def fmt_number(value: float) -> str:
    """A coordinate as model text: ``412`` for whole numbers, ``0.5123`` otherwise."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def safe_json(value: Any) -> str:
    """JSON text whose ``<`` and backticks are ``\\u`` escapes, so a typed "```", "</think>" or
    "</tool_call>" cannot end the code block, section or tag around it."""
    text = json.dumps(value, ensure_ascii=False)
    if any("\ud800" <= c <= "\udfff" for c in text):  # lone surrogates only survive as escapes
        text = json.dumps(value)
    return text.replace("<", "\\u003c").replace("`", "\\u0060")


def make_action(cls: type, what: str, **kwargs: Any) -> Action:
    """Construct ``cls(**kwargs)``, turning validation errors into ``ParseError`` about ``what``."""
    try:
        return cls(**kwargs)  # type: ignore[no-any-return]
    except InvalidActionError as exc:
        raise ParseError(f"{what}: {exc}") from None


def check_reply(text: Any) -> str:
    """Reject non-strings and over-long replies before any parser looks at them."""
    if not isinstance(text, str):
        raise ParseError(f"a model reply must be a string, got {type(text).__name__}")
    if len(text) > MAX_REPLY_CHARS:
        raise ParseError(f"reply is {len(text)} characters; keep it under {MAX_REPLY_CHARS} (one short action)")
    return text


def join_thoughts(*parts: str | None) -> str | None:
    """Join the non-empty thought parts with a blank line; None when there are none."""
    kept = [p.strip() for p in parts if p and p.strip()]
    return "\n\n".join(kept) if kept else None


def scroll_center(frame: ModelFrame) -> tuple[int, int]:
    """Where a scroll without a position happens: the screen centre (documented per format)."""
    return frame.screen_size[0] // 2, frame.screen_size[1] // 2


__all__ = [
    "COORD_KINDS", "CoordSystem", "MAX_REPLY_CHARS", "ModelFrame", "OutputFormat", "ParseError",
    "ParsedReply", "UnsupportedActionError", "check_reply", "safe_json", "fmt_number", "join_thoughts", "make_action",
    "scroll_center",
]
