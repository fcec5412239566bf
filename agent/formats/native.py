"""The project's own output format: an optional thinking section, then one action per line.

Grammar (what the pixelpilot model is trained to write)::

    <think>The Save button is at the top left; click it.</think>
    click(x=412, y=88)

Each action line is a call ``name(arg=value, ...)`` or the same thing as a JSON object
(``{"kind": "click", "x": 412, "y": 88}``). Values are JSON/Python literals: integers,
numbers, double-quoted strings with JSON escapes (``"line\\nnext"``), lists, true/false/null.
Arguments may also be positional, in the order listed. One name per ``envs.actions`` kind, so
every action is expressible and there is exactly one way to write each:

    click(x, y, button="left", count=1)     button: left|right|middle; count 2 = double click
    move(x, y)
    drag(x1, y1, x2, y2, button="left")
    scroll(x, y, dx=0, dy=0)                wheel notches; dy > 0 scrolls down, dx > 0 right
    type(text)                              "\\n" in text presses Enter
    hotkey(keys)                            keys=["ctrl", "c"]; one key: keys=["enter"]
    mouse_down(button="left", x=null, y=null)   press and hold (at x, y if given)
    mouse_up(button="left", x=null, y=null)
    wait(seconds=1)
    done(answer=null)                       the task is complete (answer: text, if asked)
    fail(reason="")                         the task cannot be done

Coordinates are integer pixels of the image the model saw (``frame.image_size``, top-left
is 0, 0); ``format`` writes only arguments that differ from their defaults. Lines are parsed
with ``ast`` and only literals are read (never eval/exec). Blank lines and a surrounding
Markdown code fence are ignored.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Sequence

from envs.actions import ACTIONS_BY_KIND, Action, action_from_json, action_to_json
from envs.errors import InvalidActionError

from agent.formats.base import CoordSystem, ModelFrame, ParsedReply, ParseError, check_reply, safe_json
from agent.formats.pyautogui_code import literal_value, quiet_parse
from agent.formats.thinking import join_thinking, split_thinking

_JSON_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_POINTS = (("x", "y"), ("x1", "y1"), ("x2", "y2"))
SYNTAX_HELP = ('expected one action per line such as click(x=412, y=88), type(text="hello"), '
               'hotkey(keys=["ctrl", "c"]), scroll(x=400, y=300, dy=3), done(answer="42") or fail(reason="..."), '
               'optionally after <think>...</think>')


def _params(kind: str) -> list[str]:
    return [f.name for f in fields(ACTIONS_BY_KIND[kind])]


def _defaults(kind: str) -> dict[str, Any]:
    return {f.name: f.default for f in fields(ACTIONS_BY_KIND[kind]) if f.default is not MISSING}


@dataclass(frozen=True)
class NativeFormat:
    """The native codec; ``coords`` is the model's coordinate space (image pixels by default)."""

    coords: CoordSystem = field(default_factory=CoordSystem)
    name: str = "native"
    #: ``"full"``: the whole action space in the system prompt (~420 tokens); ``"compact"``:
    #: one line (~35 tokens) for small models trained on it (the grammar is the same).
    prompt: str = "full"

    def __post_init__(self) -> None:
        if self.prompt not in ("full", "compact"):
            raise ValueError(f"NativeFormat.prompt must be 'full' or 'compact', got {self.prompt!r}")

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """Model text → actions (see the module docstring for the grammar)."""
        text = check_reply(text)
        split = split_thinking(text)
        body = _strip_fence(split.answer)
        if not body:
            cut = "" if split.closed else " (the <think> section was never closed with </think>)"
            raise ParseError(f"no action found{cut}; {SYNTAX_HELP}")
        try:
            tree = quiet_parse(body)
        except SyntaxError as exc:
            raise ParseError(f"line {exc.lineno}: not a valid action ({exc.msg}); {SYNTAX_HELP}") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ParseError(f"the reply could not be parsed ({type(exc).__name__}); {SYNTAX_HELP}") from None
        actions = []
        for stmt in tree.body:
            try:
                kind, args = _statement(stmt)
                actions.append(self._action(kind, args, frame))
            except ParseError as exc:
                raise ParseError(f"line {stmt.lineno}: {exc}") from None
        if not actions:
            raise ParseError(f"no action found; {SYNTAX_HELP}")
        return ParsedReply(actions=tuple(actions), thought=split.thought, raw=text)

    def _action(self, kind: str, args: dict[str, Any], frame: ModelFrame) -> Action:
        data = dict(args)
        for kx, ky in _POINTS:
            if kx in data or ky in data:
                if data.get(kx) is None and data.get(ky) is None:
                    continue
                if kx not in data or ky not in data:
                    raise ParseError(f"{kind} needs both {kx} and {ky}")
                data[kx], data[ky] = self.coords.to_screen(data[kx], data[ky], frame)
        if isinstance(data.get("keys"), list):
            data["keys"] = tuple(data["keys"])
        try:
            return action_from_json({"kind": kind, **data})
        except InvalidActionError as exc:
            raise ParseError(f"{exc}; {SYNTAX_HELP}") from None

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Actions → one call per line (non-default arguments only), after an optional thought."""
        lines = [self._line(a, frame) for a in actions]
        return join_thinking(thought, "\n".join(lines))

    def _line(self, action: Action, frame: ModelFrame) -> str:
        data = action_to_json(action)
        kind = data.pop("kind")
        for kx, ky in _POINTS:
            if data.get(kx) is not None:
                data[kx], data[ky] = self.coords.from_screen(data[kx], data[ky], frame)
        defaults = _defaults(kind)
        parts = []
        for name in _params(kind):
            value = data[name]
            if name in defaults and value == (list(defaults[name]) if isinstance(defaults[name], tuple) else defaults[name]):
                continue
            parts.append(f"{name}={_literal(value)}")
        return f"{kind}({', '.join(parts)})"

    def system_prompt(self, frame: ModelFrame) -> str:
        """The action space in native syntax, with this frame's coordinate range."""
        w, h = frame.image_size
        if self.prompt == "compact":
            return (f"GUI agent. Screenshot {w}x{h} pixels. Reply with one action: click(x, y), "
                    "type(text), hotkey(keys), scroll(x, y, dy), wait(), done() or fail(reason).")
        body = __doc__.split("every action is expressible and there is exactly one way to write each:")[1]
        calls = textwrap.dedent(body.split("Coordinates are")[0]).strip()
        return (
            "You control a computer through its screen, mouse and keyboard. Each turn you see a screenshot. "
            "First think inside <think>...</think>, then write the next action(s), one per line:\n"
            f"{calls}\n\n"
            f"The screenshot is {frame.image_size[0]}x{frame.image_size[1]} pixels; {self.coords.describe(frame)}. "
            "Strings are double-quoted with JSON escapes. When the task is complete write done(); "
            "if it cannot be done write fail(reason=\"...\")."
        )


def _statement(stmt: ast.stmt) -> tuple[str, dict[str, Any]]:
    """One statement → (kind, arguments); calls and JSON objects are both accepted."""
    if not isinstance(stmt, ast.Expr):
        raise ParseError(f"{type(stmt).__name__} statements are not allowed; {SYNTAX_HELP}")
    node = stmt.value
    if isinstance(node, ast.Dict):
        data = literal_value(node, _JSON_NAMES)
        kind = data.pop("kind", None) if isinstance(data, dict) else None
        if not isinstance(kind, str):
            raise ParseError(f'a JSON action needs a "kind" field, e.g. {{"kind": "click", "x": 412, "y": 88}}')
        return _kind(kind), {str(k): v for k, v in data.items()}
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise ParseError(f"each line must be one action call; {SYNTAX_HELP}")
    kind = _kind(node.func.id)
    params = _params(kind)
    positional = [literal_value(a, _JSON_NAMES) if not isinstance(a, ast.Starred) else _no_star() for a in node.args]
    if kind == "hotkey" and len(positional) > 1:  # hotkey("ctrl", "c")
        positional = [positional]
    if len(positional) > len(params):
        raise ParseError(f"{kind} takes at most {len(params)} positional arguments ({', '.join(params)})")
    args = dict(zip(params, positional))
    for kw in node.keywords:
        if kw.arg is None:
            raise ParseError("**arguments are not allowed; write the values out")
        if kw.arg not in params:
            raise ParseError(f"{kind} has no argument {kw.arg!r}; its arguments are {', '.join(params)}")
        if kw.arg in args:
            raise ParseError(f"{kind} got argument {kw.arg!r} twice")
        args[kw.arg] = literal_value(kw.value, _JSON_NAMES)
    return kind, args


def _kind(name: str) -> str:
    if name not in ACTIONS_BY_KIND:
        raise ParseError(f"unknown action {name!r}; use one of {', '.join(ACTIONS_BY_KIND)}")
    return name


def _no_star() -> Any:
    raise ParseError("*arguments are not allowed; write the values out")


def _literal(value: Any) -> str:
    return safe_json(value)


def _strip_fence(text: str) -> str:
    lines = text.strip().split("\n")
    if len(lines) >= 2 and lines[0].strip().startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    return "\n".join(lines).strip()


__all__ = ["NativeFormat", "SYNTAX_HELP"]
