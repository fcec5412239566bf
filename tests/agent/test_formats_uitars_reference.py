"""Our UI-TARS parser against the reference parser of the PyPI ``ui-tars`` package.

For generated replies in both coordinate modes (UI-TARS 1.5 smart-resized pixels and UI-TARS
1.0 0–1000), the reference's ``parse_action_to_structure_output`` gives normalised boxes and
``parsing_response_to_pyautogui_code`` turns them into pyautogui code in screen pixels; both
end up as screen points and are compared with what ``UITarsFormat`` returns.
"""

from __future__ import annotations

import contextlib
import io
import random
from typing import Any

import pytest

from agent.formats import CoordSystem, ModelFrame, get_format
from agent.formats.pyautogui_code import parse_code_actions
from envs.actions import Click, Done, Drag, Hotkey, Move, Scroll, TypeText, Wait
from envs.geometry import round_half_up
from envs.keys import normalize_key

action_parser = pytest.importorskip("ui_tars.action_parser")

CASES = [  # (mode, screen size, size of the image sent to the model)
    ("qwen25vl", (1920, 1080), (1920, 1080)),
    ("qwen25vl", (2560, 1440), (1280, 720)),
    ("qwen2vl", (1280, 800), (1280, 800)),
    ("qwen2vl", (1920, 1080), (960, 540)),
]
WORDS = ["hello", "it's", "a \\'quoted\\' word", "line\\n", "x=1, y=2", "(paren)", "tab\\there", "日本語", "50%"]


# the reference tolerates bare quotes only inside type(content=...)
FINISH_WORDS = [w for w in WORDS if "'" not in w.replace("\\'", "")]


def _box(rng: random.Random, ex: int, ey: int) -> str:
    x, y = rng.randint(0, ex - 1), rng.randint(0, ey - 1)
    form = rng.randrange(3)
    if form == 0:
        return f"'({x},{y})'"
    if form == 1:
        x2, y2 = min(ex - 1, x + rng.randint(0, 40)), min(ey - 1, y + rng.randint(0, 40))
        return f"'({x},{y},{x2},{y2})'"
    return f"'<point>{x} {y}</point>'"


def generate(rng: random.Random, ex: int, ey: int, n: int) -> list[str]:
    """``n`` UI-TARS replies covering every action the reference converts to code."""
    out = []
    for i in range(n):
        kind = i % 9
        thought = f"Thought: step {i}: I look at the screen and decide.\n"
        if kind < 4:
            fn = ["click", "left_double", "right_single", "hover"][kind]
            key = rng.choice(["start_box", "point"])
            call = f"{fn}({key}={_box(rng, ex, ey)})"
        elif kind == 4:
            call = f"drag(start_box={_box(rng, ex, ey)}, end_box={_box(rng, ex, ey)})"
        elif kind == 5:
            call = f"type(content='{rng.choice(WORDS)} {rng.choice(WORDS)}')"
        elif kind == 6:
            call = f"hotkey(key='{rng.choice(['ctrl c', 'ctrl shift t', 'enter', 'alt f4', 'ctrl space'])}')"
        elif kind == 7:
            call = f"scroll(start_box={_box(rng, ex, ey)}, direction='{rng.choice(['up', 'down'])}')"
        else:
            call = f"finished(content='{rng.choice(FINISH_WORDS)}')"
        out.append(f"{thought}Action: {call}")
    return out


def reference(text: str, mode: str, frame: ModelFrame) -> tuple[list[dict[str, Any]], str]:
    """The ``ui-tars`` package's structure output and pyautogui code for ``text``."""
    (iw, ih), (sw, sh) = frame.image_size, frame.screen_size
    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints on failures
        structure = action_parser.parse_action_to_structure_output(
            text, factor=1000, origin_resized_height=ih, origin_resized_width=iw, model_type=mode)
        code = action_parser.parsing_response_to_pyautogui_code(
            structure, image_height=sh, image_width=sw, input_swap=False, scale_factor=1)
    return structure, code


def _ref_point(box: str, frame: ModelFrame) -> tuple[int, int]:
    x1, y1, x2, y2 = (float(v) for v in box.strip("[]").split(","))
    return (round_half_up((x1 + x2) / 2 * frame.screen_size[0]), round_half_up((y1 + y2) / 2 * frame.screen_size[1]))


def compare(text: str, mode: str, frame: ModelFrame) -> None:
    fmt = get_format("uitars" if mode == "qwen25vl" else "uitars-1000")
    mine = fmt.parse(text, frame)
    structure, code = reference(text, mode, frame)
    assert len(structure) == 1 and len(mine.actions) == 1
    ref = structure[0]
    assert mine.thought == ref["thought"]
    action, inputs = mine.actions[0], ref["action_inputs"]
    kind = ref["action_type"]
    if kind in ("click", "left_double", "right_single", "hover", "drag"):
        # the reference's own code, read back in screen pixels (time.sleep lines are its pacing)
        screen = ModelFrame.same(frame.screen_size)
        ref_actions = [a for a in parse_code_actions(code, lambda x, y: CoordSystem("image").to_screen(x, y, screen),
                                                     (0, 0)) if not isinstance(a, Wait)]
        assert (action,) == tuple(ref_actions), (text, code)
    elif kind == "type":
        assert action == TypeText(inputs["content"])
    elif kind == "hotkey":
        assert action == Hotkey(tuple(normalize_key("space" if k == " " else k) for k in inputs["key"].split()))
    elif kind == "scroll":
        # the reference passes the normalised box, not pixels, to pyautogui.scroll: compare with the box itself
        assert isinstance(action, Scroll) and (action.x, action.y) == _ref_point(inputs["start_box"], frame)
        assert (action.dy > 0) == (inputs["direction"] == "down")
    else:
        assert kind == "finished" and code == "DONE"
        assert action == Done(inputs["content"])


@pytest.mark.parametrize(("mode", "screen", "image"), CASES)
def test_matches_ui_tars_reference(mode: str, screen: tuple[int, int], image: tuple[int, int]) -> None:
    frame = ModelFrame(screen, image)
    fmt = get_format("uitars" if mode == "qwen25vl" else "uitars-1000")
    ex, ey = (int(v) for v in fmt.coords.model_size(frame))  # type: ignore[attr-defined]
    if mode == "qwen2vl":
        ex = ey = 1001
    texts = generate(random.Random(f"{mode}{screen}{image}"), ex, ey, 36)
    for text in texts:
        compare(text, mode, frame)
    kinds = {type(fmt.parse(t, frame).actions[0]) for t in texts}
    assert kinds == {Click, Move, Drag, TypeText, Hotkey, Scroll, Done}
