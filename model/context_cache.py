"""Reuse across agent steps: vision embeddings keyed by image hash, and KV-cache prefixes.

An agent's context grows step by step: system prompt, instruction, then screenshot / action
pairs. Between steps almost everything is unchanged, so two caches make a step cheap:

- ``VisionEmbeddingCache``: projected embeddings per image, keyed by a BLAKE2b hash of the
  image's normalised patches and grid (or a key the caller supplies). Missing images are encoded
  together in one packed vision pass. LRU-bounded.
- ``ReusableContext``: keeps the token ids, image keys and KV cache of the last sequence
  (prompt + generated tokens) and, for a new prompt, reuses the longest common prefix — cut back
  to the start of any image whose pixels changed while its placeholder tokens did not — then
  prefills only the suffix and generates.

Batch size 1 (one agent episode); the model must be in eval mode. Nothing here knows about GUIs.

Shape legend: T tokens, L patches, M media tokens, D LM hidden, N images.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

from model.decoder import KVCache
from model.modeling import GenerationOutput, PixelPilotVLForConditionalGeneration


def image_keys(pixel_values: torch.Tensor, image_grid_hws: torch.Tensor) -> list[str]:
    """A content hash per image of a packed ``pixel_values`` / ``image_grid_hws`` pair."""
    keys, offset = [], 0
    for h, w in image_grid_hws.tolist():
        patches = pixel_values[offset:offset + h * w].detach().cpu().contiguous()
        digest = hashlib.blake2b(patches.numpy().tobytes(), digest_size=16)
        digest.update(f"{h}x{w}".encode())
        keys.append(digest.hexdigest())
        offset += h * w
    return keys


class VisionEmbeddingCache:
    """LRU cache of projected image embeddings ``[(h/2)(w/2), D]`` keyed by image hash."""

    def __init__(self, model: PixelPilotVLForConditionalGeneration, max_images: int = 64) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        self.model, self.max_images = model, max_images
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @torch.no_grad()
    def embed(self, pixel_values: torch.Tensor, image_grid_hws: torch.Tensor,
              keys: Sequence[str] | None = None) -> torch.Tensor:
        """Embeddings ``[M, D]`` of all images in order; only unseen images are encoded."""
        keys = list(keys) if keys is not None else image_keys(pixel_values, image_grid_hws)
        grids = image_grid_hws.tolist()
        if len(keys) != len(grids):
            raise ValueError(f"{len(keys)} keys for {len(grids)} images")
        offsets = [0]
        for h, w in grids:
            offsets.append(offsets[-1] + h * w)
        missing = [i for i, key in enumerate(keys) if key not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            patches = torch.cat([pixel_values[offsets[i]:offsets[i + 1]] for i in missing])
            new_grids = image_grid_hws[missing]
            embeds = self.model.embed_images(patches, new_grids)
            sizes = [(h // 2) * (w // 2) for h, w in new_grids.tolist()]
            for i, emb in zip(missing, embeds.split(sizes)):
                self._store[keys[i]] = emb
        out = []
        for key in keys:
            self._store.move_to_end(key)
            out.append(self._store[key])
        while len(self._store) > self.max_images:
            self._store.popitem(last=False)
        return torch.cat(out, dim=0)

    def __len__(self) -> int:
        return len(self._store)


def media_spans(ids_T: torch.Tensor, media_token_id: int) -> list[tuple[int, int]]:
    """``[start, end)`` of every run of media placeholder tokens (one run per image)."""
    is_media = (ids_T == media_token_id).tolist()
    spans, start = [], None
    for i, flag in enumerate(is_media + [False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            spans.append((start, i))
            start = None
    return spans


class ReusableContext:
    """Prefix-KV and vision-embedding reuse for successive prompts of one agent episode."""

    def __init__(self, model: PixelPilotVLForConditionalGeneration, max_images: int = 64) -> None:
        self.model = model
        self.vision = VisionEmbeddingCache(model, max_images)
        self._ids: torch.Tensor | None = None  # [S] ids whose KV the cache holds
        self._keys: list[str] = []
        self._cache: KVCache | None = None
        self.reused_tokens = 0  # of the last call

    def fork(self) -> ReusableContext:
        """An independent context starting from this one's state (tensors are shared, never
        written in place), e.g. to sample several continuations of the same agent step."""
        twin = ReusableContext(self.model, self.vision.max_images)
        twin.vision._store = OrderedDict(self.vision._store)
        twin._ids, twin._keys = self._ids, list(self._keys)
        twin._cache = self._cache.copy() if self._cache is not None else None
        return twin

    def reusable_prefix(self, ids_T: torch.Tensor, keys: Sequence[str]) -> int:
        """How many leading tokens of ``ids_T`` have valid cached KV (≤ len − 1)."""
        if self._ids is None:
            return 0
        limit = min(len(self._ids), len(ids_T) - 1)
        differ = (self._ids[:limit] != ids_T[:limit]).nonzero()
        common = int(differ[0]) if len(differ) else limit
        media_id = self.model.vl_config.media_placeholder_token_id
        old_spans = media_spans(self._ids, media_id)
        for j, (start, end) in enumerate(media_spans(ids_T, media_id)):
            if start >= common:
                break
            same_image = j < len(old_spans) and j < len(self._keys) and \
                old_spans[j] == (start, end) and self._keys[j] == keys[j]
            if not same_image or end > common:  # changed pixels, or image cut mid-way
                return start
        return common

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                 image_grid_hws: torch.Tensor | None = None,
                 keys: Sequence[str] | None = None, **generate_kwargs: Any) -> GenerationOutput:
        """``model.generate`` on ``input_ids`` ``[1, T]``, reusing what the last call computed.

        ``sequences`` of the result covers the full prompt + new tokens, as without reuse.
        """
        if input_ids.shape[0] != 1:
            raise ValueError("ReusableContext handles one sequence (batch size 1)")
        ids_T = input_ids[0]
        if pixel_values is not None and image_grid_hws is not None:
            keys = list(keys) if keys is not None else image_keys(pixel_values, image_grid_hws)
        else:
            keys, image_grid_hws = [], None
        start = self.reusable_prefix(ids_T, keys)
        cache = self._cache.copy() if self._cache is not None and start else self.model.new_cache()
        cache.crop(start)
        image_embeds = None
        media_id = self.model.vl_config.media_placeholder_token_id
        first_new = sum(1 for s, _ in media_spans(ids_T, media_id) if s < start)
        if pixel_values is not None and image_grid_hws is not None and first_new < len(keys):
            image_embeds = self.vision.embed(
                pixel_values, image_grid_hws, keys)[_media_before(image_grid_hws, first_new):]
        out = self.model.generate(input_ids[:, start:], image_embeds=image_embeds, cache=cache,
                                  **generate_kwargs)
        full = torch.cat([input_ids[:, :start], out.sequences], dim=1)
        if out.cache is not None:
            self._ids, self._keys, self._cache = full[0, :out.cache.seq_len], keys, out.cache
        self.reused_tokens = start
        return GenerationOutput(sequences=full, new_tokens=out.new_tokens,
                                logprobs=out.logprobs, logits=out.logits, cache=out.cache)


def _media_before(image_grid_hws: torch.Tensor, num_images: int) -> int:
    """Media tokens of the first ``num_images`` images."""
    grids = image_grid_hws[:num_images]
    return int(((grids[:, 0] // 2) * (grids[:, 1] // 2)).sum())
