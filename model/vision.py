"""MoonViT: the native-resolution vision encoder of Kimi-VL.

Each image is cut into 14×14 patches at (close to) its native resolution; the patches of all
images are *packed* into one sequence (NaViT) described by ``cu_seqlens``. Attention is confined
to each image without ever building an O(L²) mask over the whole pack:

- CUDA + fp16/bf16 + the ``flash_attn`` package: ``flash_attn_varlen_func`` (one kernel call).
- otherwise (CPU, fp32): ``scaled_dot_product_attention`` per image block, split by cu_seqlens.

Position information is a learnable 64×64 absolute table, bicubic-interpolated to each image's
grid (exactly the table at 64×64), plus 2-D RoPE on q/k (``model.rope.rope_2d``). Blocks are
pre-norm LayerNorm → attention → LayerNorm → GELU-tanh MLP; a final LayerNorm closes the stack.

What this module does not do: resizing/padding images and normalising pixels (the image
processor's job; ``native_grid_size`` is the pure sizing rule for reference and benchmarks),
and the 2×2 merge (``model.projector``).

Shape legend: L packed patches, N images, C hidden, H heads, D head dim, P rotary pairs,
B batch (padded baseline), S = 3·patch·patch pixel values per patch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from model.config import VisionConfig
from model.rope import apply_rope, rope_2d

try:  # Optional CUDA kernel; never required.
    from flash_attn import flash_attn_varlen_func  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the host
    flash_attn_varlen_func = None

# attend(q, k, v) -> out, all [..., L, H, D]
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def native_grid_size(height: int, width: int, *, patch_size: int = 14, merge_size: int = 2,
                     max_patches: int = 4096) -> tuple[int, int]:
    """Patch grid (grid_h, grid_w) for an image of ``height×width`` pixels.

    Images above ``max_patches`` are scaled down keeping the aspect ratio, then padded up to a
    multiple of ``patch_size·merge_size`` (28); if padding crosses the limit the scale shrinks
    until it fits. Both grid sides come out even and ≥ ``merge_size``.
    """
    unit = patch_size * merge_size
    scale = min(1.0, math.sqrt(max_patches * patch_size**2 / (height * width)))
    while True:
        h_units = max(1, math.ceil(height * scale / unit))
        w_units = max(1, math.ceil(width * scale / unit))
        grid = (h_units * merge_size, w_units * merge_size)
        if grid[0] * grid[1] <= max_patches or (h_units == 1 and w_units == 1):
            return grid
        scale *= 0.98


def cu_seqlens_from_grids(grid_hws: torch.Tensor) -> torch.Tensor:
    """Cumulative patch counts ``[N+1]`` (int32, starts at 0) for grids ``[N, 2]``."""
    lengths_N = grid_hws[:, 0] * grid_hws[:, 1]
    return F.pad(lengths_N.cumsum(0), (1, 0)).to(torch.int32)


def packed_attend(cu_seqlens: torch.Tensor) -> Attend:
    """Attention over a pack ``[L, H, D]`` confined to the blocks given by ``cu_seqlens``."""
    bounds = cu_seqlens.tolist()
    lengths = [b - a for a, b in itertools.pairwise(bounds)]

    def attend(q_LHD: torch.Tensor, k_LHD: torch.Tensor, v_LHD: torch.Tensor) -> torch.Tensor:
        if (flash_attn_varlen_func is not None and q_LHD.is_cuda
                and q_LHD.dtype in (torch.float16, torch.bfloat16)):
            cu = cu_seqlens.to(device=q_LHD.device, dtype=torch.int32)
            return flash_attn_varlen_func(q_LHD, k_LHD, v_LHD, cu, cu, max(lengths), max(lengths))
        outs = []
        for q, k, v in zip(q_LHD.split(lengths), k_LHD.split(lengths), v_LHD.split(lengths)):
            # 4-D [1, H, l, D] inputs: 3-D ones miss SDPA's fused CPU kernel (3× slower, O(l²)).
            o_1HlD = F.scaled_dot_product_attention(q.transpose(0, 1)[None],
                                                    k.transpose(0, 1)[None],
                                                    v.transpose(0, 1)[None])
            outs.append(o_1HlD[0].transpose(0, 1))
        return torch.cat(outs, dim=0)

    return attend


def sincos_table(size: int, hidden: int, scale: float = 0.5) -> torch.Tensor:
    """``[size, size, hidden]`` 2D sine-cosine features: a quarter each sin/cos of row and column."""
    quarter = hidden // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / max(quarter, 1)))
    rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                                torch.arange(size, dtype=torch.float32), indexing="ij")
    feats = [torch.sin(rows[..., None] * omega), torch.cos(rows[..., None] * omega),
             torch.sin(cols[..., None] * omega), torch.cos(cols[..., None] * omega)]
    table = torch.cat(feats, dim=-1)
    pad = hidden - table.shape[-1]
    return scale * (F.pad(table, (0, pad)) if pad else table)


class PositionTable(nn.Module):
    """Learnable ``size×size×C`` absolute position table, bicubic-resized to each image grid."""

    def __init__(self, size: int, hidden: int, init: str = "normal") -> None:
        super().__init__()
        self.size = size
        self.init_kind = init
        self.weight = nn.Parameter(torch.empty(size, size, hidden))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.02) -> None:
        """Initial values: small noise, or 2D sine-cosine features (``VisionConfig.pos_init``)."""
        if self.init_kind == "sincos":
            self.weight.copy_(sincos_table(self.size, self.weight.shape[-1]))
        else:
            nn.init.normal_(self.weight, std=std)

    def interpolate(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Table resized to ``[grid_h, grid_w, C]`` (the table itself at size×size)."""
        if (grid_h, grid_w) == (self.size, self.size):
            return self.weight
        table_1CHW = self.weight.permute(2, 0, 1).unsqueeze(0)
        resized = F.interpolate(table_1CHW.float(), size=(grid_h, grid_w), mode="bicubic",
                                align_corners=False)
        return resized[0].permute(1, 2, 0).to(self.weight.dtype)

    def forward(self, grid_hws: torch.Tensor) -> torch.Tensor:
        """Position embeddings ``[L, C]`` for all images, raster order per image."""
        parts = [self.interpolate(h, w).reshape(h * w, -1) for h, w in grid_hws.tolist()]
        return torch.cat(parts, dim=0)


class VisionAttention(nn.Module):
    """Multi-head self-attention with 2-D RoPE; the ``attend`` callable decides the masking."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attend: Attend
                ) -> torch.Tensor:
        """``x`` ``[..., L, C]``; cos/sin ``[..., L, P]``; returns ``[..., L, C]``."""
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim))
        q_LHD, k_LHD, v_LHD = qkv.unbind(dim=-3)
        cos_L1P, sin_L1P = cos.unsqueeze(-2), sin.unsqueeze(-2)
        q_LHD = apply_rope(q_LHD, cos_L1P, sin_L1P)
        k_LHD = apply_rope(k_LHD, cos_L1P, sin_L1P)
        return self.proj(attend(q_LHD, k_LHD, v_LHD).flatten(-2))


class VisionBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)); x + MLP(LN(x)) with GELU-tanh."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = VisionAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attend: Attend
                ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, attend)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class MoonViT(nn.Module):
    """Packed native-resolution encoder: ``forward(pixel_values, grid_hws) -> [L, C]``."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # A Linear over flattened (3, p, p) patches == Conv2d(3, C, p, stride=p) on the patch.
        self.patch_embed = nn.Linear(3 * cfg.patch_size**2, cfg.hidden_size)
        self.pos_table = PositionTable(cfg.pos_table_size, cfg.hidden_size, cfg.pos_init)
        self.blocks = nn.ModuleList(VisionBlock(cfg) for _ in range(cfg.num_layers))
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def embed(self, pixel_values: torch.Tensor, grid_hws: torch.Tensor) -> torch.Tensor:
        """Patch + absolute position embeddings ``[L, C]`` from patches ``[L, 3, p, p]``."""
        _check_patches(pixel_values, grid_hws, self.cfg.patch_size)
        x_LS = pixel_values.flatten(1).to(self.patch_embed.weight.dtype)
        return self.patch_embed(x_LS) + self.pos_table(grid_hws)

    def rope(self, grid_hws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """2-D RoPE cos/sin ``[L, P]`` for the pack."""
        return rope_2d(grid_hws, self.cfg.head_dim, self.cfg.rope_theta,
                       device=self.patch_embed.weight.device)

    def run_blocks(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, attend: Attend
                   ) -> torch.Tensor:
        """All blocks + final norm with the given attention strategy (packed or padded)."""
        for block in self.blocks:
            x = block(x, cos, sin, attend)
        return self.final_norm(x)

    def forward(self, pixel_values: torch.Tensor, grid_hws: torch.Tensor) -> torch.Tensor:
        """Encode packed patches ``[L, 3, p, p]`` of images with grids ``[N, 2]`` → ``[L, C]``."""
        x_LC = self.embed(pixel_values, grid_hws)
        cos_LP, sin_LP = self.rope(grid_hws)
        attend = packed_attend(cu_seqlens_from_grids(grid_hws))
        return self.run_blocks(x_LC, cos_LP, sin_LP, attend)


def _check_patches(pixel_values: torch.Tensor, grid_hws: torch.Tensor, patch: int) -> None:
    if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != (3, patch, patch):
        raise ValueError(f"pixel_values must be [total_patches, 3, {patch}, {patch}], got "
                         f"{tuple(pixel_values.shape)}; use the pixelpilot image processor")
    if grid_hws.dim() != 2 or grid_hws.shape[1] != 2:
        raise ValueError(f"image_grid_hws must be [num_images, 2], got {tuple(grid_hws.shape)}")
    total = int((grid_hws[:, 0] * grid_hws[:, 1]).sum())
    if total != pixel_values.shape[0]:
        raise ValueError(f"image_grid_hws describe {total} patches but pixel_values holds "
                         f"{pixel_values.shape[0]}; pass the processor's outputs together")
