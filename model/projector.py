"""Vision → language projector: 2×2 pixel shuffle, then LayerNorm → Linear → GELU → Linear.

The pixel shuffle merges each 2×2 block of patches (rows 2i..2i+1, cols 2j..2j+1) into one
token of 4·C channels, concatenated in the order (2i,2j), (2i,2j+1), (2i+1,2j), (2i+1,2j+1);
merged tokens come out in raster order over the (grid_h/2, grid_w/2) grid, image after image.
That order is the contract with the processor: it emits (grid_h/2)·(grid_w/2) ``<|media_pad|>``
tokens per image and the model fills them in order.

Shape legend: L packed patches, M = L/4 merged tokens, C vision hidden, E = 4·C, D LM hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ProjectorConfig


def pixel_shuffle(x_LC: torch.Tensor, grid_hws: torch.Tensor, merge: int = 2) -> torch.Tensor:
    """Merge ``merge×merge`` patch blocks of every image: ``[L, C]`` → ``[L/merge², merge²·C]``."""
    outs = []
    offset = 0
    for h, w in grid_hws.tolist():
        if h % merge or w % merge:
            raise ValueError(f"image grid {h}×{w} is not divisible by the merge size {merge}; "
                             "the image processor must pad images to a multiple of 28 pixels")
        img = x_LC[offset:offset + h * w].reshape(h // merge, merge, w // merge, merge, -1)
        outs.append(img.permute(0, 2, 1, 3, 4).reshape((h // merge) * (w // merge), -1))
        offset += h * w
    if offset != x_LC.shape[0]:
        raise ValueError(f"grids cover {offset} patches but the features hold {x_LC.shape[0]}")
    return torch.cat(outs, dim=0)


class Projector(nn.Module):
    """Pixel shuffle + 2-layer GELU MLP from MoonViT width to the LM width."""

    def __init__(self, cfg: ProjectorConfig, vision_hidden: int, text_hidden: int) -> None:
        super().__init__()
        self.merge = cfg.merge_size
        merged = cfg.merge_size**2 * vision_hidden
        inner = cfg.intermediate_size or merged
        self.norm = nn.LayerNorm(merged, eps=cfg.layer_norm_eps)
        self.linear_1 = nn.Linear(merged, inner)
        self.linear_2 = nn.Linear(inner, text_hidden)

    def forward(self, x_LC: torch.Tensor, grid_hws: torch.Tensor) -> torch.Tensor:
        """Vision features ``[L, C]`` → LM embeddings ``[M, D]`` (raster order per image)."""
        x_ME = pixel_shuffle(x_LC, grid_hws, self.merge)
        return self.linear_2(F.gelu(self.linear_1(self.norm(x_ME))))
