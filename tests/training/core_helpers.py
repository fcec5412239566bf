"""Small deterministic sample sources following the batch contract, for the core tests.

Text samples are random token ids; image samples go through the real ``Processor`` (chat
template + image patches) so their media tokens and pixel values are the model's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from model.config import tiny
from model.modeling import PixelPilotVLForConditionalGeneration, build_model
from model.processing import Processor, labels_from_mask
from training.data.packing import collate_captions, collate_packed, collate_padded

Sample = dict[str, Any]
FIRST_ORDINARY_ID = 13  # ids below are special tokens


@lru_cache(maxsize=1)
def processor() -> Processor:
    return Processor.default()


def tiny_model(seed: int = 0) -> PixelPilotVLForConditionalGeneration:
    torch.manual_seed(seed)
    return build_model(tiny())


def text_samples(seed: int = 0, count: int = 64, lo: int = 12, hi: int = 40) -> Iterator[Sample]:
    """Repetitive token patterns (learnable in a few steps), one per sample."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        period = int(rng.integers(2, 5))
        motif = rng.integers(FIRST_ORDINARY_ID, 400, size=period).tolist()
        n = int(rng.integers(lo, hi))
        ids = (motif * n)[:n]
        yield {"input_ids": ids, "labels": list(ids)}


def image_samples(seed: int = 0, count: int = 32) -> Iterator[Sample]:
    """One screenshot-like image + a short answer; loss on the assistant turn only."""
    rng = np.random.default_rng(seed)
    proc = processor()
    for i in range(count):
        colour = rng.integers(0, 256, size=3)
        image = np.zeros((56, 84, 3), dtype=np.uint8) + colour.astype(np.uint8)
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": "colour?"}]},
                    {"role": "assistant", "content": f"red {int(colour[0]) // 64}"}]
        enc = proc(messages, images=[image], return_assistant_mask=True)
        labels = labels_from_mask(enc["input_ids"], enc["assistant_mask"])[0]
        yield {"input_ids": enc["input_ids"][0].tolist(), "labels": labels.tolist(),
               "images": [image]}


def caption_samples(seed: int = 0, count: int = 32) -> Iterator[Sample]:
    """Image + caption ids for ViT pre-training (caption names the colour band)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        level = int(rng.integers(0, 4))
        image = np.full((56, 56, 3), level * 60, dtype=np.uint8)
        image[: 28, :, level % 3] = 255
        yield {"image": image, "caption_ids": [FIRST_ORDINARY_ID + level] * 4 + [5]}


def packed(samples: list[Sample], max_len: int) -> dict[str, torch.Tensor]:
    return collate_packed(samples, max_len, pad_to_max_len=False)


def padded(samples: list[Sample], max_len: int) -> dict[str, torch.Tensor]:
    return collate_padded(samples, max_len=max_len)


def captions(samples: list[Sample], max_len: int) -> dict[str, torch.Tensor]:
    del max_len
    return collate_captions(samples)


def make_trainer(recipe_name: str, out: str, sources: dict, steps: int = 3, seed: int = 0,
                 **overrides: Any):
    """A ``Trainer`` for a recipe on the tiny model with the given test sources."""
    from training.mixture import MixtureStream
    from training.recipes import get_recipe
    from training.stages import build_train_module
    from training.trainer import Trainer

    recipe = get_recipe(recipe_name)
    module = build_train_module(tiny_model(seed), recipe.stage)
    collate = captions if recipe.stage.objective == "vit" else packed
    base = dict(max_steps=steps, micro_batch_size=4, max_len=256, progress=False,
                schedule=recipe.schedule.__class__(kind="constant"))
    config = recipe.trainer_config(out, **{**base, **overrides})
    mix = recipe.data.restricted(sources)
    return Trainer(module, config, MixtureStream(sources, seed=seed), mix, collate,
                   run_config={"recipe": recipe_name})
