"""Chain-of-thought synthesis: rewrite a run with reflective thoughts (OpenCUA's reflective long CoT).

``synthesize_run(in_run, out_run, teacher, syntax)`` reads every finished episode of a run and
writes a NEW run with the same episodes, steps and frames, where each step carries::

    step.extra["cot"] = {
        "l1": action text,                                  # level 1: action only
        "l2": "<think>thought</think>\\naction",             # level 2: thought + action
        "l3": "<think>Observation: …\\n\\nThought: …</think>\\naction",   # level 3
        "observation": …, "thought": …, "action_text": …,   # the parts
        "reflection": {"label": "correct"|"redundant"|"incorrect", "why": …, "screen_changed": …},
        "complexity": {"score", "level", "budget_words", "factors"},
        "teacher": name, "consistent": bool, "mismatch": why-not or None, "train": bool,
    }
    step.thought = the chosen level's thought (L2 by default; None for level 1)
    step.extra["long_cot"] = the L3 thought (observation + thought), for training.data.cot
    end.info["summary"] = the teacher's episode summary; end.info["cot"] = per-episode counts

Consistency filter: the teacher's reply ends with the action it would take; ``syntax.parse``
(the agent-side parser, passed in) turns it into an action, which must equal the recorded one
(``reflect.action_mismatch``: same kind, points within ``tolerance_px`` or inside the known
target box, same text/keys), and the thought must not contradict it (``thought_mismatch``: a
thought that says it types other text than the action does). A step that fails keeps its recorded thought, gets
``consistent=False, train=False`` and no ``long_cot``; its episode is kept (the steps around it
still need it as context). ``train`` is ``consistent and label == "correct"``: training data
should use only those steps as targets (redundant and incorrect steps stay as history).

Frames are reused: PNG frame files are hard-linked (or copied) into the new run under the same
content hash, so the writer finds them and encodes nothing; lossy (JPEG/WebP) frames are stored
once more as PNG of their decoded pixels. A JSON report goes to ``OUT/cot.json``.
This module imports only ``envs`` and ``trajectories``; teachers and parsers live in ``agent``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.actions import Action, TypeText, action_to_json
from envs.errors import PixelPilotError
from trajectories.reader import Episode, read_episode
from trajectories.reflect import (Complexity, action_mismatch, describe_action, frame_after, recorded_action,
                                  reflect_episode, step_complexity, target_box)
from trajectories.schema import Step
from trajectories.store import TrajectoryStore
from trajectories.writer import DONE_NAME, EpisodeWriter

REPORT_NAME = "cot.json"
LEVELS: tuple[int, ...] = (1, 2, 3)


class TeacherError(PixelPilotError, RuntimeError):
    """The teacher could not answer at all (server unreachable, model failed to load). Stops the run."""


class TeacherFormatError(PixelPilotError, ValueError):
    """The teacher answered, but not in the required sections; the step is marked inconsistent."""


@dataclass(frozen=True)
class PreviousStep:
    """What the teacher may say about the step before: its action, effect and error."""

    action_text: str
    description: str
    screen_changed: bool | None
    error: str | None
    label: str


@dataclass(frozen=True)
class TeacherRequest:
    """Everything a teacher gets for one step (frames are RGB (H, W, 3) arrays, screen pixels)."""

    episode_id: str
    instruction: str
    step_index: int
    episode_steps: int
    action: Action
    action_text: str
    action_description: str
    previous_actions: tuple[str, ...]
    previous: PreviousStep | None
    recorded_thought: str | None
    privileged: bool
    frame_before: np.ndarray | None
    frame_after: np.ndarray | None
    screen_changed: bool | None
    complexity: Complexity
    seed: int = 0

    @property
    def screen_size(self) -> tuple[int, int] | None:
        """(width, height) of the screen before the action, if there is a frame."""
        f = self.frame_before
        return None if f is None else (int(f.shape[1]), int(f.shape[0]))


@dataclass(frozen=True)
class TeacherReply:
    """A teacher's reflective thought for one step, ending with the action it would take.

    ``action_text`` is in the teacher's action syntax, with coordinates in ``image_size``
    pixels (the image the teacher saw; the screen size when it saw the screenshot as is).
    """

    observation: str
    thought: str
    action_text: str
    raw: str = ""
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("observation", "thought", "action_text"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise TeacherFormatError(f"teacher reply has an empty {name}; it must write every section")


@dataclass(frozen=True)
class SummaryRequest:
    """What a teacher gets to summarise an episode: one line per step, the labels, the outcome."""

    episode_id: str
    instruction: str
    outcome: str
    reward: float
    steps: tuple[str, ...]
    labels: tuple[str, ...]


@runtime_checkable
class Teacher(Protocol):
    """Writes reflective thoughts: text in, text out, with the step's frames."""

    name: str

    def think(self, request: TeacherRequest) -> TeacherReply:
        """The observation, thought and action for one step; ``TeacherFormatError`` / ``TeacherError``."""
        ...

    def summarize(self, request: SummaryRequest) -> str:
        """A short summary of the whole episode."""
        ...


@runtime_checkable
class ActionSyntax(Protocol):
    """The agent-side action syntax (``agent.teachers.NativeSyntax``): format and parse one action."""

    def format(self, action: Action, screen_size: tuple[int, int]) -> str:
        """One action as text, coordinates in screen pixels."""
        ...

    def parse(self, text: str, screen_size: tuple[int, int], image_size: tuple[int, int]) -> Action:
        """Exactly one action from text (coordinates in ``image_size`` pixels); ``ValueError`` otherwise."""
        ...


@dataclass(frozen=True)
class CoTConfig:
    """How a run is rewritten.

    Attributes:
        levels: which of L1 (action), L2 (thought + action), L3 (observation + thought + action) to write.
        thought_level: the level whose thought becomes ``step.thought`` (1: None).
        tolerance_px: how far a teacher's point may be from the recorded one (when no target box is known).
        seed: varies the expert teacher's phrasings, deterministically.
        resume: keep episodes already finished in ``out_run`` and do the rest.
        progress: show a progress bar.
    """

    levels: tuple[int, ...] = LEVELS
    thought_level: int = 2
    tolerance_px: float = 8.0
    seed: int = 0
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        levels = tuple(sorted(set(self.levels)))
        if not levels or any(level not in LEVELS for level in levels):
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {self.levels!r}")
        object.__setattr__(self, "levels", levels)
        if self.thought_level not in levels:
            raise ValueError(f"thought_level {self.thought_level} must be one of the written levels {levels}")
        if not (self.tolerance_px >= 0 and np.isfinite(self.tolerance_px)):
            raise ValueError(f"tolerance_px must be a finite number >= 0, got {self.tolerance_px!r}")


@dataclass(frozen=True)
class CoTReport:
    """What a synthesis did (also written to ``OUT/cot.json``)."""

    teacher: str
    episodes: int
    skipped_incomplete: int
    skipped_done: int
    steps: int
    kept: int
    dropped: int
    train: int
    labels: dict[str, int]
    drop_reasons: dict[str, int]
    lengths: dict[str, dict[str, float]]
    complexity: dict[str, dict[str, float]]
    wall_s: float
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------
# composing the levels


def compose_levels(reply: TeacherReply, action_text: str) -> dict[str, str]:
    """L1/L2/L3 texts in the native layout (thinking inside ``<think>``, then the action)."""
    l3_thought = f"Observation: {reply.observation.strip()}\n\nThought: {reply.thought.strip()}"
    return {"l1": action_text, "l2": f"<think>{reply.thought.strip()}</think>\n{action_text}",
            "l3": f"<think>{l3_thought}</think>\n{action_text}", "l3_thought": l3_thought}


_TYPED = re.compile(r"\btyp(?:e|es|ing)\s+(['\"])(.*?)\1")


def thought_mismatch(thought: str, action: Action) -> str | None:
    """Why the thought itself contradicts the action, or None.

    For typing: every text the thought says it types (``type 'abc'``, ``typing "abc"``) must
    be the typed text (this catches, e.g., a rationale quoting a password the recording redacted).
    """
    if isinstance(action, TypeText):
        said = {m.group(2) for m in _TYPED.finditer(thought)}
        spellings = {action.text, repr(action.text)[1:-1], json.dumps(action.text)[1:-1]}  # "\n" written escaped
        wrong = sorted(t for t in said if t not in spellings)
        if wrong:
            return f"the thought types {wrong[0]!r} but the recorded action types {action.text!r}"
    return None


def _consistency(reply: TeacherReply, action: Action, step: Step, syntax: ActionSyntax,
                 screen: tuple[int, int], tolerance_px: float) -> tuple[dict[str, Any] | None, str | None]:
    """(teacher's action as JSON, mismatch reason or None)."""
    try:
        proposed = syntax.parse(reply.action_text, screen, reply.image_size or screen)
    except ValueError as exc:
        return None, f"unparseable action: {exc}"
    mismatch = action_mismatch(proposed, action, tolerance_px=tolerance_px, box=target_box(step))
    return action_to_json(proposed), mismatch or thought_mismatch(reply.thought, action)


def _drop_reason(mismatch: str | None) -> str:
    """The report's category for a dropped step."""
    for prefix, category in (("unparseable action", "unparseable action"), ("teacher reply not", "teacher format"),
                             ("the thought", "thought contradicts action")):
        if (mismatch or "").startswith(prefix):
            return category
    return "different action"


# ------------------------------------------------------------------------------------------
# one episode


class _EpisodeJob:
    """Rewrites one episode; the counters feed the report."""

    def __init__(self, episode: Episode, teacher: Teacher, syntax: ActionSyntax, config: CoTConfig) -> None:
        self.episode, self.teacher, self.syntax, self.config = episode, teacher, syntax, config
        self.reflections = reflect_episode(episode)
        self.records: list[dict[str, Any]] = []  # per step: label, consistent, lengths, ...
        refs = [s.screenshot for s in episode.steps if s.screenshot is not None]
        if episode.end is not None and episode.end.final_screenshot is not None:
            refs.append(episode.end.final_screenshot)
        self._refs = {ref.sha256: ref for ref in refs}
        self._frames: dict[str, np.ndarray] = {}  # the last few decoded frames (steps look one ahead)

    def frame(self, sha: str | None) -> np.ndarray | None:
        """The decoded frame with content hash ``sha`` (None for None)."""
        if sha is None:
            return None
        if sha not in self._frames:
            if len(self._frames) >= 3:
                self._frames.pop(next(iter(self._frames)))
            self._frames[sha] = self.episode.frame(self._refs[sha])
        return self._frames[sha]

    def request(self, step: Step, action: Action, screen: tuple[int, int]) -> TeacherRequest:
        ep, i = self.episode, step.index
        done = [s for s in ep.steps[:i] if s.action is not None]
        previous = None
        if i > 0:
            p = ep.steps[i - 1]
            pa = recorded_action(p)
            previous = PreviousStep(self._text(pa, screen) if pa else "(no valid action)",
                                    describe_action(pa) if pa else "no valid action", self.reflections[i - 1].screen_changed,
                                    p.error, self.reflections[i - 1].label)
        return TeacherRequest(
            episode_id=ep.meta.episode_id, instruction=ep.meta.instruction, step_index=i, episode_steps=len(ep.steps),
            action=action, action_text=self._text(action, screen), action_description=describe_action(action),
            previous_actions=tuple(self._text(recorded_action(s), screen) for s in done), previous=previous,  # type: ignore[arg-type]
            recorded_thought=step.thought, privileged=ep.meta.privileged,
            frame_before=self.frame(step.screenshot.sha256 if step.screenshot else None),
            frame_after=self.frame(frame_after(ep, i)), screen_changed=self.reflections[i].screen_changed,
            complexity=step_complexity(ep, i, self.reflections), seed=self.config.seed)

    def _text(self, action: Action, screen: tuple[int, int]) -> str:
        return self.syntax.format(action, screen)

    def rewrite(self, step: Step) -> tuple[str | None, dict[str, Any]]:
        """(thought, extra) for one step."""
        reflection = self.reflections[step.index]
        action = recorded_action(step)
        extra = dict(step.extra)
        base = {"reflection": reflection.to_json(), "teacher": self.teacher.name, "consistent": False, "train": False}
        record: dict[str, Any] = {"label": reflection.label, "consistent": False}
        if action is None or step.screenshot is None:
            base["mismatch"] = "the step has no action" if action is None else "the step has no screenshot"
            record["reason"] = "no action" if action is None else "no screenshot"
            extra["cot"] = base
            self.records.append(record)
            return step.thought, extra
        screen = (step.screenshot.width, step.screenshot.height)
        req = self.request(step, action, screen)
        base["complexity"] = req.complexity.to_json()
        record["complexity"] = req.complexity.level
        try:
            reply = self.teacher.think(req)
            proposed, mismatch = _consistency(reply, action, step, self.syntax, screen, self.config.tolerance_px)
        except TeacherFormatError as exc:
            reply, proposed, mismatch = None, None, f"teacher reply not in the required format: {exc}"
        return self._finish(step, extra, base, record, req, reply, proposed, mismatch)

    def _finish(self, step: Step, extra: dict[str, Any], base: dict[str, Any], record: dict[str, Any],
                req: TeacherRequest, reply: TeacherReply | None, proposed: dict[str, Any] | None,
                mismatch: str | None) -> tuple[str | None, dict[str, Any]]:
        consistent = reply is not None and mismatch is None
        base.update({"consistent": consistent, "mismatch": mismatch, "teacher_action": proposed,
                     "train": consistent and base["reflection"]["label"] == "correct"})
        record.update({"consistent": consistent, "train": base["train"],
                       "reason": None if consistent else _drop_reason(mismatch)})
        thought = step.thought
        if reply is not None:
            base["raw"] = reply.raw
        if consistent and reply is not None:
            levels = compose_levels(reply, req.action_text)
            for level in self.config.levels:
                base[f"l{level}"] = levels[f"l{level}"]
            base.update({"observation": reply.observation.strip(), "thought": reply.thought.strip(),
                         "action_text": req.action_text})
            thought = {1: None, 2: reply.thought.strip(), 3: levels["l3_thought"]}[self.config.thought_level]
            if 3 in self.config.levels:
                extra["long_cot"] = levels["l3_thought"]
            record["lengths"] = {f"l{k}": len(levels[f"l{k}"].split()) for k in self.config.levels}
            record["thought_words"] = len(reply.thought.split())
        extra["cot"] = base
        self.records.append(record)
        return thought, extra

    def summary(self) -> str:
        ep = self.episode
        lines = []
        for step in ep.steps:
            action = recorded_action(step)
            lines.append(f"{step.index + 1}. {describe_action(action) if action else 'no valid action'}"
                         + (f" (error: {step.error})" if step.error else ""))
        assert ep.end is not None
        request = SummaryRequest(ep.meta.episode_id, ep.meta.instruction, ep.end.outcome, ep.end.reward,
                                 tuple(lines), tuple(r.label for r in self.reflections))
        return self.teacher.summarize(request)


# ------------------------------------------------------------------------------------------
# the run


def _link_frames(episode: Episode, frames_dir: Path) -> None:
    """Hard-link (or copy) the episode's PNG frames into the new run, so nothing is re-encoded."""
    frames_dir.mkdir(parents=True, exist_ok=True)
    refs = [s.screenshot for s in episode.steps if s.screenshot is not None]
    if episode.end is not None and episode.end.final_screenshot is not None:
        refs.append(episode.end.final_screenshot)
    for ref in refs:
        target = frames_dir / ref.filename
        if ref.format != "png" or target.exists():
            continue
        source = episode.frame_path(ref)
        try:
            os.link(source, target)
        except FileExistsError:
            pass  # another episode linked the same content first
        except OSError:
            shutil.copy2(source, target)  # another filesystem: copy instead


def _write_episode(job: _EpisodeJob, store: TrajectoryStore, advance: Any) -> None:
    ep = job.episode
    assert ep.end is not None
    _link_frames(ep, store.frames_dir)
    cot_meta = {"source_run": str(ep.path.parent.parent.resolve()), "teacher": job.teacher.name,
                "levels": list(job.config.levels)}
    writer: EpisodeWriter = store.new_episode(replace(ep.meta, run_config={**ep.meta.run_config, "cot": cot_meta}))
    try:
        for step in ep.steps:
            thought, extra = job.rewrite(step)
            shot = job.frame(step.screenshot.sha256) if step.screenshot else None
            writer.add_step(shot, action=step.action, thought=thought, raw_text=step.raw_text, error=step.error,
                            token_ids=step.token_ids, logprobs=step.logprobs, timings=step.timings, info=step.info,
                            reward=step.reward, terminated=step.terminated, truncated=step.truncated, extra=extra)
            advance()
        kept = sum(r["consistent"] for r in job.records)
        info = {**ep.end.info, "summary": job.summary(),
                "cot": {"teacher": job.teacher.name, "kept": kept, "dropped": len(job.records) - kept,
                        "labels": dict(Counter(r["label"] for r in job.records))}}
        final = ep.frame(ep.end.final_screenshot) if ep.end.final_screenshot is not None else None
        writer.finish(ep.end.outcome, ep.end.reward, error=ep.end.error, final_screenshot=final, info=info)
    except BaseException:
        if not writer.finished:
            writer.finish("error", error="CoT synthesis stopped")  # stops the writer's threads
        shutil.rmtree(writer.path, ignore_errors=True)  # ours and half-written: do not leave it behind
        store.reindex()
        raise


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean": round(statistics.fmean(values), 2), "min": min(values), "max": max(values)}


def _report(teacher: Teacher, records: list[dict[str, Any]], episodes: int, skipped: tuple[int, int],
            config: CoTConfig, wall: float) -> CoTReport:
    kept = [r for r in records if r["consistent"]]
    lengths = {f"l{k}": _stats([r["lengths"][f"l{k}"] for r in kept]) for k in config.levels}
    complexity = {lvl: _stats([r["thought_words"] for r in kept if r.get("complexity") == lvl])
                  for lvl in ("low", "medium", "high")}
    return CoTReport(teacher=teacher.name, episodes=episodes, skipped_incomplete=skipped[0], skipped_done=skipped[1],
                     steps=len(records), kept=len(kept), dropped=len(records) - len(kept),
                     train=sum(bool(r.get("train")) for r in records),
                     labels=dict(Counter(r["label"] for r in records)),
                     drop_reasons=dict(Counter(r["reason"] for r in records if not r["consistent"])),
                     lengths=lengths, complexity=complexity, wall_s=round(wall, 3),
                     config={**asdict(config), "levels": list(config.levels)})


def _source_episodes(in_run: Path) -> tuple[list[Episode], int]:
    with TrajectoryStore(in_run) as source:
        rows = source.query()
    episodes = [read_episode(row.path) for row in rows]
    complete = [e for e in episodes if e.end is not None]
    return complete, len(episodes) - len(complete)


def synthesize_run(in_run: Path | str, out_run: Path | str, teacher: Teacher, syntax: ActionSyntax,
                   config: CoTConfig = CoTConfig()) -> CoTReport:
    """Rewrite every finished episode of ``in_run`` into ``out_run`` with synthesized CoT.

    ``out_run`` must not hold episodes yet unless ``config.resume`` (finished ones are then kept).
    Incomplete source episodes are skipped and counted. Returns (and writes) the report.
    """
    in_run, out_run = Path(in_run), Path(out_run)
    if not (in_run / "episodes").is_dir():
        raise FileNotFoundError(f"{in_run} is not a trajectory run (no episodes/); record one with pixelpilot collect")
    if in_run.resolve() == out_run.resolve():
        raise ValueError("--out must be a new run directory, not the input run")
    existing = out_run / "episodes"
    if existing.is_dir() and any(existing.iterdir()) and not config.resume:
        raise FileExistsError(f"{out_run} already holds episodes: choose a new --out, or pass --resume to finish it")
    episodes, incomplete = _source_episodes(in_run)
    todo = [e for e in episodes if not (existing / e.meta.episode_id / DONE_NAME).is_file()]
    for e in todo:  # a half-written episode from an interrupted earlier pass is redone
        shutil.rmtree(existing / e.meta.episode_id, ignore_errors=True)
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    from rich.progress import Progress

    with TrajectoryStore(out_run) as store, \
            Progress(disable=not config.progress, transient=False) as bar:
        task = bar.add_task(f"cot ({teacher.name})", total=sum(len(e.steps) for e in todo))
        for episode in todo:
            job = _EpisodeJob(episode, teacher, syntax, config)
            _write_episode(job, store, lambda: bar.advance(task))
            records.extend(job.records)
    report = _report(teacher, records, len(todo), (incomplete, len(episodes) - len(todo)), config,
                     time.perf_counter() - t0)
    (out_run / REPORT_NAME).write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    return report


__all__ = [
    "ActionSyntax", "CoTConfig", "CoTReport", "LEVELS", "PreviousStep", "REPORT_NAME", "SummaryRequest", "Teacher",
    "TeacherError", "TeacherFormatError", "TeacherReply", "TeacherRequest", "compose_levels", "synthesize_run",
    "thought_mismatch",
]
