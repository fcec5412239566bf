"""The agent loop: observe → ask the policy → parse → (confirm) → act → record, until done.

``run_episode`` drives one episode on any ``envs.Env`` with any ``Policy``:

- context: the policy gets the last steps' reply texts, and their screenshots for the last
  ``history_images`` steps (the policy's own setting) — earlier thoughts stay as text;
- an unparseable reply is sent back to the model with the parser's message, up to
  ``max_parse_retries`` times, then recorded as an error step (the episode goes on);
- GUI errors (an off-screen click, an unknown key) are recorded as data on the step and shown
  to the model in the next step's history, never raised;
- the step budget ends the episode as ``truncated``; a dead backend or an unreachable model
  ends it as ``error``; every finished step is on disk before the next one starts;
- risky actions go through a confirmation hook; ``dry_run`` records without acting.

The loop knows nothing about files: a ``Recorder`` (``trajectories``' writer) stores steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.formats import ModelFrame, ParseError, UnsupportedActionError, get_format
from agent.policy import HistoryStep, Policy, PolicyError, PolicyInput, PolicyReply
from agent.risk import REDACTED, ConfirmHook, RiskConfig, classify_risk
from envs.actions import Action, Fail, TypeText, action_to_json, is_terminal
from envs.base import Env
from envs.errors import BackendDiedError, InvalidActionError
from trajectories.schema import EpisodeEnd, EpisodeMeta, Step


class Recorder(Protocol):
    """Where the loop puts what happened (``trajectories.writer`` implements it)."""

    def add_step(self, step: Step, frame: np.ndarray | None) -> None: ...

    def finish(self, end: EpisodeEnd, final_frame: np.ndarray | None) -> None: ...


@dataclass(frozen=True)
class LoopConfig:
    """Settings of the agent loop (the policy has its own: model, history window, ...)."""

    max_steps: int = 30
    max_parse_retries: int = 2
    risk: RiskConfig = field(default_factory=RiskConfig)
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.max_steps <= 0 or self.max_parse_retries < 0:
            raise ValueError(f"max_steps must be > 0 and max_parse_retries >= 0, got {self}")


@dataclass(frozen=True)
class EpisodeResult:
    """What ``run_episode`` returns (the full record is in the recorder)."""

    outcome: str
    reward: float
    steps: int
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.outcome == "success"


@dataclass
class _Decision:
    reply: PolicyReply | None
    actions: tuple[Action, ...]
    thought: str | None
    raw_text: str
    error: str | None
    retries: int
    model_s: float


def _parse_error_feedback(error: str, fmt_name: str) -> str:
    return (f"Your last reply could not be parsed as a {fmt_name} action: {error}\n"
            "Reply again with exactly one action in the required format.")


def decide(policy: Policy, inp: PolicyInput, max_parse_retries: int) -> _Decision:
    """Ask the policy, parsing text replies; retry with the parser's feedback on failure."""
    fmt = get_format(policy.output_format) if policy.output_format else None
    model_s = 0.0
    for attempt in range(max_parse_retries + 1):
        reply = policy.act(inp)
        model_s += reply.model_s
        if reply.actions is not None:
            return _Decision(reply, reply.actions, reply.thought, reply.text or "", None, attempt, model_s)
        assert fmt is not None, f"policy {policy.name} returned text but has no output_format"
        frame = ModelFrame(screen_size=inp.observation.size, image_size=reply.image_size or inp.observation.size)
        try:
            parsed = fmt.parse(reply.text or "", frame)
            if not parsed.actions:
                raise ParseError("the reply holds no action")
            return _Decision(reply, parsed.actions, parsed.thought, reply.text or "", None, attempt, model_s)
        except ParseError as exc:
            error = str(exc)
            inp = PolicyInput(inp.instruction, inp.observation, inp.history, _parse_error_feedback(error, fmt.name),
                              reply.text, inp.step_index)
    return _Decision(reply, (), None, reply.text or "", f"unparseable reply after {max_parse_retries + 1} attempts: {error}",
                     max_parse_retries, model_s)


def _outcome(action: Action | None, terminated: bool, truncated: bool, info: dict[str, Any]) -> str:
    success = info.get("success")
    if terminated and success is not None:
        return "success" if success else "failure"
    if terminated:
        return "infeasible" if isinstance(action, Fail) else "success"
    return "truncated" if truncated else "failure"


def _history_text(decision: _Decision, fmt_name: str | None, frame: ModelFrame, note: str | None) -> str:
    text = decision.raw_text
    if not text and decision.actions and fmt_name:
        try:
            text = get_format(fmt_name).format(decision.actions, frame, decision.thought)
        except UnsupportedActionError:  # e.g. a triple click in UI-TARS: keep it readable anyway
            text = get_format("native").format(decision.actions, frame, decision.thought)
    if note:
        text = f"{text}\n[environment: {note}]"
    return text


@dataclass
class _Outcome:
    """What executing one action did."""

    obs: Any
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    step_error: str | None = None
    fatal: str | None = None


def _scalars(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if isinstance(v, (int, float, str, bool, type(None)))}


class _Episode:
    """State of one running episode; ``run_episode`` is its only user."""

    def __init__(self, env: Env, policy: Policy, config: LoopConfig, confirm: ConfirmHook | None,
                 on_step: Callable[[Step], None] | None) -> None:
        self.env, self.policy, self.config, self.confirm, self.on_step = env, policy, config, confirm, on_step
        self.history: list[HistoryStep] = []
        self.rec: Recorder | None = None
        self.index = 0
        self.last: _Outcome | None = None
        self.last_action: Action | None = None
        self.error: str | None = None

    def execute(self, action: Action, obs: Any) -> tuple[_Outcome, Action]:
        """Confirm, then act (or not, in dry-run); returns the outcome and the action to record."""
        prev = self.last
        carry = _Outcome(obs, prev.reward if prev else 0.0, info=prev.info if prev else {})
        recorded: Action = action
        category = classify_risk(action, obs)
        if category == "password" and self.config.risk.redact_passwords:
            recorded = TypeText(REDACTED)
        if category and category in self.config.risk.confirm and not (self.confirm and self.confirm(action, category, obs)):
            carry.step_error = f"{category} action refused by the confirmation hook"
            return carry, recorded
        if self.config.dry_run:
            carry.terminated = is_terminal(action)
            return carry, recorded
        try:
            o, r, term, trunc, info = self.env.step(action)
            return _Outcome(o, r, term, trunc, info), recorded
        except InvalidActionError as exc:
            carry.step_error = f"invalid action: {exc}"
        except BackendDiedError as exc:
            carry.fatal = f"environment died: {exc}"
        return carry, recorded

    def record(self, decision: _Decision, action: Action | None, recorded: Action | None, out: _Outcome,
               obs_before: Any, frame: ModelFrame, env_s: float) -> None:
        raw, thought = decision.raw_text, decision.thought
        if recorded is not action and isinstance(action, TypeText):  # a redacted secret leaves no trace
            raw = raw.replace(action.text, REDACTED)
            thought = thought.replace(action.text, REDACTED) if thought else thought
        error = out.step_error or decision.error or out.fatal
        step = Step(
            index=self.index, thought=thought, raw_text=raw,
            action=action_to_json(recorded) if recorded is not None else None, error=error,
            token_ids=decision.reply.token_ids if decision.reply else None,
            logprobs=decision.reply.logprobs if decision.reply else None,
            timings={"model_s": decision.model_s, "env_s": env_s}, info=_scalars(out.info),
            reward=float(out.reward), terminated=out.terminated, truncated=out.truncated,
            extra={"parse_retries": decision.retries, "dry_run": self.config.dry_run},
        )
        if self.rec is not None:
            self.rec.add_step(step, obs_before.screenshot)
        if self.on_step is not None:
            self.on_step(step)
        note = out.step_error if out.step_error else None
        # The model's own context keeps what it typed, secrets included: it wrote them itself, from
        # what it was told, so hiding them hides nothing from it, and a form that asks for the same
        # password twice (sign-up, "enter it into both fields") needs them. Only the record is redacted.
        history_text = _history_text(decision, self.policy.output_format, frame, note)
        self.history.append(HistoryStep(history_text, obs_before.screenshot, decision.thought, action))
        self.index += 1

    def run(self, instruction: str, obs: Any) -> None:
        self.last = _Outcome(obs)
        while self.index < self.config.max_steps:
            inp = PolicyInput(instruction, self.last.obs, tuple(self.history), step_index=self.index)
            try:
                decision = decide(self.policy, inp, self.config.max_parse_retries)
            except PolicyError as exc:
                self.error = f"policy failed: {exc}"
                return
            obs_before = self.last.obs
            frame = ModelFrame(obs_before.size, (decision.reply.image_size if decision.reply else None) or obs_before.size)
            for action in decision.actions or (None,):
                t0 = time.perf_counter()
                if action is None:  # unparseable reply: an error step, the episode goes on
                    out, recorded = _Outcome(obs_before, self.last.reward, info=self.last.info), None
                else:
                    out, recorded = self.execute(action, obs_before)
                    self.last_action = action
                if not out.terminated and self.index + 1 >= self.config.max_steps:
                    out.truncated = True  # the loop's budget, which may be tighter than the env's
                self.record(decision, action, recorded, out, obs_before, frame, time.perf_counter() - t0)
                self.last = out
                if out.fatal:
                    self.error = out.fatal
                    return
                if out.terminated or out.truncated or self.index >= self.config.max_steps:
                    return

    def end(self) -> EpisodeResult:
        last = self.last or _Outcome(None)
        truncated = last.truncated or (not last.terminated and self.index >= self.config.max_steps)
        outcome = "error" if self.error else _outcome(self.last_action, last.terminated, truncated, last.info)
        info = _scalars(last.info)
        return EpisodeResult(outcome=outcome, reward=float(last.reward), steps=self.index, error=self.error, info=info)


def run_episode(
    env: Env,
    policy: Policy,
    *,
    recorder: Callable[[str], Recorder] | None = None,
    config: LoopConfig = LoopConfig(),
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    instruction: str | None = None,
    confirm: ConfirmHook | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> EpisodeResult:
    """Run one episode; every step goes to the recorder as soon as it is done.

    ``recorder`` is a factory called with the instruction once the env is reset (the
    instruction of suites like MiniWoB is only known then); it returns the ``Recorder``.
    An unexpected exception still finalises the record (outcome ``error``) before it
    propagates, so a crashed episode is never silently dropped.
    """
    opts = dict(options or {})
    if instruction is not None:
        opts.setdefault("instruction", instruction)
    obs, _ = env.reset(seed=seed, options=opts)
    instruction = instruction if instruction is not None else obs.instruction
    policy.reset(instruction)
    ep = _Episode(env, policy, config, confirm, on_step)
    ep.rec = recorder(instruction) if recorder is not None else None
    try:
        ep.run(instruction, obs)
    except BaseException as exc:
        if ep.rec is not None:
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            ep.rec.finish(EpisodeEnd(outcome=outcome, steps=ep.index, error=f"{type(exc).__name__}: {exc}"), None)
        raise
    result = ep.end()
    if ep.rec is not None:
        final = ep.last.obs.screenshot if ep.last is not None and ep.last.obs is not None else None
        ep.rec.finish(EpisodeEnd(outcome=result.outcome, reward=result.reward, steps=result.steps,
                                 error=result.error, info=result.info), final)
    return result


def episode_meta(env: Env, policy: Policy, *, task_id: str, instruction: str, suite: str = "", seed: int | None = None,
                 run_config: dict[str, Any] | None = None, episode_id: str | None = None) -> EpisodeMeta:
    """The ``EpisodeMeta`` for an episode of ``policy`` on ``env``."""
    from trajectories.schema import new_episode_id

    return EpisodeMeta(
        episode_id=episode_id or new_episode_id(), task_id=task_id, instruction=instruction, suite=suite,
        env_name=getattr(env, "name", type(env).__name__), policy=policy.name, model=policy.model,
        privileged=bool(getattr(policy, "privileged", False)), run_config=dict(run_config or {}), seed=seed,
    )

