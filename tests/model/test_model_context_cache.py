"""Reuse across agent steps: vision-embedding cache by image hash, prefix-KV reuse."""

from __future__ import annotations

import pytest
import torch

from model.config import tiny
from model.context_cache import ReusableContext, VisionEmbeddingCache, image_keys, media_spans
from model.modeling import PixelPilotVLForConditionalGeneration, build_model
from model.special_tokens import (
    IM_END_TOKEN_ID,
    MEDIA_END_TOKEN_ID,
    MEDIA_PAD_TOKEN_ID,
    MEDIA_START_TOKEN_ID,
)

GRID = (4, 6)
PATCHES = GRID[0] * GRID[1]


@pytest.fixture(scope="module")
def model() -> PixelPilotVLForConditionalGeneration:
    torch.manual_seed(0)
    return build_model(tiny()).eval()


def _screens(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n * PATCHES, 3, 14, 14, generator=torch.Generator().manual_seed(seed))


def _context(num_images: int, seed: int = 0) -> list[int]:
    """System text, then per step: screenshot block + an 'action' text."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(20, 4000, (6,), generator=g).tolist()
    for _ in range(num_images):
        ids += [MEDIA_START_TOKEN_ID] + [MEDIA_PAD_TOKEN_ID] * (PATCHES // 4)
        ids += [MEDIA_END_TOKEN_ID] + torch.randint(20, 4000, (4,), generator=g).tolist()
    return ids


def test_vision_cache_hits_and_equals_direct(model: PixelPilotVLForConditionalGeneration
                                             ) -> None:
    cache = VisionEmbeddingCache(model, max_images=3)
    pixels, grids = _screens(2, 0), torch.tensor([GRID, GRID])
    first = cache.embed(pixels, grids)
    assert (cache.hits, cache.misses) == (0, 2)
    torch.testing.assert_close(first, model.embed_images(pixels, grids), atol=1e-5, rtol=0)
    more = torch.cat([pixels[PATCHES:], _screens(1, 1)])  # one old image + one new
    second = cache.embed(more, grids)
    assert (cache.hits, cache.misses) == (1, 3)
    torch.testing.assert_close(second[:6], first[6:])
    cache.embed(_screens(2, 2), grids)
    assert len(cache) == 3  # LRU bound


def test_image_keys_follow_content() -> None:
    pixels, grids = _screens(2, 0), torch.tensor([GRID, GRID])
    keys = image_keys(pixels, grids)
    assert keys[0] != keys[1] and keys == image_keys(pixels.clone(), grids)
    assert image_keys(pixels[:PATCHES], torch.tensor([[2, 12]]))[0] != keys[0]  # grid counts


def test_media_spans() -> None:
    ids = torch.tensor([1, 6, 9, 9, 8, 2, 6, 9, 8])
    assert media_spans(ids, 9) == [(2, 4), (7, 8)]


def test_reuse_matches_fresh_generation(model: PixelPilotVLForConditionalGeneration) -> None:
    ctx = ReusableContext(model)
    kwargs = {"max_new_tokens": 4, "return_logits": True, "stop_token_ids": [IM_END_TOKEN_ID]}
    history = _screens(3, 7)
    for step in (1, 2, 3):
        ids = torch.tensor([_context(step)])
        pixels, grids = history[:step * PATCHES], torch.tensor([GRID] * step)
        reused = ctx.generate(ids, pixels, grids, **kwargs)
        fresh = model.generate(ids, pixel_values=pixels, image_grid_hws=grids, **kwargs)
        assert torch.equal(reused.sequences, fresh.sequences)
        torch.testing.assert_close(reused.logits, fresh.logits, atol=1e-4, rtol=1e-4)
        if step > 1:  # everything up to the new screenshot came from the cache
            assert ctx.reused_tokens == len(_context(step - 1))
    assert ctx.vision.misses == 3


def test_changed_image_invalidates_prefix(model: PixelPilotVLForConditionalGeneration) -> None:
    ctx = ReusableContext(model)
    ids = torch.tensor([_context(2)])
    grids = torch.tensor([GRID, GRID])
    pixels = _screens(2, 1)
    ctx.generate(ids, pixels, grids, max_new_tokens=2)
    changed = torch.cat([pixels[:PATCHES], _screens(1, 9)])  # same tokens, new second screen
    out = ctx.generate(ids, changed, grids, max_new_tokens=2, return_logits=True)
    second_start = media_spans(ids[0], MEDIA_PAD_TOKEN_ID)[1][0]
    assert ctx.reused_tokens == second_start
    fresh = model.generate(ids, pixel_values=changed, image_grid_hws=grids, max_new_tokens=2,
                           return_logits=True)
    torch.testing.assert_close(out.logits, fresh.logits, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="batch size 1"):
        ctx.generate(torch.cat([ids, ids]), max_new_tokens=1)


def test_fork_is_independent(model: PixelPilotVLForConditionalGeneration) -> None:
    ctx = ReusableContext(model)
    grids = torch.tensor([GRID])
    ctx.generate(torch.tensor([_context(1)]), _screens(1, 4), grids, max_new_tokens=2)
    twin = ctx.fork()
    ids2 = torch.tensor([_context(2)])
    pixels2, grids2 = torch.cat([_screens(1, 4), _screens(1, 5)]), torch.tensor([GRID, GRID])
    a = twin.generate(ids2, pixels2, grids2, max_new_tokens=3)
    b = ctx.generate(ids2, pixels2, grids2, max_new_tokens=3)  # original state was untouched
    assert torch.equal(a.sequences, b.sequences)
    assert twin.reused_tokens == ctx.reused_tokens == len(_context(1))
