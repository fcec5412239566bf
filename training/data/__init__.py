"""Training data: samples from trajectories, synthetic GUIs and text; packing into batches.

A *sample* is a dict with ``input_ids: list[int]`` and ``labels: list[int]`` (-100 = no
loss), plus either ``images`` (RGB uint8 arrays, in media-block order) or processed
``pixel_values`` [N,3,14,14] + ``image_grid_hws`` [M,2]; ViT samples carry ``image`` +
``caption_ids``. Extra keys (``id``, ``target_box``, …) are ignored by the collators.
A *batch* is what ``collate_packed`` / ``collate_padded`` / ``collate_captions`` return.

``DATA_SOURCES`` is the explicit registry the trainer and ``pixelpilot train --data`` use:
each entry is called as ``source(arg, processor=..., seed=...)`` and returns a re-iterable
``Samples`` (iterating again starts over, in the same order). ``resolve("a:ARG,b")``
parses the CLI syntax.

========================  =========================================================  ==========
name[:ARG]                samples                                                    ARG
========================  =========================================================  ==========
``trajectories:DIR``      agent SFT steps of a trajectory run (``sft``)               run dir
``cot:DIR``               the same with long reasoning in ``<think>`` (``cot``)       run dir
``synthetic-grounding``   "click the OK button" on rendered GUIs (``gui_samples``)    count (1000)
``synthetic-caption``     screen descriptions, chat + ViT forms (``gui_samples``)     count (1000)
``text``                  shipped corpus + generated text (``text``)                  max tokens (512)
``long-text``             pass-key documents of exactly N tokens (``text``)           N (4096)
========================  =========================================================  ==========
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from model.processing import Processor
from training.data.cot import cot_samples
from training.data.gui_samples import caption_samples, grounding_samples
from training.data.packing import (Batch, SampleTooLongError, batch_tokens, collate_captions, collate_packed,
                                   collate_padded, first_fit, iter_packed_batches, iter_padded_batches,
                                   pack_samples)
from training.data.sft import Sample, SFTConfig, TrajectoryDataError, trajectory_samples
from training.data.text import long_text_samples, text_samples


class DataSpecError(ValueError):
    """A ``--data`` spec names an unknown source or gives it a bad argument."""


@dataclass(frozen=True)
class Samples:
    """A named, re-iterable stream of samples (each ``iter`` starts over, same order)."""

    name: str
    arg: str | None
    factory: Callable[[], Iterator[Sample]]

    def __iter__(self) -> Iterator[Sample]:
        return self.factory()


def _required(name: str, arg: str | None, what: str) -> str:
    if not arg:
        raise DataSpecError(f"data source {name!r} needs an argument: {name}:{what}")
    return arg


def _int_arg(name: str, arg: str | None, default: int, minimum: int = 1) -> int:
    if not arg:
        return default
    try:
        value = int(arg)
    except ValueError:
        raise DataSpecError(f"data source {name!r} takes an integer argument, got {arg!r}") from None
    if value < minimum:
        raise DataSpecError(f"data source {name!r} needs an argument >= {minimum}, got {value}")
    return value


def _trajectories(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    run = _required("trajectories", arg, "RUN_DIR")
    config = SFTConfig(**{"shuffle_seed": seed, **kw})  # runs are grouped by task: visit them mixed
    return Samples("trajectories", arg, lambda: trajectory_samples(run, processor, config))


def _cot(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    run = _required("cot", arg, "RUN_DIR")
    config = SFTConfig(**{"shuffle_seed": seed, **kw})  # runs are grouped by task: visit them mixed
    return Samples("cot", arg, lambda: cot_samples(run, processor, config))


def _grounding(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    n = _int_arg("synthetic-grounding", arg, 1000)
    return Samples("synthetic-grounding", arg, lambda: grounding_samples(n, processor, seed=seed, **kw))


def _caption(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    n = _int_arg("synthetic-caption", arg, 1000)
    return Samples("synthetic-caption", arg, lambda: caption_samples(n, processor, seed=seed, **kw))


def _text(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    n = _int_arg("text", arg, 512, minimum=2)
    return Samples("text", arg, lambda: text_samples(processor, max_tokens=n, seed=seed, **kw))


def _long_text(arg: str | None, *, processor: Processor, seed: int = 0, **kw: Any) -> Samples:
    n = _int_arg("long-text", arg, 4096, minimum=64)
    return Samples("long-text", arg, lambda: long_text_samples(processor, length=n, seed=seed, **kw))


#: The registry: name → ``source(arg, *, processor, seed, **options) -> Samples``.
DATA_SOURCES: dict[str, Callable[..., Samples]] = {
    "trajectories": _trajectories,
    "cot": _cot,
    "synthetic-grounding": _grounding,
    "synthetic-caption": _caption,
    "text": _text,
    "long-text": _long_text,
}


def resolve(spec: str, *, processor: Processor | None = None, seed: int = 0) -> list[Samples]:
    """``"NAME[:ARG],NAME[:ARG],..."`` → one ``Samples`` per entry, in order."""
    processor = processor or Processor.default()
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if not entries:
        raise DataSpecError(f"empty data spec {spec!r}; use NAME[:ARG],... with NAME in {', '.join(DATA_SOURCES)}")
    out = []
    for entry in entries:
        name, _, arg = entry.partition(":")
        if name not in DATA_SOURCES:
            raise DataSpecError(f"unknown data source {name!r}; known: {', '.join(DATA_SOURCES)}")
        out.append(DATA_SOURCES[name](arg or None, processor=processor, seed=seed))
    return out


__all__ = [
    "Batch", "DATA_SOURCES", "DataSpecError", "Sample", "SampleTooLongError", "Samples", "SFTConfig",
    "TrajectoryDataError", "batch_tokens", "collate_captions", "collate_packed", "collate_padded", "first_fit",
    "iter_packed_batches", "iter_padded_batches", "pack_samples", "resolve",
]
