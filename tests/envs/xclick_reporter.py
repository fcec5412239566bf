"""A tiny real X client for the desktop tests: it reports what the X server delivers.

Run with ``DISPLAY`` set. It maps one override-redirect window covering the whole screen
(so window coordinates equal screen coordinates), filled with ``--color RRGGBB``, takes the
keyboard focus, prints ``{"event": "ready", ...}`` and then one JSON line per event:

- ``press`` / ``release``: x, y, root_x, root_y, button, state, time; presses carry
  ``click_count`` (2 = double click: same button within 400 ms of server time and 4 px,
  the rule GTK uses).
- ``motion`` (only while a button is held): x, y, state.
- ``key``: keycode, keysym name, the character it types (``char``, or null), modifiers.

It exits when the X connection closes or on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import sys

from Xlib import X, XK, display as xdisplay, error as xerror

DOUBLE_CLICK_MS = 400
DOUBLE_CLICK_PX = 4
_MODIFIERS = [(X.ShiftMask, "shift"), (X.LockMask, "lock"), (X.ControlMask, "control"), (X.Mod1Mask, "mod1"),
              (X.Mod2Mask, "mod2"), (X.Mod3Mask, "mod3"), (X.Mod4Mask, "mod4"), (X.Mod5Mask, "mod5")]


def _keysym_names() -> dict[int, str]:
    XK.load_keysym_group("xf86")
    names: dict[int, str] = {}
    for attr in dir(XK):
        if attr.startswith("XK_"):
            names.setdefault(getattr(XK, attr), attr[3:])
    return names


def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _key_record(d: xdisplay.Display, ev, names: dict[int, str]) -> dict:
    shifted = bool(ev.state & X.ShiftMask)
    keysym = d.keycode_to_keysym(ev.detail, 1 if shifted else 0) or d.keycode_to_keysym(ev.detail, 0)
    char = XK.keysym_to_string(keysym) if keysym else None
    if char is None and keysym >= 0x01000100:  # Unicode keysyms (what xdotool maps for non-Latin-1 text)
        char = chr(keysym - 0x01000000)
    return {"event": "key", "keycode": ev.detail, "keysym": names.get(keysym, hex(keysym)), "char": char,
            "state": ev.state, "modifiers": [n for m, n in _MODIFIERS if ev.state & m]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--color", default="ff8000", help="window background as RRGGBB")
    args = parser.parse_args()
    d = xdisplay.Display()
    screen = d.screen()
    width, height = screen.width_in_pixels, screen.height_in_pixels
    pixel = screen.default_colormap.alloc_color(*(int(args.color[i:i + 2], 16) * 257 for i in (0, 2, 4))).pixel
    mask = (X.ButtonPressMask | X.ButtonReleaseMask | X.ButtonMotionMask | X.KeyPressMask
            | X.StructureNotifyMask)
    win = screen.root.create_window(0, 0, width, height, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
                                    background_pixel=pixel, override_redirect=True, event_mask=mask)
    win.map()
    names = _keysym_names()
    last_press: tuple[int, int, int, int] | None = None  # button, time, x, y
    count = 0
    while True:
        try:
            ev = d.next_event()
        except (xerror.ConnectionClosedError, OSError):
            return 0
        if ev.type == X.MapNotify:
            win.set_input_focus(X.RevertToParent, X.CurrentTime)
            d.sync()  # the server has painted the background and moved the focus: ready
            _emit({"event": "ready", "window": win.id, "width": width, "height": height})
        elif ev.type == X.MappingNotify:
            d.refresh_keyboard_mapping(ev)
        elif ev.type == X.ButtonPress:
            same = (last_press is not None and last_press[0] == ev.detail
                    and ev.time - last_press[1] <= DOUBLE_CLICK_MS
                    and abs(ev.event_x - last_press[2]) <= DOUBLE_CLICK_PX
                    and abs(ev.event_y - last_press[3]) <= DOUBLE_CLICK_PX)
            count = count + 1 if same else 1
            last_press = (ev.detail, ev.time, ev.event_x, ev.event_y)
            _emit({"event": "press", "x": ev.event_x, "y": ev.event_y, "root_x": ev.root_x, "root_y": ev.root_y,
                   "button": ev.detail, "state": ev.state, "time": ev.time, "click_count": count})
        elif ev.type == X.ButtonRelease:
            _emit({"event": "release", "x": ev.event_x, "y": ev.event_y, "root_x": ev.root_x,
                   "root_y": ev.root_y, "button": ev.detail, "state": ev.state, "time": ev.time})
        elif ev.type == X.MotionNotify:
            _emit({"event": "motion", "x": ev.event_x, "y": ev.event_y, "state": ev.state})
        elif ev.type == X.KeyPress:
            _emit(_key_record(d, ev, names))


if __name__ == "__main__":
    sys.exit(main())
