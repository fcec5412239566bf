"""Teachers for chain-of-thought synthesis (``trajectories.cot``): who writes the reflective thoughts.

- ``ExpertRationaleTeacher`` — the offline default, no model: builds the observation, the
  reflection on the previous action, the plan and the reason for the action from the recorded
  (privileged) rationale, the frame-hash facts and the action itself. Deterministic; phrasings
  vary by a seeded choice per (seed, episode, step). Its length follows the step's complexity:
  low → the reason only; medium → reflection + reason; high → reflection + plan + reason + check.
- ``OpenAITeacher`` — any OpenAI-compatible chat endpoint (vLLM, ``pixelpilot serve``).
- ``LocalModelTeacher`` — the project's own model directory, in process (``model.serve.ChatEngine``).

The model teachers get the screenshot before (and after) the action, the instruction, the earlier
actions and the recorded action, and must answer in three sections::

    Observation: …
    Thought: …            (reflection on the previous action, plan, why this action)
    Action: click(x=48, y=147)     ← native syntax, coordinates in the pixels of the image they saw

``parse_teacher_reply`` reads them; ``NativeSyntax`` is the action parser the consistency filter uses.
``make_teacher(spec)`` picks a teacher from a CLI spec: ``expert``, an http(s) URL or a directory.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agent.formats import ModelFrame, ParseError, get_format
from agent.formats.thinking import split_thinking
from agent.images import ResizeRule, encode_data_url, resize_rgb
from agent.openai_client import ChatCallError, ChatClient
from envs.actions import Action, TypeText
from trajectories.cot import SummaryRequest, TeacherError, TeacherFormatError, TeacherReply, TeacherRequest

# ------------------------------------------------------------------------------------------
# the action syntax the filter parses


class NativeSyntax:
    """One action in an ``agent.formats`` syntax (native by default), for ``trajectories.cot``."""

    def __init__(self, format_name: str = "native") -> None:
        self.format_name = format_name
        self._fmt = get_format(format_name)

    def format(self, action: Action, screen_size: tuple[int, int]) -> str:
        """The action as one line, coordinates in screen pixels."""
        return self._fmt.format([action], ModelFrame.same(screen_size))

    def parse(self, text: str, screen_size: tuple[int, int], image_size: tuple[int, int]) -> Action:
        """Exactly one action from ``text`` (coordinates in ``image_size`` pixels); ``ValueError`` otherwise."""
        try:
            parsed = self._fmt.parse(text, ModelFrame(screen_size, image_size))
        except ParseError as exc:
            raise ValueError(str(exc)) from None
        if len(parsed.actions) != 1:
            raise ValueError(f"expected exactly one action, got {len(parsed.actions)}")
        return parsed.actions[0]


# ------------------------------------------------------------------------------------------
# the offline expert teacher

_CLAUSES = re.compile(r"(?<=[.;!?])\s+|;\s*|,\s+so\s+(?=I\b)")
_INTENT = re.compile(r"^(?:so |now |then |and )?I\b")
_GOAL = re.compile(r"^The (?:instruction|task)\b")


def split_rationale(rationale: str) -> tuple[list[str], list[str], list[str]]:
    """A rationale's clauses as (facts about the page, statements of the goal, first-person intents)."""
    facts: list[str] = []
    goals: list[str] = []
    intents: list[str] = []
    for clause in _CLAUSES.split(rationale or ""):
        c = clause.strip().rstrip(".;").strip()
        if not c:
            continue
        (intents if _INTENT.match(c) else goals if _GOAL.match(c) else facts).append(c)
    return facts, goals, intents


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")) if text else ""


@dataclass(frozen=True)
class ExpertRationaleTeacher:
    """Reflective thoughts from recorded rationales and frame facts; no model (see the module docstring)."""

    seed: int = 0
    name: str = "expert-rationale"

    def _rng(self, request: TeacherRequest) -> random.Random:
        return random.Random(f"{self.seed}:{request.seed}:{request.episode_id}:{request.step_index}")

    def think(self, request: TeacherRequest) -> TeacherReply:
        """Observation, thought and the recorded action, deterministic per (seed, episode, step)."""
        rng = self._rng(request)
        facts, goals, intents = split_rationale(request.recorded_thought or "")
        level = request.complexity.level
        parts = []
        if level != "low":
            parts.append(self._reflection(request, rng))
        if level == "high":
            parts.append(self._plan(request, goals, rng))
        parts.append(self._why(request, goals, facts, intents, rng))
        if level == "high":
            parts.append(self._check(request, rng))
        observation = self._observation(request, facts, rng)
        return TeacherReply(observation=observation, thought=" ".join(p for p in parts if p),
                            action_text=request.action_text, raw="", image_size=request.screen_size)

    @staticmethod
    def _observation(request: TeacherRequest, facts: list[str], rng: random.Random) -> str:
        size = request.screen_size
        where = f"the {size[0]}x{size[1]} screen" if size else "the screen"
        if facts:
            lead = rng.choice(["On {w}: ", "Looking at {w}: ", "What {w} shows: "]).format(w=where)
            return lead + " ".join(_sentence(f) for f in facts)
        return rng.choice([f"{_sentence(where)[:-1]} shows the page of the task \"{request.instruction}\".",
                           f"The task page is on {where}; it asks: \"{request.instruction}\"."])

    @staticmethod
    def _reflection(request: TeacherRequest, rng: random.Random) -> str:
        prev = request.previous
        if prev is None:
            return rng.choice(["Nothing has been done yet, so I start from the initial screen.",
                               "This is the first step; I begin from the page as it is."])
        if prev.error:
            return f"My previous action ({prev.description}) failed: {prev.error}. I must not repeat it unchanged."
        if prev.screen_changed is False:
            return rng.choice([f"The previous action ({prev.description}) did not change the screen; it had no visible effect.",
                               f"Nothing visible happened after I did {prev.description}, so that step did not help."])
        if prev.screen_changed is None:
            return f"I cannot tell whether my previous action ({prev.description}) changed the screen."
        return rng.choice([f"The previous action ({prev.description}) changed the screen, so it took effect.",
                           f"After I did {prev.description}, the page updated as expected."])

    @staticmethod
    def _plan(request: TeacherRequest, goals: list[str], rng: random.Random) -> str:
        goal = _sentence(goals[0]) if goals else f"The goal is: {request.instruction}"
        n = len(request.previous_actions)
        done = rng.choice(["So far I have taken {n} action{s}.", "{n} action{s} are behind me."]).format(
            n=n, s="" if n == 1 else "s") if n else "No action has been taken yet."
        return f"{_sentence(goal)} {done}"

    @staticmethod
    def _why(request: TeacherRequest, goals: list[str], facts: list[str], intents: list[str], rng: random.Random) -> str:
        what = request.action_description
        if not (goals or facts or intents):
            return rng.choice([f"To make progress on the task, I {what}.", f"The next useful action is to {what}."])
        reason = " ".join(_sentence(c) for c in goals + facts + intents)
        if any(i.lower() == f"i {what}".lower() for i in intents):
            return reason  # the rationale already names the action exactly
        return f"{reason} " + rng.choice([f"So the action is: {what}.", f"That means I {what}.", f"Concretely, I {what}."])

    @staticmethod
    def _check(request: TeacherRequest, rng: random.Random) -> str:
        action = request.action
        if isinstance(action, TypeText):
            if action.text in request.instruction:
                return f"The text {action.text!r} appears in the instruction exactly as I will type it."
            return f"I double-check the text {action.text!r} before typing it."
        size = request.screen_size
        bounds = f"the {size[0]}x{size[1]} screen" if size else "the screen"
        return rng.choice([f"Before acting I check that the target lies on {bounds} and that this does not repeat a finished step.",
                           f"I make sure the point is inside {bounds} and that the step is not already done."])

    def summarize(self, request: SummaryRequest) -> str:
        """Goal, the actions in order, the outcome and the reflector's notable labels."""
        n = len(request.steps)
        steps = "; ".join(s.split(". ", 1)[-1] for s in request.steps) or "nothing"
        text = (f"Goal: {request.instruction} In {n} step{'s' if n != 1 else ''} the agent did: {steps}. "
                f"Outcome: {request.outcome} (reward {request.reward:g}).")
        redundant, incorrect = request.labels.count("redundant"), request.labels.count("incorrect")
        if redundant or incorrect:
            text += f" The reflector marked {redundant} step(s) redundant and {incorrect} incorrect."
        return text


# ------------------------------------------------------------------------------------------
# model teachers: prompt and reply


TEACHER_SYSTEM = (
    "You annotate one step of a recorded computer-use episode with the reasoning that leads to its action. "
    "You see the screenshot before the action and the one after it. Answer with exactly three sections, in order:\n"
    "Observation: what is on the screen that matters for the task.\n"
    "Thought: whether the previous action worked, the plan, and why the next action is the right one.\n"
    "Action: the recorded action, one line in this syntax: click(x=412, y=88), type(text=\"hello\"), "
    "hotkey(keys=[\"ctrl\", \"c\"]), scroll(x=400, y=300, dy=3), drag(x1, y1, x2, y2), wait(seconds=1), "
    "done(answer=null), fail(reason=\"...\").\n"
    "Coordinates are integer pixels of the screenshot as you see it."
)
_SECTION = re.compile(r"^\s*(?:#+\s*|\*\*)?(Observation|Thought|Action)\s*(?:\*\*)?\s*:\s*", re.IGNORECASE | re.MULTILINE)


def parse_teacher_reply(text: str, image_size: tuple[int, int] | None = None) -> TeacherReply:
    """The Observation / Thought / Action sections of a model teacher's reply; ``TeacherFormatError``.

    A ``<think>`` section, if any, is dropped (the sections are the answer).
    """
    answer = split_thinking(text or "").answer
    matches = list(_SECTION.finditer(answer))
    sections: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(answer)
        sections.setdefault(m.group(1).lower(), answer[m.end():end].strip())
    missing = [k for k in ("observation", "thought", "action") if not sections.get(k)]
    if missing:
        raise TeacherFormatError(f"missing section(s) {', '.join(missing)}; write 'Observation:', 'Thought:' "
                                 "and 'Action:' each at the start of a line")
    return TeacherReply(observation=sections["observation"], thought=sections["thought"],
                        action_text=sections["action"], raw=text, image_size=image_size)


def teacher_messages(request: TeacherRequest, image_size: tuple[int, int],
                     image_part: Callable[[np.ndarray], dict[str, Any]], *, after: bool = True) -> list[dict[str, Any]]:
    """Chat messages asking a model teacher for one step's reflective thought."""
    screen = request.screen_size or image_size
    recorded = get_format("native").format([request.action], ModelFrame(screen, image_size))
    lines = [f"Task: {request.instruction}",
             f"This is step {request.step_index + 1} of {request.episode_steps}.",
             "Earlier actions: " + ("; ".join(request.previous_actions) if request.previous_actions else "none")]
    if request.previous is not None:
        effect = {True: "changed the screen", False: "did not change the screen", None: "had an unknown effect"}
        lines.append(f"The previous action ({request.previous.action_text}) {effect[request.previous.screen_changed]}"
                     + (f" and failed: {request.previous.error}" if request.previous.error else "") + ".")
    if request.recorded_thought:
        lines.append(f"Notes recorded with the step: {request.recorded_thought}")
    lines += [f"The recorded action is: {recorded}",
              f"Write the Thought in about {request.complexity.budget_words} words, then end with that action.",
              f"The screenshots are {image_size[0]}x{image_size[1]} pixels."]
    content: list[dict[str, Any]] = [{"type": "text", "text": "\n".join(lines)}]
    if request.frame_before is not None:
        content += [{"type": "text", "text": "Screen before the action:"}, image_part(request.frame_before)]
    if after and request.frame_after is not None:
        content += [{"type": "text", "text": "Screen after the action:"}, image_part(request.frame_after)]
    return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": content}]


def summary_messages(request: SummaryRequest) -> list[dict[str, Any]]:
    """Text-only messages asking for a 2-3 sentence episode summary."""
    steps = "\n".join(f"{line} [{label}]" for line, label in zip(request.steps, request.labels))
    text = (f"Task: {request.instruction}\nSteps:\n{steps}\nOutcome: {request.outcome} (reward {request.reward:g}).\n"
            "Summarise the episode in two or three sentences: what was done, what went wrong if anything, the result.")
    return [{"role": "system", "content": "You summarise recorded computer-use episodes."},
            {"role": "user", "content": text}]


def _answer_text(content: str | None, reasoning: str | None) -> str:
    return (f"<think>{reasoning}</think>" if reasoning else "") + (content or "")


# ------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint


@dataclass(frozen=True)
class OpenAITeacherConfig:
    """Settings of a teacher behind an OpenAI-compatible chat endpoint (the key comes from ``api_key_env``)."""

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    resize: ResizeRule = field(default_factory=ResizeRule)
    send_after: bool = True
    max_tokens: int = 512
    temperature: float = 0.0
    timeout_s: float = 120.0
    retries: int = 2
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL like http://127.0.0.1:8000/v1, got {self.base_url!r}")
        if not self.model:
            raise ValueError("give the model name the server serves (--model-name)")
        if self.retries < 0 or self.timeout_s <= 0 or self.max_tokens <= 0 or self.temperature < 0:
            raise ValueError(f"invalid OpenAI teacher settings: {self}")


class OpenAITeacher:
    """A teacher behind any OpenAI-compatible endpoint; screenshots go as PNG data URLs."""

    def __init__(self, config: OpenAITeacherConfig) -> None:
        self.config = config
        self.name = f"openai:{config.model}"
        self._client = ChatClient(config.base_url, config.api_key_env, config.timeout_s)

    def _chat(self, messages: list[dict[str, Any]]) -> str:
        cfg = self.config
        try:
            r = self._client.create(retries=cfg.retries, backoff_s=cfg.backoff_s, model=cfg.model, messages=messages,
                                    max_tokens=cfg.max_tokens, temperature=cfg.temperature)
        except ChatCallError as exc:
            raise TeacherError(str(exc)) from exc
        message = r.choices[0].message
        return _answer_text(message.content, getattr(message, "reasoning_content", None))

    def think(self, request: TeacherRequest) -> TeacherReply:
        screen = request.screen_size or (1, 1)
        size = self.config.resize.target_size(*screen)

        def part(image_HWC: np.ndarray) -> dict[str, Any]:
            return {"type": "image_url", "image_url": {"url": encode_data_url(resize_rgb(image_HWC, size))}}

        text = self._chat(teacher_messages(request, size, part, after=self.config.send_after))
        return parse_teacher_reply(text, size)

    def summarize(self, request: SummaryRequest) -> str:
        return split_thinking(self._chat(summary_messages(request))).answer.strip()


# ------------------------------------------------------------------------------------------
# the project's own model, in process


@dataclass(frozen=True)
class LocalModelTeacherConfig:
    """Settings of a teacher running a saved ``pixelpilot_vl`` directory in process."""

    model_dir: str
    send_after: bool = True
    max_new_tokens: int = 160
    temperature: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not os.path.isfile(os.path.join(self.model_dir, "config.json")):
            raise ValueError(f"{self.model_dir!r} holds no config.json: give a directory written by save_pretrained")
        if self.max_new_tokens <= 0 or self.temperature < 0:
            raise ValueError(f"invalid local teacher settings: {self}")


class LocalModelTeacher:
    """A teacher running the project's model in process (same engine as ``pixelpilot serve``)."""

    def __init__(self, config: LocalModelTeacherConfig) -> None:
        from model.serve import ChatEngine, ServerConfig

        self.config = config
        self.name = f"local:{Path(config.model_dir).resolve().name}"
        self.engine = ChatEngine.load(ServerConfig(model_dir=Path(config.model_dir), device=config.device,
                                                   max_tokens_limit=max(4096, config.max_new_tokens)))

    def _complete(self, messages: list[dict[str, Any]]) -> str:
        from model.serve import APIError, CompletionRequest

        request = CompletionRequest(messages=messages, max_tokens=self.config.max_new_tokens,
                                    temperature=self.config.temperature, seed=self.config.seed)
        try:
            body = self.engine.complete(request)
        except APIError as exc:
            raise TeacherError(f"local teacher {self.config.model_dir}: {exc}") from exc
        message = body["choices"][0]["message"]
        return _answer_text(message.get("content"), message.get("reasoning_content"))

    def think(self, request: TeacherRequest) -> TeacherReply:
        frame = request.frame_before
        size = self.engine.processor.image_metas([frame])[0].resized_size if frame is not None else (1, 1)
        messages = teacher_messages(request, size, lambda image: {"type": "image", "image": image},
                                    after=self.config.send_after)
        return parse_teacher_reply(self._complete(messages), size)

    def summarize(self, request: SummaryRequest) -> str:
        return split_thinking(self._complete(summary_messages(request))).answer.strip()


# ------------------------------------------------------------------------------------------


def make_teacher(spec: str, *, model_name: str | None = None, seed: int = 0, max_tokens: int | None = None,
                 send_after: bool = True) -> ExpertRationaleTeacher | OpenAITeacher | LocalModelTeacher:
    """A teacher from a CLI spec: ``expert``, an http(s) URL (OpenAI-compatible) or a model directory."""
    if spec == "expert":
        return ExpertRationaleTeacher(seed=seed)
    if spec.startswith(("http://", "https://")):
        kwargs: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens else {}
        return OpenAITeacher(OpenAITeacherConfig(base_url=spec, model=model_name or "pixelpilot",
                                                 send_after=send_after, **kwargs))
    if os.path.isdir(spec):
        kwargs = {"max_new_tokens": max_tokens} if max_tokens else {}
        return LocalModelTeacher(LocalModelTeacherConfig(spec, send_after=send_after, seed=seed, **kwargs))
    raise ValueError(f"unknown teacher {spec!r}: use 'expert', an http(s) URL of an OpenAI-compatible server, "
                     "or a model directory written by save_pretrained")


__all__ = [
    "ExpertRationaleTeacher", "LocalModelTeacher", "LocalModelTeacherConfig", "NativeSyntax", "OpenAITeacher",
    "OpenAITeacherConfig", "TEACHER_SYSTEM", "make_teacher", "parse_teacher_reply", "split_rationale",
    "summary_messages", "teacher_messages",
]
