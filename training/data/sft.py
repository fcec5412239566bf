"""Trajectories → SFT samples, in exactly the chat layout the agent uses at inference.

For every usable step of every episode the sample is what ``agent.policies.local_model``
would send the model at that step, followed by the reply we want it to learn::

    system:    native format's system_prompt(frame)        frame = this step's ModelFrame
    user:      Task: <instruction>
    [earlier steps]  user: <screenshot or "(earlier screenshot omitted)">  assistant: <native text>
    user:      <current screenshot>
    assistant: <think>thought</think>\\naction            ← the only tokens with loss

The messages come from ``agent.messages.build_messages`` (the same function the agent calls),
with ``HistoryStep(reply_text=native text of that step, screenshot)``. Coordinates in every
native text are pixels of the image the processor produces for that screenshot
(``processor.image_metas``), so a trained model's clicks map back exactly as at run time.
Earlier assistant turns carry no loss: they are context the model wrote before, not targets.

This module knows nothing about packing or the trainer; see ``training.data.packing``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.formats import ModelFrame, get_format
from agent.messages import build_messages
from agent.policy import HistoryStep, PolicyInput
from envs.actions import Action
from envs.observation import Observation
from model.processing import Processor
from model.processing.processor import IGNORE_INDEX
from trajectories import Episode, Step, TrajectoryStore, read_episode

#: A training sample (see ``training.data`` for the contract).
Sample = dict[str, Any]
#: Chooses the thought written for a step, given the frame the model sees it in (None: no thinking).
ThoughtFn = Callable[[Episode, Step, ModelFrame], "str | None"]


class TrajectoryDataError(ValueError):
    """A trajectory run cannot be turned into samples; the message says what to pass instead."""


@dataclass(frozen=True)
class SFTConfig:
    """Which trajectory steps become samples, and how each is laid out."""

    #: Earlier screenshots kept as images (the rest become a text note), as the policy's setting.
    history_images: int = 1
    #: Write each step's thought in ``<think>`` (target and history); False: actions only.
    include_thoughts: bool = True
    #: Only episodes whose outcome is ``success``.
    only_successful: bool = False
    #: Leave out episodes of privileged policies (scripted experts that read the DOM).
    skip_privileged: bool = False
    #: At most this many target steps per episode (the first ones); None: all.
    max_steps_per_episode: int | None = None
    #: The output format whose system prompt and syntax the samples use ("native" or
    #: "native-compact"; the model must be run with the same one, see ``model.zoo``).
    output_format: str = "native"
    #: Visit episodes in an order shuffled by this seed (the same every epoch, so a resumed
    #: run continues exactly); None: oldest first. Collection runs are grouped by task, so
    #: training wants this set.
    shuffle_seed: int | None = None

    def __post_init__(self) -> None:
        if self.history_images < 0:
            raise ValueError(f"history_images must be >= 0, got {self.history_images}")
        if self.max_steps_per_episode is not None and self.max_steps_per_episode <= 0:
            raise ValueError(f"max_steps_per_episode must be > 0 or None, got {self.max_steps_per_episode}")
        if not self.output_format.startswith("native"):
            raise ValueError(f"SFT samples are written in a native format ('native' or 'native-compact'), "
                             f"got {self.output_format!r}")
        get_format(self.output_format)  # unknown names fail here, before any data is read


def image_frame(processor: Processor, screenshot_HWC: np.ndarray) -> ModelFrame:
    """The ``ModelFrame`` the model sees ``screenshot_HWC`` in (screen size → processor image size)."""
    size = (int(screenshot_HWC.shape[1]), int(screenshot_HWC.shape[0]))
    return ModelFrame(size, processor.image_metas([screenshot_HWC])[0].resized_size)


def image_part(image_HWC: np.ndarray) -> dict[str, Any]:
    """An inline image content part, as the local model policy builds it."""
    return {"type": "image", "image": image_HWC}


def encode_target_turn(processor: Processor, messages: Sequence[Mapping[str, Any]], sample_id: str) -> Sample:
    """Encode ``messages`` (the last one the assistant target); loss on that last turn only.

    The processor's assistant mask marks every assistant turn; labels keep only the final
    contiguous run (the target's content and its ``<|im_end|>``).
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("the last message must be the assistant target")
    enc = processor.encode_conversation(messages, iter(()))
    mask = enc.assistant_mask
    start = len(mask)
    while start > 0 and mask[start - 1]:
        start -= 1
    if start == len(mask):
        raise ValueError(f"sample {sample_id}: the assistant target holds no tokens")
    labels = [IGNORE_INDEX] * start + enc.input_ids[start:]
    sample: Sample = {"input_ids": list(enc.input_ids), "labels": labels, "id": sample_id}
    if enc.image_metas:
        sample["pixel_values"] = torch.cat(enc.pixel_values)
        sample["image_grid_hws"] = torch.tensor([m.grid_hw for m in enc.image_metas], dtype=torch.long)
    return sample


def first_step_sample(processor: Processor, image_HWC: np.ndarray, task: str, system_prompt: str, reply: str,
                      sample_id: str) -> Sample:
    """A one-screenshot sample in the agent's step-0 chat layout (``build_messages``) with ``reply``
    as the target: what a synthetic screen becomes for training."""
    inp = PolicyInput(task, Observation(image_HWC, task))
    messages = build_messages(inp, system_prompt, 0, image_part)
    messages.append({"role": "assistant", "content": reply})
    return encode_target_turn(processor, messages, sample_id)


def short_thought(episode: Episode, step: Step, frame: ModelFrame) -> str | None:
    """The step's recorded thought (what the policy said while acting)."""
    return step.thought


def step_text(step: Step, frame: ModelFrame, thought: str | None, output_format: str = "native",
              action: Action | None = None) -> str | None:
    """The native reply for a recorded step, or None when it has no action (unparseable reply).

    ``action`` replaces the recorded one (a re-written episode, see ``EpisodeRewrite``). An
    environment error on the step is appended as the agent loop does in its history.
    """
    action = action if action is not None else step.parsed_action()
    if action is None:
        return None
    text = get_format(output_format).format([action], frame, thought)
    return f"{text}\n[environment: {step.error}]" if step.error else text


def step_trainable(step: Step) -> bool:
    """False for steps the CoT filter marked untrainable (inconsistent or incorrect): history only."""
    cot = step.extra.get("cot")
    return bool(cot.get("train", True)) if isinstance(cot, dict) else True


@dataclass(frozen=True)
class EpisodeRewrite:
    """A re-written view of an episode (``training.data.copy_variants``): another instruction,
    recorded actions mapped through ``action``, targets only where ``is_target``, ids suffixed."""

    instruction: str
    action: Callable[[Action | None], Action | None]
    is_target: Callable[[Step], bool]
    id_suffix: str


def episode_samples(episode: Episode, processor: Processor, config: SFTConfig = SFTConfig(),
                    thought_of: ThoughtFn = short_thought, rewrite: EpisodeRewrite | None = None) -> Iterator[Sample]:
    """SFT samples of one episode: one per step that has a screenshot and a valid action."""
    history: list[HistoryStep] = []
    targets = 0
    instruction = rewrite.instruction if rewrite is not None else episode.meta.instruction
    for step in episode.steps:
        if config.max_steps_per_episode is not None and targets >= config.max_steps_per_episode:
            return
        if step.screenshot is None:
            continue
        shot = episode.frame(step)
        frame = image_frame(processor, shot)
        thought = thought_of(episode, step, frame) if config.include_thoughts else None
        action = step.parsed_action() if rewrite is None else rewrite.action(step.parsed_action())
        reply = step_text(step, frame, thought, config.output_format, action)
        target = rewrite is None or rewrite.is_target(step)
        if reply is not None and step.error is None and step_trainable(step) and target:
            inp = PolicyInput(instruction, Observation(shot, instruction), tuple(history), step_index=step.index)
            system = get_format(config.output_format).system_prompt(frame)
            messages = build_messages(inp, system, config.history_images, image_part)
            messages.append({"role": "assistant", "content": reply})
            suffix = rewrite.id_suffix if rewrite is not None else ""
            yield encode_target_turn(processor, messages, f"{episode.meta.episode_id}:{step.index}{suffix}")
            targets += 1
        history.append(HistoryStep(reply if reply is not None else step.raw_text, shot, step.thought, action))


def run_episodes(runs: Path | str | Sequence[Path | str], config: SFTConfig = SFTConfig()) -> Iterator[Episode]:
    """Episodes of one or more run directories that pass ``config``'s filters, oldest first.

    Every directory is checked before any episode is read, so a mistyped second run fails at
    once instead of after the first run's samples were built."""
    paths = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    if not paths:
        raise TrajectoryDataError("no trajectory run given; pass a directory written by pixelpilot collect")
    for path in paths:
        if not (path / "episodes").is_dir():
            raise TrajectoryDataError(f"{path} is not a trajectory run (no episodes/ directory); "
                                      "record one with: pixelpilot collect --out DIR")
    for path in paths:
        with TrajectoryStore(path) as store:
            rows = store.query(outcome="success" if config.only_successful else None,
                               privileged=False if config.skip_privileged else None)
        if config.shuffle_seed is not None:
            random.Random(config.shuffle_seed).shuffle(rows)
        for row in rows:
            yield read_episode(row.path)


def trajectory_samples(runs: Path | str | Sequence[Path | str], processor: Processor | None = None,
                       config: SFTConfig = SFTConfig(), thought_of: ThoughtFn = short_thought) -> Iterator[Sample]:
    """SFT samples of every episode of ``runs`` (see ``episode_samples``)."""
    processor = processor or Processor.default()
    for episode in run_episodes(runs, config):
        yield from episode_samples(episode, processor, config, thought_of)


__all__ = ["EpisodeRewrite", "SFTConfig", "Sample", "ThoughtFn", "TrajectoryDataError", "encode_target_turn",
           "episode_samples", "first_step_sample", "image_frame", "image_part", "run_episodes", "short_thought",
           "step_text", "step_trainable", "trajectory_samples"]
