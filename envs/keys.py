"""Key names: one canonical table and the aliases people and models use.

The canonical names are pyautogui's (which OSWorld's ``KEYBOARD_KEYS`` copies), lower case.
``normalize_key`` maps any accepted spelling to its canonical name or raises
``UnknownKeyError``. Backends translate canonical names to their own vocabulary
(``PLAYWRIGHT_KEYS``, ``XDOTOOL_KEYS``). This module knows nothing about how keys are sent.
"""

from __future__ import annotations

import string

from envs.errors import UnknownKeyError

_PRINTABLE = list("\t\n\r !\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")

_NAMED = """
accept add alt altleft altright apps backspace browserback browserfavorites browserforward
browserhome browserrefresh browsersearch browserstop capslock clear convert ctrl ctrlleft
ctrlright decimal del delete divide down end enter esc escape execute final fn hanguel hangul
hanja help home insert junja kana kanji launchapp1 launchapp2 launchmail launchmediaselect left
modechange multiply nexttrack nonconvert numlock pagedown pageup pause pgdn pgup playpause
prevtrack print printscreen prntscrn prtsc prtscr return right scrolllock select separator shift
shiftleft shiftright sleep stop subtract tab up volumedown volumemute volumeup win winleft
winright yen command option optionleft optionright
""".split()

#: Every canonical key name (pyautogui / OSWorld ``KEYBOARD_KEYS``).
KEYBOARD_KEYS: frozenset[str] = frozenset(
    _PRINTABLE
    + _NAMED
    + [f"f{i}" for i in range(1, 25)]
    + [f"num{i}" for i in range(10)]
)

#: Other spellings (lower case, without spaces/underscores/dashes) → canonical name.
ALIASES: dict[str, str] = {
    "control": "ctrl", "ctl": "ctrl", "lctrl": "ctrlleft", "rctrl": "ctrlright",
    "controlleft": "ctrlleft", "controlright": "ctrlright", "controll": "ctrlleft",
    "controlr": "ctrlright", "shiftl": "shiftleft", "shiftr": "shiftright", "altl": "altleft",
    "altr": "altright", "metal": "winleft", "metar": "winright", "isolevel3shift": "altright",
    "super": "win", "meta": "win", "cmd": "win", "windows": "win", "superl": "winleft",
    "superr": "winright", "metaleft": "winleft", "metaright": "winright",
    "lalt": "altleft", "ralt": "altright", "altgr": "altright",
    "lshift": "shiftleft", "rshift": "shiftright",
    "esc": "escape", "return": "enter", "kpenter": "enter", "del": "delete", "bksp": "backspace",
    "back": "backspace", "ins": "insert",
    "pgup": "pageup", "pgdn": "pagedown", "prior": "pageup", "next": "pagedown",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "uparrow": "up", "downarrow": "down", "leftarrow": "left", "rightarrow": "right",
    "space": " ", "spacebar": " ", "tab": "tab", "enter": "enter",
    "plus": "+", "minus": "-", "equal": "=", "equals": "=", "comma": ",", "period": ".",
    "dot": ".", "slash": "/", "backslash": "\\", "semicolon": ";", "quote": "'",
    "apostrophe": "'", "grave": "`", "backtick": "`", "bracketleft": "[", "bracketright": "]",
    "menu": "apps", "contextmenu": "apps", "caps": "capslock", "printscr": "printscreen",
    "sysrq": "printscreen", "break": "pause", "numpadenter": "enter",
}

# Canonical names that mean the same physical key: backends use the first spelling.
_SAME = {"return": "enter", "esc": "escape", "del": "delete", "pgup": "pageup", "pgdn": "pagedown",
         "prntscrn": "printscreen", "prtsc": "printscreen", "prtscr": "printscreen",
         "print": "printscreen", "\n": "enter", "\r": "enter", "\t": "tab", "hanguel": "hangul",
         "command": "win", "option": "alt", "optionleft": "altleft", "optionright": "altright"}

MODIFIERS: frozenset[str] = frozenset(
    {"ctrl", "ctrlleft", "ctrlright", "alt", "altleft", "altright", "shift", "shiftleft",
     "shiftright", "win", "winleft", "winright", "command", "option", "fn"}
)


def normalize_key(name: str) -> str:
    """Return the canonical key name for ``name`` or raise ``UnknownKeyError``.

    Synonyms collapse to one name (``return``/``Return``/``\\n`` → ``enter``, ``esc`` → ``escape``).

    Accepts canonical names, common aliases (``Control``, ``ArrowUp``, ``Super_L``, ``space``),
    Playwright / X keysym spellings, and any single printable character (upper case letters
    are kept as typed characters: ``"A"`` means shift+a, as in pyautogui).
    """
    if not isinstance(name, str) or name == "":
        raise UnknownKeyError(repr(name), hint="a key name must be a non-empty string")
    return physical_key(_canonical(name))


def _canonical(name: str) -> str:
    if len(name) == 1:
        if name in KEYBOARD_KEYS or name in string.ascii_uppercase:
            return name
        raise UnknownKeyError(name)
    flat = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if flat in KEYBOARD_KEYS:
        return flat
    if flat in ALIASES:
        return ALIASES[flat]
    if flat.startswith("kp") and flat[2:] in KEYBOARD_KEYS:  # X keysyms: KP_1, KP_Add
        inner = flat[2:]
        return f"num{inner}" if inner.isdigit() else inner
    if flat.startswith("key") and len(flat) == 4 and flat[3] in KEYBOARD_KEYS:  # KeyA
        return flat[3]
    if flat.startswith("digit") and len(flat) == 6 and flat[5].isdigit():  # Digit1
        return flat[5]
    raise UnknownKeyError(name)


def physical_key(canonical: str) -> str:
    """Collapse synonyms (``return``→``enter``) so backends need one table entry per key."""
    return _SAME.get(canonical, canonical)


_PW_NAMED = {
    "enter": "Enter", "tab": "Tab", " ": "Space", "backspace": "Backspace", "delete": "Delete",
    "escape": "Escape", "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft",
    "right": "ArrowRight", "home": "Home", "end": "End", "pageup": "PageUp", "pagedown": "PageDown",
    "insert": "Insert", "ctrl": "Control", "ctrlleft": "Control", "ctrlright": "Control",
    "alt": "Alt", "altleft": "Alt", "altright": "Alt", "shift": "Shift", "shiftleft": "Shift",
    "shiftright": "Shift", "win": "Meta", "winleft": "Meta", "winright": "Meta",
    "capslock": "CapsLock", "numlock": "NumLock", "scrolllock": "ScrollLock", "pause": "Pause",
    "printscreen": "PrintScreen", "apps": "ContextMenu", "add": "NumpadAdd",
    "subtract": "NumpadSubtract", "multiply": "NumpadMultiply", "divide": "NumpadDivide",
    "decimal": "NumpadDecimal", "volumeup": "AudioVolumeUp", "volumedown": "AudioVolumeDown",
    "volumemute": "AudioVolumeMute", "browserback": "BrowserBack",
    "browserforward": "BrowserForward", "browserrefresh": "BrowserRefresh", "help": "Help",
}

_X_NAMED = {
    "enter": "Return", "tab": "Tab", " ": "space", "backspace": "BackSpace", "delete": "Delete",
    "escape": "Escape", "up": "Up", "down": "Down", "left": "Left", "right": "Right",
    "home": "Home", "end": "End", "pageup": "Prior", "pagedown": "Next", "insert": "Insert",
    "ctrl": "Control_L", "ctrlleft": "Control_L", "ctrlright": "Control_R", "alt": "Alt_L",
    "altleft": "Alt_L", "altright": "Alt_R", "shift": "Shift_L", "shiftleft": "Shift_L",
    "shiftright": "Shift_R", "win": "Super_L", "winleft": "Super_L", "winright": "Super_R",
    "capslock": "Caps_Lock", "numlock": "Num_Lock", "scrolllock": "Scroll_Lock",
    "pause": "Pause", "printscreen": "Print", "apps": "Menu", "add": "KP_Add",
    "subtract": "KP_Subtract", "multiply": "KP_Multiply", "divide": "KP_Divide",
    "decimal": "KP_Decimal", "volumeup": "XF86AudioRaiseVolume",
    "volumedown": "XF86AudioLowerVolume", "volumemute": "XF86AudioMute", "help": "Help",
}

_X_PUNCT = {
    "!": "exclam", '"': "quotedbl", "#": "numbersign", "$": "dollar", "%": "percent",
    "&": "ampersand", "'": "apostrophe", "(": "parenleft", ")": "parenright", "*": "asterisk",
    "+": "plus", ",": "comma", "-": "minus", ".": "period", "/": "slash", ":": "colon",
    ";": "semicolon", "<": "less", "=": "equal", ">": "greater", "?": "question", "@": "at",
    "[": "bracketleft", "\\": "backslash", "]": "bracketright", "^": "asciicircum",
    "_": "underscore", "`": "grave", "{": "braceleft", "|": "bar", "}": "braceright",
    "~": "asciitilde",
}


def playwright_key(canonical: str) -> str:
    """Canonical name → Playwright ``keyboard.press`` name."""
    key = physical_key(canonical)
    if key in _PW_NAMED:
        return _PW_NAMED[key]
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    if key.startswith("num") and key[3:].isdigit():
        return f"Numpad{key[3:]}"
    return key  # printable characters are their own names


def xdotool_key(canonical: str) -> str:
    """Canonical name → X keysym name (for xdotool / XTEST)."""
    key = physical_key(canonical)
    if key in _X_NAMED:
        return _X_NAMED[key]
    if key in _X_PUNCT:
        return _X_PUNCT[key]
    if key.startswith("f") and key[1:].isdigit():
        return key.upper()
    if key.startswith("num") and key[3:].isdigit():
        return f"KP_{key[3:]}"
    return key
