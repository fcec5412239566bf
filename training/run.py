"""Build and run one training stage from flags: what ``pixelpilot train`` executes.

``python -m training.run --recipe NAME --out DIR [...]`` is also the torchrun entry point
(``pixelpilot train --nproc K`` re-launches it under ``torchrun``). Steps: parse → recipe →
model (a preset, or a saved model directory to continue from an earlier stage) → stage
module → data sources from ``training.data.DATA_SOURCES`` → ``Trainer.train``.

What this module does not do: the loop itself (``training.trainer``).
"""

from __future__ import annotations

import argparse
import os
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from model.config import PRESETS
from model.modeling import PixelPilotVLForConditionalGeneration, build_model
from model.processing import Processor
from training import distributed as D
from training.mixture import MixtureStream, SourceFactory
from training.cli import add_arguments
from training.recipes import Recipe, get_recipe
from training.stages import build_train_module
from training.trainer import Collate, Trainer


def parse_data_spec(spec: str) -> list[tuple[str, str | None]]:
    """``"NAME[:ARG],NAME[:ARG]"`` → [(name, arg or None)] (ARG may contain ':', e.g. paths)."""
    items = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, arg = part.partition(":")
        items.append((name, arg or None))
    if not items:
        raise ValueError(f"--data {spec!r} names no source; use NAME[:ARG],NAME[:ARG]")
    return items


def source_factory(name: str, arg: str | None, processor: Processor, seed: int
                   ) -> SourceFactory:
    """A restartable factory for data source ``name`` of ``training.data.DATA_SOURCES``.

    The source is built here (bad arguments fail before training starts); each call of the
    factory iterates it from the beginning, in the same order.
    """
    from training.data import DATA_SOURCES

    if name not in DATA_SOURCES:
        raise ValueError(f"unknown data source {name!r}; available: {', '.join(DATA_SOURCES)}")
    samples = DATA_SOURCES[name](arg, processor=processor, seed=seed)
    return lambda: iter(samples)


def make_collate(recipe: Recipe, processor: Processor, packing: bool) -> Collate:
    """The batch builder of the stage: captions (ViT), packed rows, or padded rows."""
    from training.data.packing import collate_captions, collate_packed, collate_padded

    images = processor.image_processor
    if recipe.stage.objective == "vit":
        return lambda samples, max_len: collate_captions(samples, image_processor=images)
    if packing:
        return lambda samples, max_len: collate_packed(samples, max_len, pad_to_max_len=False,
                                                       image_processor=images)
    return lambda samples, max_len: collate_padded(samples, max_len=max_len,
                                                   image_processor=images)


def load_model(spec: str, seed: int) -> PixelPilotVLForConditionalGeneration:
    """A fresh preset (``tiny``, ``small``, ``kimi_vl_a3b``) or a saved model directory."""
    if spec in PRESETS:
        torch.manual_seed(seed)
        return build_model(PRESETS[spec]())
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise ValueError(f"--model {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a "
                         "directory written by save_pretrained (e.g. an earlier run's OUT/final)")
    return PixelPilotVLForConditionalGeneration.from_pretrained(path)


def load_processor(spec: str) -> Processor:
    """The processor saved with a model directory, else the shipped default."""
    path = Path(spec)
    if (path / "processor_config.json").is_file():
        return Processor.from_pretrained(path)
    return Processor.default()


def scaled_lengths(recipe: Recipe, max_len: int | None) -> tuple[int, tuple]:
    """(max_len, staged lengths) with the stages scaled so the last equals ``max_len``."""
    if max_len is None:
        return recipe.max_len, recipe.lengths
    if not recipe.lengths:
        return max_len, ()
    last = recipe.lengths[-1][1]
    return max_len, tuple((p, max(16, n * max_len // last)) for p, n in recipe.lengths)


def build_trainer(args: argparse.Namespace) -> Trainer:
    """Everything ``run`` needs, built from parsed flags."""
    recipe = get_recipe(args.recipe)
    args.model = args.model or "tiny"
    specs = parse_data_spec(args.data) if args.data else [(n, None) for n in
                                                          recipe.default_sources]
    if not specs:
        raise ValueError(f"recipe {recipe.name} has no default data; pass --data, e.g. "
                         f"--data {recipe.data.names[0]}:RUN_DIR")
    processor = load_processor(args.model)
    sources = {name: source_factory(name, arg, processor, args.seed) for name, arg in specs}
    max_len, lengths = scaled_lengths(recipe, args.max_len)
    overrides: dict[str, Any] = dict(max_len=max_len, lengths=lengths, seed=args.seed,
                                     zero1=args.zero1, parallel=args.parallel,
                                     save_every=args.save_every, progress=not args.no_progress)
    for flag, key in (("steps", "max_steps"), ("batch_size", "micro_batch_size"),
                      ("grad_accum", "grad_accum_steps")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.lr is not None:
        overrides["optim"] = dataclasses.replace(recipe.optim, lr=args.lr)
    config = recipe.trainer_config(args.out, **overrides)
    vlm = load_model(args.model, args.seed)
    module = build_train_module(vlm, recipe.stage)
    packing = recipe.packing if args.packing is None else args.packing
    run_config = {"recipe": recipe.name, "recipe_config": recipe.to_dict(),
                  "data": [f"{n}:{a}" if a else n for n, a in specs],
                  "model": args.model, "model_config": vlm.vl_config.to_dict(),
                  "packing": packing, "world_size": D.world_size()}
    return Trainer(module, config, MixtureStream(sources, seed=args.seed),
                   recipe.data.restricted(sources), make_collate(recipe, processor, packing),
                   run_config=run_config, processor=processor)


def to_argv(args: argparse.Namespace) -> list[str]:
    """Flags that reproduce ``args`` for a torchrun child (``--nproc`` left out)."""
    argv = ["--recipe", args.recipe, "--out", str(args.out), "--model", args.model,
            "--seed", str(args.seed), "--save-every", str(args.save_every),
            "--parallel", args.parallel]
    for flag in ("data", "steps", "batch_size", "grad_accum", "lr", "max_len"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.packing is not None:
        argv.append("--packing" if args.packing else "--no-packing")
    argv += [f"--{f.replace('_', '-')}" for f in ("resume", "zero1", "no_progress")
             if getattr(args, f)]
    return argv


def run_miniwob_tiny(args: argparse.Namespace) -> int:
    """``--recipe miniwob-tiny``: the whole pipeline (``training.miniwob_tiny``) in this process."""
    from training.miniwob_tiny import MiniWoBTinyConfig, run_pipeline

    if args.nproc != 1 or args.zero1 or args.data or args.packing is False or args.grad_accum:
        raise ValueError("--recipe miniwob-tiny runs in one process with its own data and packing: "
                         "leave out --nproc, --zero1, --data, --no-packing and --grad-accum")
    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "max_len": args.max_len,
             "episodes": args.episodes, "workers": args.workers, "model": args.model,
             "save_every": args.save_every or None}
    config = MiniWoBTinyConfig(out=str(args.out), seed=args.seed, progress=not args.no_progress,
                               **{k: v for k, v in given.items() if v is not None})
    summary = run_pipeline(config)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in summary["stage_seconds"].items())
    print(f"miniwob-tiny: training {summary['training_seconds']:.0f} s ({stages}); this run: collect "
          f"{summary['timings']['collect_s']:.0f} s, cot {summary['timings']['cot_s']:.0f} s, "
          f"{summary['steps_this_run']} steps; model {summary['model']} "
          f"({summary['model_bytes'] / 1e6:.1f} MB)", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    """Train (re-launching under torchrun when ``--nproc`` > 1); returns an exit code."""
    if args.recipe == "miniwob-tiny":
        return run_miniwob_tiny(args)
    if args.episodes is not None or args.workers is not None:
        raise ValueError("--episodes and --workers belong to --recipe miniwob-tiny")
    args.model = args.model or "tiny"
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return D.launch(args.nproc, to_argv(args))
    trainer = build_trainer(args)
    try:
        history = trainer.train(resume=args.resume)
        if trainer.dist.is_main and history:
            print(f"{args.recipe}: {len(history)} steps, loss {history[0].loss:.4f} → "
                  f"{history[-1].loss:.4f}; model in {Path(args.out) / 'final'}", flush=True)
    finally:
        D.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.run", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))



if __name__ == "__main__":
    sys.exit(main())
