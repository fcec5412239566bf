"""Worker of the distributed tests: one rank of a 2-process gloo group (torch.multiprocessing).

Trains the same tiny run two ways in one process group — DDP and DDP + ZeRO-1 — and
writes each loss curve and the final weights to ``OUT/<mode>/`` (rank 0).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from tests.training.core_helpers import make_trainer, text_samples, image_samples

SOURCES = {"text": lambda: text_samples(0, count=12),
           "synthetic-caption": lambda: image_samples(1, count=6)}
MODES = {"ddp": dict(parallel="ddp"), "zero1": dict(parallel="ddp", zero1=True)}


def run_mode(out: Path, mode: str, world: int) -> None:
    """Train 3 steps with a global micro-batch of 4 samples split over ``world`` ranks."""
    trainer = make_trainer("joint_pretrain", str(out / mode), SOURCES, steps=3,
                           micro_batch_size=4 // world, grad_accum_steps=2, **MODES[mode])
    history = trainer.train()
    info = {"losses": [r.loss for r in history], "rank": trainer.dist.rank}
    if trainer.sharded_optimizer:
        info["local_state_numel"] = trainer.optimizer.local_state_numel()
        info["total_numel"] = sum(p.numel() for p in trainer.params)
    (out / mode / f"result-rank{trainer.dist.rank}.json").write_text(json.dumps(info))


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        for mode in MODES:
            run_mode(Path(out), mode, world)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
