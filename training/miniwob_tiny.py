"""The ``miniwob-tiny`` pipeline: expert episodes → CoT labels → SFT of a small VLM → the shipped agent.

``pixelpilot train --recipe miniwob-tiny --out DIR`` runs, each part resumable (a killed run
continues where it stopped when started again with the same flags):

1. **collect** (``DIR/data/experts``): the privileged MiniWoB experts play ``episodes`` seeds
   (``0 ..``; evaluation uses seeds from 10000, never seen here) of every task in ``tasks``
   through ``agent.collect``, pixels and actions recorded exactly as the agent would see them.
2. **cot** (``DIR/data/cot``): ``trajectories.cot`` with the offline expert teacher writes the
   reflective thoughts, the reflector's correct/redundant label and the consistency filter
   (``extra["cot"]["train"]``). Steps marked untrainable stay in the history only.
3. **sft** (``DIR/train``): one joint stage (vision tower, projector and decoder all train)
   on the CoT run mixed with synthetic MiniWoB-style grounding screens
   (``training.data.gui_samples``), packed rows, Muon + AdamW, cosine schedule, checkpoints
   every ``save_every`` steps. The decoder starts from random weights (no pre-trained LM here),
   so a frozen-decoder ``align`` stage would align to noise: all parts train from the first step.
4. **model** (``DIR/model``): the final weights, the processor and ``agent.json`` (the
   ``native-compact`` prompt, no earlier screenshots, short replies): what ``pixelpilot eval
   --model DIR/model`` and ``make demo`` run.

Targets are actions only (CoT level 1): the expert's rationales name DOM facts (tags, element
ids) a pixels-only model cannot see, and a model this small decodes faster and more reliably
without them. Everything is deterministic from ``seed``; ``DIR/pipeline.json`` records what ran
and how long each part took.

What this module does not do: evaluation (``pixelpilot eval``), the demo (``agent.commands.miniwob_cmd``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.collect import CollectConfig, collect
from agent.teachers import ExpertRationaleTeacher, NativeSyntax
from model.config import PRESETS
from model.processing import Processor
from model.processing.image_processor import ImageProcessorConfig
from training.data.gui_samples import grounding_samples
from training.data.packing import collate_packed
from training.data.sft import SFTConfig, trajectory_samples
from training.mixture import DataMix, MixtureStream
from training.optim import OptimConfig
from training.run import load_model
from training.stages import VLM_PARTS, Stage, build_train_module
from training.trainer import ScheduleConfig, Trainer, TrainerConfig
from trajectories.cot import CoTConfig, synthesize_run

#: The tasks the shipped model is trained on (all MiniWoB tasks with an expert).
TASKS: tuple[str, ...] = (
    "choose-list", "click-button", "click-button-sequence", "click-checkboxes", "click-collapsible",
    "click-dialog", "click-link", "click-option", "click-tab", "click-test", "click-test-2", "click-widget",
    "enter-password", "enter-text", "enter-text-2", "focus-text", "focus-text-2", "login-user", "use-autocomplete",
)
#: How the agent runs the model (written to ``agent.json``; see ``agent.factory.agent_settings``).
AGENT_SETTINGS = {"output_format": "native-compact", "history_images": 0, "max_tokens": 48}
#: MiniWoB screens at the env's default scale 2.
SCREEN_SIZE = (320, 420)


@dataclass(frozen=True)
class MiniWoBTinyConfig:
    """Every knob of the pipeline; the defaults are the shipped model's."""

    out: str
    tasks: tuple[str, ...] = TASKS
    episodes: int = 200  # expert episodes per task (seeds 0 .. episodes-1)
    workers: int = 2  # collection processes
    model: str = "miniwob_tiny"  # model preset
    max_patches: int = 4096  # image processor patch budget (before the 2×2 merge)
    steps: int = 4000
    batch_size: int = 13  # samples per step, packed into rows of max_len
    max_len: int = 1024
    lr: float = 2e-3
    warmup_steps: int = 30
    grounding_weight: float = 0.2  # share of synthetic grounding samples in the mix
    save_every: int = 200
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tasks) - set(TASKS))
        if not self.tasks or unknown:
            raise ValueError(f"miniwob-tiny trains on tasks with an expert: {', '.join(TASKS)}; "
                             f"got unknown {unknown or 'none'}")
        if self.model not in PRESETS:
            raise ValueError(f"model must be a preset ({', '.join(PRESETS)}), got {self.model!r}")
        for name in ("episodes", "workers", "steps", "batch_size", "max_len", "max_patches", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"MiniWoBTinyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.grounding_weight < 1 or self.lr <= 0:
            raise ValueError("grounding_weight must lie in [0, 1) and lr must be > 0")

    @property
    def root(self) -> Path:
        return Path(self.out)


def processor_for(config: MiniWoBTinyConfig) -> Processor:
    """The processor the model trains and runs with (its patch budget sets the image size)."""
    return Processor.default(ImageProcessorConfig(max_patches=config.max_patches))


def collect_experts(config: MiniWoBTinyConfig) -> Path:
    """Part 1: expert episodes (finished ones kept, cut-off ones redone)."""
    out = config.root / "data" / "experts"
    collect(CollectConfig(out=str(out), tasks=config.tasks, episodes=config.episodes, workers=config.workers,
                          max_steps=15, resume=True, redact_passwords=False), progress=config.progress)
    return out


def synthesize_cot(config: MiniWoBTinyConfig, experts: Path) -> Path:
    """Part 2: reflective CoT, reflector labels and the consistency filter over the expert run."""
    out = config.root / "data" / "cot"
    synthesize_run(experts, out, ExpertRationaleTeacher(seed=config.seed), NativeSyntax(),
                   CoTConfig(seed=config.seed, resume=True, progress=config.progress))
    return out


def build_trainer(config: MiniWoBTinyConfig, cot_run: Path) -> Trainer:
    """Part 3's trainer: the joint SFT stage over CoT trajectories + synthetic grounding."""
    processor = processor_for(config)
    fmt = AGENT_SETTINGS["output_format"]
    sft = SFTConfig(history_images=int(AGENT_SETTINGS["history_images"]), include_thoughts=False,
                    only_successful=True, output_format=str(fmt), shuffle_seed=config.seed)
    # Decoded once and kept in memory (~7 ms a sample to decode, ~0.5 MB a sample at 192 patches).
    trajectories = list(trajectory_samples(cot_run, processor, sft))
    sources = {
        "trajectories": lambda: iter(trajectories),
        "synthetic-grounding": lambda: grounding_samples(None, processor, seed=config.seed, thought=False,
                                                         output_format=str(fmt), style="miniwob",
                                                         size=SCREEN_SIZE),
    }
    weights = (("trajectories", 1.0 - config.grounding_weight), ("synthetic-grounding", config.grounding_weight))
    mix = DataMix(tuple((n, w) for n, w in weights if w > 0))
    trainer_config = TrainerConfig(
        output_dir=str(config.root / "train"), max_steps=config.steps, micro_batch_size=config.batch_size,
        max_len=config.max_len, optim=OptimConfig(lr=config.lr, weight_decay=0.01),
        schedule=ScheduleConfig(kind="cosine", warmup_steps=config.warmup_steps, min_lr_ratio=0.1),
        save_every=config.save_every, seed=config.seed, progress=config.progress)
    vlm = load_model(config.model, config.seed)
    module = build_train_module(vlm, Stage("sft", "lm", VLM_PARTS))
    images = processor.image_processor
    run_config = {"recipe": "miniwob-tiny", "pipeline": dataclasses.asdict(config),
                  "model_config": vlm.vl_config.to_dict(), "agent": AGENT_SETTINGS}
    return Trainer(module, trainer_config, MixtureStream({n: sources[n] for n in mix.names}, seed=config.seed),
                   mix, lambda samples, max_len: collate_packed(samples, max_len, pad_to_max_len=False,
                                                                image_processor=images),
                   run_config=run_config, processor=processor)


def export_model(config: MiniWoBTinyConfig, final: Path, info: dict[str, Any]) -> Path:
    """Part 4: ``DIR/model`` = the trained weights + processor + ``agent.json`` + ``training.json``."""
    out = config.root / "model"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(final, tmp)
    (tmp / "agent.json").write_text(json.dumps(AGENT_SETTINGS, indent=2) + "\n", encoding="utf-8")
    (tmp / "training.json").write_text(json.dumps({"recipe": "miniwob-tiny", "tasks": list(config.tasks), **info},
                                                  indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def run_pipeline(config: MiniWoBTinyConfig) -> dict[str, Any]:
    """All four parts; returns (and writes to ``DIR/pipeline.json``) what ran and how long it took."""
    config.root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    experts = collect_experts(config)
    timings["collect_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cot_run = synthesize_cot(config, experts)
    timings["cot_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    trainer = build_trainer(config, cot_run)
    resume = any((config.root / "train" / "checkpoints").glob("step-*"))
    history = trainer.train(resume=resume)
    final = config.root / "train" / "final"
    timings["train_s"] = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "config": dataclasses.asdict(config), "timings": {k: round(v, 1) for k, v in timings.items()},
        "resumed": resume, "steps_this_run": len(history),
        "loss_first": history[0].loss if history else None, "loss_last": history[-1].loss if history else None}
    model_dir = export_model(config, final, summary)
    summary.update(model=str(model_dir),
                   model_bytes=sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()))
    (config.root / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = ["AGENT_SETTINGS", "MiniWoBTinyConfig", "SCREEN_SIZE", "TASKS", "build_trainer", "collect_experts",
           "export_model", "processor_for", "run_pipeline", "synthesize_cot"]
