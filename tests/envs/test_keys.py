"""Key table: OSWorld coverage, aliases, backend names, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.errors import UnknownKeyError
from envs.keys import KEYBOARD_KEYS, normalize_key, playwright_key, xdotool_key

# OSWorld's desktop_env/actions.py KEYBOARD_KEYS (pyautogui's list), written out independently.
OSWORLD_NAMED = (
    "accept add alt altleft altright apps backspace browserback browserfavorites browserforward "
    "browserhome browserrefresh browsersearch browserstop capslock clear convert ctrl ctrlleft "
    "ctrlright decimal del delete divide down end enter esc escape execute f1 f2 f3 f4 f5 f6 f7 f8 "
    "f9 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19 f20 f21 f22 f23 f24 final fn hanguel hangul hanja "
    "help home insert junja kana kanji launchapp1 launchapp2 launchmail launchmediaselect left "
    "modechange multiply nexttrack nonconvert num0 num1 num2 num3 num4 num5 num6 num7 num8 num9 "
    "numlock pagedown pageup pause pgdn pgup playpause prevtrack print printscreen prntscrn prtsc "
    "prtscr return right scrolllock select separator shift shiftleft shiftright sleep stop subtract "
    "tab up volumedown volumemute volumeup win winleft winright yen command option optionleft "
    "optionright"
).split()


def test_covers_osworld_key_list() -> None:
    missing = [k for k in OSWORLD_NAMED if k not in KEYBOARD_KEYS]
    assert not missing
    for ch in "\t\n !\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~":
        assert normalize_key(ch)


@pytest.mark.parametrize(
    "alias, canonical",
    [("Control", "ctrl"), ("CTRL", "ctrl"), ("Return", "enter"), ("\n", "enter"), ("Esc", "escape"),
     ("ArrowLeft", "left"), ("Page_Up", "pageup"), ("pgdn", "pagedown"), ("Super_L", "winleft"),
     ("cmd", "win"), ("space", " "), ("KP_5", "num5"), ("KeyA", "a"), ("Digit7", "7"), ("F11", "f11"),
     ("del", "delete"), ("BackSpace", "backspace"), ("A", "A")],
)
def test_aliases(alias: str, canonical: str) -> None:
    assert normalize_key(alias) == canonical


@pytest.mark.parametrize("bad", ["", "ctrlx", "f25", "é", "hyper", "😀", "num10"])
def test_unknown_keys_raise(bad: str) -> None:
    with pytest.raises(UnknownKeyError):
        normalize_key(bad)


@pytest.mark.parametrize("key", sorted(KEYBOARD_KEYS))
def test_every_key_has_backend_names(key: str) -> None:
    canonical = normalize_key(key)
    assert playwright_key(canonical)
    x = xdotool_key(canonical)
    assert x and " " not in x


def test_backend_examples() -> None:
    assert playwright_key("enter") == "Enter" and xdotool_key("enter") == "Return"
    assert playwright_key("up") == "ArrowUp" and xdotool_key("pageup") == "Prior"
    assert xdotool_key("+") == "plus" and playwright_key("f5") == "F5"


@given(st.text(max_size=12))
@settings(max_examples=500, deadline=None)
def test_normalize_never_crashes_untyped(text: str) -> None:
    try:
        assert normalize_key(normalize_key(text)) == normalize_key(text)
    except UnknownKeyError:
        pass
