"""Synthetic screens of MiniWoB++'s *reading* tasks, drawn as Chromium draws them, with the box of
the thing the instruction names.

A model trained on expert episodes alone localises well but reads poorly: it clicks *a* button or
*a* link, not the named one (click-test-2 at chance between ``ONE`` and ``TWO``). Expert episodes hold
about one instruction word a screen, so a small model fits them by recalling layouts; these
screens give it an endless supply of the same four families where only reading finds the target:

- ``two-buttons`` (click-test-2, click-button-sequence): two 40×40 buttons at random spots,
  ``Click button ONE.``;
- ``buttons`` (click-button): a flow of lorem text, labelled text fields and buttons
  (submit/okay/ok/yes/no/cancel/next/previous, half capitalised), ``Click on the "Yes" button.``;
- ``links`` (click-link): 20 lorem words, a fifth of them blue underlined links,
  ``Click on the link "nulla".``;
- ``options`` (click-option, click-checkboxes): 2–6 radio buttons or checkboxes labelled with
  random strings over a Submit button, some already set: ``Select g0eiTv and click Submit.``; the
  target is the next box to toggle, or Submit once the boxes are as asked (the experts' order).

Words come from the installed ``miniwob`` package (its ``lorem_words`` and alphanumeric list),
so the vocabulary is the tasks'; screens and targets come from our own random streams (seeded),
never from MiniWoB seeds, so held-out evaluation seeds stay unseen. Geometry follows MiniWoB's
CSS (160×210 CSS pixels, 50 px yellow query bar, 10 px Arial text, 13.33 px buttons) at the env's
scale 2, in Liberation Sans (the metric clone of Arial that Chromium uses here).

``reading_screen(seed)`` lays out and draws one screen (pure, deterministic); ``reading_sample``
turns it into a training sample in the agent's chat layout, like ``gui_samples.grounding_sample``;
every sample also carries ``media_targets``, the dense word targets of its screen
(``training.data.media_words``: which label each image token shows).
This module knows nothing about packing or the trainer.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from agent.formats import ModelFrame, get_format
from envs.actions import Click
from envs.miniwob import html_dir
from model.processing import Processor
from training.data.media_words import media_word_targets
from training.data.sft import first_step_sample, image_frame

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in screen pixels; x1/y1 exclusive
Sample = dict[str, Any]
FAMILIES: tuple[str, ...] = ("two-buttons", "buttons", "links", "options")
#: click-button's labels (its page script's ``buttons``).
BUTTON_WORDS: tuple[str, ...] = ("submit", "okay", "ok", "yes", "no", "cancel", "next", "previous")
FONT_PATH = Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")
SCALE = 2  # device pixels per CSS pixel (the env's default)
WIDTH, HEIGHT = 160, 210  # CSS pixels of the task area
QUERY_H = 50  # the yellow query bar (44 px + 2 × 3 px padding)
TEXT_PX, BUTTON_PX = 10, 13.333  # CSS font sizes: #area / #query, and buttons
LINE_H = 11.5  # CSS line height of 10 px Arial ("normal" ≈ 1.15 em)
BUTTON_FACE, BUTTON_BORDER, LINK_BLUE = (239, 239, 239), (118, 118, 118), (0, 0, 238)


@dataclass(frozen=True)
class ReadingScreen:
    """One drawn screen: the instruction, the pixels (H×W×3 uint8) and the target's box."""

    family: str
    instruction: str
    image: np.ndarray
    target: Box
    seed: int
    #: every clickable thing drawn, as (kind, label, box): button/link/radio/checkbox
    elements: tuple[tuple[str, str, Box], ...] = ()

    @property
    def center(self) -> tuple[int, int]:
        """The pixel a click aims at: the middle of the target's box."""
        return box_center(self.target)


def box_center(box: Box) -> tuple[int, int]:
    """The middle pixel of a box (x1/y1 exclusive)."""
    x0, y0, x1, y1 = box
    return (x0 + x1 - 1) // 2, (y0 + y1 - 1) // 2


@functools.lru_cache(maxsize=1)
def miniwob_vocabulary() -> tuple[tuple[str, ...], str]:
    """(lorem words, alphanumeric characters) of the installed MiniWoB++ ``ui_utils.js``."""
    path = html_dir().parent / "common" / "ui_utils.js"
    text = path.read_text(encoding="utf-8")
    words = re.search(r"lorem_words\s*=\s*\[(.*?)\]", text, re.S)
    chars = re.search(r"alphanumericChars\s*=\s*'([^']+)'", text)
    if words is None or chars is None:
        raise ValueError(f"{path} holds no lorem_words / alphanumericChars: is this MiniWoB++ 1.x?")
    return tuple(re.findall(r'"([^"]+)"', words.group(1))), chars.group(1)


@functools.lru_cache(maxsize=8)
def _font(css_px: float) -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        raise OSError(f"font {FONT_PATH} not found; install fonts-liberation (scripts/setup.sh does)")
    return ImageFont.truetype(str(FONT_PATH), round(css_px * SCALE))


def _px(v: float) -> int:
    return round(v * SCALE)


class _Canvas:
    """A MiniWoB page: white task area, yellow query bar with the instruction, CSS-pixel drawing."""

    def __init__(self, instruction: str) -> None:
        self.image = Image.new("RGB", (_px(WIDTH), _px(HEIGHT)), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.elements: list[tuple[str, str, Box]] = []
        self.draw.rectangle((0, 0, _px(WIDTH) - 1, _px(QUERY_H) - 1), fill=(255, 255, 0))
        y = 3.0
        for line in _wrap(instruction.split(" "), _font(TEXT_PX), WIDTH - 6):
            self.text(3, y, line, TEXT_PX)
            y += LINE_H

    def text(self, x: float, y: float, s: str, size: float, fill: tuple[int, int, int] = (0, 0, 0)) -> Box:
        font = _font(size)
        self.draw.text((_px(x), _px(y) + 1), s, font=font, fill=fill)
        return _px(x), _px(y), _px(x) + int(np.ceil(font.getlength(s))), _px(y + size * 1.15)

    def button(self, x: float, y: float, w: float, h: float, label: str) -> Box:
        box = (_px(x), _px(y), _px(x + w), _px(y + h))
        self.draw.rounded_rectangle((box[0], box[1], box[2] - 1, box[3] - 1), radius=_px(2), fill=BUTTON_FACE,
                                    outline=BUTTON_BORDER, width=SCALE)
        font = _font(BUTTON_PX)
        tw = font.getlength(label)
        tx = box[0] + (box[2] - box[0] - tw) / 2  # centred; overflows both sides like Chromium's
        ty = box[1] + (box[3] - box[1] - font.size * 1.15) / 2
        self.draw.text((tx, ty + 1), label, font=font, fill=(0, 0, 0))
        self.elements.append(("button", label, box))
        return box

    def field(self, x: float, y: float, w: float) -> Box:
        box = (_px(x), _px(y), _px(x + w), _px(y + 20))
        self.draw.rounded_rectangle((box[0], box[1], box[2] - 1, box[3] - 1), radius=_px(2), fill="white",
                                    outline=BUTTON_BORDER, width=SCALE)
        return box

    def toggle(self, x: float, y: float, kind: str, checked: bool, label: str) -> Box:
        box = (_px(x), _px(y), _px(x + 13), _px(y + 13))
        shape = self.draw.ellipse if kind == "radio" else self.draw.rounded_rectangle
        kw = {} if kind == "radio" else {"radius": _px(2)}
        fill = (0, 117, 255) if checked and kind == "checkbox" else "white"
        shape((box[0], box[1], box[2] - 1, box[3] - 1), fill=fill, outline=BUTTON_BORDER, width=SCALE, **kw)
        if checked and kind == "radio":
            c = _px(3.5)
            self.draw.ellipse((box[0] + c, box[1] + c, box[2] - 1 - c, box[3] - 1 - c), fill=(0, 117, 255))
        elif checked:
            self.draw.line((box[0] + _px(3), box[1] + _px(6.5), box[0] + _px(5.5), box[1] + _px(9.5),
                            box[0] + _px(10), box[1] + _px(3.5)), fill="white", width=SCALE)
        self.elements.append((kind, label, box))
        return box

    def array(self) -> np.ndarray:
        return np.asarray(self.image, dtype=np.uint8).copy()


def _wrap(words: list[str], font: ImageFont.FreeTypeFont, width_css: float) -> list[str]:
    lines: list[str] = []
    for w in words:
        if lines and font.getlength(lines[-1] + " " + w) <= _px(width_css):
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def _lorem(rng: random.Random, n: int) -> list[str]:
    """``n`` words as ``ui_utils.generateWords(n)``: sentences, capitals, a final full stop."""
    lorem, _ = miniwob_vocabulary()
    out, first = [], True
    for i in range(n):
        w = rng.choice(lorem)
        if first:
            w, first = w[:1].upper() + w[1:], False
        if rng.random() < 0.2 and i + 1 < n:
            w, first = w + ".", True
        elif i + 1 == n:
            w = w.replace(",", "", 1) + "."
        out.append(w)
    return out


def _string(rng: random.Random) -> str:
    """``ui_utils.generateString(2, 8)``: 2–7 random letters and digits."""
    _, chars = miniwob_vocabulary()
    return "".join(rng.choice(chars) for _ in range(rng.randrange(2, 8)))


def _two_buttons(rng: random.Random) -> tuple[str, _Canvas, Box]:
    lorem, _ = miniwob_vocabulary()
    roll = rng.random()
    if roll < 0.7:
        labels = ["ONE", "TWO"]
    elif roll < 0.85:
        labels = [w.capitalize() if rng.random() < 0.5 else w for w in rng.sample(BUTTON_WORDS, 2)]
    else:
        labels = [w.strip(",.") for w in rng.sample(lorem, 2)]
    if labels[0] == labels[1]:
        labels[1] = labels[1].upper()
    pos: list[tuple[int, int]] = []
    while len(pos) < 2:  # MiniWoB may overlap them; we keep both readable
        x, y = rng.randrange(0, 118), rng.randrange(0, 118) + 50
        if all(abs(x - px) >= 42 or abs(y - py) >= 42 for px, py in pos):
            pos.append((x, y))
    k = rng.randrange(2)
    instruction = f"Click button {labels[k]}."
    canvas = _Canvas(instruction)
    boxes = [canvas.button(x, y, 40, 40, lab) for (x, y), lab in zip(pos, labels)]
    return instruction, canvas, boxes[k]


@dataclass
class _Flow:
    """Inline layout in CSS pixels: a cursor that wraps at the area's right edge."""

    x: float = 2.0
    y: float = QUERY_H + 2.0
    line: float = LINE_H
    left: float = 2.0
    right: float = WIDTH - 2.0

    def place(self, w: float, h: float) -> tuple[float, float]:
        if self.x > self.left and self.x + w > self.right:
            self.newline()
        at = (self.x, self.y)
        self.x += w
        self.line = max(self.line, h)
        return at

    def newline(self) -> None:
        self.x, self.y, self.line = self.left, self.y + self.line, LINE_H


def _buttons(rng: random.Random) -> tuple[str, _Canvas, Box] | None:
    lorem, _ = miniwob_vocabulary()
    items: list[tuple[str, Any]] = []
    for i in range(6):
        u = rng.random()
        must = i == 5 and not any(k == "button" for k, _ in items)
        if u < 0.33 and not must:
            items.append(("div", " ".join(rng.choice(lorem) for _ in range(3))))
        elif u < 0.66 and not must:
            label = " ".join(rng.choice(lorem) for _ in range(3)) + ":" if rng.random() < 0.5 else ""
            items.append(("field", (label, rng.randrange(40, 150))))
        else:
            word = rng.choice(BUTTON_WORDS)
            items.append(("button", (word.capitalize() if rng.random() < 0.5 else word, rng.random() < 0.5)))
    labels = [v[0] for k, v in items if k == "button"]
    target = rng.choice(labels)
    instruction = f'Click on the "{target}" button.'
    canvas, flow, boxes = _Canvas(instruction), _Flow(), []
    text_font, button_font = _font(TEXT_PX), _font(BUTTON_PX)
    for kind, value in items:
        if kind == "div":
            if flow.x > flow.left:  # a div starts on a line of its own
                flow.newline()
            for w in value.split(" "):
                x, y = flow.place(text_font.getlength(w + " ") / SCALE, LINE_H)
                canvas.text(x, y, w, TEXT_PX)
            flow.newline()
        elif kind == "field":
            label, width = value
            for w in label.split(" ") if label else []:
                x, y = flow.place(text_font.getlength(w + " ") / SCALE, LINE_H)
                canvas.text(x, y, w, TEXT_PX)
            x, y = flow.place(min(width + 4, flow.right - flow.left), 22)
            canvas.field(x, y + 1, min(width + 4, flow.right - flow.left))
            flow.newline()
        else:
            label, br = value
            w = button_font.getlength(label) / SCALE + 16
            x, y = flow.place(w + 2, 21)
            box = canvas.button(x, y, w, 20, label)
            if label == target:
                boxes.append(box)
            if br:
                flow.newline()
    if flow.y + flow.line > HEIGHT:
        return None  # ran off the page (MiniWoB clips it; such a screen is no use): next seed
    return instruction, canvas, boxes[0]


def _links(rng: random.Random) -> tuple[str, _Canvas, Box] | None:
    words = _lorem(rng, 20)
    is_link = [rng.random() < 0.2 for _ in words]
    if not any(is_link):
        is_link[rng.randrange(len(words))] = True
    links = [w for w, k in zip(words, is_link) if k]
    target = rng.choice(links)
    instruction = f'Click on the link "{target}".'
    canvas, flow, font, box = _Canvas(instruction), _Flow(), _font(TEXT_PX), None
    for w, link in zip(words, is_link):
        x, y = flow.place(font.getlength(w) / SCALE, LINE_H)
        b = canvas.text(x, y, w, TEXT_PX, LINK_BLUE if link else (0, 0, 0))
        if link:
            canvas.draw.line((b[0], b[3] - SCALE, b[2], b[3] - SCALE), fill=LINK_BLUE, width=1)
            canvas.elements.append(("link", w, b))
            if w == target and box is None:
                box = b
        flow.x += font.getlength(" ") / SCALE
    assert box is not None
    return instruction, canvas, box


def _options(rng: random.Random) -> tuple[str, _Canvas, Box]:
    kind = rng.choice(("radio", "checkbox"))
    names: list[str] = []
    count = rng.randrange(2, 7)
    while len(names) < count:
        s = _string(rng)
        if s not in names:
            names.append(s)
    if kind == "radio":
        wanted = {rng.choice(names)}
        query = next(iter(wanted))
        on_at = rng.randrange(len(names)) if rng.random() < 0.3 else -1  # mid-episode: one radio already on
        state = [i == on_at for i in range(len(names))]
    else:
        wanted = {n for n in names if rng.random() < 0.5}
        query = ", ".join(n for n in names if n in wanted) or "nothing"
        state = [rng.random() < (0.4 if n in wanted else 0.1) for n in names]  # some boxes already set
    instruction = f"Select {query} and click Submit."
    canvas = _Canvas(instruction)
    target: Box | None = None
    y = QUERY_H + 5.0
    for name, on in zip(names, state):
        box = canvas.toggle(6, y, kind, on, name)
        canvas.text(24, y + 1, name, TEXT_PX)
        # The experts' order: the first box not as asked (a radio that is on cannot be
        # switched off by a click, so only the wanted one counts), then Submit.
        if target is None and (name in wanted) != on and (kind == "checkbox" or name in wanted):
            target = box
        y += 19
    submit = canvas.button(2, y + 8, 95, 30, "Submit")  # MiniWoB: 6 rows put it at 177..207
    return instruction, canvas, target or submit


_FAMILY_FNS = {"two-buttons": _two_buttons, "buttons": _buttons, "links": _links, "options": _options}


def reading_screen(seed: int, family: str | None = None) -> ReadingScreen:
    """One screen of ``family`` (drawn from the seed when None); deterministic from ``seed``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    for attempt in range(100):
        rng = random.Random(seed * 1_000_003 + attempt)
        fam = family or rng.choice(FAMILIES)
        made = _FAMILY_FNS[fam](rng)
        if made is not None:
            instruction, canvas, target = made
            return ReadingScreen(fam, instruction, canvas.array(), target, seed, tuple(canvas.elements))
    raise RuntimeError(f"no {family or 'reading'} screen fits the page for seed {seed}")  # never seen


def reading_sample(seed: int, processor: Processor, *, output_format: str = "native-compact",
                   family: str | None = None) -> Sample:
    """The screen as a training sample in the agent's step-0 chat layout; the target is the click.

    Also carries ``target_box`` (screen pixels), ``target_action``, ``instruction`` and ``family``.
    """
    screen = reading_screen(seed, family)
    frame = image_frame(processor, screen.image)
    fmt = get_format(output_format)
    x, y = screen.center
    action_text = fmt.format([Click(x, y)], frame)
    sample = first_step_sample(processor, screen.image, screen.instruction, fmt.system_prompt(frame), action_text,
                               f"reading:{seed}")
    sample.update(target_box=screen.target, target_action=action_text, instruction=screen.instruction,
                  family=screen.family, media_targets=screen_media_targets(screen, processor))
    return sample


def screen_media_targets(screen: ReadingScreen, processor: Processor) -> torch.Tensor:
    """The screen's dense word targets (``training.data.media_words``): every media token over a
    button, link or option names that element's label."""
    h, w = screen.image.shape[:2]
    return media_word_targets(processor, (w, h), [(label, box) for _, label, box in screen.elements])


#: The task of an OCR sample (``ocr_sample``): name every clickable thing and where it is.
OCR_TASK = "Read every button, link and option on the screen, with where it is."


def ocr_text(screen: ReadingScreen, frame: ModelFrame, output_format: str = "native-compact") -> str:
    """``ONE at (45, 84). TWO at (120, 170).``: each element's label and centre in the model's
    coordinates, in reading order (top to bottom, then left to right)."""
    coords = get_format(output_format).coords
    parts = []
    for _, label, box in sorted(screen.elements, key=lambda e: (e[2][1] // 8, e[2][0])):
        x, y = coords.from_screen(*box_center(box), frame)
        parts.append(f"{label} at ({x:g}, {y:g}).")
    return " ".join(parts)


def ocr_sample(seed: int, processor: Processor, *, output_format: str = "native-compact",
               family: str | None = None) -> Sample:
    """The screen with ``OCR_TASK`` and ``ocr_text`` as the reply: every label must be read off the
    pixels (the task names none), which trains the vision tower to keep what the words say where
    they are: the direct signal that clicking the named word alone gives only weakly."""
    screen = reading_screen(seed, family)
    frame = image_frame(processor, screen.image)
    sample = first_step_sample(processor, screen.image, OCR_TASK, get_format(output_format).system_prompt(frame),
                               ocr_text(screen, frame, output_format), f"reading-ocr:{seed}")
    sample.update(instruction=OCR_TASK, family=screen.family, media_targets=screen_media_targets(screen, processor))
    return sample


def reading_samples(count: int | None, processor: Processor, *, seed: int = 0, ocr: float = 0.0,
                    family: str | None = None, families: Mapping[str, float] | None = None,
                    **kw: Any) -> Iterator[Sample]:
    """``count`` reading samples (endless when None) for seeds seed, seed+1, …; a share ``ocr`` of
    them (chosen by seed) are OCR samples of their screen instead of the click. ``family`` fixes
    the family; ``families`` weighs them (chosen by seed); neither: each screen draws its own."""
    if not 0 <= ocr <= 1:
        raise ValueError(f"ocr is a share in [0, 1], got {ocr}")
    if family is not None and families is not None:
        raise ValueError("give family (one) or families (weights), not both")
    names, weights = family_weights(families)
    i = 0
    while count is None or i < count:
        s = seed + i
        make = ocr_sample if ocr and random.Random(s ^ 0x0C4).random() < ocr else reading_sample
        drawn = random.Random(s ^ 0xFA3).choices(names, weights)[0] if names else family
        yield make(s, processor, family=drawn, **kw)
        i += 1


def family_weights(families: Mapping[str, float] | None) -> tuple[list[str], list[float]]:
    """(names, weights) of a family weighting, checked; empty lists for None (uniform)."""
    if families is None:
        return [], []
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families or min(families.values()) < 0 or sum(families.values()) <= 0:
        raise ValueError(f"families maps some of {', '.join(FAMILIES)} to weights >= 0 (not all 0), "
                         f"got {dict(families)}")
    return list(families), [float(w) for w in families.values()]


__all__ = ["BUTTON_WORDS", "FAMILIES", "OCR_TASK", "ReadingScreen", "box_center", "family_weights",
           "miniwob_vocabulary", "ocr_sample", "ocr_text", "reading_sample", "reading_samples", "reading_screen",
           "screen_media_targets"]
