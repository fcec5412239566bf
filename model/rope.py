"""Rotary position embeddings: 1-D for the decoder, 2-D (width/height) for MoonViT.

Both rotate *interleaved* pairs ``(x[2i], x[2i+1])`` of each head by an angle ``pos · freq_i``,
so ``q·k`` depends only on the position difference. The 2-D variant (Kimi-VL MoonViT) gives
pair ``2j`` the column angle ``x · freq_j`` and pair ``2j+1`` the row angle ``y · freq_j``:
frequencies alternate width/height. Angles are computed on the fly (no buffers), which keeps
meta-device construction and ``from_pretrained`` free of stale non-persistent state.

Shape legend: B batch, T tokens, L packed patches, H heads, D head dim, P = D/2 rotary pairs.
"""

from __future__ import annotations

import torch


def rope_frequencies(num: int, dim: int, theta: float, step: int, device: torch.device | None
                     ) -> torch.Tensor:
    """``num`` inverse frequencies ``theta^(-k·step/dim)``, k = 0..num-1, in float32."""
    exponents = torch.arange(0, num * step, step, device=device, dtype=torch.float32) / dim
    return 1.0 / (theta ** exponents)


def rope_1d(positions_BT: torch.Tensor, head_dim: int, theta: float
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[B, T, P]`` for integer positions ``[B, T]`` (decoder RoPE)."""
    freqs_P = rope_frequencies(head_dim // 2, head_dim, theta, 2, positions_BT.device)
    angles_BTP = positions_BT.to(torch.float32).unsqueeze(-1) * freqs_P
    return angles_BTP.cos(), angles_BTP.sin()


def rope_2d(grid_hws: torch.Tensor, head_dim: int, theta: float,
            device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin ``[L, P]`` for all patches of all images (raster order per image, images packed).

    ``grid_hws`` is ``[N, 2]`` = (grid_h, grid_w) per image; ``head_dim`` must divide by 4.
    Results live on ``device`` (default: the device of ``grid_hws``).
    """
    device = device if device is not None else grid_hws.device
    freqs_F = rope_frequencies(head_dim // 4, head_dim, theta, 4, device)
    ys, xs = [], []
    for h, w in grid_hws.tolist():
        idx = torch.arange(h * w, device=device)
        ys.append(idx // w)
        xs.append(idx % w)
    y_L = torch.cat(ys).to(torch.float32)
    x_L = torch.cat(xs).to(torch.float32)
    # Interleave: pair 2j ← width frequency j, pair 2j+1 ← height frequency j.
    angles_LP = torch.stack([x_L[:, None] * freqs_F, y_L[:, None] * freqs_F], dim=-1).flatten(1)
    return angles_LP.cos(), angles_LP.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of the last dim of ``x`` (``[..., D]``) by cos/sin ``[..., P]``.

    cos/sin must broadcast against ``x[..., ::2]``; math in float32, result in ``x.dtype``.
    """
    x_f = x.float()
    x1, x2 = x_f[..., 0::2], x_f[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)
    return out.to(x.dtype)
