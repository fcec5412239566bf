"""Atomic, resumable training checkpoints.

Layout of ``OUT/checkpoints/step-00000010/``::

    config.json, model.safetensors, tokenizer/processor files   (VLM via save_pretrained:
                             the directory loads with ``from_pretrained``)
    extra.safetensors        stage-only tensors (e.g. ViT pre-training heads), if any
    optimizer-rank{r}.pt     optimizer state (one per rank with ZeRO-1; rank 0 otherwise)
    rng-rank{r}.pt           torch / numpy / python RNG states of rank r
    trainer_state.json       step, data-stream position, mixture weights in force
    train_config.json        the resolved run config

Atomicity: everything is written into ``.step-….tmp``; rank 0 renames it into place only after
every rank has finished, then atomically rewrites ``checkpoints/latest``. A crash leaves either
the previous checkpoint or the new one, never a half-written directory under a real name.
Older checkpoints beyond ``keep`` are removed after the new one is in place.

What this module does not do: decide when to save (the trainer) or rebuild the model
(the trainer builds it, ``load`` copies weights into it in place, so optimizer references
stay valid).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from agent.factory import AGENT_SETTINGS_FILE
from model.modeling import PixelPilotVLForConditionalGeneration
from training import distributed as D

LATEST = "latest"
CONFIG_NAME = "train_config.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing or does not fit this run; the message says what to do."""


@dataclass(frozen=True)
class Restored:
    """What ``load`` gives back besides the tensors it copied in place."""

    step: int
    trainer_state: dict[str, Any]
    path: Path


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model_dir(directory: Path, vlm: PixelPilotVLForConditionalGeneration,
                   processor: Any | None, config: dict[str, Any],
                   extra: dict[str, torch.Tensor]) -> None:
    """A loadable model directory: weights, processor, extra tensors and the run config.

    When the run config names how the agent must run the model (``config["agent"]``, e.g. the
    ``miniwob-tiny`` stages' compact output format and token budget), it is also written as
    ``agent.json`` so the directory runs as trained (``pixelpilot eval --model DIR``); without it
    the agent would fall back to its generic defaults and the model would answer out of format.
    """
    vlm.save_pretrained(directory)
    if processor is not None:
        processor.save_pretrained(directory)
    if isinstance(config.get("agent"), dict):
        write_json_atomic(directory / AGENT_SETTINGS_FILE, config["agent"])
    if extra:
        save_file({k: v.detach().cpu().contiguous() for k, v in extra.items()},
                  str(directory / "extra.safetensors"))
    write_json_atomic(directory / CONFIG_NAME, config)


def save(out_dir: Path, step: int, vlm: PixelPilotVLForConditionalGeneration,
         optimizer: Any, extra: dict[str, torch.Tensor], trainer_state: dict[str, Any],
         config: dict[str, Any], processor: Any | None = None, keep: int = 2,
         sharded_optimizer: bool = False) -> Path:
    """Write checkpoint ``step`` on every rank's behalf (call on all ranks); returns its path."""
    root = out_dir / "checkpoints"
    final = root / step_dir_name(step)
    tmp = root / f".{step_dir_name(step)}.tmp"
    if D.rank() == 0:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        save_model_dir(tmp, vlm, processor, config, extra)
        write_json_atomic(tmp / "trainer_state.json", {"step": step, **trainer_state})
    D.barrier()
    if sharded_optimizer or D.rank() == 0:
        torch.save(optimizer.state_dict(), tmp / f"optimizer-rank{D.rank()}.pt")
    torch.save(rng_state(), tmp / f"rng-rank{D.rank()}.pt")
    D.barrier()
    if D.rank() == 0:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        (root / LATEST).with_name(f".{LATEST}.tmp").write_text(final.name + "\n")
        os.replace(root / f".{LATEST}.tmp", root / LATEST)
        _prune(root, keep)
    D.barrier()
    return final


def _prune(root: Path, keep: int) -> None:
    if keep <= 0:
        return
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[:-keep]:
        shutil.rmtree(old)


def extra_keys(module: torch.nn.Module) -> set[str]:
    """State keys of ``module`` outside its ``vlm`` (what ``extra.safetensors`` holds)."""
    return {k for k in module.state_dict() if not k.startswith("vlm.")}


def latest(out_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    pointer = out_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not (path / "trainer_state.json").is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is incomplete; delete "
                              f"{pointer} to resume from scratch, or restore the directory")
    return path


def load(path: Path, vlm: PixelPilotVLForConditionalGeneration, optimizer: Any,
         extra_module: torch.nn.Module | None = None, sharded_optimizer: bool = False
         ) -> Restored:
    """Copy weights, optimizer and RNG state of checkpoint ``path`` into this run's objects."""
    loaded = PixelPilotVLForConditionalGeneration.from_pretrained(path)
    if loaded.config.text_config != vlm.config.text_config or \
            loaded.config.vision_config != vlm.config.vision_config:
        raise CheckpointError(f"{path} holds a model with a different config; resume with the "
                              "same --model preset and recipe")
    with torch.no_grad():
        vlm.load_state_dict(loaded.state_dict())
    if extra_module is not None and (path / "extra.safetensors").is_file():
        tensors = load_file(str(path / "extra.safetensors"))
        result = extra_module.load_state_dict(tensors, strict=False)
        missing = [k for k in result.missing_keys if k in extra_keys(extra_module)]
        if missing or result.unexpected_keys:
            raise CheckpointError(f"{path}/extra.safetensors does not fit this stage (missing "
                                  f"{missing[:3]}, unexpected {result.unexpected_keys[:3]})")
    opt_file = path / f"optimizer-rank{D.rank() if sharded_optimizer else 0}.pt"
    if not opt_file.is_file():
        raise CheckpointError(f"{opt_file} is missing: resume with the same --nproc and "
                              "ZeRO setting as the saved run")
    optimizer.load_state_dict(torch.load(opt_file, weights_only=False))
    rng_file = path / f"rng-rank{D.rank()}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=False))
    state = json.loads((path / "trainer_state.json").read_text())
    return Restored(step=int(state["step"]), trainer_state=state, path=path)
