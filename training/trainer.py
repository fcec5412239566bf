"""The training loop as a config + trainer pair (TRL style): ``TrainerConfig`` + ``Trainer``.

One optimizer step = ``grad_accum_steps`` micro-batches per rank. Each micro-batch holds
``micro_batch_size`` samples; the global stream hands out ``micro_batch_size × world`` samples
per micro-batch and rank r takes slice r, so 1 process with the global batch and K processes
with 1/K each see the same samples. Every micro-batch's loss *sum* is divided by the loss-token
count of the whole step over all ranks (``training.losses``), then DDP averages — the gradient
equals the single-big-batch gradient whatever the packing.

Per step: LR from the schedule (warmup + cosine / WSD / constant), backward, global-norm
gradient clipping, optimizer step, MoE routing-bias update with loads summed over ranks (only
when the decoder trains: a frozen decoder keeps its biases bit-identical), one JSONL metrics
record. Checkpoints every ``save_every`` steps and at the end (``training.checkpoint``),
resume from the latest one with ``resume=True``; the loss curve (PNG) is redrawn at each
checkpoint. The final model goes to ``OUT/final`` (loads with ``from_pretrained``).

What this module does not do: build models, data sources or recipes (``training.run``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from training import checkpoint as ckpt
from training import distributed as D
from training.mixture import DataMix, MixtureStream, Sample
from training.optim import OptimConfig, ZeroMuonAdamW, build_optimizer, split_param_groups
from training.optim.muon import MuonAdamW
from training.plots import plot_loss_curve

Batch = dict[str, torch.Tensor]
Collate = Callable[[list[Sample], int], Batch]


@dataclass(frozen=True)
class ScheduleConfig:
    """LR multiplier over the run: linear warmup, then cosine, WSD or constant."""

    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # final LR / peak LR (cosine and WSD)
    decay_fraction: float = 0.2  # WSD: the last fraction of steps decays linearly

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "wsd", "constant"):
            raise ValueError(f"ScheduleConfig.kind must be cosine, wsd or constant, "
                             f"got {self.kind!r}")
        if self.warmup_steps < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("ScheduleConfig needs warmup_steps >= 0, 0 <= min_lr_ratio <= 1")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError("ScheduleConfig.decay_fraction must lie in (0, 1]")


def lr_factor(step: int, total: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the peak LR for the update made at 0-based ``step`` of ``total``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return 1.0
    if cfg.kind == "cosine":
        span = max(1, total - cfg.warmup_steps - 1)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    decay_steps = max(1, round(cfg.decay_fraction * total))
    decay_start = total - decay_steps
    if step < decay_start:
        return 1.0
    t = (step - decay_start + 1) / decay_steps
    return 1.0 - (1.0 - cfg.min_lr_ratio) * t


@dataclass(frozen=True)
class TrainerConfig:
    """How to run the loop (the recipe decides what is trained on what)."""

    output_dir: str
    max_steps: int = 100
    micro_batch_size: int = 4  # samples per micro-batch per rank
    grad_accum_steps: int = 1
    max_len: int = 1024  # packed row length (or truncation length when padding)
    lengths: tuple[tuple[float, int], ...] = ()  # staged (from_progress, max_len); overrides
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    save_every: int = 0  # 0: checkpoint only at the end
    keep_checkpoints: int = 2
    seed: int = 0
    parallel: D.ParallelMode = "ddp"  # used when launched with several processes
    zero1: bool = False  # shard optimizer state across ranks (ZeRO-1)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("max_steps", "micro_batch_size", "grad_accum_steps", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainerConfig.{name} must be >= 1")
        if self.grad_clip < 0 or self.save_every < 0:
            raise ValueError("TrainerConfig.grad_clip and save_every must be >= 0")
        starts = [p for p, _ in self.lengths]
        if starts and (starts[0] != 0 or starts != sorted(starts)):
            raise ValueError("TrainerConfig.lengths must start at progress 0 and increase")
        if self.parallel not in ("ddp", "none"):
            # FSDP2 (training.distributed.wrap_model) shards a module fine on CPU/gloo, but the
            # loop is not ready for it: ranks that skip the vision tower (text-only batches)
            # issue different collectives, and save_pretrained needs gathered DTensors.
            raise ValueError(f"TrainerConfig.parallel must be 'ddp' or 'none', got "
                             f"{self.parallel!r}; shard optimizer state with zero1=True")
        object.__setattr__(self, "lengths", tuple((float(p), int(n)) for p, n in self.lengths))

    def max_len_at(self, progress: float) -> int:
        """Row length in force at ``progress`` (staged lengths, else ``max_len``)."""
        length = self.max_len
        for start, n in self.lengths:
            if progress >= start:
                length = n
        return length

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StepRecord:
    """One line of ``metrics.jsonl``."""

    step: int  # optimizer steps done (1-based)
    loss: float
    lr: float
    grad_norm: float
    loss_tokens: int
    tokens: int  # non-pad tokens processed over all ranks
    tokens_per_s: float
    max_len: int
    weights: dict[str, float]


class Trainer:
    """Runs a stage module (``training.stages``) over a mixture stream; see module doc."""

    def __init__(self, module: nn.Module, config: TrainerConfig, stream: MixtureStream,
                 mix: DataMix, collate: Collate, run_config: Mapping[str, Any] | None = None,
                 processor: Any | None = None) -> None:
        self.config = config
        self.module = module
        self.vlm = module.vlm  # type: ignore[attr-defined]
        self.stream, self.mix, self.collate = stream, mix, collate
        self.processor = processor
        self.out = Path(config.output_dir)
        self.dist = D.init_distributed()
        self.device = torch.device(self.dist.device)
        module.to(self.device)
        self.run_config = {"trainer": config.to_dict(), **dict(run_config or {})}
        self.wrapped = D.wrap_model(module, config.parallel if self.dist.world_size > 1
                                    else "none")
        self.optimizer = self._build_optimizer()
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.history: list[StepRecord] = []
        self.step = 0

    def _build_optimizer(self) -> MuonAdamW | ZeroMuonAdamW:
        heads = self.module.output_heads()  # type: ignore[operator]
        if self.config.zero1 and self.dist.world_size > 1:
            return ZeroMuonAdamW(split_param_groups(self.module, self.config.optim, heads),
                                 self.config.optim)
        return build_optimizer(self.module, self.config.optim, heads)

    @property
    def sharded_optimizer(self) -> bool:
        return isinstance(self.optimizer, ZeroMuonAdamW)

    # -- data -------------------------------------------------------------------------------

    def _micro_batches(self, progress: float, max_len: int) -> tuple[list[Batch], dict]:
        weights = self.mix.at(progress)
        mbs, world, rank = self.config.micro_batch_size, self.dist.world_size, self.dist.rank
        batches = []
        for _ in range(self.config.grad_accum_steps):
            samples = self.stream.take(mbs * world, weights)[rank * mbs:(rank + 1) * mbs]
            batch = self.collate(samples, max_len)
            batches.append({k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                            for k, v in batch.items()})
        return batches, weights

    # -- one step ---------------------------------------------------------------------------

    def _set_lr(self, step: int) -> float:
        factor = lr_factor(step, self.config.max_steps, self.config.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return self.config.optim.lr * factor

    def train_step(self) -> StepRecord:
        """One optimizer step over ``grad_accum_steps`` micro-batches; returns its record."""
        started = time.perf_counter()
        progress = self.step / self.config.max_steps
        max_len = self.config.max_len_at(progress)
        batches, weights = self._micro_batches(progress, max_len)
        counts = [self.module.count(b) for b in batches]  # type: ignore[operator]
        total = float(D.all_reduce_sum(sum(counts)))
        scale = self.dist.world_size / max(total, 1.0)
        lr = self._set_lr(self.step)
        loss_sum = torch.zeros((), dtype=torch.float64)
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = (self.wrapped.no_sync() if isinstance(self.wrapped, nn.parallel.
                    DistributedDataParallel) and not last else contextlib.nullcontext())
            with sync:
                part, _ = self.wrapped(batch)
                (part * scale).backward()
            loss_sum += part.detach().double().cpu()
        grad_norm = self._clip()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self._update_routing_biases()
        self.step += 1
        tokens = int(D.all_reduce_sum(sum(int((b["attention_mask"] > 0).sum()) if
                                          "attention_mask" in b else 0 for b in batches)))
        elapsed = time.perf_counter() - started
        return StepRecord(step=self.step, loss=float(D.all_reduce_sum(loss_sum)) / max(total, 1),
                          lr=lr, grad_norm=grad_norm, loss_tokens=int(total), tokens=tokens,
                          tokens_per_s=tokens / elapsed if elapsed > 0 else 0.0,
                          max_len=max_len, weights=weights)

    def _clip(self) -> float:
        if not self.params:
            return 0.0
        limit = self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        norm = nn.utils.clip_grad_norm_(self.params, limit)
        if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor
            norm = norm.full_tensor()
        return float(norm)

    @torch.no_grad()
    def _update_routing_biases(self) -> None:
        for moe in self.vlm.moe_layers():
            if not moe.router.weight.requires_grad:
                moe.update_bias(gamma=0.0)  # frozen decoder: reset the counter, keep biases
                continue
            load = D.all_reduce_tensor_(moe.expert_load.detach().float().clone())
            moe.update_bias(load=load)

    # -- the run ----------------------------------------------------------------------------

    def train(self, resume: bool = False, until: int | None = None) -> list[StepRecord]:
        """Run to ``max_steps`` (from the latest checkpoint with ``resume``); returns history.

        ``until`` stops early after that many steps with a checkpoint (the schedule still
        spans ``max_steps``): an interruption that ``resume=True`` continues exactly.
        """
        stop = self.config.max_steps if until is None else min(until, self.config.max_steps)
        if resume:
            self._resume()
        elif self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "metrics.jsonl").write_text("")
        D.barrier()
        if self.dist.is_main:
            ckpt.write_json_atomic(self.out / ckpt.CONFIG_NAME, self.run_config)
        self.module.train()
        # Into a terminal the bar redraws up to 10 times a second; into a file or pipe (a log)
        # every 30 s, so an hour's run logs ~120 lines instead of one redraw per step.
        interactive = sys.stderr.isatty()
        bar = tqdm(total=self.config.max_steps, initial=self.step, unit="step",
                   disable=not (self.config.progress and self.dist.is_main), dynamic_ncols=True,
                   mininterval=0.1 if interactive else 30.0)
        with bar:
            while self.step < stop:
                record = self.train_step()
                self._log(record)
                bar.set_postfix(loss=f"{record.loss:.4f}", lr=f"{record.lr:.2e}",
                                tok_s=f"{record.tokens_per_s:.0f}", refresh=False)  # drawn by update's clock
                bar.update(1)
                every = self.config.save_every
                if (every and self.step % every == 0) or self.step == stop:
                    self.save_checkpoint()
        if self.step == self.config.max_steps:
            self.save_final()
        return self.history

    def _log(self, record: StepRecord) -> None:
        self.history.append(record)
        if self.dist.is_main:
            with (self.out / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(dataclasses.asdict(record)) + "\n")

    def _trainer_state(self) -> dict[str, Any]:
        return {"data": self.stream.state_dict(), "world_size": self.dist.world_size}

    def save_checkpoint(self) -> Path:
        """Checkpoint the current step (all ranks must call it)."""
        path = ckpt.save(self.out, self.step, self.vlm, self.optimizer,
                         self.module.extra_state(), self._trainer_state(),  # type: ignore[operator]
                         self.run_config, self.processor, self.config.keep_checkpoints,
                         self.sharded_optimizer)
        if self.dist.is_main:
            plot_loss_curve(read_metrics(self.out), self.out / "loss_curve.png",
                            title=str(self.run_config.get("recipe", "")))
        return path

    def _resume(self) -> None:
        path = ckpt.latest(self.out)
        if path is None:
            raise ckpt.CheckpointError(f"no checkpoint under {self.out}/checkpoints to resume "
                                       "from; run without --resume to start fresh")
        restored = ckpt.load(path, self.vlm, self.optimizer, self.module, self.sharded_optimizer)
        state = restored.trainer_state
        if state.get("world_size") != self.dist.world_size:
            raise ckpt.CheckpointError(f"{path} was written by {state.get('world_size')} "
                                       f"processes; resume with --nproc {state.get('world_size')}")
        self.stream.load_state_dict(state["data"])
        self.step = restored.step
        D.barrier()
        if self.dist.is_main:  # drop metrics of steps after the checkpoint (a crashed tail)
            kept = [r for r in read_metrics(self.out) if r["step"] <= self.step]
            (self.out / "metrics.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in kept))

    def save_final(self) -> Path:
        """Write ``OUT/final``: the trained VLM (``from_pretrained``-loadable) + processor."""
        final = self.out / "final"
        if self.dist.is_main:
            final.mkdir(parents=True, exist_ok=True)
            ckpt.save_model_dir(final, self.vlm, self.processor, self.run_config,
                                self.module.extra_state())  # type: ignore[operator]
            plot_loss_curve(read_metrics(self.out), self.out / "loss_curve.png",
                            title=str(self.run_config.get("recipe", "")))
        D.barrier()
        return final


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """Records of ``OUT/metrics.jsonl`` (empty if none)."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def losses(records: Sequence[StepRecord | Mapping[str, Any]]) -> list[float]:
    """The loss curve of a history or of ``read_metrics`` records."""
    return [r.loss if isinstance(r, StepRecord) else float(r["loss"]) for r in records]
