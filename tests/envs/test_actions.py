"""Actions: validation, JSON round-trip, screen bounds, fuzzing of the JSON parser."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.actions import (
    ACTION_TYPES,
    Click,
    Done,
    Drag,
    Fail,
    Hotkey,
    MouseDown,
    MouseUp,
    Move,
    Scroll,
    TypeText,
    Wait,
    action_from_json,
    action_points,
    action_to_json,
    is_terminal,
    validate_action,
)
from envs.errors import InvalidActionError, OutOfScreenError, UnknownKeyError
from envs.keys import KEYBOARD_KEYS

coord = st.integers(min_value=0, max_value=4000)
button = st.sampled_from(["left", "right", "middle"])
key_names = st.sampled_from(sorted(k for k in KEYBOARD_KEYS if len(k) > 1))

actions = st.one_of(
    st.builds(Click, coord, coord, button, st.integers(1, 3)),
    st.builds(Move, coord, coord),
    st.builds(Drag, coord, coord, coord, coord, button),
    st.builds(Scroll, coord, coord, st.integers(-20, 20), st.integers(1, 20)),
    st.builds(TypeText, st.text(min_size=1, max_size=50)),
    st.builds(Hotkey, st.lists(key_names, min_size=1, max_size=3).map(tuple)),
    st.builds(MouseDown, button),
    st.builds(MouseUp, button, coord, coord),
    st.builds(Wait, st.floats(0, 600, allow_nan=False)),
    st.builds(Done, st.none() | st.text(max_size=30)),
    st.builds(Fail, st.text(max_size=30)),
)


@given(actions)
@settings(max_examples=300, deadline=None)
def test_json_round_trip(action) -> None:
    data = action_to_json(action)
    assert action_from_json(json.loads(json.dumps(data))) == action


def test_every_kind_has_a_distinct_name() -> None:
    kinds = [cls.kind for cls in ACTION_TYPES]
    assert len(set(kinds)) == len(kinds) == 11


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (lambda: Click(1.5, 2), "integer"),
        (lambda: Click(True, 2), "integer"),
        (lambda: Click(1, 2, button="side"), "button"),
        (lambda: Click(1, 2, count=0), "count"),
        (lambda: TypeText(""), "non-empty"),
        (lambda: Scroll(1, 1, 0, 0), "non-zero"),
        (lambda: Wait(-1), "wait"),
        (lambda: Wait(float("nan")), "wait"),
        (lambda: Hotkey(()), "at least one"),
        (lambda: MouseDown("left", 3, None), "both x and y"),
        (lambda: Done(answer=3), "string"),
    ],
)
def test_invalid_fields_raise_with_a_useful_message(bad, fragment: str) -> None:
    with pytest.raises(InvalidActionError, match=fragment):
        bad()


def test_unknown_key_is_typed_and_explains() -> None:
    with pytest.raises(UnknownKeyError, match="envs.keys.KEYBOARD_KEYS"):
        Hotkey(("ctrl", "hyperdrive"))


def test_hotkey_normalises_aliases_and_accepts_a_string() -> None:
    assert Hotkey(("Control", "Shift_L", "ArrowUp")).keys == ("ctrl", "shiftleft", "up")
    assert Hotkey("ctrl+c").keys == ("ctrl", "c")
    assert Hotkey("Return").keys == ("enter",)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ([1, 2], "JSON object"),
        ({"x": 1}, "kind"),
        ({"kind": "teleport"}, "unknown action kind"),
        ({"kind": "click", "x": 1}, "required fields"),
        ({"kind": "click", "x": 1, "y": 2, "z": 3}, "unknown field"),
    ],
)
def test_from_json_rejects_bad_input(data, fragment: str) -> None:
    with pytest.raises(InvalidActionError, match=fragment):
        action_from_json(data)


def test_kind_aliases_from_other_tools() -> None:
    assert action_from_json({"kind": "key", "keys": ["esc"]}) == Hotkey(("escape",))
    assert action_from_json({"kind": "finished", "answer": "42"}) == Done("42")


def test_validate_action_checks_screen_bounds() -> None:
    size = (1280, 800)
    assert validate_action(Click(1279, 799), size) == Click(1279, 799)
    with pytest.raises(OutOfScreenError, match="1280x800"):
        validate_action(Click(1280, 10), size)
    with pytest.raises(OutOfScreenError):
        validate_action(Drag(10, 10, 10, 800), size)
    with pytest.raises(OutOfScreenError):
        validate_action(Move(-1, 5), size)
    with pytest.raises(InvalidActionError, match="expected one of"):
        validate_action({"kind": "click"}, size)
    validate_action(TypeText("anything"), (1, 1))  # no points: nothing to check


def test_points_and_terminal() -> None:
    assert action_points(Drag(1, 2, 3, 4)) == [(1, 2), (3, 4)]
    assert action_points(MouseUp()) == []
    assert is_terminal(Done()) and is_terminal(Fail("x")) and not is_terminal(Wait(0))


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=12))
@settings(max_examples=300, deadline=None)
def test_from_json_never_crashes_untyped(data) -> None:
    try:
        action_from_json(data)
    except InvalidActionError:
        pass


@given(st.sampled_from(sorted(c.kind for c in ACTION_TYPES)),
       st.dictionaries(st.sampled_from(["x", "y", "x1", "y1", "x2", "y2", "dx", "dy", "text", "keys",
                                        "button", "count", "seconds", "answer", "reason"]),
                       st.none() | st.integers(-5, 5) | st.text(max_size=4) | st.lists(st.text(max_size=3), max_size=2)
                       | st.floats(allow_nan=True)))
@settings(max_examples=400, deadline=None)
def test_from_json_near_misses_raise_only_invalid_action(kind: str, fields: dict) -> None:
    try:
        action_from_json({"kind": kind, **fields})
    except InvalidActionError:
        pass
