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
   (``training.data.gui_samples``, drawn at the env's scale; ``random_labels`` of them carry
   made-up words, which only reading finds), at ``sft_copy_weight``, copy variants (3b), and at
   ``reading_weight`` the reading screens of 3c with their dense media-word loss from the first
   step (the vision tower learns which word is where while it learns everything else, instead of
   being taught to read afterwards, which made it forget the tasks), packed rows, Muon + AdamW,
   cosine schedule, checkpoints every ``save_every`` steps. The
   decoder starts from random weights (no pre-trained LM here), so a frozen-decoder ``align``
   stage would align to noise: all parts train from the first step.
3b. **copy** (``DIR/train-copy``): a short second SFT stage from part 3's model at a lower LR
   that gives a larger share to *copy variants* (``training.data.copy_variants``): every
   recorded typing step re-written with new random quoted phrases, so the model copies the
   text to type from the task instead of recalling the names it saw in training; reading screens
   keep their ``reading_weight`` share.
3c. **read** (``DIR/train-read``, off by default: ``read_steps=0``): a third SFT stage from the
   previous stage's model on fresh synthetic screens of the *reading* tasks
   (``training.data.reading_screens``: ONE/TWO buttons, click-button's flow, click-link's
   paragraphs, click-option/-checkboxes' lists, drawn as Chromium draws MiniWoB and never the same
   twice), a share ``read_ocr`` of them read out instead of clicked, at ``read_weight``, beside a
   replay of the trajectories of seeds below ``read_episodes`` (and their copy variants and
   grounding screens); on the reading screens the dense media-word loss
   (``training.data.media_words``, weight ``read_media_words``) tells every image token over a
   button, link or option which label it shows. Measured on the model trained without reading
   screens in stage 1 (71.8 %; 4000 steps with OCR, 33 min): the reading screens' click accuracy
   barely moved (two-buttons 43 → 44 %, links 5 → 14 %; ``training.reading_eval``); on MiniWoB
   click-button rose 44 → 56 %, click-test-2 44 → 54 %, but use-autocomplete fell 68 → 20 %. With
   the media-word loss under an earlier label rule (every token an element covered a quarter of) and
   no OCR: 2400 steps (21 min) two-buttons 40 %, buttons 67 %, links 5 %, options 37 %; 2900 steps
   weighted towards two-buttons/options (``read_families``) 48 / 65 / 8 / 38 %. The rule now in place (tokens
   whose cell centre the element holds) lifts two-buttons screens alone to 77 % in 5 minutes
   (that rule: 50 %; no media-word loss: 52 %) in a plain AdamW loop, but not in this stage:
   2000 steps with it and the weights above gave 43 / 62 / 8 / 35 %. What differs is the
   optimizer: on 70 % two-buttons screens + 30 % replayed trajectories (1600 steps of 16), plain
   AdamW at a constant 5e-4 (``read_adamw``) lifts MiniWoB click-test-2 44 → 63 %, Muon + AdamW
   with cosine decay 37 %; but the AdamW run forgets (login-user 88 → 45 %, use-autocomplete
   68 → 35 %, click-dialog 100 → 80 %; with 10 % of copy variants in the replay: click-test-2
   60 %, click-dialog 25 %, use-autocomplete 10 %), and this stage with ``read_adamw`` (55 % two-buttons,
   the rest replay with copy variants and grounding, 1600 steps of 20) neither read (click-test-2
   40 %) nor kept the tasks (click-dialog 40 %, use-autocomplete 10 %). So the shipped model does
   not include this stage; the same screens and loss in stages 1 and 2 (``reading_weight``) are
   what taught it to read (two-buttons 43 → 73 %, buttons 29 → 64 %; MiniWoB mean 71.8 → 76.3 %).
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
import functools
import json
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from agent.collect import CollectConfig, collect
from agent.teachers import ExpertRationaleTeacher, NativeSyntax
from envs.miniwob.experts import EXPERTS
from model.config import PRESETS
from model.processing import Processor
from model.processing.image_processor import ImageProcessorConfig
from training.data.copy_variants import copy_variant_samples
from training.data.gui_samples import grounding_samples
from training.data.packing import collate_packed, compact_pixels
from training.data.reading_screens import family_weights, reading_samples
from training.data.sft import Sample, SFTConfig, trajectory_samples
from training.mixture import DataMix, MixtureStream
from training.optim import OptimConfig
from training.run import load_model
from training.stages import VLM_PARTS, Stage, build_train_module
from training.trainer import ScheduleConfig, Trainer, TrainerConfig
from trajectories.cot import CoTConfig, synthesize_run

#: The tasks the shipped model is trained on (all MiniWoB tasks with an expert).
TASKS: tuple[str, ...] = tuple(sorted(EXPERTS))
#: How the agent runs the model (written to ``agent.json``; see ``agent.factory.agent_settings``).
AGENT_SETTINGS = {"output_format": "native-compact", "history_images": 0, "max_tokens": 48}
#: MiniWoB screens at the env's default scale 2 (synthetic screens are drawn at that scale too,
#: so their text is as large as the env's).
SCREEN_SIZE = (320, 420)
SCREEN_SCALE = 2
#: First seed of the read stage's screens (far from the grounding screens' seeds).
READING_SEED = 50_000_000
#: Each training stage's directory under ``DIR``.
STAGE_DIRS = {"sft": "train", "copy": "train-copy", "read": "train-read"}


@dataclass(frozen=True)
class MiniWoBTinyConfig:
    """Every knob of the pipeline; the defaults are the shipped model's."""

    out: str
    tasks: tuple[str, ...] = TASKS
    episodes: int = 600  # expert episodes per task (seeds 0 .. episodes-1)
    workers: int = 2  # collection processes
    model: str = "miniwob_tiny"  # model preset
    max_patches: int = 192  # image patches (before the 2×2 merge): 320×420 screens → 167×220
    steps: int = 8000
    batch_size: int = 20  # samples per step, packed into rows of max_len
    max_len: int = 1024
    lr: float = 2e-3
    warmup_steps: int = 30
    grounding_weight: float = 0.2  # share of synthetic grounding samples once the ramp is over
    grounding_pool: int = 8000  # synthetic samples rendered once and cycled (~16 ms each to render)
    solo: float = 0.5  # share of synthetic screens that show the target widget alone
    random_labels: float = 0.5  # share of synthetic screens whose labels are made-up words (reading, not recall)
    sft_copy_weight: float = 0.1  # copy variants' share in the first stage too (ramped in with the trajectories)
    reading_weight: float = 0.2  # share of reading screens (3c's, with the media-word loss) in the sft and copy stages
    ramp: float = 0.15  # trajectories ramp in from 0 over this fraction of the steps
    copy_steps: int = 1200  # second stage: typing steps re-written with new quoted phrases (0: skip)
    copy_variants: int = 4  # re-written samples per recorded typing step
    copy_weight: float = 0.3  # their share in the second stage's mix
    copy_lr: float = 5e-4
    read_steps: int = 0  # third stage on synthetic reading screens; off in the shipped model (see 3c)
    read_weight: float = 0.5  # their share in the third stage's mix (the rest replays the tasks)
    read_ocr: float = 0.5  # share of those screens asked to be read out (labels + places) instead of clicked
    read_lr: float = 1e-3
    read_episodes: int = 250  # the third stage replays the trajectories of seeds below this
    read_media_words: float = 1.0  # weight of the dense media-word loss on the reading screens (0: off)
    read_families: tuple[tuple[str, float], ...] = ()  # (family, weight) of the reading screens; (): uniform
    read_adamw: bool = False  # the read stage: AdamW on every parameter at a constant LR (False: Muon + AdamW, cosine)
    save_every: int = 500
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
        if not 0 <= self.solo <= 1 or not 0 <= self.ramp < 1 or self.grounding_pool < 1:
            raise ValueError("solo must lie in [0, 1], ramp in [0, 1) and grounding_pool be >= 1")
        if self.copy_steps < 0 or self.copy_variants < 1 or not 0 < self.copy_weight < 1 or self.copy_lr <= 0:
            raise ValueError("copy_steps must be >= 0, copy_variants >= 1, copy_weight in (0, 1), copy_lr > 0")
        if self.read_steps < 0 or not 0 < self.read_weight < 1 or self.read_lr <= 0 or self.read_episodes < 1:
            raise ValueError("read_steps must be >= 0, read_weight in (0, 1), read_lr > 0, read_episodes >= 1")
        family_weights(dict(self.read_families) if self.read_families else None)
        if self.read_media_words < 0:
            raise ValueError(f"read_media_words must be >= 0, got {self.read_media_words}")
        if not 0 <= self.read_ocr <= 1:
            raise ValueError(f"read_ocr is a share in [0, 1], got {self.read_ocr}")
        if not 0 <= self.random_labels <= 1 or not 0 <= self.sft_copy_weight < 1 - self.grounding_weight:
            raise ValueError("random_labels must lie in [0, 1] and sft_copy_weight in [0, 1 - grounding_weight)")
        if not 0 <= self.reading_weight < 1 - self.grounding_weight - self.sft_copy_weight:
            raise ValueError("reading_weight must lie in [0, 1 - grounding_weight - sft_copy_weight) (the trajectories "
                             f"need a share), got {self.reading_weight}")
        if self.ramp > 0 and self.grounding_weight == 0:
            raise ValueError("a ramp needs synthetic grounding to start from: set grounding_weight > 0 or ramp 0")

    @property
    def root(self) -> Path:
        return Path(self.out)


def episode_seed(sample_id: str) -> int:
    """The MiniWoB seed in a trajectory sample's id (``miniwob.click-link.s000123:0`` → 123)."""
    match = re.search(r"\.s(\d+):", sample_id)
    if match is None:
        raise ValueError(f"sample id {sample_id!r} names no episode seed (.sNNN:)")
    return int(match.group(1))


def previous_stage(config: MiniWoBTinyConfig, stage: str) -> str | None:
    """The stage whose final model ``stage`` starts from (None: a fresh model)."""
    order = ["sft"] + (["copy"] if config.copy_steps else []) + (["read"] if config.read_steps else [])
    return order[order.index(stage) - 1] if stage in order and order.index(stage) > 0 else None


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


def sft_config(config: MiniWoBTinyConfig) -> SFTConfig:
    """How trajectory steps become samples: the agent's compact layout, actions only, successes."""
    return SFTConfig(history_images=int(AGENT_SETTINGS["history_images"]), include_thoughts=False,
                     only_successful=True, output_format=str(AGENT_SETTINGS["output_format"]),
                     shuffle_seed=config.seed)


class StageData:
    """The samples the stages draw from, decoded / rendered once per process and kept in memory
    (~7 ms a trajectory sample to decode, ~16 ms a synthetic one to render; patches kept as
    uint8, 0.11 MB of patches a sample at 192 patches, ~0.22 MB of process memory with Python's
    and the allocator's overhead: 1000 episodes × 19 tasks peaked at 18.1 GB RSS, the default 600
    used about 11 GB): when both stages run in one process, the second reuses the first's."""

    def __init__(self, config: MiniWoBTinyConfig, cot_run: Path) -> None:
        self.config, self.cot_run = config, cot_run
        self.processor = processor_for(config)
        self.sft = sft_config(config)
        self._rendered: list[Sample] = []
        self._renderer = grounding_samples(None, self.processor, seed=config.seed, thought=False,
                                           output_format=str(AGENT_SETTINGS["output_format"]), solo=config.solo,
                                           style="miniwob", size=SCREEN_SIZE, scale=SCREEN_SCALE,
                                           random_labels=config.random_labels)

    def _compact(self, samples: Iterable[Sample]) -> list[Sample]:
        return [compact_pixels(s, self.processor.image_processor) for s in samples]

    @functools.cached_property
    def trajectories(self) -> list[Sample]:
        return self._compact(trajectory_samples(self.cot_run, self.processor, self.sft))

    @functools.cached_property
    def copies(self) -> list[Sample]:
        return self._compact(copy_variant_samples(self.cot_run, self.processor, self.sft, self.config.copy_variants,
                                                  self.config.seed))

    def _early(self, samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if episode_seed(str(s["id"])) < self.config.read_episodes]

    @functools.cached_property
    def replay(self) -> list[Sample]:
        """The trajectory samples of episodes with seeds below ``read_episodes`` (the read stage's replay)."""
        return self._early(self.trajectories)

    @functools.cached_property
    def replay_copies(self) -> list[Sample]:
        """The copy variants of those episodes."""
        return self._early(self.copies)

    def reading(self, stage: str = "read") -> Iterator[Sample]:
        """Endless fresh reading screens (``training.data.reading_screens``), rendered as drawn (~10 ms);
        each stage draws its own seeds."""
        seed = READING_SEED + 10_000_000 * list(STAGE_DIRS).index(stage) + self.config.seed
        return reading_samples(None, self.processor, seed=seed, ocr=self.config.read_ocr,
                               families=dict(self.config.read_families) or None,
                               output_format=str(AGENT_SETTINGS["output_format"]))

    def grounding(self, n: int) -> list[Sample]:
        """The first ``n`` synthetic samples of the run's seed (rendered on first need)."""
        self._rendered.extend(self._compact(islice(self._renderer, max(0, n - len(self._rendered)))))
        return self._rendered[:n]


def build_trainer(config: MiniWoBTinyConfig, cot_run: Path, stage: str = "sft",
                  data: StageData | None = None) -> Trainer:
    """The trainer of part 3 (``stage="sft"``), 3b (``stage="copy"``) or 3c (``stage="read"``).

    ``sft``: the joint stage from a fresh model over CoT trajectories + synthetic grounding (+ copy
    variants at ``sft_copy_weight``).
    ``copy``: continues from ``DIR/train/final`` at a lower LR, adding copy variants
    (``training.data.copy_variants``) so that typed text is copied from the task, not recalled.
    ``read``: continues from the previous stage's model at a lower LR on fresh synthetic screens
    of the reading tasks (``training.data.reading_screens``) beside a replay of every task.
    """
    if stage not in STAGE_DIRS:
        raise ValueError(f"stage must be one of {', '.join(STAGE_DIRS)}, got {stage!r}")
    data = data or StageData(config, cot_run)
    processor = data.processor
    read = stage == "read"
    trajectories = data.replay if read else data.trajectories
    pool = config.grounding_pool if stage == "sft" else max(1, config.grounding_pool // 4)  # short stage: less
    grounding = data.grounding(pool if config.grounding_weight else 0)
    copy = config.sft_copy_weight if stage == "sft" else config.copy_weight
    copies = (data.replay_copies if read else data.copies) if copy else []
    copy = copy if copies else 0.0  # tasks that type no quoted phrase have no copy variants
    sources: dict[str, Any] = {"trajectories": lambda: iter(trajectories), "copy-variants": lambda: iter(copies),
                               "synthetic-grounding": lambda: iter(grounding),
                               "reading": functools.partial(data.reading, stage)}
    if stage == "sft":
        # Curriculum: synthetic screens first (where things are, from pixels: the tasks' own fixed
        # layouts would otherwise be memorised instead; reading screens: which word is where), then
        # the trajectories (and their copy variants) ramp in.
        reading = config.reading_weight
        weights = (("trajectories", 1.0 - config.grounding_weight - copy - reading), ("copy-variants", copy),
                   ("synthetic-grounding", config.grounding_weight), ("reading", reading))
        ramped = tuple(n for n, w in weights[:2] if config.ramp > 0 and w > 0)
        mix = DataMix(tuple((n, w) for n, w in weights if w > 0), ramped=ramped, ramp_start=0.0, ramp_end=config.ramp)
        steps, lr, warmup, model = config.steps, config.lr, config.warmup_steps, config.model
    else:
        # copy: the copy variants' share, the rest as in stage 1; read: the reading screens'
        # share first, then the same split of the rest (the tasks are replayed, not forgotten).
        reading = config.read_weight if read else config.reading_weight
        rest = (1.0 - reading) * (1.0 - copy)
        weights = (("reading", reading), ("trajectories", rest * (1.0 - config.grounding_weight)),
                   ("copy-variants", (1.0 - reading) * copy), ("synthetic-grounding", rest * config.grounding_weight))
        mix = DataMix(tuple((n, w) for n, w in weights if w > 0))
        steps, lr = (config.read_steps, config.read_lr) if read else (config.copy_steps, config.copy_lr)
        warmup = 10
        model = str(config.root / STAGE_DIRS[previous_stage(config, stage) or "sft"] / "final")
    # read_adamw: plain AdamW at a constant LR, the optimizer of the runs that learned to read (3c).
    adamw = read and config.read_adamw
    optim = OptimConfig(lr=lr, weight_decay=0.01, muon=not adamw, betas=(0.9, 0.999) if adamw else OptimConfig.betas)
    trainer_config = TrainerConfig(
        output_dir=str(config.root / STAGE_DIRS[stage]), max_steps=steps, micro_batch_size=config.batch_size,
        max_len=config.max_len, optim=optim,
        schedule=ScheduleConfig(kind="constant" if adamw else "cosine", warmup_steps=warmup, min_lr_ratio=0.1),
        save_every=config.save_every, seed=config.seed, progress=config.progress)
    vlm = load_model(model, config.seed)
    module = build_train_module(vlm, Stage(stage, "lm", VLM_PARTS),
                                media_word_weight=config.read_media_words if "reading" in mix.names else 0.0)
    images = processor.image_processor
    run_config = {"recipe": "miniwob-tiny", "stage": stage, "pipeline": dataclasses.asdict(config),
                  "model_config": vlm.vl_config.to_dict(), "agent": AGENT_SETTINGS}
    return Trainer(module, trainer_config, MixtureStream({n: sources[n] for n in mix.names}, seed=config.seed),
                   mix, lambda samples, max_len: collate_packed(samples, max_len, pad_to_max_len=False,
                                                                image_processor=images),
                   run_config=run_config, processor=processor)


def train_stage(config: MiniWoBTinyConfig, cot_run: Path, stage: str,
                data: StageData | None = None) -> tuple[Path, list[Any], bool]:
    """Run (or resume, or skip when finished) one stage; returns (its final dir, history, resumed).

    A finished stage leaves ``DONE`` (JSON: wall seconds of the run that finished it, steps).
    """
    out = config.root / STAGE_DIRS[stage]
    final = out / "final"
    if (final / "config.json").is_file() and (out / "DONE").is_file():
        return final, [], True
    t0 = time.perf_counter()
    trainer = build_trainer(config, cot_run, stage, data)
    resume = any((out / "checkpoints").glob("step-*"))
    history = trainer.train(resume=resume)
    done = {"seconds": round(time.perf_counter() - t0, 1), "steps": trainer.config.max_steps, "resumed": resume}
    (out / "DONE").write_text(json.dumps(done) + "\n", encoding="utf-8")
    return final, history, resume


def stage_seconds(config: MiniWoBTinyConfig) -> dict[str, float]:
    """Wall seconds each finished stage took (from its ``DONE``), also when this run skipped it."""
    seconds = {}
    for stage, sub in STAGE_DIRS.items():
        path = config.root / sub / "DONE"
        if path.is_file():
            seconds[stage] = float(json.loads(path.read_text(encoding="utf-8"))["seconds"])
    return seconds


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
    """All parts; returns (and writes to ``DIR/pipeline.json``) what ran and how long it took."""
    config.root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    experts = collect_experts(config)
    timings["collect_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cot_run = synthesize_cot(config, experts)
    timings["cot_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = StageData(config, cot_run)  # nothing is decoded until a stage that runs asks for it
    final, history, resume = train_stage(config, cot_run, "sft", data)
    timings["train_s"] = time.perf_counter() - t0
    copy_history: list[Any] = []
    if config.copy_steps:
        t0 = time.perf_counter()
        final, copy_history, _ = train_stage(config, cot_run, "copy", data)
        timings["train_copy_s"] = time.perf_counter() - t0
    read_history: list[Any] = []
    if config.read_steps:
        t0 = time.perf_counter()
        final, read_history, _ = train_stage(config, cot_run, "read", data)
        timings["train_read_s"] = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "config": dataclasses.asdict(config), "timings": {k: round(v, 1) for k, v in timings.items()},
        "resumed": resume, "steps_this_run": len(history) + len(copy_history) + len(read_history),
        "loss_first": history[0].loss if history else None, "loss_last": history[-1].loss if history else None,
        "copy_loss_last": copy_history[-1].loss if copy_history else None,
        "read_loss_last": read_history[-1].loss if read_history else None}
    seconds = stage_seconds(config)
    summary.update(stage_seconds=seconds, training_seconds=round(sum(seconds.values()), 1))
    model_dir = export_model(config, final, summary)
    summary.update(model=str(model_dir),
                   model_bytes=sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()))
    (config.root / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


__all__ = ["AGENT_SETTINGS", "MiniWoBTinyConfig", "SCREEN_SCALE", "SCREEN_SIZE", "STAGE_DIRS", "StageData", "TASKS",
           "build_trainer", "collect_experts", "export_model", "processor_for", "run_pipeline", "sft_config",
           "stage_seconds", "synthesize_cot", "train_stage"]
