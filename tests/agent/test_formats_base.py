"""Shared pieces of the output formats: frames, coordinate systems, thinking split, registry."""

from __future__ import annotations

import pytest

from agent.formats import NativeFormat, FORMATS, CoordSystem, ModelFrame, OutputFormat, ParseError, get_format
from agent.formats.thinking import THINK_END, THINK_START, join_thinking, split_thinking
from envs.geometry import smart_resize, to_screen
from model.special_tokens import SPECIAL_TOKENS


def test_frame_validates_sizes() -> None:
    with pytest.raises(ValueError, match="image_size"):
        ModelFrame(screen_size=(1920, 1080), image_size=(0, 10))
    with pytest.raises(ValueError, match="screen_size"):
        ModelFrame(screen_size=(1920.0, 1080), image_size=(10, 10))  # type: ignore[arg-type]
    assert ModelFrame.same((800, 600)) == ModelFrame((800, 600), (800, 600))
    assert ModelFrame([800, 600], [400, 300]).image_size == (400, 300)  # type: ignore[arg-type]  # read from JSON


def test_registry_lists_names_in_key_error() -> None:
    assert set(FORMATS) == {"native", "native-compact", "uitars", "uitars-1000", "opencua", "opencua-abs", "qwen25vl",
                            "computer_13", "pyautogui"}
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, OutputFormat)
        assert fmt.name == name
        assert get_format(name) is fmt
    with pytest.raises(KeyError, match="native") as info:
        get_format("nope")
    assert "uitars" in str(info.value) and "computer_13" in str(info.value)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_system_prompt_describes_the_frame(name: str) -> None:
    frame = ModelFrame((1920, 1080), (1280, 720))
    prompt = get_format(name).system_prompt(frame)
    assert len(prompt) > (80 if name.endswith("-compact") else 200)
    coords = getattr(get_format(name), "coords")
    ex, ey = coords.model_size(frame)
    if coords.kind in ("image", "smart_resize"):
        assert f"{int(ex)}x{int(ey)}" in prompt
    else:
        assert ("1000" if coords.kind == "norm1000" else "1.0") in prompt


def test_compact_native_prompt_is_short_and_parses_like_native() -> None:
    frame = ModelFrame((320, 420), (320, 420))
    full, compact = get_format("native"), get_format("native-compact")
    assert len(compact.system_prompt(frame)) < len(full.system_prompt(frame)) / 4
    text = '<think>The OK button.</think>\nclick(x=40, y=300)'
    assert compact.parse(text, frame) == full.parse(text, frame)
    with pytest.raises(ValueError, match="compact"):
        NativeFormat(prompt="short")


def test_coord_systems_use_geometry() -> None:
    frame = ModelFrame((1920, 1080), (1280, 720))
    assert CoordSystem("image").to_screen(640, 360, frame) == (960, 540)
    assert CoordSystem("norm1000").to_screen(500, 500, frame) == (960, 540)
    assert CoordSystem("unit").to_screen(0.25, 0.5, frame) == (480, 540)
    h, w = smart_resize(720, 1280, min_pixels=3136, max_pixels=12845056)
    smart = CoordSystem("smart_resize", min_pixels=3136, max_pixels=12845056)
    assert smart.model_size(frame) == (w, h)
    assert smart.to_screen(101, 77, frame) == to_screen(101, 77, space="resized", screen_size=(1920, 1080),
                                                        resized_size=(w, h))
    # the far edge of a space lands on the last pixel, not one past it
    assert CoordSystem("norm1000").to_screen(1000, 1000, frame) == (1919, 1079)
    assert CoordSystem("unit").from_screen(480, 540, frame) == (0.25, 0.5)


def test_coordinates_outside_the_space_are_parse_errors() -> None:
    frame = ModelFrame.same((800, 600))
    with pytest.raises(ParseError, match="0 <= x <= 1000"):
        CoordSystem("norm1000").to_screen(1001, 5, frame)
    with pytest.raises(ParseError, match="800x600"):
        CoordSystem("image").to_screen(-1, 5, frame)
    with pytest.raises(ParseError, match="must be a number"):
        CoordSystem("unit").to_screen("0.5", 0.1, frame)
    with pytest.raises(ValueError, match="kind"):
        CoordSystem("pixels")  # type: ignore[arg-type]


def test_think_markers_match_the_tokenizer() -> None:
    assert THINK_START in SPECIAL_TOKENS and THINK_END in SPECIAL_TOKENS


@pytest.mark.parametrize(("text", "thought", "answer", "closed"), [
    ("<think>look left</think>click(x=1, y=2)", "look left", "click(x=1, y=2)", True),
    ("<think>cut off mid-thou", "cut off mid-thou", "", False),
    ("template opened it</think>\ndone()", "template opened it", "done()", True),
    ("done()", None, "done()", True),
    ("<think></think>wait()", None, "wait()", True),
    ("<think>a</think>x<think>b</think>y", "a\n\nb", "xy", True),
])
def test_split_thinking(text: str, thought: str | None, answer: str, closed: bool) -> None:
    split = split_thinking(text)
    assert (split.thought, split.answer, split.closed) == (thought, answer, closed)


def test_join_thinking_inverts_split() -> None:
    text = join_thinking("plan", "click(x=1, y=2)")
    split = split_thinking(text)
    assert (split.thought, split.answer) == ("plan", "click(x=1, y=2)")
    assert join_thinking(None, "done()") == "done()"
