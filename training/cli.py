"""``pixelpilot train``: run one training stage (recipe) on CPU or GPUs, optionally resumed.

The sub-command lives here, not in ``agent.commands``, because ``agent`` must not depend on
``training``; the CLI dispatcher (``agent.cli``) loads it by name like every sub-command.
This module is torch-free so that ``pixelpilot --help`` stays fast: the flags are defined
here and ``training.run`` (torch, the model, the loop) is imported only when training starts.
"""

from __future__ import annotations

import argparse
import importlib.util

#: The recipes of ``training.recipes.RECIPES`` (a test keeps the two in step).
RECIPE_NAMES: tuple[str, ...] = ("align", "cooldown", "joint_pretrain", "long_context", "long_cot_sft", "sft",
                                 "vit_pretrain")
#: Multi-part pipelines (``training.miniwob_tiny``): collect data, synthesize CoT, train, export.
PIPELINE_NAMES: tuple[str, ...] = ("miniwob-tiny",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``pixelpilot train`` / ``python -m training.run``."""
    p.add_argument("--recipe", required=True, choices=RECIPE_NAMES + PIPELINE_NAMES,
                   help="training stage preset (training.recipes), or miniwob-tiny: the whole pipeline "
                        "behind the shipped model (expert episodes, CoT, SFT, export to OUT/model)")
    p.add_argument("--data", default=None, help="sources NAME[:ARG],... from training.data "
                   "(default: the recipe's argument-free sources)")
    p.add_argument("--out", required=True, help="run directory: checkpoints, metrics, final/")
    p.add_argument("--model", default=None, help="preset (tiny, small, miniwob_tiny, kimi_vl_a3b) or a "
                   "saved model directory, e.g. the previous stage's OUT/final (default: tiny; "
                   "miniwob-tiny: miniwob_tiny)")
    p.add_argument("--resume", action="store_true", help="continue from OUT's latest checkpoint")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (recipe default)")
    p.add_argument("--batch-size", type=int, default=None, help="samples per micro-batch per rank")
    p.add_argument("--grad-accum", type=int, default=None, help="micro-batches per step")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--max-len", type=int, default=None, help="row length (scales staged lengths)")
    p.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                   help="pack samples into rows (recipe default)")
    p.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nproc", type=int, default=1, help="processes (torchrun, gloo/NCCL)")
    p.add_argument("--parallel", choices=("ddp",), default="ddp",
                   help="data parallelism with --nproc > 1 (FSDP2: see training.distributed)")
    p.add_argument("--zero1", action="store_true", help="shard optimizer state (ZeRO-1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--episodes", type=int, default=None,
                   help="miniwob-tiny: expert episodes per task (default 600)")
    p.add_argument("--workers", type=int, default=None, help="miniwob-tiny: collection processes (default 2)")



def _train(args: argparse.Namespace) -> int:
    for dep in ("torch", "transformers", "matplotlib"):
        if importlib.util.find_spec(dep) is None:
            raise ImportError(f"pixelpilot train needs {dep}: pip install 'pixelpilot[train]'", name=dep)
    from training import run

    return int(run.run(args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the model: one Kimi-VL stage per run (recipes)",
                       description="Stages: " + ", ".join(RECIPE_NAMES) + ". Writes OUT/metrics.jsonl, "
                       "OUT/loss_curve.png, OUT/checkpoints/, OUT/final (from_pretrained). "
                       "miniwob-tiny runs the pipeline of the shipped model (training.miniwob_tiny).")
    add_arguments(p)
    p.set_defaults(func=_train)
