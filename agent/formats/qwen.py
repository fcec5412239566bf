"""Qwen2.5-VL ``computer_use`` tool calls.

::

    <tool_call>
    {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [412, 88]}}
    </tool_call>

Actions (Qwen's ``computer_use`` function): ``key`` (``keys``: list), ``type`` (``text``),
``mouse_move``, ``left_click``, ``right_click``, ``middle_click``, ``double_click``,
``triple_click`` (``coordinate``), ``left_click_drag`` (``coordinate``: drag from the pointer),
``scroll`` (``pixels``: positive scrolls *up*, in wheel notches as pyautogui counts them),
``wait`` (``time`` seconds), ``terminate`` (``status``: success | failure), ``answer``
(``text``). Coordinates are pixels of the smart-resized image (Qwen2.5-VL processor defaults:
``min_pixels=3136``, ``max_pixels=12845056``). Text outside the tool calls is the thought.

Mapping notes: ``left_click_drag`` starts where the pointer is; right after a ``mouse_move``
in the same reply the two become one ``Drag``, otherwise it becomes ``MouseDown`` +
``MouseUp(x, y)``. A scroll without ``coordinate`` happens at the screen centre. ``answer``
followed by ``terminate(success)`` is one ``Done(answer)``. Not expressible: drags with other
buttons than left, mouse_down/up with other buttons or at a point, horizontal scrolls
(Qwen2.5-VL has no ``hscroll``), and a failure reason (``terminate`` carries only a status).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from envs.actions import Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait

from agent.formats.base import (CoordSystem, ModelFrame, ParsedReply, ParseError, UnsupportedActionError,
                                check_reply, join_thoughts, safe_json, scroll_center)
from agent.formats.pyautogui_code import ActionBuilder, whole
from agent.formats.thinking import split_thinking

QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 16384
TOOL_NAMES = ("computer_use", "computer")
_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_CLICKS = {"left_click": ("left", 1), "right_click": ("right", 1), "middle_click": ("middle", 1),
           "double_click": ("left", 2), "triple_click": ("left", 3)}
SYNTAX_HELP = ('expected <tool_call>{"name": "computer_use", "arguments": {"action": "left_click", '
               '"coordinate": [x, y]}}</tool_call>; actions: key, type, mouse_move, left_click, left_click_drag, '
               'right_click, middle_click, double_click, triple_click, scroll, wait, terminate, answer')


def tool_calls(answer: str) -> list[dict[str, Any]]:
    """The ``arguments`` objects of every ``computer_use`` call in ``answer``."""
    bodies = _CALL.findall(answer)
    if not bodies:
        raise ParseError(f"no <tool_call> found; {SYNTAX_HELP}")
    out = []
    for body in bodies:
        try:
            call = json.loads(body.strip())
            args = call.get("arguments") if isinstance(call, dict) else None
            if isinstance(args, str):  # some servers send arguments as a JSON string
                args = json.loads(args)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"a tool call is not valid JSON ({str(exc)[:80]}); {SYNTAX_HELP}") from None
        if not isinstance(call, dict) or call.get("name") not in TOOL_NAMES or not isinstance(args, dict):
            raise ParseError(f'each tool call needs "name": "computer_use" and an "arguments" object; {SYNTAX_HELP}')
        out.append(args)
    return out


@dataclass(frozen=True)
class QwenComputerUseFormat:
    """The Qwen2.5-VL ``computer_use`` codec (coordinates in smart-resized pixels by default)."""

    coords: CoordSystem = field(default_factory=lambda: CoordSystem(
        "smart_resize", min_pixels=QWEN_MIN_PIXELS, max_pixels=QWEN_MAX_PIXELS))
    name: str = "qwen25vl"

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """Tool calls → actions; the text outside them is the thought."""
        text = check_reply(text)
        split = split_thinking(text)
        calls = tool_calls(split.answer)
        builder = ActionBuilder(lambda x, y: self.coords.to_screen(x, y, frame), scroll_center(frame))
        i = 0
        while i < len(calls):
            args = calls[i]
            i += 1
            if args.get("action") != "answer":
                self._apply(builder, args.get("action"), args)
                continue
            builder.done(_text(args, "text", "answer"))
            nxt = calls[i] if i < len(calls) else {}
            if nxt.get("action") == "terminate" and nxt.get("status") == "success":
                i += 1  # answer + terminate(success) is one Done
        thought = _CALL.sub("", split.answer)
        return ParsedReply(actions=builder.finish(), thought=join_thoughts(split.thought, thought), raw=text)

    def _apply(self, b: ActionBuilder, action: Any, args: dict[str, Any]) -> None:
        coord = args.get("coordinate")
        xy = _point(coord) if coord is not None else (None, None)
        if action in _CLICKS:
            button, count = _CLICKS[action]
            b.click(*xy, button, count, action)
        elif action == "mouse_move":
            b.move(*_require(xy, action))
        elif action == "left_click_drag":
            b.drag_to(*_require(xy, action), "left", action)
        elif action == "scroll":
            b.scroll(*xy, 0, -whole(args.get("pixels"), "scroll pixels"), action)
        elif action == "key":
            keys = args.get("keys")
            b.hotkey([keys] if isinstance(keys, str) else keys, action)
        elif action == "type":
            b.type_text(_text(args, "text", "type"), action)
        elif action == "wait":
            b.wait(args.get("time", 1.0), action)
        elif action == "terminate":
            status = args.get("status")
            if status not in ("success", "failure"):
                raise ParseError(f"terminate needs status 'success' or 'failure', got {status!r}")
            if status == "success":
                b.done()
            else:
                b.fail()
        else:
            raise ParseError(f"unknown action {action!r}; {SYNTAX_HELP}")

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Actions → tool calls (after the thought, if any)."""
        calls: list[dict[str, Any]] = []
        i = 0
        while i < len(actions):
            a = actions[i]
            nxt = actions[i + 1] if i + 1 < len(actions) else None
            if isinstance(a, MouseDown) and a.button == "left" and a.x is None and isinstance(nxt, MouseUp) \
                    and nxt.button == "left" and nxt.x is not None:
                calls.append({"action": "left_click_drag", "coordinate": self._xy(nxt.x, nxt.y, frame)})  # type: ignore[arg-type]
                i += 2
                continue
            calls.extend(self._calls(a, frame))
            i += 1
        text = "\n".join(f"<tool_call>\n{safe_json({'name': 'computer_use', 'arguments': c})}\n"
                         "</tool_call>" for c in calls)
        return f"{thought.strip()}\n{text}" if thought and thought.strip() else text

    def _xy(self, x: int, y: int, frame: ModelFrame) -> list[Any]:
        return list(self.coords.from_screen(x, y, frame))

    def _calls(self, a: Action, frame: ModelFrame) -> list[dict[str, Any]]:
        if isinstance(a, Click):
            name = {v: k for k, v in _CLICKS.items()}.get((a.button, a.count))
            if name is None:
                raise UnsupportedActionError(f"computer_use has no {a.button} click with count {a.count}")
            return [{"action": name, "coordinate": self._xy(a.x, a.y, frame)}]
        if isinstance(a, Move):
            return [{"action": "mouse_move", "coordinate": self._xy(a.x, a.y, frame)}]
        if isinstance(a, Drag) and a.button == "left":
            return [{"action": "mouse_move", "coordinate": self._xy(a.x1, a.y1, frame)},
                    {"action": "left_click_drag", "coordinate": self._xy(a.x2, a.y2, frame)}]
        if isinstance(a, Scroll) and a.dx == 0:
            return [{"action": "scroll", "coordinate": self._xy(a.x, a.y, frame), "pixels": -a.dy}]
        if isinstance(a, TypeText):
            return [{"action": "type", "text": a.text}]
        if isinstance(a, Hotkey):
            return [{"action": "key", "keys": list(a.keys)}]
        if isinstance(a, Wait):
            return [{"action": "wait", "time": a.seconds}]
        if isinstance(a, Done):
            done = [{"action": "terminate", "status": "success"}]
            return done if a.answer is None else [{"action": "answer", "text": a.answer}] + done
        if isinstance(a, Fail):
            return [{"action": "terminate", "status": "failure"}]
        raise UnsupportedActionError(f"Qwen2.5-VL computer_use cannot express {a!r}")

    def system_prompt(self, frame: ModelFrame) -> str:
        """The ``computer_use`` tool description (Qwen's function-calling template)."""
        ex, ey = self.coords.model_size(frame)
        tool = {"type": "function", "function": {
            "name": "computer_use",
            "description": ("Use a mouse and keyboard to interact with a computer, and take screenshots.\n"
                            f"* The screen's resolution is {int(ex)}x{int(ey)}.\n"
                            "* Click with the cursor tip in the center of the element."),
            "parameters": {"type": "object", "required": ["action"], "properties": {
                "action": {"type": "string", "enum": ["key", "type", "mouse_move", "left_click", "left_click_drag",
                                                      "right_click", "middle_click", "double_click", "triple_click",
                                                      "scroll", "wait", "terminate", "answer"]},
                "keys": {"type": "array", "description": "Required only by action=key."},
                "text": {"type": "string", "description": "Required only by action=type and action=answer."},
                "coordinate": {"type": "array", "description": "(x, y): pixels from the left and top edges."},
                "pixels": {"type": "number", "description": "Scroll amount: positive scrolls up, negative down."},
                "time": {"type": "number", "description": "Seconds to wait, for action=wait."},
                "status": {"type": "string", "enum": ["success", "failure"], "description": "For action=terminate."},
            }}}}
        return (
            "You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user "
            "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
            f"{json.dumps(tool)}\n</tools>\n\nFor each function call, return a json object with function name and "
            "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
        )


def _point(coord: Any) -> tuple[Any, Any]:
    if not isinstance(coord, list) or len(coord) != 2:
        raise ParseError(f"coordinate must be [x, y], got {coord!r}")
    return coord[0], coord[1]


def _require(xy: tuple[Any, Any], action: str) -> tuple[Any, Any]:
    if xy[0] is None:
        raise ParseError(f"{action} needs \"coordinate\": [x, y]")
    return xy


def _text(args: dict[str, Any], key: str, action: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise ParseError(f'{action} needs "{key}": a string, got {value!r}')
    return value


__all__ = ["QWEN_MAX_PIXELS", "QWEN_MIN_PIXELS", "QwenComputerUseFormat", "SYNTAX_HELP", "tool_calls"]
