"""Long chain-of-thought SFT samples from trajectories: the reasoning stays in ``<think>``.

The samples have the SFT layout of ``training.data.sft`` (same messages the agent sends);
only the thought differs. A step's long thought is, in order of preference:

1. ``step.extra["long_cot"]`` or ``step.extra["cot"]`` (a string written by a CoT synthesis
   pass over the run), else
2. a structured reasoning built from what the trajectory records — the goal, the progress
   so far (earlier actions, in native syntax and image pixels), the step's own observation (its recorded thought), a check of the
   action against the screen geometry, and the decision.

Earlier steps in the history carry their long thoughts too: a model trained this way writes
them at run time, and the loop shows it its own replies. This module knows nothing about
packing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from agent.formats import ModelFrame, get_format
from envs.actions import action_from_json
from model.processing import Processor
from trajectories import Episode, Step
from training.data.sft import Sample, SFTConfig, episode_samples, run_episodes


def _native(action: dict[str, object], frame: ModelFrame) -> str:
    """An action as the native line the model writes (coordinates in its image pixels)."""
    return get_format("native").format([action_from_json(action)], frame)


def long_thought(episode: Episode, step: Step, frame: ModelFrame) -> str:
    """The long reasoning of ``step`` (see the module docstring for where it comes from)."""
    cot = step.extra.get("cot")
    if isinstance(cot, dict) and cot.get("consistent") and isinstance(cot.get("l3"), str) and cot["l3"].strip():
        return cot["l3"].strip()
    for key in ("long_cot", "cot"):
        value = step.extra.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    done = [s for s in episode.steps[:step.index] if s.action is not None]
    progress = "; ".join(f"step {s.index + 1}: {_native(s.action, frame)}" for s in done if s.action is not None)
    w, h = frame.image_size
    geometry = f"The screenshot is {w}x{h} pixels, so any point must satisfy 0 <= x < {w} and 0 <= y < {h}."
    decision = _native(step.action, frame) if step.action is not None else "stop"
    lines = [
        f"Goal: {episode.meta.instruction}",
        f"Progress so far: {progress or 'nothing yet, this is the first step'}.",
        f"What I see: {step.thought or 'the screen has not changed in a way that finishes the task.'}",
        f"Check: {geometry} The action must move the task forward and not repeat a finished step.",
        f"Decision: {decision}.",
    ]
    return "\n".join(lines)


def cot_samples(runs: Path | str | Sequence[Path | str], processor: Processor | None = None,
                config: SFTConfig = SFTConfig()) -> Iterator[Sample]:
    """Long-CoT SFT samples of every episode of ``runs`` (thoughts always kept in ``<think>``)."""
    processor = processor or Processor.default()
    cfg = replace(config, include_thoughts=True)
    for episode in run_episodes(runs, cfg):
        for sample in episode_samples(episode, processor, cfg, long_thought):
            sample["id"] = "cot:" + sample["id"]
            yield sample


__all__ = ["cot_samples", "long_thought"]
