"""The AST-whitelist pyautogui parser: what it accepts, what it refuses, and that it never evaluates."""

from __future__ import annotations

import builtins

import pytest

from agent.formats import CoordSystem, ModelFrame, ParseError, get_format
from agent.formats.pyautogui_code import parse_code_actions
from envs.actions import Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait

FRAME = ModelFrame.same((1280, 800))


def parse(code: str) -> tuple:
    return parse_code_actions(code, lambda x, y: CoordSystem("image").to_screen(x, y, FRAME), (640, 400))


def test_whitelisted_calls_become_actions() -> None:
    code = """
import pyautogui
import time
'''a comment string'''
pyautogui.click(100, 200)
pyautogui.doubleClick(x=10, y=20)
pyautogui.tripleClick(5, 6)
pyautogui.rightClick(7, 8)
pyautogui.middleClick((9, 10))
pyautogui.click(x=1, y=2, clicks=2, button='right')
pyautogui.moveTo(300, 300, duration=0.5)
pyautogui.dragTo(400, 420, duration=1.0, button='left')
pyautogui.mouseDown(button='left')
pyautogui.mouseUp(50, 60)
pyautogui.scroll(-3, x=11, y=12)
pyautogui.hscroll(2, 13, 14)
pyautogui.write('hello\\n', interval=0.05)
pyautogui.typewrite(['a', 'enter'])
pyautogui.press('tab', presses=2)
pyautogui.hotkey('ctrl', 'shift', 't')
time.sleep(0.5 * 2)
pass
"""
    assert parse(code) == (
        Click(100, 200), Click(10, 20, count=2), Click(5, 6, count=3), Click(7, 8, "right"), Click(9, 10, "middle"),
        Click(1, 2, "right", 2), Drag(300, 300, 400, 420), MouseDown(), MouseUp("left", 50, 60),
        Scroll(11, 12, 0, 3), Scroll(13, 14, 2, 0), TypeText("hello\n"), Hotkey(("a",)), Hotkey(("enter",)),
        Hotkey(("tab",)), Hotkey(("tab",)), Hotkey(("ctrl", "shift", "t")), Wait(1.0),
    )


def test_pointer_tracking_and_scroll_fallback() -> None:
    assert parse("pyautogui.moveTo(5, 6)\npyautogui.click()") == (Click(5, 6),)
    assert parse("pyautogui.scroll(-2)") == (Scroll(640, 400, 0, 2),)  # no position known: screen centre
    assert parse("pyautogui.moveTo(5, 6)\npyautogui.scroll(1)") == (Scroll(5, 6, 0, -1),)
    assert parse("pyautogui.dragTo(7, 8)") == (MouseDown(), MouseUp("left", 7, 8))
    with pytest.raises(ParseError, match="needs x and y"):
        parse("pyautogui.click()")


def test_key_down_up_pairs_become_chords() -> None:
    assert parse("pyautogui.keyDown('ctrl')\npyautogui.press('c')\npyautogui.keyUp('ctrl')") == (Hotkey(("ctrl", "c")),)
    assert parse("pyautogui.keyDown('shift')\npyautogui.keyUp('shift')") == (Hotkey(("shift",)),)
    with pytest.raises(ParseError, match="no matching keyUp"):
        parse("pyautogui.keyDown('shift')")
    with pytest.raises(ParseError, match="cannot be expressed"):
        parse("pyautogui.keyDown('shift')\npyautogui.click(1, 2)\npyautogui.keyUp('shift')")
    with pytest.raises(ParseError, match="no matching keyDown"):
        parse("pyautogui.keyUp('shift')")


@pytest.mark.parametrize(("code", "message"), [
    ("import os", "import of \\['os'\\]"),
    ("import pyautogui as p", "import of"),
    ("from os import system", "ImportFrom statements are not allowed"),
    ("os.system('rm -rf /')", "`os.system` is not an allowed function"),
    ("eval('1')", "`Name` is not an allowed function"),
    ("pyautogui.click(x, 2)", "not a Name expression"),
    ("pyautogui.click(*pts)", "\\*arguments"),
    ("pyautogui.click(**kw)", "\\*\\*arguments"),
    ("x = 1", "Assign statements are not allowed"),
    ("for i in range(3): pyautogui.click(1, 1)", "For statements"),
    ("pyautogui.click(1, 2, nope=3)", "has no argument 'nope'"),
    ("pyautogui.click(2 ** 100, 1)", "not a BinOp expression"),
    ("pyautogui.click(10 ** 10, 1)", "not a BinOp"),
    ("pyautogui.click(__import__('os'), 1)", "not a Call expression"),
    ("pyautogui.click(1, 2, button='back')", "button must be"),
    ("pyautogui.press('nokey')", "unknown key"),
    ("pyautogui.click(1,", "not valid Python"),
    ("time.sleep(1e6)", "wait seconds"),
    ("pyautogui.scroll(1.5)", "whole number"),
    ("pyautogui.click(1/0, 1)", "division by zero"),
])
def test_everything_else_is_refused_with_the_line(code: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse(code)
    assert "line 1" in str(info.value) or "not valid Python" in str(info.value)


def test_parsers_never_evaluate(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("model text must never be evaluated")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    reply = "```python\npyautogui.click(10, 20)\npyautogui.write('__import__(\"os\")')\n```"
    assert get_format("pyautogui").parse(reply, FRAME).actions == (Click(10, 20), TypeText('__import__("os")'))
    reply = "## Code\n```python\ncomputer.terminate(status='failure', answer='no')\n```"
    assert get_format("opencua").parse(reply, FRAME).actions == (Fail("no"),)


def test_osworld_specials_and_opencua_extras() -> None:
    osw = get_format("pyautogui")
    assert osw.parse("DONE", FRAME).actions == (Done(),)
    assert osw.parse("I will wait.\n```\nWAIT\n```", FRAME).actions == (Wait(1.0),)
    assert osw.parse("```\nFAIL\n```", FRAME).thought is None
    cua = get_format("opencua")
    reply = ("## Thought\nThe field is focused.\n## Action\nType and finish.\n## Code\n```python\n"
             "pyautogui.click(x=0.5, y=0.25)\npyautogui.write('hi')\ncomputer.wait()\n"
             "computer.terminate(status='success', answer='42')\n```")
    parsed = cua.parse(reply, FRAME)
    assert parsed.actions == (Click(640, 200), TypeText("hi"), Wait(1.0), Done("42"))
    assert parsed.thought == "The field is focused."
    with pytest.raises(ParseError, match="status must be"):
        cua.parse("## Code\n```python\ncomputer.terminate(status='maybe')\n```", FRAME)
    assert parse("pyautogui.moveTo(1, 1)") == (Move(1, 1),)
