"""Every format: parse(format(actions)) ≈ actions, format∘parse is stable, and no input crashes a parser.

Each format gets a strategy of the actions it can express exactly; coordinates come back
within the precision of the format's coordinate space (half a model unit, in screen pixels).
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.formats import FORMATS, ModelFrame, ParsedReply, ParseError, UnsupportedActionError, get_format
from envs.actions import (Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText,
                          Wait)

FRAMES = [ModelFrame.same((1280, 800)), ModelFrame((1920, 1080), (1280, 720)), ModelFrame((800, 600), (1000, 750))]
KEYS = ["ctrl", "shift", "alt", "c", "v", "enter", "tab", "f5", "a", "'", "\\", "+", " ", "pageup", "escape"]
COORD_FIELDS = {"x", "y", "x1", "y1", "x2", "y2"}
UITARS_FAIL = "call_user: the model asked for a person's help"
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(min_size=1, max_size=30)


def points(frame: ModelFrame) -> st.SearchStrategy[tuple[int, int]]:
    w, h = frame.screen_size
    return st.tuples(st.integers(0, w - 1), st.integers(0, h - 1))


def action_strategy(name: str, frame: ModelFrame) -> st.SearchStrategy[Action]:
    """The actions ``name`` expresses exactly (up to coordinate precision)."""
    p = points(frame)
    keys = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(tuple).map(Hotkey)
    move = p.map(lambda q: Move(*q))
    typed = texts.map(TypeText)
    notches = st.integers(-10, 10).filter(bool)
    if name in ("native", "native-compact"):
        return st.one_of(
            st.builds(lambda q, b, c: Click(*q, b, c), p, st.sampled_from(["left", "right", "middle"]), st.integers(1, 3)),
            move, st.builds(lambda a, b, btn: Drag(*a, *b, btn), p, p, st.sampled_from(["left", "right"])),
            st.builds(lambda q, dx, dy: Scroll(*q, dx, dy), p, st.integers(-5, 5), notches), typed, keys,
            st.builds(lambda q, b: MouseDown(b, *q), p, st.sampled_from(["left", "right"])), st.just(MouseUp()),
            st.floats(0, 600).map(Wait), st.one_of(st.none(), texts).map(Done), texts.map(Fail))
    if name.startswith("uitars"):
        return st.one_of(
            st.builds(lambda q, bc: Click(*q, *bc), p, st.sampled_from([("left", 1), ("left", 2), ("right", 1)])),
            move, st.builds(lambda a, b: Drag(*a, *b), p, p),
            st.builds(lambda q, d: Scroll(*q, *d), p, st.sampled_from([(0, 5), (0, -5), (5, 0), (-5, 0)])),
            typed, keys, st.builds(lambda q: MouseDown("left", *q), p), st.just(MouseUp()), st.just(Wait(5.0)),
            st.one_of(st.none(), texts).map(Done), st.just(Fail(UITARS_FAIL)))
    if name.startswith("opencua") or name == "pyautogui":
        terminal = (st.one_of(st.none(), st.text(max_size=20)).map(Done) | st.text(max_size=20).map(Fail)
                    if name.startswith("opencua") else st.sampled_from([Done(), Fail()]))
        return st.one_of(
            st.builds(lambda q, bc: Click(*q, *bc), p, st.sampled_from(
                [("left", 1), ("left", 2), ("left", 3), ("right", 1), ("middle", 1), ("right", 2)])),
            move, st.builds(lambda a, b, btn: Drag(*a, *b, btn), p, p, st.sampled_from(["left", "right"])),
            st.builds(lambda q, n, horizontal: Scroll(*q, n if horizontal else 0, 0 if horizontal else n), p, notches,
                      st.booleans()),
            typed, keys, st.builds(lambda q: MouseDown("left", *q), p), st.just(MouseUp(button="right")),
            st.floats(0, 600).map(Wait), terminal)
    if name == "qwen25vl":
        return st.one_of(
            st.builds(lambda q, bc: Click(*q, *bc), p, st.sampled_from(
                [("left", 1), ("left", 2), ("left", 3), ("right", 1), ("middle", 1)])),
            move, st.builds(lambda a, b: Drag(*a, *b), p, p), st.builds(lambda q, n: Scroll(*q, 0, n), p, notches),
            typed, keys, st.floats(0, 600).map(Wait), st.one_of(st.none(), texts).map(Done), st.just(Fail()))
    assert name == "computer_13"
    return st.one_of(
        st.builds(lambda q, b, c: Click(*q, b, c), p, st.sampled_from(["left", "right", "middle"]), st.integers(1, 3)),
        move, st.builds(lambda a, b: Drag(*a, *b), p, p),
        st.builds(lambda q, dx, dy: Scroll(*q, dx, dy), p, st.integers(-5, 5), notches), typed, keys,
        st.builds(lambda q, b: MouseDown(b, *q), p, st.sampled_from(["left", "right"])), st.just(MouseUp()),
        st.just(Wait(1.0)), st.just(Done()), st.just(Fail()))


def tolerance(name: str, frame: ModelFrame) -> float:
    """Largest screen-pixel error a coordinate may pick up going through ``name``'s space."""
    ex, ey = getattr(get_format(name), "coords").model_size(frame)
    per_unit = max(frame.screen_size[0] / ex, frame.screen_size[1] / ey)
    return max(1.0, 0.5 * per_unit + 0.5) if ex > 1 else 1.0


def assert_close(got: tuple[Action, ...], want: list[Action], tol: float) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert type(g) is type(w), (g, w)
        for f in fields(w):
            a, b = getattr(g, f.name), getattr(w, f.name)
            if f.name in COORD_FIELDS and a is not None and b is not None:
                assert abs(a - b) <= tol, (f.name, g, w)
            elif isinstance(b, float):
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (g, w)
            else:
                assert a == b, (g, w)


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f"{f.screen_size}->{f.image_size}")
def test_round_trip(name: str, frame: ModelFrame) -> None:
    fmt = get_format(name)

    @SETTINGS
    @given(action=action_strategy(name, frame), thought=st.one_of(st.none(), st.just("Plan: press it.")))
    def check(action: Action, thought: str | None) -> None:
        text = fmt.format([action], frame, thought)
        first = fmt.parse(text, frame)
        assert_close(first.actions, [action], tolerance(name, frame))
        if thought:
            assert first.thought is not None and thought in first.thought
        again = fmt.parse(fmt.format(first.actions, frame, first.thought), frame)
        assert again.actions == first.actions  # format∘parse is a fixed point
        assert first.raw == text

    check()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_several_actions_in_one_reply(name: str) -> None:
    frame = FRAMES[0]
    actions = [Click(100, 200), TypeText("hello world"), Hotkey(("enter",))]
    parsed = get_format(name).parse(get_format(name).format(actions, frame, "three steps"), frame)
    assert_close(parsed.actions, actions, tolerance(name, frame))


@pytest.mark.parametrize(("name", "action"), [
    ("uitars", Click(1, 1, count=3)), ("uitars", Click(1, 1, "middle")), ("uitars", Drag(1, 1, 2, 2, "right")),
    ("qwen25vl", Scroll(1, 1, dx=2)), ("qwen25vl", MouseDown()), ("qwen25vl", Click(1, 1, "right", 2)),
    ("computer_13", Done("an answer")), ("pyautogui", Done("an answer")), ("computer_13", Drag(1, 1, 2, 2, "middle")),
])
def test_unexpressible_actions_are_refused(name: str, action: Action) -> None:
    with pytest.raises(UnsupportedActionError):
        get_format(name).format([action], FRAMES[0])


@pytest.mark.parametrize(("name", "text", "hint"), [
    ("native", "click(x=1)", "needs both x and y"),
    ("native", "tap(x=1, y=2)", "unknown action 'tap'"),
    ("native", "<think>still thinking", "never closed"),
    ("uitars", "Thought: hmm", "no `Action:` found"),
    ("uitars", "Action: click(start_box='(1)')", "a box must be"),
    ("uitars", "Action: scroll(start_box='(1,1)', direction='sideways')", "direction="),
    ("uitars-1000", "Action: click(start_box='(1001,5)')", "0 <= x <= 1000"),
    ("opencua", "## Thought\nno code", "no code found"),
    ("qwen25vl", "I will click.", "no <tool_call>"),
    ("qwen25vl", '<tool_call>{"name": "computer_use", "arguments": {"action": "fly"}}</tool_call>', "unknown action"),
    ("qwen25vl", "<tool_call>{oops}</tool_call>", "not valid JSON"),
    ("computer_13", '{"action_type": "JUMP"}', "unknown action_type"),
    ("computer_13", '{"action_type": "CLICK", "parameters": {"x": 1, "y": 2, "z": 3}}', "no parameter"),
    ("computer_13", "nothing here", "no action found"),
    ("pyautogui", "```python\nimport os\n```", "import of"),
])
def test_error_messages_say_what_to_write(name: str, text: str, hint: str) -> None:
    with pytest.raises(ParseError, match=hint) as info:
        get_format(name).parse(text, FRAMES[0])
    assert len(str(info.value)) > 30


def _never_crashes(name: str, text: str) -> None:
    try:
        parsed = get_format(name).parse(text, FRAMES[1])
    except ParseError:
        return
    assert isinstance(parsed, ParsedReply) and parsed.actions


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_any_text(name: str, text: str) -> None:
    _never_crashes(name, text)


def _mutate(text: str, cut: int, length: int, insert: str) -> str:
    i = cut % (len(text) + 1)
    return text[:i] + insert + text[i + length:]


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_near_misses(name: str, data: Any) -> None:
    frame = FRAMES[1]
    actions = data.draw(st.lists(action_strategy(name, frame), min_size=1, max_size=3))
    text = get_format(name).format(actions, frame, data.draw(st.one_of(st.none(), texts)))
    insert = data.draw(st.sampled_from(["", "(", ")", "'", '"', "{", "}", "[", "\n", "\\", "```", "<think>",
                                        "</think>", "Action:", "<tool_call>", "-1", "1e309", "9" * 30, "None"])
                       | st.text(max_size=5))
    mutated = _mutate(text, data.draw(st.integers(0, 10_000)), data.draw(st.integers(0, 8)), insert)
    _never_crashes(name, mutated)


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("text", ["(" * 5000, "-" * 20000 + "1", "[" * 3000 + "]" * 3000, "{" * 3000, "\x00",
                                  "x" * 200_000, "```python\n" + "pyautogui.click(1,1)\n" * 2000 + "```"])
def test_pathological_inputs(name: str, text: str) -> None:
    _never_crashes(name, text)
