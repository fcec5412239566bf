"""``XTestInput``: mouse and keyboard on one X display through the XTEST extension.

Why python-xlib XTEST and not pyautogui: pyautogui's X11 backend is exactly these XTEST
``fake_input`` calls, but it opens one module-global connection to ``$DISPLAY`` *at import
time* (and ``mouseinfo`` opens another). A process therefore gets one display for its whole
life: a restarted Xvfb (``reset`` after a crash, a new display number) or two envs in one
process would keep typing into a dead or foreign display, and selecting the display means
mutating ``os.environ`` before the first import. Talking XTEST ourselves gives one
connection per env, re-created with the server, with identical events on the wire.

xdotool is used only where XTEST with the server's keymap cannot: characters and keys that
have no keycode on this server (non-ASCII text, some XF86 keys). xdotool then remaps a spare
keycode itself. Nothing here validates coordinates; ``envs.actions.validate_action`` has.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from Xlib import X, XK, display as xdisplay, error as xerror
from Xlib.ext import xtest

from envs.actions import Action, Click, Drag, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText
from envs.errors import EnvSetupError, InvalidActionError, PixelPilotError, UnknownKeyError
from envs.keys import xdotool_key

XK.load_keysym_group("xf86")

BUTTON_CODES: dict[str, int] = {"left": 1, "middle": 2, "right": 3}
# X core protocol wheel buttons: 4 up, 5 down, 6 left, 7 right (one press = one notch).
WHEEL_UP, WHEEL_DOWN, WHEEL_LEFT, WHEEL_RIGHT = 4, 5, 6, 7

# Canonical names whose X keysym ``envs.keys.xdotool_key`` does not spell.
_EXTRA_KEYSYMS: dict[str, str] = {
    "browserback": "XF86Back", "browserforward": "XF86Forward", "browserrefresh": "XF86Refresh",
    "browserhome": "XF86HomePage", "browsersearch": "XF86Search", "browserstop": "XF86Stop",
    "browserfavorites": "XF86Favorites", "launchmail": "XF86Mail", "launchapp1": "XF86Launch0",
    "launchapp2": "XF86Launch1", "launchmediaselect": "XF86AudioMedia", "nexttrack": "XF86AudioNext",
    "prevtrack": "XF86AudioPrev", "playpause": "XF86AudioPlay", "stop": "XF86AudioStop",
    "sleep": "XF86Sleep", "separator": "KP_Separator", "clear": "Clear", "execute": "Execute",
    "select": "Select", "accept": "Execute", "modechange": "Mode_switch", "kana": "Kana_Shift",
    "kanji": "Kanji", "hangul": "Hangul", "hanja": "Hangul_Hanja", "convert": "Henkan",
    "nonconvert": "Muhenkan", "yen": "yen",
}
_CHAR_KEYSYM_NAMES = {"\n": "Return", "\t": "Tab", " ": "space"}


class InputBackendError(PixelPilotError, RuntimeError):
    """An input helper (xdotool) failed although the X server is up."""


@dataclass(frozen=True)
class _Key:
    """A key resolved against this server's keymap (``keycode`` None: only xdotool can press it)."""

    name: str
    keycode: int | None
    shift: bool


def keysym_from_name(name: str) -> int:
    """X keysym for an Xlib keysym name (``Return``, ``XF86Back``); ``X.NoSymbol`` (0) if unknown."""
    keysym = XK.string_to_keysym(name)
    if keysym == X.NoSymbol and name.startswith("XF86"):
        keysym = XK.string_to_keysym("XF86_" + name[4:])  # python-xlib spells XF86Back as XF86_Back
    return keysym


def char_keysym(char: str) -> int:
    """The X keysym that types ``char`` (Latin-1 keysyms equal the code point; others are 0x01000000 + cp)."""
    if char in _CHAR_KEYSYM_NAMES:
        return XK.string_to_keysym(_CHAR_KEYSYM_NAMES[char])
    cp = ord(char)
    if cp < 0x20 or cp == 0x7F:
        raise InvalidActionError(f"cannot type control character {char!r}; use a hotkey action for special keys")
    if cp <= 0xFF:
        return cp
    return 0x01000000 + cp


class XTestInput:
    """Synthesises pointer and keyboard events on ``display_name`` with XTEST."""

    def __init__(self, display_name: str, *, drag_steps: int = 8) -> None:
        if drag_steps < 1:
            raise ValueError(f"drag_steps must be >= 1, got {drag_steps}")
        self.display_name = display_name
        self.drag_steps = drag_steps
        self._x = xdisplay.Display(display_name)
        if not self._x.query_extension("XTEST").present:
            self._x.close()
            raise EnvSetupError(f"X display {display_name} lacks the XTEST extension; start Xvfb with +extension XTEST")
        self._root = self._x.screen().root
        self._handlers: dict[type, Callable[[Any], str]] = {
            Click: self._click, Move: self._move_action, Drag: self._drag, Scroll: self._scroll,
            TypeText: self._type, Hotkey: self._hotkey, MouseDown: self._mouse_down, MouseUp: self._mouse_up,
        }

    def close(self) -> None:
        """Close the X connection; idempotent and safe when the server is gone."""
        if self._x is not None:
            try:
                self._x.close()
            except (xerror.ConnectionClosedError, OSError):
                pass  # the server died first; the socket is already closed
            self._x = None

    def execute(self, action: Action) -> dict[str, Any]:
        """Perform one input action; returns ``{"input": "xtest" | "xdotool"}``."""
        handler = self._handlers.get(type(action))
        if handler is None:
            raise InvalidActionError(f"the desktop input backend does not perform {action.kind!r} actions")
        backend = handler(action)
        return {"input": backend}

    def pointer(self) -> tuple[int, int]:
        """Current pointer position in root-window pixels."""
        reply = self._root.query_pointer()
        return int(reply.root_x), int(reply.root_y)

    # -- pointer ------------------------------------------------------------------------
    def _fake(self, event_type: int, detail: int = 0, x: int = 0, y: int = 0) -> None:
        xtest.fake_input(self._x, event_type, detail, x=x, y=y)

    def _motion(self, x: int, y: int) -> None:
        self._fake(X.MotionNotify, x=x, y=y)

    def _press_release(self, code: int, times: int = 1) -> None:
        for _ in range(times):
            self._fake(X.ButtonPress, code)
            self._fake(X.ButtonRelease, code)

    def _move_action(self, a: Move) -> str:
        self._motion(a.x, a.y)
        self._x.sync()
        return "xtest"

    def _click(self, a: Click) -> str:
        self._motion(a.x, a.y)
        self._press_release(BUTTON_CODES[a.button], a.count)
        self._x.sync()
        return "xtest"

    def _drag(self, a: Drag) -> str:
        code = BUTTON_CODES[a.button]
        self._motion(a.x1, a.y1)
        self._fake(X.ButtonPress, code)
        n = self.drag_steps
        for i in range(1, n + 1):
            # Linear path in n steps so apps that track motion (drag thresholds) see movement.
            self._motion(a.x1 + round((a.x2 - a.x1) * i / n), a.y1 + round((a.y2 - a.y1) * i / n))
        self._fake(X.ButtonRelease, code)
        self._x.sync()
        return "xtest"

    def _scroll(self, a: Scroll) -> str:
        self._motion(a.x, a.y)
        if a.dy:
            self._press_release(WHEEL_DOWN if a.dy > 0 else WHEEL_UP, abs(a.dy))
        if a.dx:
            self._press_release(WHEEL_RIGHT if a.dx > 0 else WHEEL_LEFT, abs(a.dx))
        self._x.sync()
        return "xtest"

    def _mouse_down(self, a: MouseDown) -> str:
        if a.x is not None and a.y is not None:
            self._motion(a.x, a.y)
        self._fake(X.ButtonPress, BUTTON_CODES[a.button])
        self._x.sync()
        return "xtest"

    def _mouse_up(self, a: MouseUp) -> str:
        if a.x is not None and a.y is not None:
            self._motion(a.x, a.y)
        self._fake(X.ButtonRelease, BUTTON_CODES[a.button])
        self._x.sync()
        return "xtest"

    # -- keyboard -----------------------------------------------------------------------
    def _keycode(self, keysym: int) -> tuple[int | None, bool]:
        """(keycode, needs shift) for ``keysym`` in the server's keymap, or (None, False)."""
        best: tuple[int | None, bool] = (None, False)
        for code, index in self._x.keysym_to_keycodes(keysym):
            if index == 0:
                return code, False
            if index == 1 and best[0] is None:
                best = (code, True)
        return best

    def _resolve_key(self, canonical: str) -> _Key:
        name = _EXTRA_KEYSYMS.get(canonical) or xdotool_key(canonical)
        keysym = keysym_from_name(name)
        if keysym == X.NoSymbol:
            raise UnknownKeyError(canonical, hint="it has no X keysym, so the desktop env cannot press it")
        code, shift = self._keycode(keysym)
        return _Key(name, code, shift)

    def _hotkey(self, a: Hotkey) -> str:
        keys = [self._resolve_key(k) for k in a.keys]  # resolve all first: fail before pressing anything
        if any(k.keycode is None for k in keys):
            self._xdotool("key", "--", "+".join(k.name for k in keys))
            return "xdotool"
        shift_code = self._keycode(XK.string_to_keysym("Shift_L"))[0]
        pressed: list[int] = []
        for key in keys:
            if key.shift and shift_code is not None and shift_code not in pressed:
                self._fake(X.KeyPress, shift_code)
                pressed.append(shift_code)
            self._fake(X.KeyPress, key.keycode)  # type: ignore[arg-type]
            pressed.append(key.keycode)  # type: ignore[arg-type]
        for code in reversed(pressed):
            self._fake(X.KeyRelease, code)
        self._x.sync()
        return "xtest"

    def _type(self, a: TypeText) -> str:
        text = a.text.replace("\r\n", "\n").replace("\r", "\n")
        plan = [(c, self._keycode(char_keysym(c))) for c in text]  # validates every character first
        shift_code = self._keycode(XK.string_to_keysym("Shift_L"))[0]
        used: set[str] = set()
        pending: list[str] = []  # characters without a keycode, sent through xdotool in one run
        for char, (code, shift) in plan:
            if code is None or (shift and shift_code is None):
                pending.append(char)
                continue
            if pending:
                self._flush_xdotool_text(pending)
                used.add("xdotool")
            if shift:
                self._fake(X.KeyPress, shift_code)  # type: ignore[arg-type]
            self._fake(X.KeyPress, code)
            self._fake(X.KeyRelease, code)
            if shift:
                self._fake(X.KeyRelease, shift_code)  # type: ignore[arg-type]
            used.add("xtest")
        if pending:
            self._flush_xdotool_text(pending)
            used.add("xdotool")
        self._x.sync()
        return "+".join(sorted(used, reverse=True))

    def _flush_xdotool_text(self, pending: list[str]) -> None:
        self._x.sync()  # our XTEST events must reach the server before xdotool's
        self._xdotool("type", "--delay", "5", "--", "".join(pending))
        pending.clear()

    def _xdotool(self, *args: str) -> None:
        binary = shutil.which("xdotool")
        if binary is None:
            raise InputBackendError("this key or text needs xdotool (no keycode on this X server): apt-get install xdotool")
        # xdotool decodes text with the C library locale: it must be UTF-8.
        env = {"DISPLAY": self.display_name, "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
        proc = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise InputBackendError(f"xdotool {' '.join(args[:1])} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
