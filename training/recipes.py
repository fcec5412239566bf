"""Recipes: every Kimi-VL training stage as a preset function returning a ``Recipe``.

A recipe fixes the stage (objective + trainable parts + RoPE base), the data mixture (names
from ``training.data.DATA_SOURCES``), the lengths, the optimizer and the LR schedule. The
defaults fit the ``tiny`` model on a CPU; ``pixelpilot train`` overrides steps, batch, LR and
lengths from flags. The Kimi-VL / k1.5 paper values these mirror are in each docstring.

Data names: ``text`` (text corpus), ``long-text`` (long documents), ``synthetic-caption`` and
``synthetic-grounding`` (rendered GUI screens), ``trajectories`` (agent runs → SFT samples; needs
``trajectories:RUN_DIR``), ``cot`` (long chain-of-thought SFT samples; needs ``cot:RUN_DIR``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from training.mixture import DataMix
from training.optim import OptimConfig
from training.stages import VLM_PARTS, Stage
from training.trainer import ScheduleConfig, TrainerConfig


@dataclass(frozen=True)
class Recipe:
    """A stage with its data mixture, lengths, optimizer and schedule."""

    name: str
    description: str
    stage: Stage
    data: DataMix
    default_sources: tuple[str, ...]  # used when --data is not given (need no argument)
    steps: int = 20
    micro_batch_size: int = 4
    grad_accum_steps: int = 1
    max_len: int = 512
    lengths: tuple[tuple[float, int], ...] = ()  # staged context lengths by progress
    packing: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        if not set(self.default_sources) <= set(self.data.names):
            raise ValueError(f"recipe {self.name}: default sources {self.default_sources} must "
                             f"be in its mix {self.data.names}")

    def trainer_config(self, output_dir: str, **overrides: Any) -> TrainerConfig:
        """The ``TrainerConfig`` of this recipe; ``overrides`` replace any field."""
        base = dict(output_dir=output_dir, max_steps=self.steps,
                    micro_batch_size=self.micro_batch_size,
                    grad_accum_steps=self.grad_accum_steps, max_len=self.max_len,
                    lengths=self.lengths, optim=self.optim, schedule=self.schedule)
        return TrainerConfig(**{**base, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


ALL = VLM_PARTS


def vit_pretrain() -> Recipe:
    """MoonViT pre-training: SigLIP (t' = log 10, b = −10) + 2 × caption loss, ViT + heads only.

    Kimi-VL: CoCa-style; the text side is a small encoder/decoder dropped after this stage.
    """
    return Recipe(
        name="vit_pretrain", description=vit_pretrain.__doc__.splitlines()[0],
        stage=Stage("vit_pretrain", "vit", ("vision_tower",)),
        data=DataMix((("synthetic-caption", 1.0),)), default_sources=("synthetic-caption",),
        micro_batch_size=8, packing=False,
        optim=OptimConfig(lr=2e-3, weight_decay=0.01),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=2))


def align() -> Recipe:
    """Alignment: vision tower + projector train on image-text data, the decoder is frozen."""
    mix = DataMix((("synthetic-caption", 1.0), ("synthetic-grounding", 1.0)))
    return Recipe(
        name="align", description=align.__doc__.splitlines()[0],
        stage=Stage("align", "lm", ("vision_tower", "projector")),
        data=mix, default_sources=mix.names,
        optim=OptimConfig(lr=2e-3, weight_decay=0.01),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=2))


def joint_pretrain() -> Recipe:
    """Joint pre-training: text only first, then the multimodal share ramps up (WSD schedule).

    Kimi-VL keeps the text ratio high and raises the multimodal ratio gradually; here image
    sources start at 0 and reach their weight between 10 % and 60 % of the run.
    """
    multimodal = ("synthetic-caption", "synthetic-grounding", "trajectories")
    mix = DataMix((("text", 1.0), ("synthetic-caption", 0.5), ("synthetic-grounding", 0.5),
                   ("trajectories", 0.5)), ramped=multimodal, ramp_start=0.1, ramp_end=0.6)
    return Recipe(
        name="joint_pretrain", description=joint_pretrain.__doc__.splitlines()[0],
        stage=Stage("joint_pretrain", "lm", ALL), data=mix,
        default_sources=("text", "synthetic-caption", "synthetic-grounding"),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=2, decay_fraction=0.2))


def cooldown() -> Recipe:
    """Cooldown: curated + synthetic QA data while the LR decays linearly to 10 %."""
    mix = DataMix((("synthetic-grounding", 1.0), ("synthetic-caption", 0.5), ("text", 0.5),
                   ("trajectories", 1.0)))
    return Recipe(
        name="cooldown", description=cooldown.__doc__.splitlines()[0],
        stage=Stage("cooldown", "lm", ALL), data=mix,
        default_sources=("synthetic-grounding", "synthetic-caption", "text"),
        optim=OptimConfig(lr=1e-3),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=0, decay_fraction=1.0))


def long_context(rope_theta: float = 800_000.0) -> Recipe:
    """Long-context activation: RoPE base 50k → 800k, staged lengths, 25 % long / 75 % short.

    Kimi-VL goes 8K → 32K → 128K; the tiny defaults stage 256 → 512 tokens (``--max-len``
    scales the stages).
    """
    mix = DataMix((("long-text", 0.25), ("text", 0.75), ("trajectories", 0.75)))
    return Recipe(
        name="long_context", description=long_context.__doc__.splitlines()[0],
        stage=Stage("long_context", "lm", ALL, rope_theta=rope_theta), data=mix,
        default_sources=("long-text", "text"), micro_batch_size=2, max_len=512,
        lengths=((0.0, 256), (0.5, 512)), optim=OptimConfig(lr=1e-3),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=1))


def sft() -> Recipe:
    """Joint SFT: chat-formatted GUI data, loss on assistant tokens only, sequence packing."""
    mix = DataMix((("trajectories", 1.0), ("synthetic-grounding", 0.5), ("text", 0.1)))
    return Recipe(
        name="sft", description=sft.__doc__.splitlines()[0],
        stage=Stage("sft", "lm", ALL), data=mix,
        default_sources=("synthetic-grounding",), max_len=1024,
        optim=OptimConfig(lr=1e-3), schedule=ScheduleConfig(kind="cosine", warmup_steps=2))


def long_cot_sft() -> Recipe:
    """Long-CoT SFT: targets keep the reasoning in <think>…</think>; longer rows."""
    mix = DataMix((("cot", 1.0), ("trajectories", 0.25)))
    return Recipe(
        name="long_cot_sft", description=long_cot_sft.__doc__.splitlines()[0],
        stage=Stage("long_cot_sft", "lm", ALL), data=mix, default_sources=(),
        micro_batch_size=2, max_len=2048,
        optim=OptimConfig(lr=5e-4), schedule=ScheduleConfig(kind="cosine", warmup_steps=2))


RECIPES: dict[str, Callable[[], Recipe]] = {
    "vit_pretrain": vit_pretrain,
    "align": align,
    "joint_pretrain": joint_pretrain,
    "cooldown": cooldown,
    "long_context": long_context,
    "sft": sft,
    "long_cot_sft": long_cot_sft,
}


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (``RECIPES`` lists them)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]()
