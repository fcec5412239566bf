"""A synthetic GUI renderer: screens of windows, buttons, fields, checkboxes, menus, dialogs,
tabs and lists, drawn with PIL, with the exact box of every widget.

``layout(seed)`` builds a ``Screen`` (pure geometry, deterministic from the seed: style, size,
theme, font, scene and labels); ``render(screen)`` draws it. Every widget draws only inside its
box, and framed widgets (buttons, fields, tabs, selected rows) fill it, so a box is where the
widget's pixels are (``render(screen, omit={i})`` leaves widget ``i`` out, which the tests use
to check exactly that). Panels (window frames, title bars, menu bars, dropdowns, the dialog
and its dimmed backdrop, static text) are decoration drawn first; widgets never overlap.

Styles: ``miniwob`` (160×210 task area × scale 1–2 under a yellow header, as MiniWoB++) and
``desktop`` (640×480 … 1280×800 with a taskbar and one window). Scenes: ``form``, ``tabs``,
``list``, ``menu``, ``dialog``. Fonts are DejaVu (fonts-dejavu-core). This module knows nothing
about tokens or training samples (see ``training.data.gui_samples``).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels; x1/y1 exclusive
Color = tuple[int, int, int]
WidgetKind = Literal["button", "text_field", "checkbox", "menu", "menu_item", "tab", "list_item"]
WIDGET_KINDS: tuple[str, ...] = ("button", "text_field", "checkbox", "menu", "menu_item", "tab", "list_item")
#: Widgets whose drawing fills their whole box (the others draw text on the panel behind).
FRAMED_KINDS: frozenset[str] = frozenset({"button", "text_field", "tab"})
SCENES: tuple[str, ...] = ("form", "tabs", "list", "menu", "dialog")
STYLES: tuple[str, ...] = ("miniwob", "desktop")
DESKTOP_SIZES: tuple[tuple[int, int], ...] = ((640, 480), (800, 600), (1024, 768), (1280, 800))
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS: tuple[str, ...] = ("DejaVuSans.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")

BUTTONS = ("OK", "Cancel", "Apply", "Save", "Submit", "Next", "Back", "Delete", "Search", "Open", "Close",
           "Yes", "No", "Retry", "Help", "Sign in", "Continue", "Reset", "Export", "Print")
FIELDS = ("Name", "Email", "Password", "Username", "Search", "Address", "City", "Phone", "Title", "Comment",
          "Subject", "Code", "Amount", "Date")
CHECKS = ("Remember me", "Dark mode", "Notifications", "Auto-save", "Show hidden files", "Wrap lines",
          "Send a copy", "Start on login", "Sound", "Spell check")
MENUS = {"File": ("New", "Open...", "Save", "Save As...", "Print", "Exit"),
         "Edit": ("Undo", "Redo", "Cut", "Copy", "Paste", "Select All"),
         "View": ("Zoom In", "Zoom Out", "Full Screen", "Sidebar", "Status Bar"),
         "Tools": ("Options", "Extensions", "Terminal", "Macros"),
         "Help": ("Contents", "Shortcuts", "About")}
TABS = ("General", "Advanced", "Privacy", "Display", "Network", "Sound", "Accounts", "Updates")
ITEMS = ("report.pdf", "notes.txt", "Berlin", "Lisbon", "Oslo", "Tokyo", "apple", "cherry", "mango",
         "invoice_03.xlsx", "photo.png", "Alice", "Bob", "Carol", "Dave", "red", "green", "blue")
TITLES = ("Settings", "Preferences", "Sign up", "Account", "Editor", "Files", "Mail", "Contacts", "Options")
DIALOGS = (("Confirm", "Delete the selected file?"), ("Save changes", "Save changes before closing?"),
           ("Warning", "The disk is almost full."), ("Update", "A new version is available."))


@dataclass(frozen=True)
class Theme:
    """Colours of one look."""

    name: str
    desktop: Color
    window: Color
    titlebar: Color
    title_text: Color
    text: Color
    button: Color
    border: Color
    field: Color
    accent: Color
    accent_text: Color
    muted: Color


THEMES: tuple[Theme, ...] = (
    Theme("light", (58, 110, 165), (240, 240, 240), (200, 205, 215), (20, 20, 20), (20, 20, 20), (225, 225, 225),
          (120, 120, 120), (255, 255, 255), (0, 120, 215), (255, 255, 255), (150, 150, 150)),
    Theme("dark", (30, 30, 40), (45, 45, 48), (30, 30, 30), (230, 230, 230), (230, 230, 230), (70, 70, 74),
          (110, 110, 115), (30, 30, 30), (14, 99, 156), (255, 255, 255), (140, 140, 140)),
    Theme("warm", (120, 80, 60), (250, 246, 235), (222, 184, 135), (40, 20, 0), (40, 30, 20), (238, 222, 196),
          (150, 110, 70), (255, 255, 250), (200, 90, 30), (255, 255, 255), (160, 140, 120)),
    Theme("mint", (40, 120, 100), (236, 248, 244), (160, 215, 200), (10, 50, 40), (10, 40, 30), (210, 236, 228),
          (90, 140, 125), (255, 255, 255), (0, 140, 110), (255, 255, 255), (130, 160, 150)),
)


@dataclass(frozen=True)
class Widget:
    """A clickable element: its kind, visible label, box and context (``where``) for instructions."""

    kind: str
    label: str
    box: Box
    where: str = ""  # e.g. 'the "Settings" window', 'the "File" menu', 'the "Confirm" dialog'
    state: str = ""  # checked/unchecked for checkboxes, selected/active for rows and tabs, a field's text

    def __post_init__(self) -> None:
        if self.kind not in WIDGET_KINDS:
            raise ValueError(f"widget kind must be one of {WIDGET_KINDS}, got {self.kind!r}")
        x0, y0, x1, y1 = self.box
        if not (0 <= x0 < x1 and 0 <= y0 < y1):
            raise ValueError(f"widget box must be (x0, y0, x1, y1) with x0 < x1, y0 < y1, got {self.box}")

    @property
    def center(self) -> tuple[int, int]:
        """The pixel a click aims at: the middle of the box."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2


@dataclass(frozen=True)
class Panel:
    """Decoration: ``kind`` in window/titlebar/menubar/dropdown/dialog/overlay/header/taskbar/listbox/text/rule."""

    kind: str
    box: Box
    text: str = ""


@dataclass(frozen=True)
class Screen:
    """A laid-out screen: panels (drawn first, in order) and non-overlapping widgets."""

    size: tuple[int, int]
    style: str
    scene: str
    theme: Theme
    font: str
    font_px: int
    title: str
    panels: tuple[Panel, ...] = ()
    widgets: tuple[Widget, ...] = ()
    seed: int = 0


@lru_cache(maxsize=64)
def load_font(name: str, px: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font at ``px`` pixels; OSError names the package to install when missing."""
    path = FONT_DIR / name
    if not path.is_file():
        raise OSError(f"font {path} not found; install fonts-dejavu-core")
    return ImageFont.truetype(str(path), px)


@dataclass
class _Builder:
    """Mutable state while laying out one screen."""

    rng: random.Random
    font: ImageFont.FreeTypeFont
    scale: int
    random_labels: bool = False  # labels from ``random_word`` instead of the pools
    panels: list[Panel] = field(default_factory=list)
    widgets: list[Widget] = field(default_factory=list)

    @property
    def line_h(self) -> int:
        asc, desc = self.font.getmetrics()
        return asc + desc

    def text_w(self, text: str) -> int:
        return int(np.ceil(self.font.getlength(text)))

    def pick(self, pool: tuple[str, ...], k: int) -> list[str]:
        """``k`` distinct labels: from ``pool``, or made-up words when the screen has random labels."""
        if not self.random_labels:
            return self.rng.sample(pool, min(k, len(pool)))
        words: list[str] = []
        while len(words) < k:
            word = random_word(self.rng)
            if word not in words:
                words.append(word)
        return words


def random_word(rng: random.Random) -> str:
    """A made-up label shaped like MiniWoB's: a lower-case word, a capitalised one, an upper-case
    one, or a letters-and-digits code (``peh7J``) — text that can only be found by reading it."""
    shape = rng.randrange(4)
    if shape == 0:
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
    if shape == 1:
        return rng.choice(string.ascii_uppercase) + "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 8)))
    if shape == 2:
        return "".join(rng.choices(string.ascii_uppercase, k=rng.randint(2, 5)))
    return "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(3, 6)))


def _fits(box: Box, area: Box) -> bool:
    return area[0] <= box[0] and area[1] <= box[1] and box[2] <= area[2] and box[3] <= area[3]


def _button_box(b: _Builder, label: str, x: int, y: int) -> Box:
    return (x, y, x + b.text_w(label) + 16 * b.scale, y + b.line_h + 8 * b.scale)


def _button_row(b: _Builder, labels: list[str], area: Box, where: str, right: bool = True) -> int:
    """Buttons in one row at the bottom (right-aligned) of ``area``; returns the row's top y."""
    gap = 8 * b.scale
    widths = [_button_box(b, lab, 0, 0)[2] for lab in labels]
    h = b.line_h + 8 * b.scale
    y = area[3] - h - gap
    x = area[2] - gap - sum(widths) - gap * (len(labels) - 1) if right else area[0] + gap
    for lab, w in zip(labels, widths):
        box = (x, y, x + w, y + h)
        if x >= area[0] and _fits(box, area):
            b.widgets.append(Widget("button", lab, box, where))
        x += w + gap
    return y


def _form(b: _Builder, area: Box, where: str, buttons: bool = True) -> None:
    """Labelled text fields and checkboxes top-down, then a button row."""
    gap, pad = 6 * b.scale, 10 * b.scale
    bottom = _button_row(b, b.pick(BUTTONS, b.rng.randint(1, 3)), area, where) if buttons else area[3]
    y = area[1] + pad
    fields = b.pick(FIELDS, b.rng.randint(1, 4))
    label_w = max(b.text_w(f + ":") for f in fields) + gap
    for name in fields:
        h = b.line_h + 6 * b.scale
        x0 = area[0] + pad + label_w
        box = (x0, y, min(area[2] - pad, x0 + b.line_h * b.rng.randint(5, 12)), y + h)
        if box[3] > bottom - gap or box[2] - box[0] < 3 * b.line_h:
            break
        b.panels.append(Panel("text", (area[0] + pad, y, x0 - gap, y + h), name + ":"))
        value = b.rng.choice(("", "", "hello", "2024", "jo@mail.com"))
        b.widgets.append(Widget("text_field", name, box, where, value))
        y = box[3] + gap
    for name in b.pick(CHECKS, b.rng.randint(0, 3)):
        side = b.line_h
        box = (area[0] + pad, y, area[0] + pad + side + 6 * b.scale + b.text_w(name), y + side)
        if box[3] > bottom - gap or box[2] > area[2] - pad:
            break
        b.widgets.append(Widget("checkbox", name, box, where, b.rng.choice(("checked", "unchecked"))))
        y = box[3] + gap


def _tabs(b: _Builder, area: Box, where: str) -> Box:
    """A tab strip along the top of ``area``; returns the area below it."""
    x, h = area[0] + 4 * b.scale, b.line_h + 8 * b.scale
    names = b.pick(TABS, b.rng.randint(2, 5))
    active = b.rng.randrange(len(names))
    for i, name in enumerate(names):
        box = (x, area[1] + 4 * b.scale, x + b.text_w(name) + 14 * b.scale, area[1] + 4 * b.scale + h)
        if not _fits(box, area):
            break
        b.widgets.append(Widget("tab", name, box, where, "active" if i == active else ""))
        x = box[2] + 2 * b.scale
    top = area[1] + 4 * b.scale + h
    b.panels.append(Panel("rule", (area[0], top, area[2], top + 1)))
    return (area[0], top + 1, area[2], area[3])


def _list(b: _Builder, area: Box, where: str) -> None:
    """A list box on the left of ``area`` with rows, buttons on the right."""
    pad = 8 * b.scale
    names = b.pick(ITEMS, b.rng.randint(3, 7))
    row_h = b.line_h + 4 * b.scale
    width = max(b.text_w(n) for n in names) + 16 * b.scale
    box = (area[0] + pad, area[1] + pad, min(area[2] - pad, area[0] + pad + width), area[3] - pad)
    b.panels.append(Panel("listbox", box))
    selected = b.rng.randrange(len(names))
    y = box[1] + 2
    for i, name in enumerate(names):
        row = (box[0] + 2, y, box[2] - 2, y + row_h)
        if row[3] > box[3] - 2:
            break
        if b.text_w(name) + 8 > row[2] - row[0]:
            continue  # a clipped label could not be found by its text
        b.widgets.append(Widget("list_item", name, row, f"the list in {where}", "selected" if i == selected else ""))
        y = row[3]
    _button_row(b, b.pick(BUTTONS, b.rng.randint(1, 2)), (box[2] + pad, area[1], area[2], area[3]), where)


def _menubar(b: _Builder, area: Box, where: str, open_menu: bool) -> tuple[Box, Box | None]:
    """A menu bar (and maybe one open dropdown); returns (area below the bar, dropdown box)."""
    h = b.line_h + 6 * b.scale
    b.panels.append(Panel("menubar", (area[0], area[1], area[2], area[1] + h)))
    names = list(MENUS)[: b.rng.randint(3, len(MENUS))]
    opened = b.rng.randrange(3) if open_menu else -1  # one of the first three: those always fit
    x, dropdown = area[0] + 2 * b.scale, None
    for i, name in enumerate(names):
        box = (x, area[1] + 1, x + b.text_w(name) + 12 * b.scale, area[1] + h - 1)
        if box[2] > area[2]:
            break
        b.widgets.append(Widget("menu", name, box, "the menu bar", "open" if i == opened else ""))
        if i == opened:
            dropdown = _dropdown(b, name, box[0], area[1] + h, area)
        x = box[2]
    return (area[0], area[1] + h, area[2], area[3]), dropdown


def _dropdown(b: _Builder, menu: str, x: int, y: int, area: Box) -> Box | None:
    items = MENUS[menu]
    row_h = b.line_h + 6 * b.scale
    width = min(max(b.text_w(i) for i in items) + 30 * b.scale, area[2] - area[0])
    x = min(x, area[2] - width)  # open leftwards near the right edge, as real menus do
    box = (x, y, x + width, min(area[3], y + row_h * len(items) + 4))
    b.panels.append(Panel("dropdown", box))
    for k, name in enumerate(items):
        row = (box[0] + 2, y + 2 + k * row_h, box[2] - 2, y + 2 + (k + 1) * row_h)
        if row[3] > box[3] - 2:
            break
        if b.text_w(name) + 8 <= row[2] - row[0]:
            b.widgets.append(Widget("menu_item", name, row, f'the "{menu}" menu'))
    return box


def _window(b: _Builder, size: tuple[int, int], title: str, style: str) -> Box:
    """Screen frame: MiniWoB header or desktop + taskbar + window; returns the window body."""
    w, h = size
    if style == "miniwob":
        header = 50 * b.scale
        b.panels += [Panel("header", (0, 0, w, header), title), Panel("window", (0, header, w, h))]
        return (0, header, w, h)
    b.panels.append(Panel("taskbar", (0, h - 28 * b.scale, w, h)))
    ww, wh = int(w * b.rng.uniform(0.6, 0.95)), int((h - 28) * b.rng.uniform(0.6, 0.95))
    x0, y0 = b.rng.randint(0, w - ww), b.rng.randint(0, h - 28 - wh)
    th = b.line_h + 10
    b.panels += [Panel("window", (x0, y0, x0 + ww, y0 + wh)), Panel("titlebar", (x0, y0, x0 + ww, y0 + th), title)]
    return (x0 + 1, y0 + th, x0 + ww - 1, y0 + wh - 1)


def _dialog(b: _Builder, size: tuple[int, int], body: Box) -> None:
    title, message = b.rng.choice(DIALOGS)
    where = f'the "{title}" dialog'
    b.panels.append(Panel("overlay", (0, 0, size[0], size[1])))
    dw = min(body[2] - body[0] - 4, max(b.text_w(message) + 40 * b.scale, 200 * b.scale // 2 * 2))
    dh = min(body[3] - body[1] - 4, b.line_h * 6 + 40 * b.scale)
    x0, y0 = (body[0] + body[2] - dw) // 2, (body[1] + body[3] - dh) // 2
    box = (x0, y0, x0 + dw, y0 + dh)
    th = b.line_h + 8
    b.panels += [Panel("dialog", box), Panel("titlebar", (x0, y0, x0 + dw, y0 + th), title),
                 Panel("text", (x0 + 10 * b.scale, y0 + th + 8 * b.scale, x0 + dw - 4, y0 + th + 8 * b.scale + b.line_h),
                       message)]
    inner = (x0 + 1, y0 + th + 8 * b.scale + b.line_h, x0 + dw - 1, y0 + dh - 1)
    if b.rng.random() < 0.4:
        side = b.line_h
        name = "Do not ask again"
        cb = (inner[0] + 10 * b.scale, inner[1] + 6 * b.scale,
              inner[0] + 10 * b.scale + side + 6 * b.scale + b.text_w(name), inner[1] + 6 * b.scale + side)
        if _fits(cb, inner):
            b.widgets.append(Widget("checkbox", name, cb, where, "unchecked"))
    _button_row(b, b.rng.choice((["OK"], ["OK", "Cancel"], ["Yes", "No"], ["Save", "Discard", "Cancel"])), inner, where)


def layout(seed: int, *, style: str | None = None, scene: str | None = None,
           size: tuple[int, int] | None = None, scale: int | None = None,
           random_labels: float = 0.0) -> Screen:
    """A random screen, deterministic from ``seed`` (style/scene/size/scale fixed if given).

    ``scale`` (device pixels per CSS pixel, miniwob style only: 1 or 2, else drawn) sets font and
    spacing sizes; give it with ``size`` when screens must look like one env's screenshots (MiniWoB
    at scale 2 is 320×420 with 20–24 px text). ``random_labels`` is the probability that the
    screen's buttons, fields, checkboxes, tabs and list rows carry made-up words (``random_word``)
    instead of the fixed English pools, so that finding them takes reading, not recall.
    """
    rng = random.Random(seed)
    style = style or rng.choice(STYLES)
    if style not in STYLES or (scene is not None and scene not in SCENES):
        raise ValueError(f"style must be one of {STYLES} and scene one of {SCENES}, got {style!r}, {scene!r}")
    if scale not in (None, 1, 2) or (scale == 2 and style != "miniwob"):
        raise ValueError(f"scale must be 1, or 2 for the miniwob style, got {scale!r} for {style!r}")
    if not 0 <= random_labels <= 1:
        raise ValueError(f"random_labels is a probability in [0, 1], got {random_labels}")
    scene = scene or rng.choice(SCENES)
    drawn = rng.choice((1, 2)) if style == "miniwob" else 1  # drawn even when given: the stream stays seed-aligned
    scale = scale or drawn
    if size is None:
        size = (160 * scale, 210 * scale) if style == "miniwob" else rng.choice(DESKTOP_SIZES)
    font_name = rng.choice(FONTS)
    font_px = (rng.randint(10, 12) if style == "miniwob" else rng.randint(11, 15)) * scale
    # A stream of its own decides the labels, so screens without random labels are the same as before.
    wordy = random_labels > 0 and random.Random(seed ^ 0x5EED).random() < random_labels
    b = _Builder(rng, load_font(font_name, font_px), scale, wordy)
    title = rng.choice(TITLES)
    body = _window(b, size, title, style)
    where = "the page" if style == "miniwob" else f'the "{title}" window'
    if scene == "dialog":
        b.panels.append(Panel("text", (body[0] + 8, body[1] + 8, body[2] - 8, body[1] + 8 + b.line_h), "Loading..."))
        _dialog(b, size, body)
    elif scene == "menu":
        below, drop = _menubar(b, body, where, open_menu=True)
        right = drop[2] + 8 * scale if drop is not None else below[0]
        if below[2] - right > 8 * b.line_h:
            _form(b, (right, below[1], below[2], below[3]), where)
    elif scene == "tabs":
        _form(b, _tabs(b, body, where), where)
    elif scene == "list":
        _list(b, body, where)
    else:
        if style == "desktop" and rng.random() < 0.5:
            body, _ = _menubar(b, body, where, open_menu=False)
        _form(b, body, where)
    return Screen(size, style, scene, rng.choice(THEMES), font_name, font_px, title, tuple(b.panels),
                  tuple(b.widgets), seed)


def _draw_panel(d: ImageDraw.ImageDraw, p: Panel, s: Screen, font: ImageFont.FreeTypeFont) -> None:
    t, (x0, y0, x1, y1) = s.theme, p.box
    rect = (x0, y0, x1 - 1, y1 - 1)
    if p.kind == "header":
        d.rectangle(rect, fill=(255, 255, 170))
        d.text((x0 + 4, y0 + 4), p.text, fill=(0, 0, 0), font=font)
    elif p.kind in ("window", "dialog", "dropdown", "listbox"):
        d.rectangle(rect, fill=t.field if p.kind == "listbox" else t.window, outline=t.border)
    elif p.kind == "titlebar":
        d.rectangle(rect, fill=t.titlebar)
        d.text((x0 + 8, (y0 + y1) // 2), p.text, fill=t.title_text, font=font, anchor="lm")
    elif p.kind == "menubar":
        d.rectangle(rect, fill=t.button)
    elif p.kind == "taskbar":
        d.rectangle(rect, fill=tuple(c // 2 for c in t.titlebar))
    elif p.kind == "overlay":
        d.rectangle(rect, fill=tuple(c // 2 for c in t.desktop))
    elif p.kind == "rule":
        d.rectangle(rect, fill=t.border)
    elif p.kind == "text":
        d.text((x0, (y0 + y1) // 2), p.text, fill=t.text, font=font, anchor="lm")


def _draw_widget(d: ImageDraw.ImageDraw, w: Widget, s: Screen, font: ImageFont.FreeTypeFont) -> None:
    t, (x0, y0, x1, y1) = s.theme, w.box
    rect, mid = (x0, y0, x1 - 1, y1 - 1), ((x0 + x1) // 2, (y0 + y1) // 2)
    if w.kind == "button":
        accent = w.label in ("OK", "Submit", "Save", "Yes", "Sign in")
        d.rectangle(rect, fill=t.accent if accent else t.button, outline=t.border)
        d.text(mid, w.label, fill=t.accent_text if accent else t.text, font=font, anchor="mm")
    elif w.kind == "text_field":
        d.rectangle(rect, fill=t.field, outline=t.border)
        value = w.state
        while value and font.getlength(value) > x1 - x0 - 8:  # a long value scrolls out of view
            value = value[1:]
        if value:
            d.text((x0 + 4, mid[1]), value, fill=t.text, font=font, anchor="lm")
    elif w.kind == "checkbox":
        side = y1 - y0
        d.rectangle((x0, y0, x0 + side - 1, y1 - 1), fill=t.field, outline=t.border)
        if w.state == "checked":
            d.line((x0 + side // 5, y0 + side // 2, x0 + side // 2 - 1, y1 - 1 - side // 5,
                    x0 + side - 1 - side // 6, y0 + side // 5), fill=t.accent, width=max(1, side // 7))
        text_x = x1 - int(np.ceil(font.getlength(w.label)))  # the label ends at the box's right edge
        d.text((text_x, mid[1]), w.label, fill=t.text, font=font, anchor="lm")
    elif w.kind == "tab":
        d.rectangle(rect, fill=t.window if w.state == "active" else t.button, outline=t.border)
        d.text(mid, w.label, fill=t.text, font=font, anchor="mm")
    else:  # menu, menu_item, list_item: text on the panel, highlighted when open/selected
        highlight = w.state in ("open", "selected")
        if highlight:
            d.rectangle(rect, fill=t.accent)
        d.text((x0 + 6, mid[1]), w.label,
               fill=t.accent_text if highlight else t.text, font=font, anchor="lm")


def render(screen: Screen, omit: frozenset[int] | set[int] = frozenset()) -> np.ndarray:
    """The screen as an RGB uint8 (H, W, 3) array; widgets whose index is in ``omit`` are left out."""
    w, h = screen.size
    img = Image.new("RGB", (w, h), screen.theme.desktop)
    d = ImageDraw.Draw(img)
    font = load_font(screen.font, screen.font_px)
    for panel in screen.panels:
        _draw_panel(d, panel, screen, font)
    for i, widget in enumerate(screen.widgets):
        if i not in omit:
            _draw_widget(d, widget, screen, font)
    return np.asarray(img)


__all__ = ["Box", "DESKTOP_SIZES", "FRAMED_KINDS", "FONTS", "Panel", "SCENES", "STYLES", "Screen", "THEMES",
           "Theme", "WIDGET_KINDS", "Widget", "layout", "load_font", "random_word", "render"]
