"""The pixelpilot VLM as a Hugging Face model: MoonViT → projector → MoE decoder.

``PixelPilotVLForConditionalGeneration.forward`` takes the processor's outputs (``input_ids``,
``attention_mask``, ``pixel_values`` ``[total_patches, 3, 14, 14]``, ``image_grid_hws``
``[num_images, 2]``), encodes all images in one packed vision pass, projects them and writes
them over the ``<|media_pad|>`` embeddings in order (row-major over the batch). ``labels`` give a
shifted cross-entropy with -100 ignored. Text packing: ``attention_mask`` may carry segment ids
(``model.decoder``); the trainer should then set ``labels`` to -100 at each segment's first token.

Generation is our own loop (transformers 5's ``GenerationMixin`` assumes its own cache classes):
greedy or temperature/top-p sampling with the KV cache, per-token log-probs, optional logits,
left-padded batches, and continuation from a reused prefix cache (``model.context_cache``).

HF conventions: ``PixelPilotVLConfig`` (``model_type="pixelpilot_vl"``) stores the component
configs as dicts; ``save_pretrained``/``from_pretrained`` use safetensors (sharded with
``max_shard_size``); the classes are registered with ``AutoConfig``,
``AutoModelForImageTextToText`` and ``AutoModelForCausalLM`` on import.

Shape legend: B batch, T tokens, V vocab, D LM hidden, M media tokens, L patches, N images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast

from model.config import ProjectorConfig, TextConfig, VisionConfig, VLConfig
from model.decoder import KVCache, MoE, MoEDecoder, RMSNorm
from model.projector import Projector
from model.special_tokens import EOS_TOKEN_ID, IM_END_TOKEN_ID, MEDIA_PAD_TOKEN_ID, PAD_TOKEN_ID
from model.vision import MoonViT, PositionTable

IGNORE_INDEX = -100


class PixelPilotVLConfig(PreTrainedConfig):
    """HF config wrapping ``model.config.VLConfig`` (components stored as validated dicts)."""

    model_type = "pixelpilot_vl"

    vision_config: dict | None = None
    projector_config: dict | None = None
    text_config: dict | None = None
    media_placeholder_token_id: int = MEDIA_PAD_TOKEN_ID
    pad_token_id: int | None = PAD_TOKEN_ID
    eos_token_id: int | None = EOS_TOKEN_ID
    tie_word_embeddings: bool = False
    vocab_size: int | None = None  # derived from text_config
    hidden_size: int | None = None  # derived from text_config

    def __post_init__(self, **kwargs: Any) -> None:
        # Round-trip through the frozen dataclasses: validates and fills defaults.
        vision = VisionConfig(**(self.vision_config or {}))
        text = TextConfig(**(self.text_config or {}))
        self.vision_config = dataclasses.asdict(vision)
        self.projector_config = dataclasses.asdict(ProjectorConfig(**(self.projector_config or {})))
        self.text_config = dataclasses.asdict(text)
        self.vocab_size, self.hidden_size = text.vocab_size, text.hidden_size
        self.to_vl_config()  # validates the token ids against the vocabulary
        super().__post_init__(**kwargs)

    def to_vl_config(self) -> VLConfig:
        """The typed config the modules are built from."""
        if self.pad_token_id is None or self.eos_token_id is None:
            raise ValueError("PixelPilotVLConfig needs pad_token_id and eos_token_id "
                             "(see model.special_tokens)")
        return VLConfig(vision=VisionConfig(**(self.vision_config or {})),
                        projector=ProjectorConfig(**(self.projector_config or {})),
                        text=TextConfig(**(self.text_config or {})),
                        media_placeholder_token_id=self.media_placeholder_token_id,
                        pad_token_id=self.pad_token_id, eos_token_id=self.eos_token_id)

    @classmethod
    def from_vl_config(cls, cfg: VLConfig) -> PixelPilotVLConfig:
        """Wrap a preset (``model.config.tiny()`` etc.)."""
        return cls(vision_config=dataclasses.asdict(cfg.vision),
                   projector_config=dataclasses.asdict(cfg.projector),
                   text_config=dataclasses.asdict(cfg.text),
                   media_placeholder_token_id=cfg.media_placeholder_token_id,
                   pad_token_id=cfg.pad_token_id, eos_token_id=cfg.eos_token_id)


@dataclass(frozen=True)
class GenerationOutput:
    """Result of ``generate``: prompt + new tokens, and per-new-token log-probs.

    ``logprobs[b, i]`` is log p(token_i) under the (temperature-scaled, untruncated)
    distribution it was drawn from; positions after a row stopped hold ``pad_token_id`` and 0.
    """

    sequences: torch.Tensor  # [B, T + n]
    new_tokens: torch.Tensor  # [B, n]
    logprobs: torch.Tensor  # [B, n]
    logits: torch.Tensor | None  # [B, n, V] when return_logits
    cache: KVCache | None  # holds every position except the last new token


class PixelPilotVLForConditionalGeneration(PreTrainedModel):
    """MoonViT + pixel-shuffle projector + MoE decoder, with loss and generation."""

    config_class = PixelPilotVLConfig
    base_model_prefix = "pixelpilot_vl"
    main_input_name = "input_ids"
    _no_split_modules = ["VisionBlock", "DecoderLayer"]  # noqa: RUF012 (HF convention)
    _supports_sdpa = True
    # The MoE selection bias accumulates γ-sized updates: keep it float32 under dtype=bf16.
    _keep_in_fp32_modules_strict = ["e_score_correction_bias"]  # noqa: RUF012 (HF convention)

    def __init__(self, config: PixelPilotVLConfig) -> None:
        super().__init__(config)
        cfg = config.to_vl_config()
        self.vl_config = cfg
        self.vision_tower = MoonViT(cfg.vision)
        self.projector = Projector(cfg.projector, cfg.vision.hidden_size, cfg.text.hidden_size)
        self.language_model = MoEDecoder(cfg.text)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.vl_config.text.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module.bias, torch.Tensor):
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (nn.LayerNorm, RMSNorm)):
            init.ones_(module.weight)
            if isinstance(getattr(module, "bias", None), torch.Tensor):
                init.zeros_(module.bias)  # type: ignore[arg-type]
        elif isinstance(module, PositionTable):
            module.reset_parameters(std)
        elif isinstance(module, MoE):
            init.zeros_(module.e_score_correction_bias)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.language_model.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.embed_tokens = value  # type: ignore[assignment]

    def get_output_embeddings(self) -> nn.Linear:
        return self.language_model.lm_head

    def new_cache(self) -> KVCache:
        """An empty KV cache for this model."""
        return KVCache(self.vl_config.text.num_layers)

    def embed_images(self, pixel_values: torch.Tensor, image_grid_hws: torch.Tensor
                     ) -> torch.Tensor:
        """Projected image embeddings ``[M, D]`` for packed patches (one vision pass)."""
        dtype = self.vision_tower.patch_embed.weight.dtype
        features_LC = self.vision_tower(pixel_values.to(dtype), image_grid_hws)
        return self.projector(features_LC, image_grid_hws)

    def build_inputs_embeds(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None,
                            image_grid_hws: torch.Tensor | None,
                            image_embeds: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with ``<|media_pad|>`` positions replaced by image embeddings."""
        embeds_BTD = self.language_model.embed_tokens(input_ids)
        media_BT = input_ids == self.vl_config.media_placeholder_token_id
        num_media = int(media_BT.sum())
        if num_media == 0:
            return embeds_BTD
        if image_embeds is None:
            if pixel_values is None or image_grid_hws is None:
                raise ValueError(f"input_ids hold {num_media} <|media_pad|> tokens but no "
                                 "pixel_values/image_grid_hws (or image_embeds) were given")
            image_embeds = self.embed_images(pixel_values, image_grid_hws)
        if image_embeds.shape[0] != num_media:
            raise ValueError(f"{num_media} <|media_pad|> tokens but {image_embeds.shape[0]} image "
                             "embeddings; each image needs (grid_h/2)·(grid_w/2) pad tokens — "
                             "build inputs with the pixelpilot processor")
        return embeds_BTD.masked_scatter(media_BT.unsqueeze(-1), image_embeds.to(embeds_BTD.dtype))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None,
                image_grid_hws: torch.Tensor | None = None,
                image_embeds: torch.Tensor | None = None,
                cache: KVCache | None = None, use_cache: bool = False,
                labels: torch.Tensor | None = None, logits_to_keep: int = 0,
                **kwargs: Any) -> CausalLMOutputWithPast:
        """Logits ``[B, T', V]`` (T' = logits_to_keep or T), loss if ``labels``, the cache."""
        if kwargs:
            raise TypeError(f"unexpected forward arguments {sorted(kwargs)}")
        if cache is None and use_cache:
            cache = self.new_cache()
        hidden_BTD = self.hidden_states(input_ids, attention_mask, position_ids, pixel_values,
                                        image_grid_hws, image_embeds, cache)
        if logits_to_keep:
            hidden_BTD = hidden_BTD[:, -logits_to_keep:]
        logits_BTV = self.language_model.lm_head(hidden_BTD)
        loss = None
        if labels is not None:
            if logits_to_keep:
                raise ValueError("labels need logits for every position: drop logits_to_keep")
            loss = causal_lm_loss(logits_BTV, labels)
        # ``cache`` is our KVCache (transformers' Cache classes are not used by this model).
        return CausalLMOutputWithPast(loss=loss, logits=logits_BTV,
                                      cache=cache)  # type: ignore[arg-type]

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      position_ids: torch.Tensor | None = None,
                      pixel_values: torch.Tensor | None = None,
                      image_grid_hws: torch.Tensor | None = None,
                      image_embeds: torch.Tensor | None = None,
                      cache: KVCache | None = None) -> torch.Tensor:
        """The decoder's final hidden states ``[B, T, D]`` (before ``lm_head``); see ``forward``.

        Trainers that need logits at a few positions only project those (``training.stages``).
        """
        embeds_BTD = self.build_inputs_embeds(input_ids, pixel_values, image_grid_hws,
                                              image_embeds)
        return self.language_model(embeds_BTD, attention_mask, position_ids, cache)

    def moe_layers(self) -> list[MoE]:
        """The decoder's MoE FFNs (for ``update_routing_biases`` and load statistics)."""
        return self.language_model.moe_layers()

    def update_routing_biases(self, gamma: float | None = None) -> list[torch.Tensor]:
        """Apply the aux-loss-free bias update to every MoE layer; returns the loads used."""
        return [moe.update_bias(gamma) for moe in self.moe_layers()]

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None,
                 image_grid_hws: torch.Tensor | None = None,
                 image_embeds: torch.Tensor | None = None, max_new_tokens: int = 64,
                 do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                 stop_token_ids: Sequence[int] | None = None, use_cache: bool = True,
                 cache: KVCache | None = None, return_logits: bool = False,
                 generator: torch.Generator | None = None) -> GenerationOutput:
        """Decode up to ``max_new_tokens`` tokens; see ``GenerationOutput``.

        Batches must be left-padded. With ``cache`` the cache already holds a prefix
        and ``input_ids`` are only the new tokens (``attention_mask``, if given, spans both).
        ``stop_token_ids`` default to ``<|endoftext|>`` and ``<|im_end|>``.
        """
        _check_generation_args(attention_mask, max_new_tokens, temperature, top_p, use_cache,
                               cache)
        if image_embeds is None and pixel_values is not None and image_grid_hws is not None:
            image_embeds = self.embed_images(pixel_values, image_grid_hws)
        stops = torch.tensor(list(stop_token_ids or (self.vl_config.eos_token_id,
                                                     IM_END_TOKEN_ID)), device=input_ids.device)
        batch = input_ids.shape[0]
        if cache is None and use_cache:
            cache = self.new_cache()
        past = cache.seq_len if cache is not None else 0
        mask = attention_mask if attention_mask is not None else torch.ones(
            batch, past + input_ids.shape[1], dtype=torch.long, device=input_ids.device)
        sequence, step_ids = input_ids, input_ids
        done = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        new_tokens, logprobs, all_logits = [], [], []
        for _ in range(max_new_tokens):
            step_embeds = image_embeds if step_ids is sequence or cache is None else None
            out = self(input_ids=step_ids if cache is not None else sequence,
                       attention_mask=mask, image_embeds=step_embeds,
                       cache=cache, logits_to_keep=1)
            logits_BV = out.logits[:, -1].float()
            token_B, logprob_B = _pick(logits_BV, do_sample, temperature, top_p, generator)
            token_B = torch.where(done, self.vl_config.pad_token_id, token_B)
            logprobs.append(torch.where(done, 0.0, logprob_B))
            new_tokens.append(token_B)
            if return_logits:
                all_logits.append(logits_BV)
            done = done | torch.isin(token_B, stops)
            sequence = torch.cat([sequence, token_B[:, None]], dim=1)
            step_ids = token_B[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            if bool(done.all()):
                break
        return GenerationOutput(sequences=sequence, new_tokens=torch.stack(new_tokens, dim=1),
                                logprobs=torch.stack(logprobs, dim=1),
                                logits=torch.stack(all_logits, dim=1) if return_logits else None,
                                cache=cache)


def causal_lm_loss(logits_BTV: torch.Tensor, labels_BT: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in float32; labels equal to -100 are ignored."""
    shift_logits = logits_BTV[:, :-1].reshape(-1, logits_BTV.shape[-1]).float()
    shift_labels = labels_BT[:, 1:].reshape(-1).to(shift_logits.device)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX)


def _check_generation_args(attention_mask: torch.Tensor | None, max_new_tokens: int,
                           temperature: float, top_p: float, use_cache: bool,
                           past: KVCache | None) -> None:
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    if attention_mask is not None and bool((attention_mask[:, -1] == 0).any()):
        raise ValueError("generation needs left padding: the last column of attention_mask "
                         "must be 1 for every row (set the processor's padding_side='left')")
    if temperature <= 0:
        raise ValueError("temperature must be > 0; use do_sample=False for greedy decoding")
    if not 0 < top_p <= 1:
        raise ValueError("top_p must lie in (0, 1]")
    if past is not None and not use_cache:
        raise ValueError("a cache was given with use_cache=False; pass use_cache=True")


def _pick(logits_BV: torch.Tensor, do_sample: bool, temperature: float, top_p: float,
          generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token per row and its log-prob under softmax(logits / temperature)."""
    logp_BV = torch.log_softmax(logits_BV / temperature, dim=-1)
    if not do_sample:
        token_B = logp_BV.argmax(dim=-1)
    else:
        probs_BV = logp_BV.exp()
        if top_p < 1:
            sorted_p, sorted_idx = probs_BV.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p  # always keeps the top token
            sorted_p = torch.where(keep, sorted_p, 0.0)
            probs_BV = torch.zeros_like(probs_BV).scatter(-1, sorted_idx, sorted_p)
        token_B = torch.multinomial(probs_BV, 1, generator=generator).squeeze(-1)
    return token_B, logp_BV.gather(-1, token_B[:, None]).squeeze(-1)


def build_model(cfg: VLConfig, *, dtype: torch.dtype | None = None
                ) -> PixelPilotVLForConditionalGeneration:
    """A freshly initialised model from a typed preset (``model.config.tiny()`` etc.)."""
    model = PixelPilotVLForConditionalGeneration(PixelPilotVLConfig.from_vl_config(cfg))
    return model.to(dtype) if dtype is not None else model  # type: ignore[arg-type]


AutoConfig.register(PixelPilotVLConfig.model_type, PixelPilotVLConfig, exist_ok=True)
AutoModelForImageTextToText.register(PixelPilotVLConfig, PixelPilotVLForConditionalGeneration,
                                     exist_ok=True)
AutoModelForCausalLM.register(PixelPilotVLConfig, PixelPilotVLForConditionalGeneration,
                              exist_ok=True)
