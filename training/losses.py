"""Training losses: token cross-entropy (sum + count, for exact gradient accumulation), SigLIP's
pairwise sigmoid loss, the caption loss of ViT pre-training, and the dense media-word loss
(``media_word_loss``: which word each image token shows).

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


def media_word_loss(media_MD: torch.Tensor, embedding_VD: torch.Tensor, targets_K2: torch.Tensor) -> torch.Tensor:
    """Mean over labelled media tokens of the mean CE of their word's tokens, with logits
    ``media @ embedding.T`` (the decoder's input embedding table as the classifier: the image token
    over a word is pulled towards the vectors the same word enters the decoder as).

    ``targets_K2``: (media token index, token id) pairs (``training.data.media_words``); a
    token with several pairs (a word of several tokens) counts once, its pairs averaged.
    """
    if targets_K2.numel() == 0:
        return media_MD.sum() * 0.0
    rows_K, ids_K = targets_K2[:, 0], targets_K2[:, 1]
    if int(rows_K.max()) >= media_MD.shape[0] or int(ids_K.max()) >= embedding_VD.shape[0] or int(targets_K2.min()) < 0:
        raise ValueError(f"media targets index {int(rows_K.max()) + 1} media tokens / token id {int(ids_K.max())}, "
                         f"but the batch has {media_MD.shape[0]} media tokens and {embedding_VD.shape[0]} "
                         "token ids: were the samples collated by training.data.packing?")
    unique_U, inverse_K = torch.unique(rows_K, return_inverse=True)
    logits_UV = (media_MD[unique_U] @ embedding_VD.T).float()
    nll_K = -F.log_softmax(logits_UV, dim=-1)[inverse_K, ids_K]
    per_row_U = torch.zeros(len(unique_U), device=nll_K.device).index_add_(0, inverse_K, nll_K)
    counts_U = torch.bincount(inverse_K, minlength=len(unique_U)).to(nll_K.dtype)
    return (per_row_U / counts_U).mean()


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
