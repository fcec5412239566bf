"""Losses: SigLIP against its definition, CE sums/counts, packed segment-start masking."""

from __future__ import annotations

import math

import torch

from model.modeling import causal_lm_loss
from training.losses import (IGNORE_INDEX, SigLIPLoss, caption_loss, mask_segment_starts,
                             token_cross_entropy)


def test_siglip_init_and_definition() -> None:
    loss_fn = SigLIPLoss()
    assert loss_fn.t_prime.item() == torch.tensor(math.log(10.0)).item()
    assert loss_fn.bias.item() == -10.0
    torch.manual_seed(0)
    img, txt = torch.randn(5, 8), torch.randn(5, 8)
    got = loss_fn(img, txt)
    a = torch.nn.functional.normalize(img, dim=-1)
    b = torch.nn.functional.normalize(txt, dim=-1)
    total = 0.0
    for i in range(5):
        for j in range(5):
            z = 1.0 if i == j else -1.0
            logit = 10.0 * float(a[i] @ b[j]) - 10.0
            total += -math.log(1 / (1 + math.exp(-z * logit)))
    assert abs(got.item() - total / 5) < 1e-4
    # Matching pairs score better than mismatched ones, and both parameters get gradients.
    aligned = loss_fn(img, img)
    assert aligned.item() < loss_fn(img, img.roll(1, dims=0)).item()
    aligned.backward()
    assert loss_fn.t_prime.grad is not None and loss_fn.bias.grad is not None


def test_token_cross_entropy_sum_and_count_match_the_model_mean() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 7, 11)
    labels = torch.randint(0, 11, (2, 7))
    labels[0, :3] = IGNORE_INDEX
    total, count = token_cross_entropy(logits, labels)
    assert count == int((labels[:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(total / count, causal_lm_loss(logits, labels))
    ids = torch.tensor([[4, 5, 6, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    s, n = caption_loss(torch.randn(1, 4, 11), ids, mask)
    assert n == 2 and float(s) > 0


def test_segment_starts_are_masked_idempotently() -> None:
    seg = torch.tensor([[1, 1, 1, 2, 2, 3, 0, 0]])
    labels = torch.arange(10, 18)[None]
    masked = mask_segment_starts(labels, seg)
    assert masked.tolist() == [[10, 11, 12, IGNORE_INDEX, 14, IGNORE_INDEX, IGNORE_INDEX, 17]]
    assert torch.equal(mask_segment_starts(masked, seg), masked)
