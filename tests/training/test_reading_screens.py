"""training.data.reading_screens: MiniWoB-style screens whose target only reading finds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from agent.formats import get_format
from model.processing import Processor
from model.processing.image_processor import ImageProcessorConfig
from model.processing.processor import IGNORE_INDEX
from training.data.reading_screens import (BUTTON_WORDS, FAMILIES, miniwob_vocabulary, reading_sample, reading_screen,
                                           reading_samples)
from training.data.sft import image_frame


@pytest.fixture(scope="module")
def processor() -> Processor:
    return Processor.default(ImageProcessorConfig(max_patches=192))


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_vocabulary_is_the_installed_miniwobs() -> None:
    words, chars = miniwob_vocabulary()
    assert {"lorem", "ipsum", "nulla"} <= set(words) and len(set(words)) > 200
    assert set("abcXYZ019") <= set(chars)


def test_screens_are_deterministic_and_cover_every_family() -> None:
    a, b = reading_screen(11), reading_screen(11)
    assert a.instruction == b.instruction and a.target == b.target and np.array_equal(a.image, b.image)
    screens = [reading_screen(s) for s in range(60)]
    assert {s.family for s in screens} == set(FAMILIES)
    assert len({s.instruction for s in screens}) > 35  # two-buttons repeats ONE/TWO on purpose
    with pytest.raises(ValueError, match="family must be one of"):
        reading_screen(0, "tables")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_target_is_the_named_element_and_drawn_on_the_page(family: str) -> None:
    for seed in range(40):
        screen = reading_screen(seed, family)
        assert screen.image.shape == (420, 320, 3) and screen.image.dtype == np.uint8
        page = (0, 100, 320, 420)  # below the 50 CSS px query bar, at scale 2
        assert _inside(screen.target, page), (seed, screen.target)
        x0, y0, x1, y1 = screen.target
        assert (screen.image[y0:y1, x0:x1] != 255).any(), "the target's box holds no drawn pixel"
        kinds = {box: (kind, label) for kind, label, box in screen.elements}
        kind, label = kinds[screen.target]
        if family == "two-buttons":
            assert kind == "button" and screen.instruction == f"Click button {label}."
            assert len(screen.elements) == 2 and screen.elements[0][1] != screen.elements[1][1]
        elif family == "buttons":
            assert kind == "button" and screen.instruction == f'Click on the "{label}" button.'
            assert label.lower() in BUTTON_WORDS
        elif family == "links":
            assert kind == "link" and screen.instruction == f'Click on the link "{label}".'
            first = next(b for k, lab, b in screen.elements if lab == label)
            assert first == screen.target  # the first link with that text, as the expert picks
        else:
            match = re.fullmatch(r"Select (.*) and click Submit\.", screen.instruction)
            assert match is not None
            wanted = set() if match.group(1) == "nothing" else set(match.group(1).split(", "))
            assert kind == "button" and label == "Submit" or kind in ("radio", "checkbox") and (
                label in wanted or kind == "checkbox")


def test_options_target_the_first_box_not_as_asked_then_submit() -> None:
    """The experts' order: a box to toggle comes before Submit, and Submit only once none is left."""
    submits = toggles = 0
    for seed in range(80):
        screen = reading_screen(seed, "options")
        kind = next(k for k, _, b in screen.elements if b == screen.target)
        if kind == "button":
            submits += 1
        else:
            toggles += 1
            before = [b for k, _, b in screen.elements if k != "button" and b[1] < screen.target[1]]
            assert all(b != screen.target for b in before)
    assert submits > 5 and toggles > 20


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_click_inside_the_target(processor: Processor, family: str) -> None:
    fmt = get_format("native-compact")
    for sample in reading_samples(6, processor, seed=100, family=family):
        assert sample["family"] == family
        labelled = [t for t, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX]
        assert labelled and sample["pixel_values"].shape[0] == 192
        text = processor.tokenizer.decode(labelled[:-1])
        assert text == sample["target_action"]
        screen = reading_screen(int(sample["id"].split(":")[1]), family)
        (click,) = fmt.parse(text, image_frame(processor, screen.image)).actions
        x0, y0, x1, y1 = sample["target_box"]
        assert x0 <= click.x < x1 and y0 <= click.y < y1, (text, sample["target_box"])
        assert sample["instruction"] in processor.tokenizer.decode(sample["input_ids"])


def test_sample_is_deterministic(processor: Processor) -> None:
    a, b = reading_sample(5, processor), reading_sample(5, processor)
    assert a["input_ids"] == b["input_ids"] and bool((a["pixel_values"] == b["pixel_values"]).all())


def test_ocr_samples_read_out_every_element_where_it_is(processor: Processor) -> None:
    from training.data.reading_screens import OCR_TASK, ocr_sample, ocr_text

    fmt = get_format("native-compact")
    for seed in range(8):
        sample = ocr_sample(seed, processor)
        screen = reading_screen(seed)
        frame = image_frame(processor, screen.image)
        text = ocr_text(screen, frame)
        labelled = [t for t, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX]
        assert processor.tokenizer.decode(labelled[:-1]) == text
        assert sample["instruction"] == OCR_TASK and OCR_TASK in processor.tokenizer.decode(sample["input_ids"])
        # Each "label at (x, y)." maps back into that element's box, in reading order.
        found = re.findall(r"(\S+) at \((\d+), (\d+)\)\.", text)
        assert [lab for lab, _, _ in found] == [lab for _, lab, _ in
                                                sorted(screen.elements, key=lambda e: (e[2][1] // 8, e[2][0]))]
        for (label, x, y), (_, _, box) in zip(found, sorted(screen.elements, key=lambda e: (e[2][1] // 8, e[2][0]))):
            sx, sy = fmt.coords.to_screen(int(x), int(y), frame)
            assert box[0] <= sx < box[2] and box[1] <= sy < box[3], (label, (sx, sy), box)


def test_the_ocr_share_is_chosen_by_seed(processor: Processor) -> None:
    ids = [s["id"] for s in reading_samples(40, processor, seed=7, ocr=0.5)]
    assert ids == [s["id"] for s in reading_samples(40, processor, seed=7, ocr=0.5)]
    share = sum(i.startswith("reading-ocr:") for i in ids) / len(ids)
    assert 0.25 < share < 0.75
    assert not any(i.startswith("reading-ocr:") for i in (s["id"] for s in reading_samples(10, processor, ocr=0.0)))
    with pytest.raises(ValueError, match="ocr is a share"):
        next(reading_samples(1, processor, ocr=1.5))


def test_reading_accuracy_of_the_shipped_model_is_reported_per_family(tmp_path) -> None:
    import json
    from pathlib import Path

    from training.reading_eval import main, reading_accuracy

    model = str(Path(__file__).resolve().parents[2] / "model" / "zoo" / "miniwob-tiny")
    result = reading_accuracy(model, per_family=3)
    assert set(result) == set(FAMILIES)
    for r in result.values():
        assert r["screens"] == 3 and 0 <= r["hit"] <= r["on_element"] <= 1
    assert sum(r["on_element"] for r in result.values()) > 0  # it clicks things, whatever it reads
    out = tmp_path / "acc.json"
    assert main([model, "--per-family", "1", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["families"]) == set(FAMILIES)
    with pytest.raises(ValueError, match="per_family"):
        reading_accuracy(model, per_family=0)


def test_family_weights_choose_the_screens_by_seed(processor: Processor) -> None:
    only = [s["family"] for s in reading_samples(6, processor, seed=3, families={"two-buttons": 1.0})]
    assert only == ["two-buttons"] * 6
    mixed = [s["family"] for s in reading_samples(40, processor, seed=3, families={"links": 1.0, "options": 3.0})]
    assert set(mixed) == {"links", "options"} and mixed.count("options") > mixed.count("links")
    assert mixed == [s["family"] for s in reading_samples(40, processor, seed=3, families={"links": 1.0, "options": 3.0})]
    for bad in ({"tables": 1.0}, {"links": -1.0}, {"links": 0.0}, {}):
        with pytest.raises(ValueError, match="families maps some of"):
            next(reading_samples(1, processor, families=bad))
