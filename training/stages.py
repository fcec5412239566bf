"""Training stages: what is trained, with which objective, and the modules that compute it.

A ``Stage`` names the objective (``"lm"``: next-token CE on labelled tokens; ``"vit"``:
SigLIP + 2 × caption loss) and the trainable part of the VLM as parameter-name prefixes
(``vision_tower``, ``projector``, ``language_model``); everything else is frozen
(``requires_grad=False``, excluded from the optimizer, so it stays bit-identical).

``build_train_module`` wraps the VLM for a stage:
- ``LMModule``: forward(batch) → (sum of token CE, token count); packed segment starts masked.
- ``ViTPretrainModule``: MoonViT + ``CaptionHeads`` (CoCa-style: a small causal text encoder
  whose last token is the SigLIP text embedding, then a cross-attending caption decoder over
  the image patch features). Mean-pooled patch features are the SigLIP image embedding.
  The heads exist only for this stage; they are checkpointed beside the VLM, not inside it.

What this module does not do: data, schedules, the loop (``training.trainer``).

Shape legend: B batch, T tokens, V vocab, L patches, N/M images, C vision hidden, W head width,
E embedding, S caption tokens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from model.modeling import PixelPilotVLForConditionalGeneration
from training.losses import (IGNORE_INDEX, SigLIPLoss, caption_loss, count_loss_tokens,
                             mask_segment_starts, media_word_loss)

VLM_PARTS = ("vision_tower", "projector", "language_model")
Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Stage:
    """A stage: objective, trainable VLM parts, and an optional RoPE base for the decoder."""

    name: str
    objective: Literal["lm", "vit"]
    trainable: tuple[str, ...]  # VLM parts (VLM_PARTS) whose parameters train
    rope_theta: float | None = None  # set the decoder's RoPE base before training

    def __post_init__(self) -> None:
        if self.objective not in ("lm", "vit"):
            raise ValueError(f"Stage.objective must be 'lm' or 'vit', got {self.objective!r}")
        unknown = set(self.trainable) - set(VLM_PARTS)
        if unknown or not self.trainable:
            raise ValueError(f"Stage.trainable must be a non-empty subset of {VLM_PARTS}, "
                             f"got {self.trainable}")
        if self.objective == "vit" and self.trainable != ("vision_tower",):
            raise ValueError("the 'vit' objective trains the vision tower only: "
                             "trainable=('vision_tower',)")
        if self.rope_theta is not None and self.rope_theta <= 0:
            raise ValueError(f"Stage.rope_theta must be > 0, got {self.rope_theta}")

    def is_trainable(self, vlm_param_name: str) -> bool:
        """Whether a VLM parameter (name as in ``named_parameters``) trains in this stage."""
        return vlm_param_name.split(".", 1)[0] in self.trainable


def apply_trainable(vlm: nn.Module, stage: Stage) -> None:
    """Set ``requires_grad`` on every VLM parameter from the stage's predicate."""
    for name, param in vlm.named_parameters():
        param.requires_grad_(stage.is_trainable(name))


def set_rope_theta(vlm: PixelPilotVLForConditionalGeneration, theta: float) -> None:
    """Change the decoder's RoPE base (long-context activation); saved configs follow.

    RoPE tables are computed per forward from the config, so updating the three places
    that hold the text config (HF config dict, typed config, decoder) is the whole change.
    """
    text = dataclasses.replace(vlm.vl_config.text, rope_theta=float(theta))
    vlm.config.text_config = dataclasses.asdict(text)
    vlm.vl_config = dataclasses.replace(vlm.vl_config, text=text)
    vlm.language_model.cfg = text


class LMModule(nn.Module):
    """Next-token CE of the VLM on a batch of the contract (text and/or images).

    With ``media_word_weight`` > 0, batches that carry ``media_targets`` (``training.data.media_words``)
    add ``media_word_weight`` × ``training.losses.media_word_loss`` on the projector's output (the
    media tokens the decoder sees), scaled by the batch's loss-token count so that its share of the
    step does not depend on how many tokens the batch labels.
    """

    def __init__(self, vlm: PixelPilotVLForConditionalGeneration, media_word_weight: float = 0.0) -> None:
        super().__init__()
        if media_word_weight < 0:
            raise ValueError(f"media_word_weight must be >= 0, got {media_word_weight}")
        self.vlm = vlm
        self.media_word_weight = media_word_weight
        self._media: list[torch.Tensor] = []
        if media_word_weight:
            vlm.projector.register_forward_hook(lambda _m, _i, out: self._media.append(out))

    def count(self, batch: Batch) -> int:
        """Loss tokens in ``batch`` (known before the forward pass)."""
        return count_loss_tokens(mask_segment_starts(batch["labels"], batch["attention_mask"]))

    def forward(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """(sum of CE over loss tokens, count)."""
        self._media.clear()
        hidden_BTD = self.vlm.hidden_states(batch["input_ids"], batch["attention_mask"],
                                            pixel_values=batch.get("pixel_values"),
                                            image_grid_hws=batch.get("image_grid_hws"))
        media = self._media[-1] if self._media else None
        self._media.clear()
        labels = mask_segment_starts(batch["labels"], batch["attention_mask"])
        # The vocabulary projection and softmax only where a label is (the same sum as
        # token_cross_entropy over all logits; SFT rows label ~10 % of their tokens).
        shift_BT = labels[:, 1:]
        keep_BT = shift_BT != IGNORE_INDEX
        logits_NV = self.vlm.language_model.lm_head(hidden_BTD[:, :-1][keep_BT]).float()
        total = F.cross_entropy(logits_NV, shift_BT[keep_BT], reduction="sum")
        count = int(keep_BT.sum())
        targets = batch.get("media_targets")
        if self.media_word_weight and media is not None and targets is not None and len(targets):
            words = media_word_loss(media, self.vlm.get_input_embeddings().weight, targets)
            total = total + self.media_word_weight * max(count, 1) * words
        return total, count

    def output_heads(self) -> list[nn.Module]:
        """Linear layers onto the vocabulary (AdamW, not Muon)."""
        return [self.vlm.get_output_embeddings()]

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Trained tensors that are not part of the VLM (none here)."""
        return {}


@dataclass(frozen=True)
class CaptionHeadsConfig:
    """Size of the ViT pre-training heads (text encoder + caption decoder)."""

    width: int = 128
    num_heads: int = 4
    text_layers: int = 1
    decoder_layers: int = 1
    embed_dim: int = 64  # SigLIP embedding size
    max_caption_len: int = 128

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 1:
                raise ValueError(f"CaptionHeadsConfig.{f.name} must be >= 1")
        if self.width % self.num_heads:
            raise ValueError("CaptionHeadsConfig.width must divide by num_heads")


def _layer(kind: type, cfg: CaptionHeadsConfig) -> nn.Module:
    return kind(cfg.width, cfg.num_heads, 4 * cfg.width, dropout=0.0, batch_first=True,
                norm_first=True)


class CaptionHeads(nn.Module):
    """CoCa-style heads: causal text encoder (→ SigLIP text embedding) + caption decoder."""

    def __init__(self, vision_hidden: int, vocab_size: int, cfg: CaptionHeadsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image_proj = nn.Linear(vision_hidden, cfg.embed_dim)
        self.tok_embed = nn.Embedding(vocab_size, cfg.width)
        self.pos_embed = nn.Embedding(cfg.max_caption_len, cfg.width)
        self.text_encoder = nn.TransformerEncoder(_layer(nn.TransformerEncoderLayer, cfg),
                                                  cfg.text_layers, enable_nested_tensor=False)
        self.text_proj = nn.Linear(cfg.width, cfg.embed_dim)
        self.memory_proj = nn.Linear(vision_hidden, cfg.width)
        self.decoder = nn.TransformerDecoder(_layer(nn.TransformerDecoderLayer, cfg),
                                             cfg.decoder_layers)
        self.norm = nn.LayerNorm(cfg.width)
        self.lm_head = nn.Linear(cfg.width, vocab_size)
        self.siglip = SigLIPLoss()

    def forward(self, features_NLC: torch.Tensor, pad_NL: torch.Tensor,
                caption_ids_MS: torch.Tensor, caption_mask_MS: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(SigLIP loss, caption CE sum, caption token count) for N = M image/caption pairs."""
        # Captions longer than the position table are cut (the tail of a screen description).
        caption_ids_MS = caption_ids_MS[:, :self.cfg.max_caption_len]
        caption_mask_MS = caption_mask_MS[:, :self.cfg.max_caption_len]
        s = caption_ids_MS.shape[1]
        keep_NL1 = (~pad_NL).unsqueeze(-1).float()
        pooled_NC = (features_NLC * keep_NL1).sum(1) / keep_NL1.sum(1).clamp(min=1)
        causal_SS = nn.Transformer.generate_square_subsequent_mask(s, device=features_NLC.device)
        pos_S = torch.arange(s, device=caption_ids_MS.device)
        x_MSW = self.tok_embed(caption_ids_MS) + self.pos_embed(pos_S)
        text_MSW = self.text_encoder(x_MSW, mask=causal_SS, is_causal=True)
        last_M = (caption_mask_MS.sum(1) - 1).clamp(min=0)
        text_emb_MW = text_MSW[torch.arange(len(last_M)), last_M]
        sig = self.siglip(self.image_proj(pooled_NC), self.text_proj(text_emb_MW))
        dec_MSW = self.decoder(text_MSW, self.memory_proj(features_NLC), tgt_mask=causal_SS,
                               tgt_is_causal=True, memory_key_padding_mask=pad_NL)
        cap_sum, cap_count = caption_loss(self.lm_head(self.norm(dec_MSW)), caption_ids_MS,
                                          caption_mask_MS)
        return sig, cap_sum, cap_count


def pad_per_image(features_LC: torch.Tensor, grid_hws: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split packed patch features into ``[N, Lmax, C]`` plus a padding mask ``[N, Lmax]``."""
    lengths = (grid_hws[:, 0] * grid_hws[:, 1]).tolist()
    parts = features_LC.split(lengths)
    padded = nn.utils.rnn.pad_sequence(list(parts), batch_first=True)
    idx_L = torch.arange(padded.shape[1], device=features_LC.device)
    pad_NL = idx_L[None, :] >= torch.tensor(lengths, device=features_LC.device)[:, None]
    return padded, pad_NL


class ViTPretrainModule(nn.Module):
    """MoonViT + caption heads: loss = SigLIP + 2 × caption CE (Kimi-VL ViT pre-training)."""

    CAPTION_WEIGHT = 2.0

    def __init__(self, vlm: PixelPilotVLForConditionalGeneration,
                 heads_cfg: CaptionHeadsConfig | None = None) -> None:
        super().__init__()
        self.vlm = vlm
        cfg = vlm.vl_config
        self.heads = CaptionHeads(cfg.vision.hidden_size, cfg.text.vocab_size,
                                  heads_cfg or CaptionHeadsConfig())

    def count(self, batch: Batch) -> int:
        """Images in the batch: the SigLIP + caption loss is averaged per image."""
        return int(batch["image_grid_hws"].shape[0])

    def forward(self, batch: Batch) -> tuple[torch.Tensor, int]:
        """(per-image loss × images, images)."""
        grids = batch["image_grid_hws"]
        features_LC = self.vlm.vision_tower(batch["pixel_values"], grids)
        features_NLC, pad_NL = pad_per_image(features_LC, grids)
        sig, cap_sum, cap_count = self.heads(features_NLC, pad_NL, batch["caption_ids"],
                                             batch["caption_mask"])
        per_image = sig + self.CAPTION_WEIGHT * cap_sum / max(cap_count, 1)
        n = int(grids.shape[0])
        return per_image * n, n

    def output_heads(self) -> list[nn.Module]:
        return [self.vlm.get_output_embeddings(), self.heads.lm_head]

    def extra_state(self) -> dict[str, torch.Tensor]:
        """The heads' tensors (saved beside the VLM so a resumed run continues exactly)."""
        return {f"heads.{k}": v for k, v in self.heads.state_dict().items()}


def build_train_module(vlm: PixelPilotVLForConditionalGeneration, stage: Stage,
                       **kwargs: Any) -> LMModule | ViTPretrainModule:
    """Freeze per the stage, set the RoPE base, and wrap the VLM with the stage's objective."""
    if stage.rope_theta is not None:
        set_rope_theta(vlm, stage.rope_theta)
    apply_trainable(vlm, stage)
    if stage.objective == "vit":
        return ViTPretrainModule(vlm, **kwargs)
    return LMModule(vlm, **kwargs)
