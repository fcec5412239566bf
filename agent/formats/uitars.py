"""UI-TARS output format: ``Thought: …`` then ``Action: click(start_box='(x,y)')``.

Action space (UI-TARS computer-use prompt)::

    click(start_box='(x1,y1)')            also left_single; left_double; right_single
    drag(start_box='(x1,y1)', end_box='(x2,y2)')      also select
    hotkey(key='ctrl c')                   space-separated key names; press(key=...) is one key
    type(content='hello\\n')               Python escapes (\\' \\" \\n); a final \\n submits
    scroll(start_box='(x1,y1)', direction='down')     up | down | left | right
    hover(start_box='(x1,y1)')             also move_to / mouse_move; mouse_down / mouse_up
    wait()                                 sleep 5 s and look again
    finished(content='answer')
    call_user()                            ask a person for help: an ``envs.actions.Fail``

Boxes may be written ``'(x,y)'``, ``'<|box_start|>(x,y)<|box_end|>'``, ``'[x1,y1,x2,y2]'``,
``'<point>x y</point>'`` or ``'<bbox>x1 y1 x2 y2</bbox>'`` (four numbers: the centre is used);
``point=`` / ``start_point=`` / ``end_point=`` are accepted for ``start_box`` / ``end_box``.
Several actions are separated by a blank line. A ``<think>`` section, if present, is joined
to the ``Thought:`` text.

Coordinates: UI-TARS 1.5 (and Qwen2.5-VL-based models) give absolute pixels of the
smart-resized image (``UITarsFormat()``, ``min_pixels=100·28·28``, ``max_pixels=16384·28·28`` as
in the ``ui-tars`` package); UI-TARS 1.0 gives 0–1000 relative values
(``UITarsFormat(coords=CoordSystem("norm1000"))``).

Not expressible (``format`` raises ``UnsupportedActionError``): triple clicks, middle clicks,
double right clicks, drags with other buttons than left, mouse_down/up with other buttons.
Lossy: a scroll has a direction, not an amount (``scroll_notches`` each way); ``wait()`` is
always 5 s; ``call_user()`` carries no reason; ``release(key=...)`` (releasing a held key)
cannot be expressed and is a ``ParseError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from envs.actions import (Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText,
                          Wait)
from envs.geometry import box_center

from agent.formats.base import (CoordSystem, ModelFrame, ParsedReply, ParseError, UnsupportedActionError,
                                check_reply, fmt_number, join_thoughts, make_action, scroll_center)
from agent.formats.thinking import split_thinking

UITARS_MIN_PIXELS = 100 * 28 * 28
UITARS_MAX_PIXELS = 16384 * 28 * 28
WAIT_SECONDS = 5.0
_NUM = re.compile(r"-?\d+(?:\.\d+)?")
_ARG = re.compile(r"(\w+)\s*=\s*(['\"])((?:\\.|(?!\2).)*)\2", re.DOTALL)
_CALL = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$", re.DOTALL)
_BOX_KEYS = {"start_box": "start_box", "end_box": "end_box", "point": "start_box",
             "start_point": "start_box", "end_point": "end_box"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
SYNTAX_HELP = ("expected `Thought: <reasoning>` then `Action: <call>`, e.g. Action: click(start_box='(412,88)'), "
               "type(content='hello\\n'), hotkey(key='ctrl c'), scroll(start_box='(400,300)', direction='down'), "
               "wait(), finished(content='...')")


def unescape(text: str) -> str:
    """Decode Python string escapes (``\\n``, ``\\'``, ``\\\\``, ``\\xHH``, ``\\uXXXX``); others stay."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        width = {"x": 2, "u": 4}.get(nxt, 0)
        digits = text[i + 2:i + 2 + width]
        if width and len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def quote(text: str) -> str:
    """``text`` as a single-quoted Python string literal (UI-TARS writes content this way)."""
    body = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    body = body.replace("<", "\\x3c")  # a typed "</think>" must not end a thinking section
    return f"'{body}'"


def split_calls(action_text: str) -> list[tuple[str, str]]:
    """``Action:`` text → [(function, argument text)], one per call (blank-line separated)."""
    calls = []
    for chunk in action_text.split(")\n\n"):
        chunk = chunk.strip()
        if not chunk:
            continue
        if not chunk.endswith(")"):
            chunk += ")"
        match = _CALL.match(chunk)
        if match is None:
            raise ParseError(f"`{chunk[:80]}` is not a call like click(start_box='(x,y)'); {SYNTAX_HELP}")
        calls.append((match.group(1), match.group(2)))
    if not calls:
        raise ParseError(f"no action after `Action:`; {SYNTAX_HELP}")
    return calls


def parse_args(function: str, args: str) -> dict[str, str]:
    """The quoted keyword arguments of one call (content of type/finished may hold bare quotes)."""
    found: dict[str, str] = {}
    content = re.match(r"\s*content\s*=\s*(['\"])(.*)\1\s*$", args, re.DOTALL)
    if function in ("type", "finished") and content:
        return {"content": unescape(content.group(2))}
    for match in _ARG.finditer(args):
        found[match.group(1)] = unescape(match.group(3))
    leftover = _ARG.sub("", args).replace(",", "").strip()
    if leftover:
        raise ParseError(f"{function}(...) has an argument that is not name='value': `{leftover[:60]}`; {SYNTAX_HELP}")
    return {_BOX_KEYS.get(k, k): v for k, v in found.items()}


def box_point(value: str) -> tuple[float, float]:
    """A box string → its point in model coordinates (the centre of a four-number box)."""
    cleaned = value
    for token in ("<|box_start|>", "<|box_end|>", "<point>", "</point>", "<bbox>", "</bbox>"):
        cleaned = cleaned.replace(token, " ")
    numbers = [float(n) for n in _NUM.findall(cleaned)]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    if len(numbers) == 4:
        return box_center(*numbers)
    raise ParseError(f"a box must be '(x,y)' or '[x1,y1,x2,y2]', got {value[:60]!r}")


def split_keys(value: str) -> tuple[str, ...]:
    """``'ctrl c'`` / ``'ctrl+c'`` → ``('ctrl', 'c')``."""
    tokens = value.split()
    if len(tokens) == 1 and "+" in tokens[0] and len(tokens[0]) > 1:
        tokens = [t for t in tokens[0].split("+") if t]
    if not tokens:
        raise ParseError(f"hotkey needs key names such as key='ctrl c', got {value!r}")
    return tuple(tokens)


@dataclass(frozen=True)
class UITarsFormat:
    """The UI-TARS codec. ``box_tokens`` wraps points in ``<|box_start|>…<|box_end|>`` when formatting."""

    coords: CoordSystem = field(default_factory=lambda: CoordSystem(
        "smart_resize", min_pixels=UITARS_MIN_PIXELS, max_pixels=UITARS_MAX_PIXELS))
    scroll_notches: int = 5
    box_tokens: bool = False
    name: str = "uitars"

    def __post_init__(self) -> None:
        if self.scroll_notches <= 0:
            raise ValueError(f"scroll_notches must be positive, got {self.scroll_notches}")

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """``Thought: … Action: …`` → actions."""
        text = check_reply(text)
        split = split_thinking(text)
        answer = split.answer
        line_start = re.search(r"(?:^|\n)[ \t]*Action:", answer)  # content never holds a raw newline
        at = line_start.end() - len("Action:") if line_start else answer.rfind("Action:")
        if at == -1:
            cut = "" if split.closed else " (the <think> section was never closed)"
            raise ParseError(f"no `Action:` found{cut}; {SYNTAX_HELP}")
        head, action_text = answer[:at], answer[at + len("Action:"):]
        thought = re.sub(r"^\s*(Thought|Reflection|Action_Summary):\s*", "", head.strip())
        thought = re.sub(r"\s*Action_Summary:\s*", "\n", thought)
        actions = [self._action(fn, parse_args(fn, args), frame) for fn, args in split_calls(action_text)]
        return ParsedReply(actions=tuple(actions), thought=join_thoughts(split.thought, thought), raw=text)

    def _point(self, args: dict[str, str], key: str, function: str, frame: ModelFrame) -> tuple[int, int]:
        if key not in args:
            raise ParseError(f"{function} needs {key}='(x,y)'; {SYNTAX_HELP}")
        x, y = box_point(args[key])
        return self.coords.to_screen(x, y, frame)

    def _action(self, fn: str, args: dict[str, str], frame: ModelFrame) -> Action:
        clicks = {"click": ("left", 1), "left_single": ("left", 1), "left_double": ("left", 2),
                  "right_single": ("right", 1)}
        if fn in clicks:
            x, y = self._point(args, "start_box", fn, frame)
            return Click(x, y, clicks[fn][0], clicks[fn][1])  # type: ignore[arg-type]
        if fn in ("hover", "move_to", "mouse_move"):
            return Move(*self._point(args, "start_box", fn, frame))
        if fn in ("drag", "select"):
            x1, y1 = self._point(args, "start_box", fn, frame)
            x2, y2 = self._point(args, "end_box", fn, frame)
            return Drag(x1, y1, x2, y2)
        if fn in ("mouse_down", "mouse_up"):
            cls = MouseDown if fn == "mouse_down" else MouseUp
            if "start_box" in args:
                x, y = self._point(args, "start_box", fn, frame)
                return cls("left", x, y)
            return cls()
        if fn in ("hotkey", "press", "keydown"):
            value = args.get("key", args.get("hotkey", args.get("press")))
            if value is None:
                raise ParseError(f"{fn} needs key='...', e.g. hotkey(key='ctrl c')")
            return make_action(Hotkey, fn, keys=split_keys(value))
        if fn == "type":
            return make_action(TypeText, "type", text=args.get("content", ""))
        if fn == "scroll":
            return self._scroll(args, frame)
        if fn == "wait":
            return Wait(WAIT_SECONDS)
        if fn == "finished":
            return Done(args.get("content") or None)
        if fn == "call_user":
            return Fail("call_user: the model asked for a person's help")
        if fn in ("release", "keyup"):
            raise ParseError("releasing a held key cannot be expressed; press key combinations with hotkey(key='ctrl c')")
        raise ParseError(f"unknown action {fn!r}; {SYNTAX_HELP}")

    def _scroll(self, args: dict[str, str], frame: ModelFrame) -> Action:
        direction = args.get("direction", "").strip().lower()
        steps = {"down": (0, 1), "up": (0, -1), "right": (1, 0), "left": (-1, 0)}
        if direction not in steps:
            raise ParseError(f"scroll needs direction='up', 'down', 'left' or 'right', got {direction!r}")
        x, y = self._point(args, "start_box", "scroll", frame) if "start_box" in args else scroll_center(frame)
        dx, dy = steps[direction]
        return Scroll(x, y, dx * self.scroll_notches, dy * self.scroll_notches)

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Actions → ``Thought: …\\nAction: …`` (several actions separated by blank lines)."""
        calls = [call for a in actions for call in self._calls(a, frame)]
        action = "Action: " + "\n\n".join(calls)
        return f"Thought: {thought.strip()}\n{action}" if thought and thought.strip() else action

    def _box(self, x: int, y: int, frame: ModelFrame) -> str:
        mx, my = self.coords.from_screen(x, y, frame)
        point = f"({fmt_number(mx)},{fmt_number(my)})"
        return f"'<|box_start|>{point}<|box_end|>'" if self.box_tokens else f"'{point}'"

    def _calls(self, a: Action, frame: ModelFrame) -> list[str]:
        if isinstance(a, Click):
            names = {("left", 1): "click", ("left", 2): "left_double", ("right", 1): "right_single"}
            if (a.button, a.count) not in names:
                raise UnsupportedActionError(f"UI-TARS has no {a.button} click with count {a.count}")
            return [f"{names[(a.button, a.count)]}(start_box={self._box(a.x, a.y, frame)})"]
        if isinstance(a, Move):
            return [f"hover(start_box={self._box(a.x, a.y, frame)})"]
        if isinstance(a, Drag):
            if a.button != "left":
                raise UnsupportedActionError(f"UI-TARS drags with the left button only, got {a.button}")
            return [f"drag(start_box={self._box(a.x1, a.y1, frame)}, end_box={self._box(a.x2, a.y2, frame)})"]
        if isinstance(a, Scroll):
            out = []
            if a.dy:
                out.append(f"scroll(start_box={self._box(a.x, a.y, frame)}, direction='{'down' if a.dy > 0 else 'up'}')")
            if a.dx:
                out.append(f"scroll(start_box={self._box(a.x, a.y, frame)}, direction='{'right' if a.dx > 0 else 'left'}')")
            return out
        if isinstance(a, TypeText):
            return [f"type(content={quote(a.text)})"]
        if isinstance(a, Hotkey):
            return [f"hotkey(key={quote(' '.join('space' if k == ' ' else k for k in a.keys))})"]
        if isinstance(a, (MouseDown, MouseUp)):
            fn = "mouse_down" if isinstance(a, MouseDown) else "mouse_up"
            if a.button != "left":
                raise UnsupportedActionError(f"UI-TARS {fn} uses the left button only, got {a.button}")
            return [f"{fn}()" if a.x is None else f"{fn}(start_box={self._box(a.x, a.y, frame)})"]  # type: ignore[arg-type]
        if isinstance(a, Wait):
            return ["wait()"]
        if isinstance(a, Done):
            return ["finished()" if a.answer is None else f"finished(content={quote(a.answer)})"]
        if isinstance(a, Fail):
            return ["call_user()"]
        raise UnsupportedActionError(f"UI-TARS cannot express {a!r}")

    def system_prompt(self, frame: ModelFrame) -> str:
        """The UI-TARS computer-use prompt, with this frame's coordinate range."""
        return (
            "You are a GUI agent. You are given a task and your action history, with screenshots. "
            "You need to perform the next action to complete the task.\n\n"
            "## Output Format\n```\nThought: ...\nAction: ...\n```\n\n"
            "## Action Space\n"
            "click(start_box='(x1,y1)')\nleft_double(start_box='(x1,y1)')\nright_single(start_box='(x1,y1)')\n"
            "drag(start_box='(x1,y1)', end_box='(x3,y3)')\n"
            "hotkey(key='')  # key names separated by spaces, e.g. key='ctrl c'\n"
            "type(content='')  # If you want to submit your input, use \"\\n\" at the end of `content`.\n"
            "scroll(start_box='(x1,y1)', direction='down or up or right or left')\n"
            "wait()  # Sleep for 5s and take a screenshot to check for any changes.\n"
            "finished(content='xxx')  # Use escape characters \\', \\\", and \\n in content part to ensure we can "
            "parse the content in normal python string format.\n"
            "call_user()  # Submit the task and call the user when the task is unsolvable, or when you need the "
            "user's help.\n\n"
            f"## Note\n- {self.coords.describe(frame)}.\n"
            "- Write a small plan and finally summarize your next action (with its target element) in one "
            "sentence in `Thought` part.\n"
        )


__all__ = ["SYNTAX_HELP", "UITARS_MAX_PIXELS", "UITARS_MIN_PIXELS", "UITarsFormat", "box_point", "parse_args",
           "quote", "split_calls", "split_keys", "unescape"]
