"""The processor's outputs drive the real model: the contract between model/processing and model/modeling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from model.config import tiny
from model.modeling import build_model
from model.processing import Processor, labels_from_mask


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    return build_model(tiny()), Processor.default()


def _img(w: int, h: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _conv(text: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]},
            {"role": "assistant", "reasoning_content": "look first", "content": answer}]


def test_sft_batch_gives_a_loss_that_reaches_the_vision_tower(setup) -> None:
    model, proc = setup
    batch = proc([_conv("Click OK.", "click(3, 4)"), _conv("Now type a longer instruction here.", "type('hi')")],
                 images=[_img(50, 30, 1), _img(90, 60, 2)], return_assistant_mask=True)
    labels = labels_from_mask(batch["input_ids"], batch.pop("assistant_mask"))
    model.train()
    out = model(**batch, labels=labels)
    assert torch.isfinite(out.loss) and out.loss > 0
    out.loss.backward()
    grad = model.vision_tower.patch_embed.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model.eval()


def test_left_padded_generation_matches_single_prompts(setup) -> None:
    model, proc = setup
    convs = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": t}]}]
             for t in ("Click OK.", "Scroll down the long page to the bottom and press submit.")]
    images = [_img(40, 40, 3), _img(80, 30, 4)]
    batch = proc(convs, images=images, add_generation_prompt=True)
    assert batch["attention_mask"][0, 0] == 0  # the shorter prompt is left-padded
    together = model.generate(**batch, max_new_tokens=4).new_tokens
    for row, (conv, image) in enumerate(zip(convs, images)):
        alone = model.generate(**proc(conv, images=[image], add_generation_prompt=True), max_new_tokens=4)
        n = alone.new_tokens.shape[1]
        assert together[row, :n].tolist() == alone.new_tokens[0].tolist()
