"""QEMU ``sendKey`` input: canonical key names (``envs.keys``) → Linux evdev keycodes (US layout).

``virDomainSendKey`` presses physical keys on the guest's PS/2 keyboard, below any window
system: it is the VM env's fallback input path (it works while the guest controller is
unusable, e.g. to type into the console shell). Characters that need Shift on a US keyboard
map to (shift, key). This module only builds keycode lists; ``envs.vm.env`` sends them.
"""

from __future__ import annotations

from envs.errors import InvalidActionError, UnknownKeyError
from envs.keys import normalize_key, physical_key

KEY_LEFTSHIFT = 42
#: Every physical key sendKey can press, by canonical name (Linux ``input-event-codes.h``).
LINUX_KEYCODES: dict[str, int] = {
    "escape": 1, "backspace": 14, "tab": 15, "enter": 28, "ctrl": 29, "ctrlleft": 29, "shift": 42, "shiftleft": 42,
    "shiftright": 54, "multiply": 55, "alt": 56, "altleft": 56, " ": 57, "capslock": 58, "numlock": 69,
    "scrolllock": 70, "subtract": 74, "add": 78, "decimal": 83, "ctrlright": 97, "divide": 98, "printscreen": 99,
    "altright": 100, "home": 102, "up": 103, "pageup": 104, "left": 105, "right": 106, "end": 107, "down": 108,
    "pagedown": 109, "insert": 110, "delete": 111, "volumemute": 113, "volumedown": 114, "volumeup": 115,
    "pause": 119, "win": 125, "winleft": 125, "winright": 126, "apps": 127, "help": 138,
    "-": 12, "=": 13, "[": 26, "]": 27, ";": 39, "'": 40, "`": 41, "\\": 43, ",": 51, ".": 52, "/": 53,
}
LINUX_KEYCODES.update({c: code for c, code in zip("1234567890", range(2, 12))})
LINUX_KEYCODES.update({c: code for c, code in zip("qwertyuiop", range(16, 26))})
LINUX_KEYCODES.update({c: code for c, code in zip("asdfghjkl", range(30, 39))})
LINUX_KEYCODES.update({c: code for c, code in zip("zxcvbnm", range(44, 51))})
LINUX_KEYCODES.update({f"f{i}": code for i, code in zip(range(1, 11), range(59, 69))})
LINUX_KEYCODES.update({"f11": 87, "f12": 88})
LINUX_KEYCODES.update({f"num{i}": code for i, code in zip("7894561230", (71, 72, 73, 75, 76, 77, 79, 80, 81, 82))})

#: Characters typed with Shift held on a US keyboard → the unshifted key.
SHIFTED: dict[str, str] = {
    "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9", ")": "0",
    "_": "-", "+": "=", "{": "[", "}": "]", ":": ";", '"': "'", "~": "`", "|": "\\", "<": ",", ">": ".", "?": "/",
}
#: At most this many keys go into one ``sendKey`` call (libvirt's ``VIR_DOMAIN_SEND_KEY_MAX_KEYS``).
MAX_KEYS = 16


def keycodes(name: str) -> list[int]:
    """Keycodes to press together for one key name (``"A"`` → shift + a); ``UnknownKeyError`` if unmapped."""
    key = normalize_key(name)
    if len(key) == 1 and key.isupper():
        return [KEY_LEFTSHIFT, LINUX_KEYCODES[key.lower()]]
    if key in SHIFTED:
        return [KEY_LEFTSHIFT, LINUX_KEYCODES[SHIFTED[key]]]
    code = LINUX_KEYCODES.get(physical_key(key))
    if code is None:
        raise UnknownKeyError(name, hint="QEMU sendKey has no keycode for it; use the guest controller input")
    return [code]


def chord(keys: tuple[str, ...]) -> list[int]:
    """Keycodes of a hotkey (pressed in order, released together), duplicates removed."""
    codes: list[int] = []
    for key in keys:
        for code in keycodes(key):
            if code not in codes:
                codes.append(code)
    if len(codes) > MAX_KEYS:
        raise InvalidActionError(f"a sendKey chord holds at most {MAX_KEYS} keys, got {len(codes)}")
    return codes


def text_chords(text: str) -> list[list[int]]:
    """One chord per character of ``text`` (``\\n`` → Enter); ``InvalidActionError`` for non-US characters."""
    out = []
    for ch in text:
        try:
            out.append(keycodes(ch))
        except (UnknownKeyError, KeyError):
            raise InvalidActionError(f"character {ch!r} cannot be typed with QEMU sendKey (US keyboard only); "
                                     "use the guest controller input for other text") from None
    return out
