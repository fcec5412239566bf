"""Format-specific syntax: the spellings real models write, parsed to the expected actions."""

from __future__ import annotations

import pytest

from agent.formats import CoordSystem, ModelFrame, ParseError, UITarsFormat, get_format
from envs.actions import (Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait)

SAME = ModelFrame.same((1000, 1000))


@pytest.mark.parametrize("box", ["'(500,300)'", "'<|box_start|>(500,300)<|box_end|>'", "'[490,290,510,310]'",
                                 "'(490,290,510,310)'", "'<point>500 300</point>'", "'<bbox>490 290 510 310</bbox>'"])
def test_uitars_box_forms(box: str) -> None:
    fmt = UITarsFormat(coords=CoordSystem("norm1000"))
    assert fmt.parse(f"Thought: t\nAction: click(start_box={box})", SAME).actions == (Click(500, 300),)
    assert fmt.parse(f"Action: left_double(point={box})", SAME).actions == (Click(500, 300, count=2),)


def test_uitars_variants() -> None:
    fmt = UITarsFormat(coords=CoordSystem("norm1000"), box_tokens=True)
    text = fmt.format([Drag(1, 2, 3, 4)], SAME, "drag it")
    assert "<|box_start|>(1,2)<|box_end|>" in text
    assert fmt.parse(text, SAME).actions == (Drag(1, 2, 3, 4),)
    reply = ("Reflection: the menu did not open.\nAction_Summary: open it again.\n"
             "Action: type(content='it's done\\n')")
    parsed = fmt.parse(reply, SAME)
    assert parsed.actions == (TypeText("it's done\n"),)
    assert parsed.thought == "the menu did not open.\nopen it again."
    assert fmt.parse("Action: type(content='no closing paren'", SAME).actions == (TypeText("no closing paren"),)
    assert fmt.parse("Action: hotkey(key='ctrl+shift+t')", SAME).actions == (Hotkey(("ctrl", "shift", "t")),)
    assert fmt.parse("Action: scroll(direction='up')", SAME).actions == (Scroll(500, 500, 0, -5),)
    assert fmt.parse("<think>long</think>Thought: short\nAction: wait()", SAME).thought == "long\n\nshort"
    with pytest.raises(ParseError, match="releasing a held key"):
        fmt.parse("Action: release(key='shift')", SAME)


def test_native_spellings() -> None:
    fmt = get_format("native")
    reply = ('<think>plan</think>\n```\nclick(412, 88, "right")\n{"kind": "type", "text": "a\\nb"}\n'
             'hotkey("ctrl", "c")\nhotkey(keys="alt+f4")\nscroll(x=1, y=2, dy=-3)\nwait(seconds=0.5)\n'
             'mouse_down(x=null, y=null)\ndone(answer="42")\n```')
    parsed = fmt.parse(reply, SAME)
    assert parsed.actions == (Click(412, 88, "right"), TypeText("a\nb"), Hotkey(("ctrl", "c")), Hotkey(("alt", "f4")),
                              Scroll(1, 2, 0, -3), Wait(0.5), MouseDown(), Done("42"))
    assert parsed.thought == "plan"
    with pytest.raises(ParseError, match="no argument 'z'"):
        fmt.parse("click(x=1, y=2, z=3)", SAME)


def test_qwen_merges_pairs() -> None:
    fmt = get_format("qwen25vl")
    frame = ModelFrame.same((1288, 728))  # already a multiple of 28: smart resize keeps it
    def call(args: str) -> str:
        return f'<tool_call>\n{{"name": "computer_use", "arguments": {args}}}\n</tool_call>'

    reply = ("I drag the file.\n" + call('{"action": "mouse_move", "coordinate": [10, 20]}')
             + call('{"action": "left_click_drag", "coordinate": [300, 400]}'))
    parsed = fmt.parse(reply, frame)
    assert parsed.actions == (Drag(10, 20, 300, 400),) and parsed.thought == "I drag the file."
    assert fmt.parse(call('{"action": "left_click_drag", "coordinate": [3, 4]}'), frame).actions == (
        MouseDown(), MouseUp("left", 3, 4))
    answer = call('{"action": "answer", "text": "42"}') + call('{"action": "terminate", "status": "success"}')
    assert fmt.parse(answer, frame).actions == (Done("42"),)
    as_string = '<tool_call>{"name": "computer_use", "arguments": "{\\"action\\": \\"wait\\", \\"time\\": 2}"}'
    assert fmt.parse(as_string, frame).actions == (Wait(2.0),)  # unterminated tag, arguments as a JSON string
    assert fmt.parse(call('{"action": "scroll", "pixels": -3}'), frame).actions == (Scroll(644, 364, 0, 3),)
    assert fmt.parse(call('{"action": "terminate", "status": "failure"}'), frame).actions == (Fail(),)


def test_computer13_spellings() -> None:
    fmt = get_format("computer_13")
    reply = ('Move then drag.\n```json\n{"action_type": "MOVE_TO", "x": 5, "y": 6}\n```\n'
             '```\n{"action_type": "DRAG_TO", "parameters": {"x": 50, "y": 60}}\n```\n'
             '```json\n[{"action_type": "KEY_DOWN", "parameters": {"key": "ctrl"}}, '
             '{"action_type": "PRESS", "parameters": {"key": "s"}}, {"action_type": "KEY_UP", "parameters": {"key": "ctrl"}}]\n```')
    parsed = fmt.parse(reply, SAME)
    assert parsed.actions == (Drag(5, 6, 50, 60), Hotkey(("ctrl", "s")))
    assert parsed.thought == "Move then drag."
    assert fmt.parse('{"action_type": "CLICK", "parameters": {"x": 1, "y": 2, "num_clicks": 2}} DONE', SAME).actions == (
        Click(1, 2, count=2),)
    assert fmt.parse("FAIL", SAME).actions == (Fail(),)
    assert fmt.parse('```\n{"action_type": "SCROLL", "parameters": {"dy": -2}}\n```', SAME).actions == (
        Scroll(500, 500, 0, 2),)
    with pytest.raises(ParseError, match="cannot be expressed"):
        fmt.parse('[{"action_type": "KEY_DOWN", "key": "shift"}, {"action_type": "CLICK", "x": 1, "y": 1}, '
                  '{"action_type": "KEY_UP", "key": "shift"}]', SAME)
    assert get_format("pyautogui").parse("```python\npyautogui.moveTo(7, 8)\n```", SAME).actions == (Move(7, 8),)
