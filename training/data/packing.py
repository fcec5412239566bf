"""Samples → batches: sequence packing with isolated segments, and plain padding.

A *packed* row holds several samples one after another; ``attention_mask`` gives each its own
segment id (1, 2, 3, … within the row, 0 for padding). The decoder attends causally within a
segment and restarts positions per segment (``model.decoder``), so a sample computes exactly
what it would alone. The loss is shifted (token t predicts t+1), so the label of each
segment's first token is set to -100: otherwise the last token of one sample would be
trained to predict the first token of the next.

Packing is first-fit over the samples in order (``first_fit``); ``decreasing=True`` sorts by
length first (first-fit decreasing: fuller rows, order not kept). Images keep row-major media
order: row 0's samples in order, each sample's images in order, then row 1, ….

Truncation rules for a sample longer than ``max_len`` (``overflow``):

- ``"truncate"`` (default): cut the tail to ``max_len`` tokens, allowed only when no image
  block is cut (every media token lies before ``max_len``) and some label survives the cut;
  otherwise the sample is dropped (counted in ``PackResult.dropped``);
- ``"drop"``: drop it (counted);
- ``"error"``: raise ``SampleTooLongError``.

``collate_padded`` puts one sample per row, right-padded to the longest (same truncation
rules when ``max_len`` is given). Samples may carry raw ``images`` instead of
``pixel_values``/``image_grid_hws``; they are preprocessed here. ``compact_pixels`` keeps a
sample's patches as uint8 (4x less memory for data held in RAM); collation normalises them
back to the same float32 values. A sample's ``media_targets`` (``[K, 2]`` pairs of media token
index within the sample and token id, ``training.data.media_words``) become the batch's
``media_targets`` with indices shifted to the batch's media tokens (images in row-major order).
This module knows nothing about where samples come from.

Shapes: B rows, T tokens per row, N patches, M images, L caption tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from model.processing import ImageProcessor, num_media_tokens
from model.processing.processor import IGNORE_INDEX
from model.special_tokens import MEDIA_PAD_TOKEN_ID, PAD_TOKEN_ID

Sample = dict[str, Any]
Batch = dict[str, torch.Tensor]
Overflow = Literal["truncate", "drop", "error"]
OVERFLOW_RULES: tuple[str, ...] = ("truncate", "drop", "error")


class SampleTooLongError(ValueError):
    """A sample does not fit ``max_len``; raise ``max_len`` or use overflow='truncate'/'drop'."""


@dataclass(frozen=True)
class PackResult:
    """Rows of samples (each row's lengths sum to at most ``max_len``) and what did not fit."""

    rows: list[list[Sample]]
    dropped: int = 0
    truncated: int = 0

    @property
    def num_samples(self) -> int:
        return sum(len(r) for r in self.rows)


def sample_length(sample: Sample) -> int:
    """Tokens of a sample."""
    return len(sample["input_ids"])


def first_fit(lengths: Sequence[int], max_len: int, *, decreasing: bool = False) -> list[list[int]]:
    """Indices grouped into bins of total length ≤ ``max_len`` (first fit; each length ≤ max_len)."""
    if max_len <= 0:
        raise ValueError(f"max_len must be > 0, got {max_len}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if decreasing else range(len(lengths))
    bins: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = lengths[i]
        if n > max_len or n <= 0:
            raise ValueError(f"item {i} has length {n}; lengths must lie in 1..max_len={max_len}")
        for b, room in enumerate(free):
            if n <= room:
                bins[b].append(i)
                free[b] -= n
                break
        else:
            bins.append([i])
            free.append(max_len - n)
    return bins


def fit_sample(sample: Sample, max_len: int, overflow: Overflow = "truncate") -> Sample | None:
    """``sample`` if it fits, a truncated copy, or None (dropped), per the module's rules."""
    if overflow not in OVERFLOW_RULES:
        raise ValueError(f"overflow must be one of {OVERFLOW_RULES}, got {overflow!r}")
    n = sample_length(sample)
    if n <= max_len:
        return sample
    if overflow == "error":
        raise SampleTooLongError(f"sample {sample.get('id', '?')} has {n} tokens > max_len={max_len}; raise "
                                 "max_len or pass overflow='truncate' or 'drop'")
    if overflow == "drop":
        return None
    ids, labels = sample["input_ids"], sample["labels"]
    if MEDIA_PAD_TOKEN_ID in ids[max_len:] or all(label == IGNORE_INDEX for label in labels[1:max_len]):
        return None  # would cut an image, or leave nothing to learn
    return {**sample, "input_ids": ids[:max_len], "labels": labels[:max_len], "truncated_from": n}


def pack_samples(samples: Iterable[Sample], max_len: int, *, overflow: Overflow = "truncate",
                 decreasing: bool = False) -> PackResult:
    """Fit every sample to ``max_len`` and pack them into rows (see ``first_fit``)."""
    kept: list[Sample] = []
    dropped = truncated = 0
    for sample in samples:
        fitted = fit_sample(sample, max_len, overflow)
        if fitted is None:
            dropped += 1
            continue
        truncated += fitted is not sample
        kept.append(fitted)
    bins = first_fit([sample_length(s) for s in kept], max_len, decreasing=decreasing)
    return PackResult([[kept[i] for i in b] for b in bins], dropped, truncated)


def collate_packed(samples: Sequence[Sample], max_len: int, *, overflow: Overflow = "truncate",
                   decreasing: bool = False, pad_to_max_len: bool = True,
                   image_processor: ImageProcessor | None = None) -> Batch:
    """Pack ``samples`` into rows of ``max_len`` tokens (T = max_len, or the longest row)."""
    packed = pack_samples(samples, max_len, overflow=overflow, decreasing=decreasing)
    if not packed.rows:
        raise SampleTooLongError(f"none of the {len(samples)} samples fits max_len={max_len} "
                                 f"({packed.dropped} dropped); raise max_len")
    width = max_len if pad_to_max_len else max(sum(map(sample_length, r)) for r in packed.rows)
    return _rows_to_batch(packed.rows, width, image_processor)


def collate_padded(samples: Sequence[Sample], *, max_len: int | None = None, overflow: Overflow = "truncate",
                   image_processor: ImageProcessor | None = None) -> Batch:
    """One sample per row, right-padded to the longest (truncated to ``max_len`` if given)."""
    rows = []
    for sample in samples:
        fitted = sample if max_len is None else fit_sample(sample, max_len, overflow)
        if fitted is not None:
            rows.append([fitted])
    if not rows:
        raise SampleTooLongError(f"none of the {len(samples)} samples fits max_len={max_len}; raise max_len")
    return _rows_to_batch(rows, max(sample_length(r[0]) for r in rows), image_processor)


def _rows_to_batch(rows: list[list[Sample]], width: int, image_processor: ImageProcessor | None) -> Batch:
    ids_BT = torch.full((len(rows), width), PAD_TOKEN_ID, dtype=torch.long)
    seg_BT = torch.zeros((len(rows), width), dtype=torch.long)
    labels_BT = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    patches: list[torch.Tensor] = []
    grids: list[torch.Tensor] = []
    media_targets: list[torch.Tensor] = []
    media = 0  # media tokens of the samples laid out so far (the projector's output order)
    merge = (image_processor or ImageProcessor()).config.merge_size
    for r, row in enumerate(rows):
        col = 0
        for seg, sample in enumerate(row, start=1):
            n = sample_length(sample)
            ids_BT[r, col:col + n] = torch.as_tensor(sample["input_ids"], dtype=torch.long)
            labels_BT[r, col:col + n] = torch.as_tensor(sample["labels"], dtype=torch.long)
            labels_BT[r, col] = IGNORE_INDEX  # nothing before a segment's first token may predict it
            seg_BT[r, col:col + n] = seg
            col += n
            pixel_values, grid_hws = _sample_images(sample, image_processor)
            if grid_hws is not None:
                patches.append(pixel_values)
                grids.append(grid_hws)
                targets = sample.get("media_targets")
                if targets is not None and len(targets):
                    media_targets.append(torch.as_tensor(targets, dtype=torch.long) + torch.tensor([media, 0]))
                media += sum(num_media_tokens(tuple(g), merge) for g in grid_hws.tolist())
    batch: Batch = {"input_ids": ids_BT, "attention_mask": seg_BT, "labels": labels_BT}
    if grids:
        batch["pixel_values"] = torch.cat(patches)
        batch["image_grid_hws"] = torch.cat(grids)
    if media_targets:
        batch["media_targets"] = torch.cat(media_targets)
    _check_media(batch)
    return batch


def _sample_images(sample: Sample, image_processor: ImageProcessor | None
                   ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(pixel_values [N,3,14,14], image_grid_hws [M,2]) of a sample, preprocessing raw images."""
    if sample.get("image_grid_hws") is not None:
        pixels = sample["pixel_values"]
        if pixels is not None and pixels.dtype == torch.uint8:  # kept compact (``compact_pixels``)
            pixels = (image_processor or ImageProcessor()).normalize(pixels)
        return pixels, sample["image_grid_hws"]
    images = sample.get("images") or []
    if not images:
        return None, None
    proc = image_processor or ImageProcessor()
    outs = [proc.preprocess(img) for img in images]
    return (torch.cat([pv for pv, _ in outs]),
            torch.tensor([meta.grid_hw for _, meta in outs], dtype=torch.long))


def compact_pixels(sample: Sample, image_processor: ImageProcessor | None = None) -> Sample:
    """``sample`` with its ``pixel_values`` as raw uint8 patches (``ImageProcessor.raw_patches``).

    Collating the result (with the same processor) gives bit-identical batches; a sample
    without patches, or already compact, is returned as it is.
    """
    pixels = sample.get("pixel_values")
    if pixels is None or pixels.dtype == torch.uint8:
        return sample
    return {**sample, "pixel_values": (image_processor or ImageProcessor()).raw_patches(pixels)}


def _check_media(batch: Batch) -> None:
    pads = int((batch["input_ids"] == MEDIA_PAD_TOKEN_ID).sum())
    grids = batch.get("image_grid_hws")
    expected = 0 if grids is None else sum(num_media_tokens((int(h), int(w))) for h, w in grids.tolist())
    if pads != expected:
        raise ValueError(f"the batch holds {pads} <|media_pad|> tokens but its images need {expected}; build "
                         "samples with the pixelpilot processor and keep one image per media block")


def collate_captions(samples: Sequence[Sample], image_processor: ImageProcessor | None = None) -> Batch:
    """ViT pre-training batch: ``pixel_values``, ``image_grid_hws``, ``caption_ids`` [M,L], ``caption_mask`` [M,L]."""
    if not samples:
        raise ValueError("collate_captions needs at least one sample")
    proc = image_processor or ImageProcessor()
    outs = [proc.preprocess(s["image"]) for s in samples]
    width = max(len(s["caption_ids"]) for s in samples)
    ids_ML = torch.full((len(samples), width), PAD_TOKEN_ID, dtype=torch.long)
    mask_ML = torch.zeros((len(samples), width), dtype=torch.long)
    for m, sample in enumerate(samples):
        n = len(sample["caption_ids"])
        ids_ML[m, :n] = torch.as_tensor(sample["caption_ids"], dtype=torch.long)
        mask_ML[m, :n] = 1
    return {"pixel_values": torch.cat([pv for pv, _ in outs]),
            "image_grid_hws": torch.tensor([meta.grid_hw for _, meta in outs], dtype=torch.long),
            "caption_ids": ids_ML, "caption_mask": mask_ML}


def iter_packed_batches(samples: Iterable[Sample], max_len: int, rows_per_batch: int, *,
                        overflow: Overflow = "truncate", image_processor: ImageProcessor | None = None
                        ) -> Iterator[Batch]:
    """Stream batches of ``rows_per_batch`` packed rows (first fit within each batch's samples).

    Samples are taken in order until they fill ``rows_per_batch`` rows; the last, partial
    batch is yielded too. Every batch has ``rows_per_batch`` × ``max_len`` slots except the last.
    """
    if rows_per_batch <= 0:
        raise ValueError(f"rows_per_batch must be > 0, got {rows_per_batch}")
    pending: list[Sample] = []
    for sample in samples:
        fitted = fit_sample(sample, max_len, overflow)
        if fitted is None:
            continue
        trial = first_fit([sample_length(s) for s in pending + [fitted]], max_len)
        if len(trial) > rows_per_batch:
            yield collate_packed(pending, max_len, overflow=overflow, image_processor=image_processor)
            pending = []
        pending.append(fitted)
    if pending:
        yield collate_packed(pending, max_len, overflow=overflow, image_processor=image_processor)


def iter_padded_batches(samples: Iterable[Sample], batch_size: int, *, max_len: int | None = None,
                        overflow: Overflow = "truncate", image_processor: ImageProcessor | None = None
                        ) -> Iterator[Batch]:
    """Stream batches of ``batch_size`` samples, one per row, right-padded (see ``collate_padded``)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    pending: list[Sample] = []
    for sample in samples:
        pending.append(sample)
        if len(pending) == batch_size:
            yield collate_padded(pending, max_len=max_len, overflow=overflow, image_processor=image_processor)
            pending = []
    if pending:
        yield collate_padded(pending, max_len=max_len, overflow=overflow, image_processor=image_processor)


def batch_tokens(batch: Batch) -> tuple[int, int]:
    """(real tokens, slots) of a batch: its fill is real / slots."""
    return int((batch["attention_mask"] > 0).sum()), int(batch["attention_mask"].numel())


__all__ = ["Batch", "OVERFLOW_RULES", "Overflow", "PackResult", "Sample", "SampleTooLongError", "batch_tokens",
           "collate_captions", "collate_packed", "collate_padded", "compact_pixels", "fit_sample", "first_fit",
           "iter_packed_batches", "iter_padded_batches", "pack_samples", "sample_length"]
