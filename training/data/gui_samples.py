"""Grounding and caption samples from synthetic GUI screens (``training.data.synthetic``).

- Grounding: "Click the "OK" button." on a rendered screen → the native action
  ``click(x, y)`` at the widget's box centre, in the pixels of the image the processor makes
  (``processor.image_metas``), after a short grounded thought. The chat layout is the agent's
  own (``agent.messages.build_messages``, step 0), so grounding teaches the exact task format.
- Captions: a description of the screen (window, menus, tabs, fields, checkboxes, lists,
  buttons, dialog) as an assistant answer to "Describe the screen.", and the same caption as
  ``caption_ids`` next to the raw ``image`` for the ViT stage (``collate_captions``).

All samples are deterministic from ``seed + index``. This module knows nothing about packing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from agent.formats import get_format
from envs.actions import Click
from model.processing import Processor
from model.processing.tokenizer import encode_text
from training.data.sft import encode_target_turn, first_step_sample, image_frame, image_part
from training.data.synthetic import Screen, Widget, layout, render

Sample = dict[str, Any]
CAPTION_PROMPT = "Describe the screen."
_NOUN = {"button": "button", "text_field": "text field", "checkbox": "checkbox", "menu": "menu",
         "menu_item": "menu item", "tab": "tab", "list_item": "list item"}


def instruction_for(widget: Widget, rng: random.Random) -> str:
    """A task that means "click this widget", phrased for its kind and state."""
    label = widget.label
    options = {
        "button": (f'Click the "{label}" button.', f"Press {label}.", f'Click "{label}" in {widget.where}.'),
        "text_field": (f'Click the "{label}" text field.', f"Focus the {label} field."),
        "checkbox": ((f'Uncheck "{label}".' if widget.state == "checked" else f'Check "{label}".'),
                     f'Toggle the "{label}" checkbox.'),
        "menu": (f'Open the "{label}" menu.', f"Click {label} in the menu bar."),
        "menu_item": (f'Choose "{label}" from {widget.where}.', f'Click the "{label}" menu item.'),
        "tab": (f'Switch to the "{label}" tab.', f'Open the "{label}" tab.'),
        "list_item": (f'Select "{label}" in the list.', f'Click "{label}" in {widget.where}.'),
    }[widget.kind]
    return rng.choice(options)


def unique_targets(screen: Screen) -> list[int]:
    """Indices of widgets that a (kind, label) pair names unambiguously on this screen."""
    seen: dict[tuple[str, str], int] = {}
    for w in screen.widgets:
        seen[(w.kind, w.label)] = seen.get((w.kind, w.label), 0) + 1
    return [i for i, w in enumerate(screen.widgets) if seen[(w.kind, w.label)] == 1]


def _region(x: int, y: int, size: tuple[int, int]) -> str:
    col = ("left", "centre", "right")[min(2, 3 * x // size[0])]
    row = ("top", "middle", "bottom")[min(2, 3 * y // size[1])]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def grounding_sample(seed: int, processor: Processor, *, thought: bool = True, output_format: str = "native",
                     solo: float = 0.0, **layout_kw: Any) -> Sample:
    """One grounding sample (also carries ``target_box``, the widget's box in screen pixels).

    ``output_format`` is "native" or "native-compact" (system prompt; the reply syntax is the same).
    ``solo`` is the probability that the screen shows the target widget alone (the other widgets
    left out, panels kept): pure localisation, the easy end of a grounding curriculum.
    """
    if not 0 <= solo <= 1:
        raise ValueError(f"solo is a probability in [0, 1], got {solo}")
    rng = random.Random(seed * 7919 + 1)
    screen = layout(seed, **layout_kw)
    targets = unique_targets(screen)
    if not targets:  # a screen without widgets is possible but rare: take the next seed
        return grounding_sample(seed + 1_000_003, processor, thought=thought, output_format=output_format,
                                solo=solo, **layout_kw)
    index = rng.choice(targets)
    widget = screen.widgets[index]
    alone = solo > 0 and rng.random() < solo
    image = render(screen, omit=set(range(len(screen.widgets))) - {index} if alone else frozenset())
    frame = image_frame(processor, image)
    fmt = get_format(output_format)
    x, y = widget.center
    action_text = fmt.format([Click(x, y)], frame)
    note = None
    if thought:
        note = (f'The {_NOUN[widget.kind]} "{widget.label}" is in {widget.where}, at the '
                f"{_region(x, y, screen.size)} of the screen; I click its centre.")
    reply = fmt.format([Click(x, y)], frame, note)
    task = instruction_for(widget, rng)
    sample = first_step_sample(processor, image, task, fmt.system_prompt(frame), reply, f"grounding:{seed}")
    sample.update(target_box=widget.box, target_action=action_text, instruction=task)
    return sample


def caption_text(screen: Screen) -> str:
    """A description of the screen, widgets in reading order with their region and state."""
    parts = [f"A {screen.size[0]}x{screen.size[1]} "
             + ("web page" if screen.style == "miniwob" else "desktop") + f' showing "{screen.title}".']
    for w in sorted(screen.widgets, key=lambda w: (w.box[1] // 8, w.box[0])):
        x, y = w.center
        state = f" ({w.state})" if w.state and w.kind != "text_field" else ""
        value = f' holding "{w.state}"' if w.kind == "text_field" and w.state else ""
        parts.append(f'{_NOUN[w.kind].capitalize()} "{w.label}"{state}{value} at the {_region(x, y, screen.size)}.')
    return " ".join(parts)


def caption_sample(seed: int, processor: Processor, **layout_kw: Any) -> Sample:
    """Caption sample in both forms: chat (input_ids/labels/pixels) and ViT (image + caption_ids)."""
    screen = layout(seed, **layout_kw)
    image = render(screen)
    caption = caption_text(screen)
    messages = [{"role": "user", "content": [image_part(image), {"type": "text", "text": CAPTION_PROMPT}]},
                {"role": "assistant", "content": caption}]
    sample = encode_target_turn(processor, messages, f"caption:{seed}")
    sample.update(image=image, caption_ids=encode_text(processor.tokenizer, caption), caption=caption)
    return sample


def grounding_samples(count: int | None, processor: Processor | None = None, *, seed: int = 0,
                      **kw: Any) -> Iterator[Sample]:
    """``count`` grounding samples (endless when None) for seeds seed, seed+1, …"""
    processor = processor or Processor.default()
    i = 0
    while count is None or i < count:
        yield grounding_sample(seed + i, processor, **kw)
        i += 1


def caption_samples(count: int | None, processor: Processor | None = None, *, seed: int = 0,
                    **kw: Any) -> Iterator[Sample]:
    """``count`` caption samples (endless when None) for seeds seed, seed+1, …"""
    processor = processor or Processor.default()
    i = 0
    while count is None or i < count:
        yield caption_sample(seed + i, processor, **kw)
        i += 1


__all__ = ["CAPTION_PROMPT", "caption_sample", "caption_samples", "caption_text", "grounding_sample",
           "grounding_samples", "instruction_for", "unique_targets"]
