"""``Processor``: chat messages + images → model inputs, and generated ids → text.

``processor(messages, images=None, add_generation_prompt=..., return_tensors="pt")`` returns a
``transformers.BatchFeature`` with

- ``input_ids`` [B, T] long; each image is ``<|media_start|>`` + N×``<|media_pad|>`` +
  ``<|media_end|>`` with N = (grid_h/2)·(grid_w/2),
- ``attention_mask`` [B, T] long (1 = real token), padded on ``padding_side``
  (default: left with a generation prompt, right otherwise),
- ``pixel_values`` [sum N_patches, 3, 14, 14] float and ``image_grid_hws`` [num_images, 2]
  long, images in the order of their media blocks in the batch (absent without images),
- ``assistant_mask`` [B, T] long when ``return_assistant_mask=True`` (1 = assistant content
  and its closing ``<|im_end|>``: the tokens SFT puts loss on; see ``labels_from_mask``).

Images come inline in the message parts (``{"type": "image", "image": PIL}``, or an
``image_url`` data URL) or, for bare ``{"type": "image"}`` parts, from ``images`` in order.
This module knows nothing about the model's weights.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import BatchFeature, PreTrainedTokenizerFast

from model.processing.chat import (
    CHAT_FORMAT,
    CHAT_TEMPLATE_JINJA,
    ChatFormatError,
    ImageSlot,
    Special,
    Text,
    render,
)
from model.processing.image_processor import (
    ImageInput,
    ImageMeta,
    ImageProcessor,
    ImageProcessorConfig,
    load_image,
    num_media_tokens,
)
from model.processing.tokenizer import encode_text, load_tokenizer
from model.special_tokens import (
    EOS_TOKEN_ID,
    IM_END_TOKEN_ID,
    MEDIA_END_TOKEN_ID,
    MEDIA_PAD_TOKEN_ID,
    MEDIA_START_TOKEN_ID,
    PAD_TOKEN_ID,
    THINK_END_TOKEN_ID,
    THINK_START_TOKEN_ID,
    TOKEN_IDS,
)

PROCESSOR_CONFIG_NAME = "processor_config.json"
IGNORE_INDEX = -100
PaddingSide = Literal["left", "right"]


@dataclass(frozen=True)
class EncodedConversation:
    """One conversation as token ids, its loss mask, and its images' patches and geometry."""

    input_ids: list[int]
    assistant_mask: list[int]
    pixel_values: list[torch.Tensor]
    image_metas: list[ImageMeta]


@dataclass(frozen=True)
class ParsedResponse:
    """A generated assistant turn split into reasoning and answer (special tokens removed)."""

    thinking: str | None  # None: the model wrote no reasoning section
    answer: str
    finished: bool  # True if the turn ended with <|im_end|> or <|endoftext|>


class Processor:
    """Tokenizer + image processor + chat template, saved and loaded together."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, image_processor: ImageProcessor,
                 url_cache_size: int = 0) -> None:
        """``url_cache_size`` > 0 keeps that many preprocessed data-URL images (LRU), so a server
        whose clients resend a conversation's screenshots decodes each one once."""
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.tokenizer.chat_template = CHAT_TEMPLATE_JINJA
        self.url_cache_size = url_cache_size
        self._url_cache: OrderedDict[str, tuple[torch.Tensor, ImageMeta]] = OrderedDict()
        self._url_lock = threading.Lock()

    @classmethod
    def default(cls, image_config: ImageProcessorConfig | None = None) -> Processor:
        """The shipped tokenizer (``model/data/tokenizer.json``) with an image processor."""
        return cls(load_tokenizer(), ImageProcessor(image_config))

    @property
    def merge_size(self) -> int:
        return self.image_processor.config.merge_size

    def encode_conversation(self, messages: Sequence[Mapping[str, Any]], images: Iterator[ImageInput], *,
                            add_generation_prompt: bool = False, thinking: bool | None = None) -> EncodedConversation:
        """Token ids and assistant mask of one conversation; bare image parts pull from ``images``."""
        ids: list[int] = []
        mask: list[int] = []
        patches: list[torch.Tensor] = []
        metas: list[ImageMeta] = []
        for seg in render(messages, add_generation_prompt=add_generation_prompt, thinking=thinking):
            if isinstance(seg, Special):
                new = [TOKEN_IDS[seg.token]]
            elif isinstance(seg, Text):
                new = encode_text(self.tokenizer, seg.text)
            else:
                pv, meta = self._preprocess(self._image_source(seg, images))
                patches.append(pv)
                metas.append(meta)
                n = num_media_tokens(meta.grid_hw, self.merge_size)
                new = [MEDIA_START_TOKEN_ID] + [MEDIA_PAD_TOKEN_ID] * n + [MEDIA_END_TOKEN_ID]
            ids += new
            mask += [int(seg.trainable)] * len(new)
        return EncodedConversation(ids, mask, patches, metas)

    def _preprocess(self, source: ImageInput) -> tuple[torch.Tensor, ImageMeta]:
        if not (self.url_cache_size and isinstance(source, str) and source.startswith("data:")):
            return self.image_processor.preprocess(source)
        with self._url_lock:
            hit = self._url_cache.get(source)
            if hit is not None:
                self._url_cache.move_to_end(source)
                return hit
        result = self.image_processor.preprocess(source)  # outside the lock: threads decode in parallel
        with self._url_lock:
            self._url_cache[source] = result
            while len(self._url_cache) > self.url_cache_size:
                self._url_cache.popitem(last=False)
        return result

    @staticmethod
    def _image_source(slot: ImageSlot, images: Iterator[ImageInput]) -> ImageInput:
        if slot.source is not None:
            return slot.source
        try:
            return next(images)
        except StopIteration:
            raise ChatFormatError("more {'type': 'image'} parts than images given; pass one image per part") from None

    def __call__(
        self,
        messages: Sequence[Mapping[str, Any]] | Sequence[Sequence[Mapping[str, Any]]],
        images: Sequence[ImageInput] | None = None,
        *,
        add_generation_prompt: bool = False,
        thinking: bool | None = None,
        return_tensors: str = "pt",
        padding_side: PaddingSide | None = None,
        return_assistant_mask: bool = False,
    ) -> BatchFeature:
        """Model inputs for one conversation (a list of messages) or a batch of them."""
        if return_tensors != "pt":
            raise ValueError(f"only return_tensors='pt' is supported, got {return_tensors!r}")
        side = padding_side or ("left" if add_generation_prompt else "right")
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        image_iter = iter(images or [])
        convs = [self.encode_conversation(c, image_iter, add_generation_prompt=add_generation_prompt,
                                          thinking=thinking) for c in _as_batch(messages)]
        leftover = sum(1 for _ in image_iter)
        if leftover:
            raise ChatFormatError(f"{leftover} image(s) left over: add one {{'type': 'image'}} part per image")
        data = _pad_batch(convs, side, return_assistant_mask)
        metas = [m for c in convs for m in c.image_metas]
        if metas:
            data["pixel_values"] = torch.cat([p for c in convs for p in c.pixel_values])
            data["image_grid_hws"] = torch.tensor([m.grid_hw for m in metas], dtype=torch.long)
        return BatchFeature(data=data)

    def image_metas(self, images: Sequence[ImageInput]) -> list[ImageMeta]:
        """Geometry the processor uses for ``images`` (for mapping model coordinates back)."""
        return [self.image_processor.plan(*load_image(img).size) for img in images]

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; special tokens dropped unless ``skip_special_tokens=False``."""
        return self.tokenizer.decode(_to_list(ids), skip_special_tokens=skip_special_tokens,
                                     clean_up_tokenization_spaces=False)

    def batch_decode(self, ids: Sequence[Sequence[int]] | torch.Tensor, skip_special_tokens: bool = True) -> list[str]:
        """``decode`` for each row."""
        return [self.decode(row, skip_special_tokens) for row in ids]

    def parse_response(self, ids: Sequence[int] | torch.Tensor) -> ParsedResponse:
        """Split generated ids (after the generation prompt) into reasoning and answer.

        Stops at the first ``<|im_end|>`` / ``<|endoftext|>``. The reasoning ends at the first
        ``</think>``; a leading ``<think>`` is optional (the prompt may have opened it).
        """
        seq = [i for i in _to_list(ids) if i != PAD_TOKEN_ID]
        finished = False
        for k, tok in enumerate(seq):
            if tok in (IM_END_TOKEN_ID, EOS_TOKEN_ID):
                seq, finished = seq[:k], True
                break
        start = 1 if seq[:1] == [THINK_START_TOKEN_ID] else 0
        if THINK_END_TOKEN_ID in seq:
            end = seq.index(THINK_END_TOKEN_ID)
            return ParsedResponse(self.decode(seq[start:end]), self.decode(seq[end + 1:]), finished)
        if start:  # reasoning never closed
            return ParsedResponse(self.decode(seq[1:]), "", finished)
        return ParsedResponse(None, self.decode(seq), finished)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write tokenizer files, ``preprocessor_config.json`` and ``processor_config.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(directory))
        self.image_processor.save_pretrained(directory)
        config = {"processor_class": "PixelPilotProcessor", "chat_format": CHAT_FORMAT}
        (directory / PROCESSOR_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Processor:
        """Load a processor written by ``save_pretrained``."""
        directory = Path(directory)
        path = directory / PROCESSOR_CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; save the processor with Processor.save_pretrained")
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("chat_format") != CHAT_FORMAT:
            raise ValueError(f"{path} uses chat format {config.get('chat_format')!r}; this code speaks {CHAT_FORMAT!r}")
        return cls(load_tokenizer(directory), ImageProcessor.from_pretrained(directory))


def labels_from_mask(input_ids: torch.Tensor, assistant_mask: torch.Tensor,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Labels for SFT: ``input_ids`` where ``assistant_mask`` is 1, ``ignore_index`` elsewhere.

    Labels are aligned with ``input_ids`` (not shifted); the loss shifts them, as in
    Hugging Face causal LMs. Padding is never an assistant token, so it is ignored too.
    """
    if input_ids.shape != assistant_mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and assistant_mask {tuple(assistant_mask.shape)} differ")
    return torch.where(assistant_mask.bool(), input_ids, torch.full_like(input_ids, ignore_index))


def _as_batch(messages: Any) -> list[Sequence[Mapping[str, Any]]]:
    if isinstance(messages, Sequence) and messages and isinstance(messages[0], Mapping):
        return [messages]
    if isinstance(messages, Sequence) and messages and all(isinstance(c, Sequence) for c in messages):
        return list(messages)
    raise ChatFormatError("messages must be a list of message dicts, or a list of such lists for a batch")


def _pad_batch(convs: list[EncodedConversation], side: PaddingSide, with_mask: bool) -> dict[str, torch.Tensor]:
    length = max(len(c.input_ids) for c in convs)
    ids = torch.full((len(convs), length), PAD_TOKEN_ID, dtype=torch.long)
    attn = torch.zeros((len(convs), length), dtype=torch.long)
    amask = torch.zeros((len(convs), length), dtype=torch.long)
    for row, conv in enumerate(convs):
        n = len(conv.input_ids)
        cols = slice(length - n, length) if side == "left" else slice(0, n)
        ids[row, cols] = torch.tensor(conv.input_ids, dtype=torch.long)
        attn[row, cols] = 1
        amask[row, cols] = torch.tensor(conv.assistant_mask, dtype=torch.long)
    data = {"input_ids": ids, "attention_mask": attn}
    if with_mask:
        data["assistant_mask"] = amask
    return data


def _to_list(ids: Sequence[int] | torch.Tensor) -> list[int]:
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1:
            raise ValueError(f"expected a 1-D tensor of ids, got shape {tuple(ids.shape)}")
        return ids.tolist()
    return [int(i) for i in ids]
