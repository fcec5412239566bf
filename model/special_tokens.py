"""Special tokens of the pixelpilot VLM and their fixed ids.

The tokenizer (``model.processing``) reserves ids 0..len(SPECIAL_TOKENS)-1 for these, in this
order, so the model config, the processor and training code agree without a lookup.

Chat layout (Kimi-VL style)::

    <|im_system|>system<|im_middle|>...<|im_end|>
    <|im_user|>user<|im_middle|>text <|media_start|><|media_pad|>×N<|media_end|> text<|im_end|>
    <|im_assistant|>assistant<|im_middle|><think>reasoning</think>answer<|im_end|>

Each image becomes ``<|media_start|>`` + N × ``<|media_pad|>`` + ``<|media_end|>`` with
N = (grid_h / 2) · (grid_w / 2) (patch grid after the 2×2 pixel shuffle). The model swaps
the embeddings at ``<|media_pad|>`` positions for projected vision features, in order.
"""

from __future__ import annotations

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_system|>",
    "<|im_user|>",
    "<|im_assistant|>",
    "<|im_middle|>",
    "<|im_end|>",
    "<|media_start|>",
    "<|media_content|>",
    "<|media_end|>",
    "<|media_pad|>",
    "<think>",
    "</think>",
    "<|pad|>",
)
TOKEN_IDS: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}

EOS_TOKEN_ID = TOKEN_IDS["<|endoftext|>"]
IM_END_TOKEN_ID = TOKEN_IDS["<|im_end|>"]
MEDIA_START_TOKEN_ID = TOKEN_IDS["<|media_start|>"]
MEDIA_END_TOKEN_ID = TOKEN_IDS["<|media_end|>"]
MEDIA_PAD_TOKEN_ID = TOKEN_IDS["<|media_pad|>"]
THINK_START_TOKEN_ID = TOKEN_IDS["<think>"]
THINK_END_TOKEN_ID = TOKEN_IDS["</think>"]
PAD_TOKEN_ID = TOKEN_IDS["<|pad|>"]
