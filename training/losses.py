"""Training losses: token cross-entropy (sum + count, for exact gradient accumulation), SigLIP's
pairwise sigmoid loss, and the caption loss of ViT pre-training.

Why sums and counts: with packing, micro-batches hold different numbers of loss tokens. The
trainer divides every micro-batch's *sum* by the token count of the whole optimizer step
(all ranks), so the gradient equals the one of a single big batch — the property the
"2 processes = 1 process" and "resume = uninterrupted" tests rely on.

Shape legend: B batch, T tokens, V vocab, M images/captions, L caption tokens, E embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


def mask_segment_starts(labels_BT: torch.Tensor, attention_mask_BT: torch.Tensor
                        ) -> torch.Tensor:
    """Labels with -100 at the first token of every packed segment after the first.

    The loss predicts token t from tokens < t; at a segment boundary that would ask the model
    to predict a new sample from the end of the previous one. Idempotent, so it is safe to
    apply when the collate function already did it.
    """
    starts_BT = torch.zeros_like(labels_BT, dtype=torch.bool)
    starts_BT[:, 1:] = attention_mask_BT[:, 1:] != attention_mask_BT[:, :-1]
    return labels_BT.masked_fill(starts_BT, IGNORE_INDEX)


def token_cross_entropy(logits_BTV: torch.Tensor, labels_BT: torch.Tensor
                        ) -> tuple[torch.Tensor, int]:
    """(sum of next-token CE over labelled positions, number of those positions), float32."""
    shift_logits = logits_BTV[:, :-1].reshape(-1, logits_BTV.shape[-1]).float()
    shift_labels = labels_BT[:, 1:].reshape(-1).to(shift_logits.device)
    total = F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX,
                            reduction="sum")
    return total, int((shift_labels != IGNORE_INDEX).sum())


def count_loss_tokens(labels_BT: torch.Tensor) -> int:
    """Positions ``token_cross_entropy`` will count (labels after the shift)."""
    return int((labels_BT[:, 1:] != IGNORE_INDEX).sum())


def caption_loss(logits_MLV: torch.Tensor, caption_ids_ML: torch.Tensor,
                 caption_mask_ML: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum, count) of next-token CE over caption tokens where ``caption_mask`` is 1."""
    labels_ML = caption_ids_ML.masked_fill(caption_mask_ML == 0, IGNORE_INDEX)
    return token_cross_entropy(logits_MLV, labels_ML)


class SigLIPLoss(nn.Module):
    """Pairwise sigmoid loss (Zhai et al., SigLIP) with learnable temperature and bias.

    ``logits = exp(t')·⟨img_i, txt_j⟩ + b`` over L2-normalised embeddings; the label is +1 on
    the diagonal (matching pairs) and −1 elsewhere; loss = −Σ log σ(label·logit) / M.
    Initialisation from the paper: t' = log 10, b = −10 (the bias starts the model off in the
    "mostly negative pairs" regime, which keeps early gradients from drowning in negatives).
    """

    def __init__(self, t_prime_init: float = math.log(10.0), bias_init: float = -10.0) -> None:
        super().__init__()
        self.t_prime = nn.Parameter(torch.tensor(float(t_prime_init)))
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))

    def forward(self, image_emb_ME: torch.Tensor, text_emb_ME: torch.Tensor) -> torch.Tensor:
        """Mean-over-images SigLIP loss for M matching (image, text) pairs."""
        if image_emb_ME.shape != text_emb_ME.shape or image_emb_ME.ndim != 2:
            raise ValueError(f"SigLIP needs two [M, E] embeddings of the same shape, got "
                             f"{tuple(image_emb_ME.shape)} and {tuple(text_emb_ME.shape)}")
        img = F.normalize(image_emb_ME.float(), dim=-1)
        txt = F.normalize(text_emb_ME.float(), dim=-1)
        logits_MM = img @ txt.T * self.t_prime.exp() + self.bias
        m = logits_MM.shape[0]
        labels_MM = 2 * torch.eye(m, device=logits_MM.device) - 1
        return -F.logsigmoid(labels_MM * logits_MM).sum() / m
