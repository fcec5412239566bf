"""OpenCUA output format: Markdown sections with pyautogui code.

::

    ## Thought
    The Save button is at the top left.

    ## Action
    Click the Save button.

    ## Code
    ```python
    pyautogui.click(x=0.3215, y=0.0815)
    ```

The code is parsed by ``agent.formats.pyautogui_code`` (AST whitelist, never executed) with
two extra calls: ``computer.wait()`` and ``computer.terminate(status='success'|'failure',
answer=...)``. Coordinates are relative (0–1, ``OpenCUAFormat()``, as OpenCUA-A3B writes them)
or absolute pixels of the smart-resized image (``OpenCUAFormat(coords=CoordSystem(
"smart_resize", ...))``, as the Qwen2.5-VL-based OpenCUA-7B/32B write them).
The ``## Action`` text is a one-line description for people; ``parse`` returns the
``## Thought`` text (joined with any ``<think>`` section) as the thought.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from envs.actions import Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait

from agent.formats.base import (CoordSystem, ModelFrame, ParsedReply, ParseError, check_reply, join_thoughts,
                                scroll_center)
from agent.formats.pyautogui_code import ActionBuilder, CallSpec, format_code_line, parse_pyautogui_code, py_literal
from agent.formats.thinking import split_thinking

QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 16384
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n?(.*?)```", re.DOTALL)
SYNTAX_HELP = ("expected `## Thought` / `## Action` / `## Code` sections, the code in a ```python block such as "
               "pyautogui.click(x=0.5, y=0.3), pyautogui.write('hello'), pyautogui.hotkey('ctrl', 'c'), "
               "computer.wait() or computer.terminate(status='success', answer='...')")


def _terminate(builder: ActionBuilder, args: dict[str, Any]) -> None:
    status = args.get("status", "success")
    if status == "success":
        builder.done(args.get("answer"))
    elif status == "failure":
        builder.fail(args.get("answer") or "")
    else:
        raise ParseError(f"computer.terminate status must be 'success' or 'failure', got {status!r}")


#: OpenCUA's calls beyond pyautogui.
EXTRA_CALLS: dict[str, CallSpec] = {
    "computer.terminate": CallSpec(("status", "answer"), _terminate),
    "computer.wait": CallSpec(("seconds",), lambda b, a: b.wait(a.get("seconds", 1.0), "computer.wait")),
}


def sections(text: str) -> dict[str, str]:
    """``## Name`` Markdown sections → {lower-case name: body}."""
    found: dict[str, str] = {}
    parts = re.split(r"(?m)^[ \t]*##[ \t]*([A-Za-z ]+?)[ \t]*:?[ \t]*$", text)
    for name, body in zip(parts[1::2], parts[2::2]):
        found.setdefault(name.strip().lower(), body.strip())
    return found


def describe(action: Action) -> str:
    """A one-line English description of an action (the ``## Action`` section)."""
    if isinstance(action, Click):
        times = {1: "", 2: "Double-", 3: "Triple-"}[action.count]
        what = "click" if times else "Click"
        button = "" if action.button == "left" else f" with the {action.button} button"
        return f"{times}{what} the target{button}."
    texts = {Move: "Move the pointer to the target.", Drag: "Drag from the start to the target.",
             MouseDown: "Press the mouse button.", MouseUp: "Release the mouse button.", Wait: "Wait for the screen to update.",
             Fail: "Give up: the task cannot be completed.", Done: "The task is complete."}
    if isinstance(action, Scroll):
        return f"Scroll {'down' if action.dy > 0 else 'up' if action.dy else 'right' if action.dx > 0 else 'left'}."
    if isinstance(action, TypeText):
        return f"Type {py_literal(action.text[:40])}."
    if isinstance(action, Hotkey):
        return f"Press {'+'.join('space' if k == ' ' else k for k in action.keys)}."
    return texts[type(action)]


@dataclass(frozen=True)
class OpenCUAFormat:
    """The OpenCUA codec; ``coords`` selects relative (default) or absolute coordinates."""

    coords: CoordSystem = field(default_factory=lambda: CoordSystem("unit"))
    name: str = "opencua"

    def parse(self, text: str, frame: ModelFrame) -> ParsedReply:
        """Sections → actions from the ``## Code`` block."""
        text = check_reply(text)
        split = split_thinking(text)
        secs = sections(split.answer)
        code_part = secs.get("code", split.answer)
        fences = _FENCE.findall(code_part)
        code = "\n".join(fences) if fences else code_part if "code" in secs else ""
        if not code.strip():
            cut = "" if split.closed else " (the <think> section was never closed)"
            raise ParseError(f"no code found{cut}; {SYNTAX_HELP}")
        builder = ActionBuilder(lambda x, y: self.coords.to_screen(x, y, frame), scroll_center(frame))
        try:
            parse_pyautogui_code(code, builder, EXTRA_CALLS)
            actions = builder.finish()
        except ParseError as exc:
            raise ParseError(f"{exc}. {SYNTAX_HELP}") from None
        if not actions:
            raise ParseError(f"the code does nothing; {SYNTAX_HELP}")
        return ParsedReply(actions=actions, thought=join_thoughts(split.thought, secs.get("thought")), raw=text)

    def format(self, actions: Sequence[Action], frame: ModelFrame, thought: str | None = None) -> str:
        """Actions → Thought / Action / Code sections."""
        lines: list[str] = []
        for a in actions:
            if isinstance(a, Done):
                answer = "" if a.answer is None else f", answer={py_literal(a.answer)}"
                lines.append(f"computer.terminate(status='success'{answer})")
            elif isinstance(a, Fail):
                reason = f", answer={py_literal(a.reason)}" if a.reason else ""
                lines.append(f"computer.terminate(status='failure'{reason})")
            elif isinstance(a, Wait) and a.seconds == 1.0:
                lines.append("computer.wait()")
            else:
                lines.extend(format_code_line(a, lambda x, y: self.coords.from_screen(x, y, frame)))
        description = " ".join(describe(a) for a in actions)
        code = "\n".join(lines)
        return f"## Thought\n{(thought or '').strip()}\n\n## Action\n{description}\n\n## Code\n```python\n{code}\n```"

    def system_prompt(self, frame: ModelFrame) -> str:
        """OpenCUA's action space, with this frame's coordinate range."""
        return (
            "You are a GUI agent. You are given a task and a screenshot of the screen. You need to perform a "
            "series of pyautogui actions to complete the task.\n\n"
            "For each step, provide your response in this format:\n\n"
            "## Thought\n<your reasoning>\n\n## Action\n<one sentence describing the action>\n\n"
            "## Code\n```python\n<pyautogui code>\n```\n\n"
            "Available functions: pyautogui.click(x, y, clicks=1, button='left'), pyautogui.doubleClick(x, y), "
            "pyautogui.tripleClick(x, y), pyautogui.rightClick(x, y), pyautogui.moveTo(x, y), "
            "pyautogui.dragTo(x, y) (after moveTo to the start), pyautogui.scroll(clicks, x=, y=) "
            "(positive scrolls up), pyautogui.hscroll(clicks, x=, y=), pyautogui.write('text'), "
            "pyautogui.press('enter'), pyautogui.hotkey('ctrl', 'c'), pyautogui.keyDown / keyUp pairs, "
            "computer.wait(), computer.terminate(status='success' or 'failure', answer='...').\n"
            f"Arguments must be literal values; {self.coords.describe(frame)}."
        )


__all__ = ["EXTRA_CALLS", "OpenCUAFormat", "QWEN_MAX_PIXELS", "QWEN_MIN_PIXELS", "SYNTAX_HELP", "describe", "sections"]
