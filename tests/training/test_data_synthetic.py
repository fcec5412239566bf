"""training.data.synthetic / gui_samples / text / the DATA_SOURCES registry."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from agent.formats import get_format
from envs.actions import Click
from model.processing import Processor
from model.processing.processor import IGNORE_INDEX
from model.special_tokens import EOS_TOKEN_ID
from training.data import DATA_SOURCES, DataSpecError, resolve
from training.data.gui_samples import caption_sample, grounding_sample
from training.data.sft import image_frame
from training.data.synthetic import (BUTTONS, CHECKS, FIELDS, FRAMED_KINDS, ITEMS, SCENES, TABS, WIDGET_KINDS, layout,
                                     random_word, render)
from training.data.text import corpus_documents, long_text_samples, text_samples


@pytest.fixture(scope="module")
def processor() -> Processor:
    return Processor.default()


def test_screens_are_deterministic_and_varied() -> None:
    assert layout(7) == layout(7) and np.array_equal(render(layout(7)), render(layout(7)))
    screens = [layout(s) for s in range(80)]
    assert {s.scene for s in screens} == set(SCENES)
    assert {w.kind for s in screens for w in s.widgets} == set(WIDGET_KINDS)
    assert {s.size for s in screens} >= {(160, 210), (320, 420), (1280, 800), (640, 480)}
    assert len({s.font for s in screens}) >= 3 and len({s.theme.name for s in screens}) >= 3


@pytest.mark.parametrize("seed", range(12))
def test_each_widgets_pixels_lie_in_its_box(seed: int) -> None:
    screen = layout(seed, style="miniwob" if seed % 2 else "desktop", size=None if seed % 2 else (640, 480))
    full = render(screen)
    for i, widget in enumerate(screen.widgets):
        changed = np.argwhere((render(screen, omit={i}) != full).any(axis=2))
        assert len(changed), f"widget {widget} drew nothing"
        (y0, x0), (y1, x1) = changed.min(0), changed.max(0) + 1
        bx0, by0, bx1, by1 = widget.box
        assert bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1, (widget, (x0, y0, x1, y1))
        if widget.kind in FRAMED_KINDS:
            assert (x0, y0, x1, y1) == widget.box


def test_widgets_never_overlap() -> None:
    for seed in range(40):
        boxes = [w.box for w in layout(seed).widgets]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (seed, a, b)


@pytest.mark.parametrize("kw", [dict(style="miniwob", size=(320, 420)), dict(style="desktop", size=(1280, 800))])
def test_grounding_targets_click_inside_the_widget(processor: Processor, kw: dict) -> None:
    for seed in range(4):
        sample = grounding_sample(seed, processor, **kw)
        target = [t for t, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX]
        text = processor.decode(target, skip_special_tokens=False).removesuffix("<|im_end|>")
        assert text.startswith("<think>") and sample["target_action"] in text
        image = render(layout(seed, **kw))
        (click,) = get_format("native").parse(text, image_frame(processor, image)).actions
        x0, y0, x1, y1 = sample["target_box"]
        assert isinstance(click, Click) and x0 <= click.x < x1 and y0 <= click.y < y1
        assert sample["instruction"] in processor.decode(sample["input_ids"])


def test_random_labels_replace_the_word_pools_and_keep_the_geometry_rules() -> None:
    pools = set(BUTTONS) | set(FIELDS) | set(CHECKS) | set(TABS) | set(ITEMS)
    picked = {"button", "text_field", "checkbox", "tab", "list_item"}
    screens = [layout(s, style="miniwob", size=(320, 420), scale=2, random_labels=1.0) for s in range(30)]
    labels = [w.label for s in screens for w in s.widgets if w.kind in picked and w.where != 'the "Confirm" dialog']
    made_up = [lab for lab in labels if lab not in pools]
    assert len(made_up) > 0.9 * len(labels) > 50  # the dialogs' fixed buttons ("OK", "Cancel") stay
    assert any(lab.isupper() for lab in made_up) and any(any(c.isdigit() for c in lab) for lab in made_up)
    assert layout(5, random_labels=1.0) == layout(5, random_labels=1.0)
    assert layout(5) == layout(5, random_labels=0.0)  # off by default: earlier data is unchanged
    mixed = [layout(s, random_labels=0.5) for s in range(40)]
    share = sum(any(w.label not in pools for w in s.widgets if w.kind in picked) for s in mixed) / len(mixed)
    assert 0.2 < share < 0.8
    for seed in range(10):  # pixels still lie in the boxes, with labels of any length
        screen = screens[seed]
        boxes = [w.box for w in screen.widgets]
        assert all(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
                   for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_random_words_have_every_shape() -> None:
    import random

    rng = random.Random(0)
    words = [random_word(rng) for _ in range(400)]
    assert all(2 <= len(w) <= 9 and w.isalnum() for w in words)
    assert {w.islower() for w in words} == {True, False}
    assert any(w[0].isupper() and w[1:].islower() for w in words) and any(w.isupper() for w in words)


def test_scale_sets_the_text_size_of_a_given_screen_size() -> None:
    small = [layout(s, style="miniwob", size=(320, 420), scale=1).font_px for s in range(20)]
    large = [layout(s, style="miniwob", size=(320, 420), scale=2).font_px for s in range(20)]
    assert max(small) <= 12 and min(large) >= 20
    assert layout(3, style="miniwob", size=(320, 420)) in (layout(3, style="miniwob", size=(320, 420), scale=k)
                                                          for k in (1, 2))
    with pytest.raises(ValueError, match="scale"):
        layout(0, style="desktop", scale=2)
    with pytest.raises(ValueError, match="scale"):
        layout(0, scale=3)
    with pytest.raises(ValueError, match="random_labels"):
        layout(0, random_labels=1.5)


def test_caption_samples_have_chat_and_vit_forms(processor: Processor) -> None:
    sample = caption_sample(3, processor)
    screen = layout(3)
    assert np.array_equal(sample["image"], render(screen))
    assert processor.decode(sample["caption_ids"]) == sample["caption"]
    assert all(f'"{w.label}"' in sample["caption"] for w in screen.widgets)
    target = [t for t, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX]
    assert processor.decode(target) == sample["caption"]


def test_text_samples(processor: Processor) -> None:
    docs = corpus_documents()
    assert len(docs) > 1000
    samples = list(islice(text_samples(processor, max_tokens=64, generated=30), 400))
    assert all(2 <= len(s["input_ids"]) <= 64 and s["labels"] == s["input_ids"] for s in samples)
    assert sum(s["input_ids"][-1] == EOS_TOKEN_ID for s in samples) > 100
    again = list(islice(text_samples(processor, max_tokens=64, generated=30), 400))
    assert [s["input_ids"] for s in again] == [s["input_ids"] for s in samples]


def test_long_documents_have_exact_length_and_need_their_start(processor: Processor) -> None:
    a, b = long_text_samples(processor, length=1500, count=2)
    assert len(a["input_ids"]) == len(b["input_ids"]) == 1500
    text = processor.decode(a["input_ids"])
    key = text.split("the pass key is ")[1][:5]
    assert key.isdigit() and text.rstrip().endswith(f"The pass key is {key}.")


def test_registry_resolves_the_cli_syntax(processor: Processor) -> None:
    assert set(DATA_SOURCES) == {"trajectories", "cot", "synthetic-grounding", "synthetic-caption", "text",
                                 "long-text"}
    grounding, long_text = resolve("synthetic-grounding:2, long-text:256", processor=processor)
    assert grounding.name == "synthetic-grounding" and len(list(grounding)) == 2
    assert [s["input_ids"] for s in grounding] == [s["input_ids"] for s in grounding]  # re-iterable
    assert len(next(iter(long_text))["input_ids"]) == 256
    with pytest.raises(DataSpecError, match="known"):
        resolve("imagenet", processor=processor)
    with pytest.raises(DataSpecError, match="trajectories:RUN_DIR"):
        resolve("trajectories", processor=processor)
    with pytest.raises(DataSpecError, match="integer"):
        resolve("text:many", processor=processor)
