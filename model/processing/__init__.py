"""Tokenizer, image processor and chat processor of the pixelpilot VLM.

- ``tokenizer``: byte-level BPE with fixed special-token ids (``load_tokenizer``).
- ``image_processor``: native-resolution resize/pad/normalise/patchify + coordinate maps.
- ``chat``: the chat template (messages → segments) and thinking split.
- ``processor``: ``Processor`` tying them together into model inputs and back to text.
"""

from model.processing.chat import CHAT_FORMAT, ChatFormatError, split_thinking
from model.processing.image_processor import (
    ImageInputError,
    ImageMeta,
    ImageProcessor,
    ImageProcessorConfig,
    image_to_model_coords,
    load_image,
    model_to_image_coords,
    num_media_tokens,
)
from model.processing.processor import ParsedResponse, Processor, labels_from_mask
from model.processing.tokenizer import TokenizerError, load_tokenizer

__all__ = [
    "CHAT_FORMAT", "ChatFormatError", "ImageInputError", "ImageMeta", "ImageProcessor",
    "ImageProcessorConfig", "ParsedResponse", "Processor", "TokenizerError", "image_to_model_coords",
    "labels_from_mask", "load_image", "load_tokenizer", "model_to_image_coords", "num_media_tokens",
    "split_thinking",
]
