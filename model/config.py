"""Configuration of the pixelpilot VLM: one frozen dataclass per component, presets as functions.

Components (Kimi-VL layout): ``VisionConfig`` (MoonViT encoder), ``ProjectorConfig`` (2×2 pixel
shuffle + MLP), ``TextConfig`` (DeepSeek-V3-style MoE decoder) and ``VLConfig`` tying them
together with the special-token ids of ``model.special_tokens``.

Presets:
- ``kimi_vl_a3b()``: the published Kimi-VL-A3B dimensions (MoonViT-400M + Moonlight-16B-A3B LM).
  The LM uses GQA instead of MLA (see ``model.decoder``), which moves the parameter count by
  under 1 %.
- ``small()``: a few-million-parameter model whose CPU timings mean something (benchmarks).
- ``tiny()``: trains on a 2-core CPU in tests.

This module holds plain data only; it imports no torch and knows nothing about GUIs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model.special_tokens import EOS_TOKEN_ID, MEDIA_PAD_TOKEN_ID, PAD_TOKEN_ID, SPECIAL_TOKENS


class ModelConfigError(ValueError):
    """A model configuration value is inconsistent; the message names the field and the fix."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ModelConfigError(message)


@dataclass(frozen=True)
class VisionConfig:
    """MoonViT: native-resolution ViT over 14×14 patches, NaViT-packed, 2D RoPE + abs. table."""

    patch_size: int = 14
    hidden_size: int = 1152
    num_layers: int = 27
    num_heads: int = 16
    intermediate_size: int = 4304
    pos_table_size: int = 64  # learnable pos_table_size × pos_table_size absolute table
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-6
    #: Initial values of the absolute table: "normal" (small noise, as a table that will be
    #: loaded from a pre-trained ViT) or "sincos" (2D sine-cosine features, MAE-style: absolute
    #: position is readable from the first step, which a ViT trained from scratch needs).
    pos_init: str = "normal"

    def __post_init__(self) -> None:
        for name in ("patch_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "pos_table_size"):
            _require(getattr(self, name) > 0, f"VisionConfig.{name} must be > 0")
        _require(self.hidden_size % self.num_heads == 0,
                 f"VisionConfig.hidden_size {self.hidden_size} must divide by num_heads "
                 f"{self.num_heads}")
        _require(self.head_dim % 4 == 0,
                 f"VisionConfig head_dim {self.head_dim} must be a multiple of 4 for 2D RoPE "
                 "(half the rotary pairs encode width, half height); change hidden_size/num_heads")
        _require(self.rope_theta > 0, "VisionConfig.rope_theta must be > 0")
        _require(self.pos_init in ("normal", "sincos"),
                 f"VisionConfig.pos_init must be 'normal' or 'sincos', got {self.pos_init!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class ProjectorConfig:
    """2×2 pixel shuffle → LayerNorm → Linear → GELU → Linear (to the LM width)."""

    merge_size: int = 2
    intermediate_size: int | None = None  # None: merge_size² × vision hidden (Kimi-VL)
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        _require(self.merge_size == 2,
                 "ProjectorConfig.merge_size must be 2: the processor contract expands each "
                 "image to (grid_h/2)·(grid_w/2) media tokens")
        _require(self.intermediate_size is None or self.intermediate_size > 0,
                 "ProjectorConfig.intermediate_size must be > 0 or None")


@dataclass(frozen=True)
class TextConfig:
    """DeepSeek-V3-style MoE decoder (Moonlight): GQA attention, SwiGLU experts, RMSNorm, RoPE."""

    vocab_size: int = 163840
    hidden_size: int = 2048
    num_layers: int = 27
    num_heads: int = 16
    num_kv_heads: int = 4
    head_dim: int = 128
    intermediate_size: int = 11264  # dense (first_k_dense) layers
    moe_intermediate_size: int = 1408  # per routed / shared expert
    num_routed_experts: int = 64
    num_shared_experts: int = 2
    num_experts_per_tok: int = 6
    first_k_dense: int = 1
    routed_scaling_factor: float = 2.446
    norm_topk_prob: bool = True
    bias_update_speed: float = 1e-3  # γ of the aux-loss-free balancing rule
    rope_theta: float = 50000.0
    max_position_embeddings: int = 8192
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "head_dim", "intermediate_size", "moe_intermediate_size",
                     "max_position_embeddings"):
            _require(getattr(self, name) > 0, f"TextConfig.{name} must be > 0")
        _require(self.vocab_size >= len(SPECIAL_TOKENS),
                 f"TextConfig.vocab_size must hold the {len(SPECIAL_TOKENS)} special tokens")
        _require(self.num_heads % self.num_kv_heads == 0,
                 f"TextConfig.num_heads {self.num_heads} must be a multiple of num_kv_heads "
                 f"{self.num_kv_heads} (GQA groups)")
        _require(self.head_dim % 2 == 0, "TextConfig.head_dim must be even for RoPE")
        _require(0 <= self.first_k_dense <= self.num_layers,
                 "TextConfig.first_k_dense must lie in [0, num_layers]")
        if self.first_k_dense < self.num_layers:
            _require(self.num_routed_experts > 0, "TextConfig.num_routed_experts must be > 0")
            _require(0 < self.num_experts_per_tok <= self.num_routed_experts,
                     "TextConfig.num_experts_per_tok must lie in [1, num_routed_experts]")
        _require(self.num_shared_experts >= 0, "TextConfig.num_shared_experts must be >= 0")
        _require(self.routed_scaling_factor > 0, "TextConfig.routed_scaling_factor must be > 0")
        _require(self.bias_update_speed >= 0, "TextConfig.bias_update_speed must be >= 0")
        _require(self.rope_theta > 0, "TextConfig.rope_theta must be > 0")

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.first_k_dense


@dataclass(frozen=True)
class VLConfig:
    """The whole VLM: vision encoder, projector, MoE decoder and the token ids they share."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    text: TextConfig = field(default_factory=TextConfig)
    media_placeholder_token_id: int = MEDIA_PAD_TOKEN_ID
    pad_token_id: int = PAD_TOKEN_ID
    eos_token_id: int = EOS_TOKEN_ID

    def __post_init__(self) -> None:
        for name in ("media_placeholder_token_id", "pad_token_id", "eos_token_id"):
            value = getattr(self, name)
            _require(0 <= value < self.text.vocab_size,
                     f"VLConfig.{name}={value} must lie in [0, text.vocab_size)")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (nested dicts per component)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VLConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ModelConfigError``."""
        data = dict(data)
        parts = {"vision": VisionConfig, "projector": ProjectorConfig, "text": TextConfig}
        kwargs: dict[str, Any] = {}
        for key, klass in parts.items():
            if key in data:
                kwargs[key] = _build(klass, data.pop(key))
        return _build(cls, {**data, **kwargs})


def _build(klass: type, data: Any) -> Any:
    if isinstance(data, klass):
        return data
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = set(data) - names
    _require(not unknown, f"{klass.__name__} got unknown keys {sorted(unknown)}; "
                          f"valid keys are {sorted(names)}")
    return klass(**data)


def kimi_vl_a3b() -> VLConfig:
    """Kimi-VL-A3B reference dimensions (MoonViT 400M, Moonlight 16B total / ~3B activated)."""
    return VLConfig(vision=VisionConfig(), projector=ProjectorConfig(), text=TextConfig())


def small() -> VLConfig:
    """A CPU-benchmarkable model: ViT 256×4, LM 256×4 with 8 experts top-2 (~10 M params)."""
    return VLConfig(
        vision=VisionConfig(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024),
        text=TextConfig(vocab_size=4096, hidden_size=256, num_layers=4, num_heads=8,
                        num_kv_heads=2, head_dim=32, intermediate_size=1024,
                        moe_intermediate_size=256, num_routed_experts=8, num_shared_experts=1,
                        num_experts_per_tok=2, routed_scaling_factor=1.0),
    )


def tiny() -> VLConfig:
    """Trains on a 2-core CPU: ViT 64×2, LM 128×3 (first layer dense, 8 experts top-2, 1 shared)."""
    return VLConfig(
        vision=VisionConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128),
        projector=ProjectorConfig(),
        text=TextConfig(vocab_size=4096, hidden_size=128, num_layers=3, num_heads=4,
                        num_kv_heads=2, head_dim=32, intermediate_size=256,
                        moe_intermediate_size=64, num_routed_experts=8, num_shared_experts=1,
                        num_experts_per_tok=2, routed_scaling_factor=1.0,
                        max_position_embeddings=4096),
    )


def miniwob_tiny() -> VLConfig:
    """The shipped MiniWoB agent (``training.miniwob_tiny``): ``tiny`` with a 2D sine-cosine
    initial position table, because its ViT learns from scratch where things are."""
    base = tiny()
    return dataclasses.replace(base, vision=dataclasses.replace(base.vision, pos_init="sincos"))


PRESETS = {"kimi_vl_a3b": kimi_vl_a3b, "small": small, "tiny": tiny, "miniwob_tiny": miniwob_tiny}
