"""DesktopEnv input checked by a real X client (tests/envs/xclick_reporter.py) on a real Xvfb.

Every action goes through ``env.step``; the client reports what the X server delivered.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.actions import Click, Drag, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText

pytestmark = pytest.mark.integration

BUTTON = {"left": 1, "middle": 2, "right": 3}


@pytest.mark.parametrize("button", ["left", "right", "middle"])
def test_click_lands_on_exact_pixel_with_button(desktop_env, reporter, button):
    for x, y in [(0, 0), (639, 479), (317, 211)]:
        desktop_env.step(Click(x, y, button=button))
        press = reporter.next("press")
        release = reporter.next("release")
        assert (press["x"], press["y"], press["root_x"], press["root_y"]) == (x, y, x, y)
        assert press["button"] == release["button"] == BUTTON[button]
        assert (release["x"], release["y"]) == (x, y)
        assert press["click_count"] == 1


@pytest.mark.parametrize("count", [2, 3])
def test_double_and_triple_click_are_counted_by_the_client(desktop_env, reporter, count):
    desktop_env.step(Click(100, 120, count=count))
    presses = reporter.take(count, "press")
    assert [p["click_count"] for p in presses] == list(range(1, count + 1))
    assert {(p["x"], p["y"]) for p in presses} == {(100, 120)}


def test_drag_presses_at_start_moves_and_releases_at_end(desktop_env, reporter):
    desktop_env.step(Drag(50, 60, 250, 160))
    press = reporter.next("press")
    assert (press["x"], press["y"], press["button"]) == (50, 60, 1)
    motions = []
    while True:
        ev = reporter.next(("motion", "release"))
        if ev["event"] == "release":
            break
        motions.append((ev["x"], ev["y"]))
    assert (ev["x"], ev["y"], ev["button"]) == (250, 160, 1)
    assert len(motions) >= 2, "a drag must move through intermediate points"
    assert motions[-1] == (250, 160)
    xs = [m[0] for m in motions]
    assert xs == sorted(xs), "the drag path must progress monotonically from start to end"


def test_mouse_down_move_up_is_a_manual_drag(desktop_env, reporter):
    desktop_env.step(MouseDown(button="right", x=10, y=20))
    desktop_env.step(Move(30, 40))
    desktop_env.step(MouseUp(button="right", x=60, y=70))
    press = reporter.next("press")
    assert (press["x"], press["y"], press["button"]) == (10, 20, 3)
    motion = reporter.next("motion")
    assert (motion["x"], motion["y"]) == (30, 40)
    release = reporter.next("release")
    assert (release["x"], release["y"], release["button"]) == (60, 70, 3)


@pytest.mark.parametrize(("dx", "dy", "button", "notches"), [(0, -2, 4, 2), (0, 3, 5, 3), (-1, 0, 6, 1), (2, 0, 7, 2)])
def test_scroll_sends_wheel_buttons(desktop_env, reporter, dx, dy, button, notches):
    desktop_env.step(Scroll(200, 100, dx=dx, dy=dy))
    presses = reporter.take(notches, "press")
    assert {(p["button"], p["x"], p["y"]) for p in presses} == {(button, 200, 100)}


def test_hotkey_reports_modifiers_and_keysym(desktop_env, reporter):
    desktop_env.step(Hotkey(("ctrl", "shift", "a")))
    keys = reporter.take(3, "key")
    assert [k["keysym"] for k in keys[:2]] == ["Control_L", "Shift_L"]
    final = keys[2]
    assert final["keysym"] == "A"  # 'a' with shift held
    assert set(final["modifiers"]) == {"control", "shift"}


@pytest.mark.parametrize(("keys", "keysym"), [(("enter",), "Return"), (("f5",), "F5"), (("pagedown",), "Next"),
                                              (("alt", "tab"), "Tab"), (("A",), "A")])
def test_named_keys_map_to_x_keysyms(desktop_env, reporter, keys, keysym):
    desktop_env.step(Hotkey(keys))
    while True:
        ev = reporter.next("key")
        if ev["keysym"] not in ("Alt_L", "Shift_L"):
            break
    assert ev["keysym"] == keysym


def test_type_text_delivers_each_character(desktop_env, reporter):
    text = "Hello, World! ~{x}_7"
    desktop_env.step(TypeText(text))
    chars: list[str] = []
    while len(chars) < len(text):
        key = reporter.next("key")
        if key["keysym"] != "Shift_L":  # shift is pressed around upper-case letters and symbols
            chars.append(key["char"])
    assert "".join(chars) == text


def test_non_ascii_text_goes_through_xdotool(desktop_env, reporter):
    _, _, _, _, info = desktop_env.step(TypeText("é"))
    assert info["input"] == "xdotool"
    key = reporter.next("key")
    assert key["char"] == "é"


def test_screenshot_shows_the_client_window_in_rgb_order(desktop_env, reporter):
    obs, *_ = desktop_env.step(Move(5, 5))
    assert obs.screenshot.shape == (480, 640, 3)
    assert obs.screenshot.flags["C_CONTIGUOUS"]
    # The client fills the screen with ff8000; BGRX → RGB must keep red first.
    assert np.array_equal(obs.screenshot[240, 320], [255, 128, 0])
    assert (obs.screenshot == [255, 128, 0]).all(axis=-1).mean() > 0.99
