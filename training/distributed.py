"""Distributed launch and data parallelism on CPU (gloo) or GPU (NCCL).

- ``init_distributed``: reads torchrun's environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``); gloo on CPU, NCCL when CUDA is present; a single process without torchrun
  needs no process group at all.
- ``wrap_model``: ``"ddp"`` (``DistributedDataParallel``; ``find_unused_parameters`` because
  text-only micro-batches leave the vision tower out of the graph), ``"fsdp2"``
  (``torch.distributed.fsdp.fully_shard`` per decoder layer, then the root).
  FSDP2 shards and trains on CPU with gloo in torch 2.13, and Muon gathers each sharded
  gradient matrix for Newton–Schulz (``training.optim.muon``), but the trainer does not use it
  yet: ranks whose batch has no image skip the vision tower and issue different collectives,
  and ``save_pretrained`` of DTensor parameters fails. DDP (+ ZeRO-1) is the supported path.
- ``launch``: re-runs ``python -m training.run ...`` under ``torchrun --standalone`` with K
  processes (what ``pixelpilot train --nproc K`` does).

What this module does not do: decide what each rank trains on (the trainer slices the global
batch by rank) or shard optimizer state (``training.optim.zero``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn

ParallelMode = Literal["none", "ddp", "fsdp2"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size, and its torch device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group torchrun set up (no-op for a single plain process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    dev = f"cuda:{local}" if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def shutdown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(value: torch.Tensor | float) -> torch.Tensor:
    """Sum of ``value`` over ranks (float64 on CPU for exact counts); identity alone."""
    t = torch.as_tensor(value, dtype=torch.float64).detach().clone().cpu()
    if dist.is_initialized():
        dist.all_reduce(t)
    return t


def all_reduce_tensor_(t: torch.Tensor) -> torch.Tensor:
    """In-place sum over ranks (identity without a process group)."""
    if dist.is_initialized():
        dist.all_reduce(t)
    return t


def wrap_model(module: nn.Module, mode: ParallelMode) -> nn.Module:
    """The module as the training loop calls it (``module`` itself when ``mode="none"``)."""
    if mode == "none" or not dist.is_initialized():
        return module
    if mode == "ddp":
        if not any(p.requires_grad for p in module.parameters()):
            raise ValueError("nothing to train: every parameter is frozen")
        return nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)
    if mode == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for sub in module.modules():
            # Only decoder layers get their own group: every rank runs them every step. A
            # vision block skipped on a text-only rank would all-gather on one rank only and
            # hang the other; the vision tower therefore lives in the root group.
            if type(sub).__name__ == "DecoderLayer":
                fully_shard(sub)
        fully_shard(module)
        return module
    raise ValueError(f"parallel mode must be 'none', 'ddp' or 'fsdp2', got {mode!r}")


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 modifies in place, nothing to unwrap)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def torchrun_command(nproc: int, module_args: Sequence[str]) -> list[str]:
    """``torchrun --standalone --nproc_per_node K -m training.run ARGS`` for this Python."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "training.run", *module_args]


def launch(nproc: int, module_args: Sequence[str]) -> int:
    """Run ``training.run`` with ``nproc`` processes under torchrun; returns its exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.run(torchrun_command(nproc, module_args), env=env, check=False).returncode
