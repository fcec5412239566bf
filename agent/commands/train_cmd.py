"""``pixelpilot train``: run one training stage (recipe) on CPU or GPUs, optionally resumed.

Thin wrapper over ``training.run`` (flags, torchrun re-launch for ``--nproc``, the loop). The
command module is imported by name: the CLI is the one place above every package, and a static
import would make ``agent`` (library code) depend on ``training``, against the import direction.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

for _dep in ("torch", "transformers", "matplotlib"):
    if importlib.util.find_spec(_dep) is None:
        raise ImportError(f"pixelpilot train needs {_dep}: pip install 'pixelpilot[train]'",
                          name=_dep)

_RUNNER = "training.run"


def _train(args: argparse.Namespace) -> int:
    return int(importlib.import_module(_RUNNER).run(args))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the model: one Kimi-VL stage per run (recipes)",
                       description="Stages: vit_pretrain, align, joint_pretrain, cooldown, "
                       "long_context, sft, long_cot_sft. Writes OUT/metrics.jsonl, "
                       "OUT/loss_curve.png, OUT/checkpoints/, OUT/final (from_pretrained).")
    importlib.import_module(_RUNNER).add_arguments(p)
    p.set_defaults(func=_train)
