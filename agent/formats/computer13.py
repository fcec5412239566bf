"""OSWorld's two action spaces: ``computer_13`` JSON dicts and ``pyautogui`` code strings.

``computer_13``: one JSON object per action, in a code block or bare::

    ```json
    {"action_type": "CLICK", "parameters": {"x": 412, "y": 88, "button": "left", "num_clicks": 1}}
    ```

(parameters may also sit at the top level, as OSWorld's controller accepts). Types: MOVE_TO,
CLICK, MOUSE_DOWN, MOUSE_UP, RIGHT_CLICK, DOUBLE_CLICK, DRAG_TO, SCROLL, TYPING, PRESS,
KEY_DOWN, KEY_UP, HOTKEY, WAIT, FAIL, DONE; ``WAIT``/``FAIL``/``DONE`` may also be bare
strings. Semantics are OSWorld's (pyautogui's): CLICK/RIGHT_CLICK/DOUBLE_CLICK without x, y
and DRAG_TO act at the pointer (an earlier MOVE_TO in the same reply says where it is);
SCROLL has no position (at the pointer, else the screen centre) and ``dy > 0`` scrolls *up*.

What ``envs.actions`` cannot express, honestly: KEY_DOWN/KEY_UP are only accepted as pairs
around PRESS/HOTKEY/nothing (they become one ``Hotkey`` chord); holding a key across mouse
actions, typing, or past the end of the reply is a ``ParseError``. DONE carries no answer
(``format`` of ``Done(answer=...)`` raises ``UnsupportedActionError``), FAIL no reason, WAIT
no duration (1 s). DRAG_TO drags with the left button only.

``pyautogui`` (OSWorld's other action space): Python code in a code block, parsed by
``agent.formats.pyautogui_code`` (AST whitelist, never executed), or one of the special
strings ``WAIT``, ``FAIL``, ``DONE``.

Coordinates in both are pixels of the screenshot the model saw (``frame.image_size``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from envs.actions import Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait

from agent.formats.base import (CoordSystem, ModelFrame, ParsedReply, ParseError, UnsupportedActionError,
                                check_reply, join_thoughts, safe_json, scroll_center)
from agent.formats.pyautogui_code import ActionBuilder, format_code_line, parse_pyautogui_code, whole
from agent.formats.thinking import split_thinking

SPECIALS = ("WAIT", "FAIL", "DONE")
_BLOCK = re.compile(r"```[ \t]*([A-Za-z]*)[ \t]*\n?(.*?)```", re.DOTALL)
C13_HELP = ('expected JSON such as {"action_type": "CLICK", "parameters": {"x": 412, "y": 88}} in a code block, '
            "or WAIT / FAIL / DONE; action types: MOVE_TO, CLICK, MOUSE_DOWN, MOUSE_UP, RIGHT_CLICK, DOUBLE_CLICK, "
            "DRAG_TO, SCROLL, TYPING, PRESS, KEY_DOWN, KEY_UP, HOTKEY, WAIT, FAIL, DONE")
CODE_HELP = ("expected Python code in a ```python block using pyautogui (e.g. pyautogui.click(412, 88), "
             "pyautogui.write('hello'), pyautogui.hotkey('ctrl', 'c')), or one of WAIT / FAIL / DONE")

Handler = Callable[[ActionBuilder, dict[str, Any]], None]
#: action_type → (allowed parameters, handler).
C13_ACTIONS: dict[str, tuple[frozenset[str], Handler]] = {
    "MOVE_TO": (frozenset({"x", "y"}), lambda b, p: b.move(p.get("x"), p.get("y"), "MOVE_TO")),
    "CLICK": (frozenset({"x", "y", "button", "num_clicks"}),
              lambda b, p: b.click(p.get("x"), p.get("y"), p.get("button", "left"), p.get("num_clicks", 1), "CLICK")),
    "MOUSE_DOWN": (frozenset({"button"}), lambda b, p: b.mouse(True, None, None, p.get("button", "left"))),
    "MOUSE_UP": (frozenset({"button"}), lambda b, p: b.mouse(False, None, None, p.get("button", "left"))),
    "RIGHT_CLICK": (frozenset({"x", "y"}), lambda b, p: b.click(p.get("x"), p.get("y"), "right", 1, "RIGHT_CLICK")),
    "DOUBLE_CLICK": (frozenset({"x", "y"}), lambda b, p: b.click(p.get("x"), p.get("y"), "left", 2, "DOUBLE_CLICK")),
    "DRAG_TO": (frozenset({"x", "y"}), lambda b, p: b.drag_to(p.get("x"), p.get("y"), "left", "DRAG_TO")),
    "SCROLL": (frozenset({"dx", "dy"}), lambda b, p: b.scroll(None, None, whole(p.get("dx", 0), "dx"),
                                                              -whole(p.get("dy", 0), "dy"), "SCROLL")),
    "TYPING": (frozenset({"text"}), lambda b, p: b.type_text(p.get("text"), "TYPING")),
    "PRESS": (frozenset({"key"}), lambda b, p: b.press(p.get("key"), 1, "PRESS")),
    "KEY_DOWN": (frozenset({"key"}), lambda b, p: b.key_down(p.get("key"))),
    "KEY_UP": (frozenset({"key"}), lambda b, p: b.key_up(p.get("key"))),
    "HOTKEY": (frozenset({"keys"}), lambda b, p: b.hotkey(p.get("keys"), "HOTKEY")),
    "WAIT": (frozenset(), lambda b, p: b.wait(1.0, "WAIT")),
    "FAIL": (frozenset(), lambda b, p: b.fail("")),
    "DONE": (frozenset(), lambda b, p: b.done(None)),
}


def json_objects(text: str) -> list[Any]:
    """Every JSON value (objects, lists) and special string found in ``text``, in order."""
    blocks = [body for _, body in _BLOCK.findall(text)] or [text]
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for block in blocks:
        stripped = block.strip()
        if stripped in SPECIALS:
            found.append(stripped)
            continue
        if stripped.startswith("["):  # a list of actions in one block
            try:
                value = json.loads(stripped)
            except (ValueError, RecursionError):
                value = None
            if isinstance(value, list):
                found.extend(value)
                continue
        i = 0
        while (start := _next_json(block, i)) != -1:
            try:
                value, end = decoder.raw_decode(block, start)
            except (ValueError, RecursionError):
                i = start + 1
                continue
            found.append(value)
            i = end
    if not found and text.strip() in SPECIALS:
        found.append(text.strip())
    return found


def _next_json(text: str, start: int) -> int:
    return text.find("{", start)


@dataclass(frozen=True)
class Computer13Format:
    """OSWorld ``computer_13`` dicts."""

    coords: CoordSystem = field(default_factory=CoordSystem)
    name: str = "computer_13"

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """JSON action dicts (or WAIT/FAIL/DONE) → actions."""
        text = check_reply(text)
        split = split_thinking(text)
        items = json_objects(split.answer)
        if not items:
            raise ParseError(f"no action found; {C13_HELP}")
        builder = ActionBuilder(lambda x, y: self.coords.to_screen(x, y, frame), scroll_center(frame))
        for item in items:
            kind, params = _c13_item(item)
            allowed, handler = C13_ACTIONS[kind]
            extra = set(params) - allowed
            if extra:
                raise ParseError(f"{kind} has no parameter(s) {sorted(extra)}; allowed: {sorted(allowed)}")
            handler(builder, params)
        thought = _BLOCK.sub("", split.answer).strip()
        thought = None if thought in SPECIALS or thought.startswith(("{", "[")) else thought
        return ParsedReply(actions=builder.finish(), thought=join_thoughts(split.thought, thought), raw=text)

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Actions → one ```json block per OSWorld action (after the thought, if any)."""
        blocks = []
        for item in (d for a in actions for d in self._dicts(a, frame)):
            blocks.append(f"```\n{item}\n```" if isinstance(item, str) else f"```json\n{safe_json(item)}\n```")
        body = "\n".join(blocks)
        return f"{thought.strip()}\n{body}" if thought and thought.strip() else body

    def _xy(self, x: int, y: int, frame: ModelFrame) -> dict[str, Any]:
        mx, my = self.coords.from_screen(x, y, frame)
        return {"x": mx, "y": my}

    def _dicts(self, a: Action, frame: ModelFrame) -> list[Any]:
        def act(kind: str, **params: Any) -> dict[str, Any]:
            return {"action_type": kind, "parameters": params}

        if isinstance(a, Click):
            return [act("CLICK", **self._xy(a.x, a.y, frame), button=a.button, num_clicks=a.count)]
        if isinstance(a, Move):
            return [act("MOVE_TO", **self._xy(a.x, a.y, frame))]
        if isinstance(a, Drag) and a.button == "left":
            return [act("MOVE_TO", **self._xy(a.x1, a.y1, frame)), act("DRAG_TO", **self._xy(a.x2, a.y2, frame))]
        if isinstance(a, Scroll):
            return [act("MOVE_TO", **self._xy(a.x, a.y, frame)), act("SCROLL", dx=a.dx, dy=-a.dy)]
        if isinstance(a, TypeText):
            return [act("TYPING", text=a.text)]
        if isinstance(a, Hotkey):
            return [act("PRESS", key=a.keys[0])] if len(a.keys) == 1 else [act("HOTKEY", keys=list(a.keys))]
        if isinstance(a, (MouseDown, MouseUp)):
            kind = "MOUSE_DOWN" if isinstance(a, MouseDown) else "MOUSE_UP"
            move = [] if a.x is None else [act("MOVE_TO", **self._xy(a.x, a.y, frame))]  # type: ignore[arg-type]
            return move + [act(kind, button=a.button)]
        if isinstance(a, Wait):
            return ["WAIT"]
        if isinstance(a, Fail):
            return ["FAIL"]
        if isinstance(a, Done) and not a.answer:
            return ["DONE"]
        raise UnsupportedActionError(f"computer_13 cannot express {a!r} (DONE has no answer, DRAG_TO is left-button only)")

    def system_prompt(self, frame: ModelFrame) -> str:
        """OSWorld's computer_13 instructions, with this frame's coordinate range."""
        return (
            "You are an agent which follow my instruction and perform desktop computer tasks as instructed. "
            "For each step, you will get a screenshot of the computer, and predict the action of the computer "
            "based on the image.\n"
            f"You are required to use one action from this action space: {', '.join(C13_ACTIONS)}. "
            'Write each action as JSON in a code block, like ```{"action_type": "CLICK", "parameters": {"x": 10, '
            '"y": 20, "button": "left", "num_clicks": 1}}```. SCROLL has dx, dy (positive dy scrolls up) and '
            "scrolls at the pointer; DRAG_TO drags from the pointer. When the task is done write ```DONE```, "
            "when it is infeasible ```FAIL```, to wait ```WAIT```.\n"
            f"{self.coords.describe(frame)}."
        )


def _c13_item(item: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(item, str):
        return item, {}
    if not isinstance(item, dict) or not isinstance(item.get("action_type"), str):
        raise ParseError(f'each action must be an object with an "action_type"; got {str(item)[:60]!r}. {C13_HELP}')
    kind = item["action_type"].upper()
    if kind not in C13_ACTIONS:
        raise ParseError(f"unknown action_type {item['action_type']!r}; {C13_HELP}")
    params = item.get("parameters")
    if params is None:
        params = {k: v for k, v in item.items() if k != "action_type"}
    if not isinstance(params, dict):
        raise ParseError(f'"parameters" must be an object, got {params!r}')
    return kind, params


@dataclass(frozen=True)
class OSWorldPyautoguiFormat:
    """OSWorld ``pyautogui`` code strings (plus WAIT / FAIL / DONE)."""

    coords: CoordSystem = field(default_factory=CoordSystem)
    name: str = "pyautogui"

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """Code blocks (or the special strings) → actions; text outside the blocks is the thought."""
        text = check_reply(text)
        split = split_thinking(text)
        blocks = [body for _, body in _BLOCK.findall(split.answer)]
        outside = _BLOCK.sub("", split.answer).strip() if blocks else ""
        if not blocks:
            blocks = [split.answer]
        builder = ActionBuilder(lambda x, y: self.coords.to_screen(x, y, frame), scroll_center(frame))
        for block in blocks:
            special = block.strip()
            if special in SPECIALS:
                C13_ACTIONS[special][1](builder, {})
                continue
            try:
                parse_pyautogui_code(block, builder)
            except ParseError as exc:
                raise ParseError(f"{exc}. {CODE_HELP}") from None
        actions = builder.finish()
        if not actions:
            raise ParseError(f"no action found; {CODE_HELP}")
        return ParsedReply(actions=actions, thought=join_thoughts(split.thought, outside), raw=text)

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Non-terminal actions → one ```python block; Done/Fail → ```DONE``` / ```FAIL```."""
        blocks: list[str] = []
        code: list[str] = []
        for a in actions:
            if isinstance(a, (Done, Fail)):
                if isinstance(a, Done) and a.answer:
                    raise UnsupportedActionError("OSWorld's DONE carries no answer; use another format to return one")
                if code:
                    blocks.append("```python\n" + "\n".join(code) + "\n```")
                    code = []
                blocks.append("```\nDONE\n```" if isinstance(a, Done) else "```\nFAIL\n```")
                continue
            code.extend(format_code_line(a, lambda x, y: self.coords.from_screen(x, y, frame)))
        if code:
            blocks.append("```python\n" + "\n".join(code) + "\n```")
        body = "\n".join(blocks)
        return f"{thought.strip()}\n{body}" if thought and thought.strip() else body

    def system_prompt(self, frame: ModelFrame) -> str:
        """OSWorld's pyautogui instructions, with this frame's coordinate range."""
        return (
            "You are an agent which follow my instruction and perform desktop computer tasks as instructed. "
            "For each step, you will get a screenshot of the computer, and predict the action of the computer "
            "based on the image.\n"
            "You are required to use `pyautogui` to perform the action grounded to the observation, but DO NOT use "
            "the `pyautogui.locateCenterOnScreen` function or `pyautogui.screenshot()`. Return one line or multiple "
            "lines of python code in a ```python code block. Only literal arguments are accepted. Specially, it is "
            "also allowed to return the following special code: ```WAIT``` when you think you have to wait for some "
            "time; ```FAIL``` when you think the task can not be done; ```DONE``` when you think the task is done.\n"
            f"{self.coords.describe(frame)}."
        )


__all__ = ["C13_ACTIONS", "Computer13Format", "OSWorldPyautoguiFormat", "SPECIALS", "json_objects"]
