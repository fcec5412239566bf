"""Step facts for chain-of-thought synthesis: the reflector's labels, step complexity, action matching.

Everything here is a pure function of a recorded episode (no model, no I/O), so the labels
are reproducible and testable. ``trajectories.cot`` uses them to decide how much a teacher
should reason about a step and whether the teacher's thought leads to the recorded action.

Reflector rules (first match wins), for step ``i`` whose screen before is the step's own
frame and whose screen after is step ``i+1``'s frame (the episode's final frame for the last step):

1. ``incorrect`` — the step has no valid action (unparseable reply), or executing it raised an
   error recorded on the step (invalid action, refused, env error), or it is the step at which
   the episode failed: the last step of a ``failure`` episode when it ended the episode (a
   terminal action, or the env terminated there), or a ``fail`` that was not rewarded.
2. ``redundant`` — a non-terminal step that had no visible effect (screen after has the same
   content hash as the screen before), or that exactly repeats the previous step's pointer action
   (click / move / drag / mouse button / wait at the same place: repeating it re-does an intent
   that already happened; repeated keys, typing and scrolling are progress when the screen changes).
3. ``correct`` — everything else.

Complexity (how much reasoning a step deserves) adds up factors of the step; see
``step_complexity``. This module knows nothing about teachers or models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from envs.actions import (Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll, TypeText, Wait,
                          action_from_json, is_terminal)
from trajectories.reader import Episode
from trajectories.schema import Step

Label = Literal["correct", "redundant", "incorrect"]
LABELS: tuple[str, ...] = ("correct", "redundant", "incorrect")
ComplexityLevel = Literal["low", "medium", "high"]
COMPLEXITY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
#: Actions whose exact repetition re-does an intent that already happened (see rule 2).
_POINTER_KINDS = frozenset({"click", "move", "drag", "mouse_down", "mouse_up", "wait"})
#: Base reasoning weight per action kind: typing and key chords carry content that must be
#: justified; drags have two points; a plain wait needs almost no words.
_KIND_WEIGHT = {"type": 2.0, "hotkey": 1.5, "drag": 2.0, "click": 1.0, "scroll": 1.0, "move": 0.5,
                "mouse_down": 1.0, "mouse_up": 1.0, "wait": 0.0, "done": 1.0, "fail": 1.5}
MAX_COMPLEXITY = 6.0


@dataclass(frozen=True)
class Reflection:
    """The reflector's verdict on one step: a label and the rule that produced it."""

    label: Label
    why: str
    screen_changed: bool | None = None

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"reflection label must be one of {LABELS}, got {self.label!r}")

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "why": self.why, "screen_changed": self.screen_changed}


@dataclass(frozen=True)
class Complexity:
    """How much reasoning a step deserves: a score in [0, MAX_COMPLEXITY], its level and a word budget."""

    score: float
    factors: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.score) and 0.0 <= self.score <= MAX_COMPLEXITY):
            raise ValueError(f"complexity score must be in [0, {MAX_COMPLEXITY}], got {self.score!r}")

    @property
    def level(self) -> ComplexityLevel:
        """``low`` (< 2), ``medium`` (< 3.5) or ``high``."""
        return "low" if self.score < 2.0 else ("medium" if self.score < 3.5 else "high")

    @property
    def budget_words(self) -> int:
        """Target length of the thought in words: 15 plus 12 per point of score."""
        return int(15 + 12 * self.score)

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "level": self.level, "budget_words": self.budget_words,
                "factors": list(self.factors)}


# ------------------------------------------------------------------------------------------
# screen effects


def frame_after(episode: Episode, index: int) -> str | None:
    """Content hash of the screen after step ``index`` (next step's frame, else the final frame)."""
    if index + 1 < len(episode.steps):
        ref = episode.steps[index + 1].screenshot
    else:
        ref = episode.end.final_screenshot if episode.end is not None else None
    return ref.sha256 if ref is not None else None


def screen_changed(episode: Episode, index: int) -> bool | None:
    """Whether step ``index`` visibly changed the screen; None when a frame is missing."""
    before = episode.steps[index].screenshot
    after = frame_after(episode, index)
    if before is None or after is None:
        return None
    return before.sha256 != after


# ------------------------------------------------------------------------------------------
# the reflector


def _failed_here(episode: Episode, step: Step, action: Action | None) -> str | None:
    """Why the episode failed at ``step`` (its last step), or None."""
    end = episode.end
    if end is None or step.index != len(episode.steps) - 1 or action is None:
        return None
    if isinstance(action, Fail) and end.reward <= 0.0:
        return "the agent gave up (fail) and the task was not scored as infeasible"
    if end.outcome == "failure" and (is_terminal(action) or step.terminated):
        return "the episode ended in failure at this step"
    return None


def reflect_step(episode: Episode, index: int) -> Reflection:
    """Label step ``index`` of ``episode`` (rules in the module docstring)."""
    step = episode.steps[index]
    changed = screen_changed(episode, index)
    action = step.parsed_action()
    if action is None:
        return Reflection("incorrect", "the step has no valid action" + (f": {step.error}" if step.error else ""), changed)
    if step.error:
        return Reflection("incorrect", f"the action failed: {step.error}", changed)
    failed = _failed_here(episode, step, action)
    if failed:
        return Reflection("incorrect", failed, changed)
    if not is_terminal(action):
        if changed is False:
            return Reflection("redundant", "the action had no visible effect (the screen after it is identical)", changed)
        prev = episode.steps[index - 1] if index > 0 else None
        if prev is not None and prev.action == step.action and action.kind in _POINTER_KINDS:
            return Reflection("redundant", f"it repeats the previous {action.kind} exactly", changed)
    return Reflection("correct", "the action took effect and moved the task on" if changed else
                      "the action is valid and ends or advances the task", changed)


def reflect_episode(episode: Episode) -> tuple[Reflection, ...]:
    """The reflector's label for every step of ``episode``."""
    return tuple(reflect_step(episode, i) for i in range(len(episode.steps)))


# ------------------------------------------------------------------------------------------
# complexity


def step_complexity(episode: Episode, index: int, reflections: tuple[Reflection, ...]) -> Complexity:
    """Score how much reasoning step ``index`` deserves.

    Factors: the action kind (typing/keys/drags > clicks > waits); the first step (the
    situation must be read from scratch, +1.5); the previous step failed or had no visible
    effect (recovery needs explaining, +2); a new kind of action after another kind (a new
    phase of the task, +0.5); a routine repeat of the previous kind after a visible change (-0.5);
    a terminal action (why the task is finished, +0.5).
    """
    step = episode.steps[index]
    action = step.parsed_action()
    kind = action.kind if action is not None else "fail"
    score, factors = _KIND_WEIGHT.get(kind, 1.0), [f"kind:{kind}"]
    prev = episode.steps[index - 1] if index > 0 else None
    if prev is None:
        score, factors = score + 1.5, factors + ["first-step"]
    else:
        prev_label = reflections[index - 1].label
        if prev.error or prev_label != "correct":
            score, factors = score + 2.0, factors + [f"after-{prev_label if not prev.error else 'error'}"]
        prev_kind = prev.action["kind"] if prev.action else None
        if prev_kind is not None and prev_kind != kind:
            score, factors = score + 0.5, factors + ["new-phase"]
        elif prev_kind == kind and reflections[index - 1].screen_changed:
            score, factors = score - 0.5, factors + ["routine-repeat"]
    if action is not None and is_terminal(action):
        score, factors = score + 0.5, factors + ["terminal"]
    return Complexity(min(MAX_COMPLEXITY, max(0.0, score)), tuple(factors))


# ------------------------------------------------------------------------------------------
# describing and matching actions


def describe_action(action: Action) -> str:
    """A short English phrase for an action, in screen pixels: ``click at (48, 147)``."""
    if isinstance(action, Click):
        what = {1: "click", 2: "double-click", 3: "triple-click"}[action.count]
        side = "" if action.button == "left" else f" with the {action.button} button"
        return f"{what} at ({action.x}, {action.y}){side}"
    if isinstance(action, Move):
        return f"move the pointer to ({action.x}, {action.y})"
    if isinstance(action, Drag):
        return f"drag from ({action.x1}, {action.y1}) to ({action.x2}, {action.y2})"
    if isinstance(action, Scroll):
        parts = [f"{abs(v)} notch{'es' if abs(v) != 1 else ''} {d}" for v, d in
                 ((action.dy, "down" if action.dy > 0 else "up"), (action.dx, "right" if action.dx > 0 else "left")) if v]
        return f"scroll {' and '.join(parts)} at ({action.x}, {action.y})"
    if isinstance(action, TypeText):
        return f"type {action.text!r}"
    if isinstance(action, Hotkey):
        return f"press {'+'.join(action.keys)}"
    if isinstance(action, (MouseDown, MouseUp)):
        where = f" at ({action.x}, {action.y})" if action.x is not None else ""
        return f"{'press' if isinstance(action, MouseDown) else 'release'} the {action.button} button{where}"
    if isinstance(action, Wait):
        return f"wait {action.seconds:g} s"
    if isinstance(action, Done):
        return "declare the task done" + (f" with the answer {action.answer!r}" if action.answer else "")
    return f"give up ({action.reason})" if action.reason else "give up"


BoxT = tuple[int, int, int, int]


def target_box(step: Step) -> BoxT | None:
    """The target element's box ``(x0, y0, x1, y1)`` when the recording knows it, else None.

    Read from ``step.extra["target_box"]`` or ``step.info["target_box"]`` (screen pixels,
    inclusive-exclusive), as privileged collectors may record it.
    """
    for source in (step.extra, step.info):
        box = source.get("target_box")
        if isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box):
            x0, y0, x1, y1 = (int(v) for v in box)
            if x1 > x0 and y1 > y0:
                return x0, y0, x1, y1
    return None


def _near(p: tuple[int, int], q: tuple[int, int], tolerance_px: float, box: BoxT | None) -> bool:
    if box is not None and box[0] <= p[0] < box[2] and box[1] <= p[1] < box[3] \
            and box[0] <= q[0] < box[2] and box[1] <= q[1] < box[3]:
        return True
    return math.dist(p, q) <= tolerance_px


def action_mismatch(proposed: Action, recorded: Action, *, tolerance_px: float = 8.0,
                    box: BoxT | None = None) -> str | None:
    """Why ``proposed`` is not the recorded action, or None when they match.

    Same kind; points within ``tolerance_px`` pixels (or both inside the target ``box``);
    same button / click count / scroll notches; same text, keys and answer; waits match on kind.
    """
    if proposed.kind != recorded.kind:
        return f"kind {proposed.kind} != recorded {recorded.kind}"
    a, b = proposed, recorded
    if isinstance(a, (Click, Move, Scroll, MouseDown, MouseUp)):
        pa, pb = (getattr(a, "x"), getattr(a, "y")), (getattr(b, "x"), getattr(b, "y"))
        if (pa[0] is None) != (pb[0] is None):
            return "one of the actions has a point and the other has none"
        if pa[0] is not None and not _near(pa, pb, tolerance_px, box):  # type: ignore[arg-type]
            return f"point {pa} is {math.dist(pa, pb):.1f} px from recorded {pb} (tolerance {tolerance_px:g})"  # type: ignore[arg-type]
    if isinstance(a, Drag) and isinstance(b, Drag):
        for end, pa, pb in (("start", (a.x1, a.y1), (b.x1, b.y1)), ("end", (a.x2, a.y2), (b.x2, b.y2))):
            if not _near(pa, pb, tolerance_px, None):
                return f"drag {end} {pa} is {math.dist(pa, pb):.1f} px from recorded {pb}"
    for name in ("button", "count", "dx", "dy", "text", "keys", "answer"):
        if hasattr(a, name) and getattr(a, name) != getattr(b, name):
            return f"{name} {getattr(a, name)!r} != recorded {getattr(b, name)!r}"
    return None


def recorded_action(step: Step) -> Action | None:
    """The step's action as an ``envs.actions`` object (None when it has none)."""
    return None if step.action is None else action_from_json(step.action)


__all__ = [
    "COMPLEXITY_LEVELS", "Complexity", "LABELS", "MAX_COMPLEXITY", "Reflection", "action_mismatch",
    "describe_action", "frame_after", "recorded_action", "reflect_episode", "reflect_step", "screen_changed",
    "step_complexity", "target_box",
]
