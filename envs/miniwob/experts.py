"""Scripted MiniWoB++ experts: PRIVILEGED readers of the DOM that act only through pixels.

Each expert is a *reactive* policy ``expert(view) -> ExpertStep``: it looks at the current
page (through ``PageView``: DOM, form state, task globals) and returns one pixel action
(``Click``/``TypeText``/``Hotkey``/``Wait``) plus a rationale saying what it saw and why it
acts. Being reactive (no hidden memory) means an expert can be asked for the right action in
any state, e.g. to relabel an agent's own trajectory. ``EXPERTS`` is the explicit registry;
``run_expert`` plays one episode. The rationales become training chain-of-thought later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envs.actions import Action, Click, Hotkey, TypeText, Wait, action_to_json
from envs.errors import PixelPilotError
from envs.miniwob.env import MiniWoBEnv
from envs.miniwob.view import Element, PageView


class ExpertError(PixelPilotError, RuntimeError):
    """The expert found nothing sensible to do (page not as the script expects)."""


@dataclass(frozen=True)
class ExpertStep:
    """One decision: the pixel action and the reasoning behind it."""

    action: Action
    rationale: str


Expert = Callable[[PageView], ExpertStep]


def quoted(text: str) -> list[str]:
    """Every "double-quoted" phrase of an instruction, in order."""
    return re.findall(r'"([^"]*)"', text)


def _click(el: Element, why: str) -> ExpertStep:
    if not el.hit:
        raise ExpertError(f"{el.describe()} is covered by another element; no pixel reaches it")
    return ExpertStep(Click(*el.center), f"{why} The page shows {el.describe()}, so I click there.")


def _need(el: Element | None, what: str) -> Element:
    if el is None:
        raise ExpertError(f"expected {what} on the page but found none visible")
    return el


def _fill(el: Element, target: str, what: str) -> ExpertStep | None:
    """Next step to make text field ``el`` hold ``target``; None when it already does."""
    if el.value == target:
        return None
    if not el.focused:
        return _click(el, f"The {what} should contain {target!r} but holds {el.value!r}; I focus it first.")
    if el.value:
        return ExpertStep(Hotkey(("ctrl", "a")), f"The focused {what} holds {el.value!r}, not {target!r}; I select all of it to replace it.")
    return ExpertStep(TypeText(target), f"The {what} is focused and empty; I type {target!r}.")


def _fill_then_click(view: PageView, fields: list[tuple[str, str, str]], button: str, label: str) -> ExpertStep:
    """Fill ``(selector, value, description)`` fields in order, then click ``button``."""
    for selector, value, what in fields:
        step = _fill(_need(view.one(selector), what), value, what)
        if step is not None:
            return step
    return _click(_need(view.one(button), f"the {label} button"), f"All fields hold the requested text; now I press {label}.")


# -- click tasks ------------------------------------------------------------------------
def click_test(view: PageView) -> ExpertStep:
    return _click(_need(view.one("#subbtn"), "the button"), "The task is to click the only button.")


def click_test_2(view: PageView) -> ExpertStep:
    return _click(_need(view.one("#area button", "ONE"), 'button "ONE"'), 'The instruction names button ONE, not TWO.')


def click_button_sequence(view: PageView) -> ExpertStep:
    pushed = view.js("window.buttonsPushed || []")
    name = "ONE" if not pushed else "TWO"
    return _click(_need(view.one("#area button", name), f"button {name}"),
                  f"Buttons pressed so far: {pushed or 'none'}; the sequence is ONE then TWO, so next is {name}.")


def click_button(view: PageView) -> ExpertStep:
    target = quoted(view.utterance)[0]
    return _click(_need(view.one("#area button", target), f'button "{target}"'), f'The instruction asks for the "{target}" button.')


def click_link(view: PageView) -> ExpertStep:
    target = quoted(view.utterance)[0]
    return _click(_need(view.one("#area .alink", target), f'link "{target}"'), f'The instruction asks for the link "{target}".')


def click_dialog(view: PageView) -> ExpertStep:
    close = _need(view.one(".ui-dialog-titlebar-close"), "the dialog's close (x) button")
    return _click(close, "The task is to close the dialog with its x button in the title bar.")


def click_tab(view: PageView) -> ExpertStep:
    target = re.search(r"Tab #\d+", view.utterance)
    if target is None:
        raise ExpertError(f"no 'Tab #N' in the instruction {view.utterance!r}")
    return _click(_need(view.one("#area ul a", target.group(0)), target.group(0)), f"The instruction asks for {target.group(0)}.")


def click_widget(view: PageView) -> ExpertStep:
    kind = quoted(view.utterance)[0]
    el = _need(view.one(f"#area [data-type='{kind}']"), f"a {kind} widget")
    return _click(el, f'The instruction asks for a "{kind}" widget; this element has data-type={kind}.')


def focus_text(view: PageView) -> ExpertStep:
    return _click(_need(view.one("#tt"), "the text box"), "Focusing the text box means clicking into it.")


_ORDINALS = {"1st": 0, "2nd": 1, "3rd": 2}


def focus_text_2(view: PageView) -> ExpertStep:
    match = re.search(r"(1st|2nd|3rd)", view.utterance)
    if match is None:
        raise ExpertError(f"no ordinal in the instruction {view.utterance!r}")
    boxes = view.visible("#area input")
    el = _need(boxes[_ORDINALS[match.group(1)]] if len(boxes) == 3 else None, "three text boxes")
    return _click(el, f"The instruction asks for the {match.group(1)} text box from the top.")


def _label_choices(view: PageView, selector: str) -> list[tuple[str, Element]]:
    """(label text, input element) for each ``label > input`` matching ``selector``."""
    labels = view.visible("#boxes label")
    inputs = view.elements(selector)
    return [(lab.text, inp) for lab, inp in zip(labels, inputs)]


def click_checkboxes(view: PageView) -> ExpertStep:
    match = re.match(r"Select (.*) and click Submit\.?$", view.utterance)
    if match is None:
        raise ExpertError(f"unexpected instruction {view.utterance!r}")
    wanted = set() if match.group(1) == "nothing" else {w.strip() for w in match.group(1).split(",")}
    for name, box in _label_choices(view, "#boxes input[type=checkbox]"):
        if (name in wanted) != box.checked:
            state = "should be checked" if name in wanted else "should not be checked"
            return _click(box, f"Checkbox {name!r} {state} but is {'checked' if box.checked else 'clear'}.")
    return _click(_need(view.one("#subbtn"), "Submit"), f"Exactly {sorted(wanted) or 'nothing'} is checked now; I submit.")


def click_option(view: PageView) -> ExpertStep:
    match = re.match(r"Select (.*) and click Submit\.?$", view.utterance)
    if match is None:
        raise ExpertError(f"unexpected instruction {view.utterance!r}")
    for name, radio in _label_choices(view, "#boxes input[type=radio]"):
        if name == match.group(1) and not radio.checked:
            return _click(radio, f"The option {name!r} must be selected and is not yet.")
    return _click(_need(view.one("#subbtn"), "Submit"), f"The option {match.group(1)!r} is selected; I submit.")


def click_collapsible(view: PageView) -> ExpertStep:
    if view.js("$(':animated').length > 0"):
        return ExpertStep(Wait(0.2), "The section is still sliding open; I wait for the animation to finish.")
    if not view.js("$('.ui-accordion-content:visible').length === 1"):
        header = _need(view.one("#area h3"), "the section header")
        return _click(header, "The section is collapsed; clicking its header expands it.")
    return _click(_need(view.one("#subbtn"), "Submit"), "The section is expanded; now I click Submit.")


def choose_list(view: PageView) -> ExpertStep:
    match = re.match(r"Select (.*) from the list and click Submit\.?$", view.utterance)
    if match is None:
        raise ExpertError(f"unexpected instruction {view.utterance!r}")
    target = match.group(1)
    select = _need(view.one("#options"), "the drop-down list")
    if select.value != target and not select.focused:
        return _click(select, f"The list shows {select.value!r}, not {target!r}; I open it.")
    if select.value != target:
        return ExpertStep(TypeText(f"{target}\n"), f"The list is open; typing {target!r} jumps to that entry and Enter picks it.")
    return _click(_need(view.one("#area button", "Submit"), "Submit"), f"The list shows {target!r}; I submit.")


# -- text entry tasks -------------------------------------------------------------------
def enter_text(view: PageView) -> ExpertStep:
    target = quoted(view.utterance)[0]
    return _fill_then_click(view, [("#tt", target, "text field")], "#subbtn", "Submit")


def enter_text_2(view: PageView) -> ExpertStep:
    word = quoted(view.utterance)[0]
    target = word.upper() if "upper case" in view.utterance else word.lower()
    return _fill_then_click(view, [("#tt", target, "text field (case converted as asked)")], "#subbtn", "Submit")


def enter_password(view: PageView) -> ExpertStep:
    pw = quoted(view.utterance)[0]
    fields = [("#password", pw, "password field"), ("#verify", pw, "verify-password field")]
    return _fill_then_click(view, fields, "#subbtn", "Submit")


def login_user(view: PageView) -> ExpertStep:
    user, pw = quoted(view.utterance)[:2]
    fields = [("#username", user, "username field"), ("#password", pw, "password field")]
    return _fill_then_click(view, fields, "#subbtn", "Login")


def use_autocomplete(view: PageView) -> ExpertStep:
    parts = quoted(view.utterance)
    start, end = parts[0], (parts[1] if len(parts) > 1 else "")
    box = _need(view.one("#tags"), "the autocomplete input")
    value = box.value or ""
    if value.startswith(start) and value.endswith(end) and len(value) > len(start):
        return _click(_need(view.one("#subbtn"), "Submit"), f"The input holds {value!r}, which starts with {start!r} and ends with {end!r}; I submit.")
    for item in view.visible("ul.ui-autocomplete li"):
        if item.text.startswith(start) and item.text.endswith(end):
            return _click(item, f"The suggestion {item.text!r} starts with {start!r} and ends with {end!r}.")
    if value == start:
        return ExpertStep(Wait(0.2), f"I typed {start!r}; waiting for the suggestion list to show a match.")
    step = _fill(box, start, "autocomplete input")
    assert step is not None  # value != start here
    return step


EXPERTS: dict[str, Expert] = {
    "choose-list": choose_list,
    "click-button": click_button,
    "click-button-sequence": click_button_sequence,
    "click-checkboxes": click_checkboxes,
    "click-collapsible": click_collapsible,
    "click-dialog": click_dialog,
    "click-link": click_link,
    "click-option": click_option,
    "click-tab": click_tab,
    "click-test": click_test,
    "click-test-2": click_test_2,
    "click-widget": click_widget,
    "enter-password": enter_password,
    "enter-text": enter_text,
    "enter-text-2": enter_text_2,
    "focus-text": focus_text,
    "focus-text-2": focus_text_2,
    "login-user": login_user,
    "use-autocomplete": use_autocomplete,
}


@dataclass(frozen=True)
class ExpertEpisode:
    """The outcome of one scripted episode, JSON-ready via ``to_json``."""

    task: str
    seed: int
    success: bool
    raw_reward: float
    timed_reward: float
    steps: int
    elapsed_s: float
    instruction: str
    actions: tuple[dict[str, Any], ...] = field(default=())
    rationales: tuple[str, ...] = field(default=())
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def run_expert(env: MiniWoBEnv, task: str, seed: int, expert: Expert | None = None) -> ExpertEpisode:
    """Play one episode of ``task`` with ``expert`` (default ``EXPERTS[task]``) on ``env``."""
    policy = expert or EXPERTS[task]
    t0 = time.perf_counter()
    obs, _ = env.reset(seed=seed, options={"task": task})
    view = PageView(env)
    actions: list[dict[str, Any]] = []
    rationales: list[str] = []
    info: dict[str, Any] = {}
    error = None
    ended = False
    while not ended:
        try:
            step = policy(view)
        except ExpertError as exc:
            error = str(exc)
            break
        actions.append(action_to_json(step.action))
        rationales.append(step.rationale)
        _, _, terminated, truncated, info = env.step(step.action)
        ended = terminated or truncated
    return ExpertEpisode(
        task=task, seed=seed, success=bool(info.get("success", False)), raw_reward=float(info.get("raw_reward", 0.0)),
        timed_reward=float(info.get("timed_reward", 0.0)), steps=len(actions), elapsed_s=time.perf_counter() - t0,
        instruction=obs.instruction, actions=tuple(actions), rationales=tuple(rationales), error=error,
    )
