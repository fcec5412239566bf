"""MoonViT, RoPE and projector: packing, position table, 2-D RoPE, pixel-shuffle order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.config import ProjectorConfig, VisionConfig
from model.projector import Projector, pixel_shuffle
from model.rope import apply_rope, rope_1d, rope_2d
from model.vision import MoonViT, PositionTable, cu_seqlens_from_grids, native_grid_size

CFG = VisionConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128)


def _patches(grids: list[tuple[int, int]], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    total = sum(h * w for h, w in grids)
    return torch.randn(total, 3, 14, 14, generator=g), torch.tensor(grids)


@pytest.fixture(scope="module")
def vit() -> MoonViT:
    torch.manual_seed(0)
    return MoonViT(CFG).eval()


@pytest.mark.parametrize("grids", [[(8, 8), (2, 18), (30, 4)], [(2, 2), (64, 64)], [(6, 10)]])
def test_packed_forward_equals_per_image(vit: MoonViT, grids: list[tuple[int, int]]) -> None:
    pixels, grid_hws = _patches(grids)
    with torch.no_grad():
        packed = vit(pixels, grid_hws)
        singles = [vit(p, g[None]) for p, g in
                   zip(pixels.split([h * w for h, w in grids]), grid_hws)]
    assert packed.shape == (pixels.shape[0], CFG.hidden_size)
    torch.testing.assert_close(packed, torch.cat(singles), atol=1e-5, rtol=0)


def test_images_do_not_attend_to_each_other(vit: MoonViT) -> None:
    pixels, grid_hws = _patches([(4, 6), (2, 18)])
    other, _ = _patches([(4, 6), (2, 18)], seed=1)
    mixed = torch.cat([pixels[:24], other[24:]])  # same first image, different second
    with torch.no_grad():
        a, b = vit(pixels, grid_hws), vit(mixed, grid_hws)
    torch.testing.assert_close(a[:24], b[:24], atol=1e-6, rtol=0)
    assert not torch.allclose(a[24:], b[24:])


def test_cu_seqlens() -> None:
    assert cu_seqlens_from_grids(torch.tensor([[2, 18], [30, 4], [8, 8]])).tolist() == \
        [0, 36, 156, 220]


def test_position_table_identity_at_native_size() -> None:
    table = PositionTable(64, 16)
    assert table.interpolate(64, 64) is table.weight
    resized = F.interpolate(table.weight.permute(2, 0, 1)[None], size=(64, 64), mode="bicubic",
                            align_corners=False)[0].permute(1, 2, 0)
    torch.testing.assert_close(resized, table.weight.detach(), atol=1e-6, rtol=0)
    small = table.interpolate(30, 4)
    assert small.shape == (30, 4, 16)


def test_rope_2d_relative_only() -> None:
    d = CFG.head_dim
    grid = torch.tensor([[12, 12]])
    cos, sin = rope_2d(grid, d, 10000.0)
    q, k = torch.randn(d), torch.randn(d)

    def score(pq: tuple[int, int], pk: tuple[int, int]) -> torch.Tensor:
        iq, ik = pq[0] * 12 + pq[1], pk[0] * 12 + pk[1]
        return apply_rope(q, cos[iq], sin[iq]) @ apply_rope(k, cos[ik], sin[ik])

    base = score((1, 2), (3, 7))
    torch.testing.assert_close(score((5, 4), (7, 9)), base, atol=1e-4, rtol=0)  # shift (4, 2)
    assert not torch.allclose(score((1, 2), (7, 3)), base, atol=1e-3)  # rows/cols swapped


def test_rope_2d_alternates_width_height() -> None:
    cos, _ = rope_2d(torch.tensor([[3, 5]]), 16, 10000.0)
    same_row = cos[0] - cos[1]  # patches (0,0) and (0,1): only width pairs (even) change
    assert torch.all(same_row[1::2] == 0) and torch.any(same_row[0::2] != 0)
    same_col = cos[0] - cos[5]  # patches (0,0) and (1,0): only height pairs (odd) change
    assert torch.all(same_col[0::2] == 0) and torch.any(same_col[1::2] != 0)


def test_rope_1d_relative_only() -> None:
    q, k = torch.randn(32), torch.randn(32)
    cos, sin = rope_1d(torch.tensor([[3, 10, 103, 110]]), 32, 50000.0)
    dot = [apply_rope(q, cos[0, i], sin[0, i]) @ apply_rope(k, cos[0, j], sin[0, j])
           for i, j in ((0, 1), (2, 3))]
    torch.testing.assert_close(dot[0], dot[1], atol=1e-4, rtol=0)


def test_pixel_shuffle_order_hand_built() -> None:
    # Grid 2×4, one channel, value = 10·row + col: two merged tokens in raster order.
    x = torch.tensor([[10.0 * r + c] for r in range(2) for c in range(4)])
    out = pixel_shuffle(x, torch.tensor([[2, 4]]))
    assert out.tolist() == [[0.0, 1.0, 10.0, 11.0], [2.0, 3.0, 12.0, 13.0]]
    # Two images packed; 4×2 grid second; 2 channels keep their order inside each patch.
    y = torch.arange(16.0).view(8, 2)
    both = pixel_shuffle(torch.cat([x.repeat(1, 2), y]), torch.tensor([[2, 4], [4, 2]]))
    assert both.shape == (4, 8)
    assert both[2].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert both[3].tolist() == [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]


def test_projector_shapes_and_odd_grid_error() -> None:
    proj = Projector(ProjectorConfig(), 64, 96)
    out = proj(torch.randn(36 + 64, 64), torch.tensor([[2, 18], [8, 8]]))
    assert out.shape == (9 + 16, 96)
    with pytest.raises(ValueError, match="multiple of 28"):
        proj(torch.randn(15, 64), torch.tensor([[3, 5]]))


def test_bad_pixel_values_raise(vit: MoonViT) -> None:
    with pytest.raises(ValueError, match="describe 8 patches"):
        vit(torch.randn(6, 3, 14, 14), torch.tensor([[2, 4]]))
    with pytest.raises(ValueError, match=r"\[total_patches, 3, 14, 14\]"):
        vit(torch.randn(8, 3, 16, 16), torch.tensor([[2, 4]]))


@pytest.mark.parametrize("size", [(800, 1280), (1080, 1920), (844, 390), (210, 160), (20, 20)])
def test_native_grid_size(size: tuple[int, int]) -> None:
    h, w = native_grid_size(*size, max_patches=4096)
    assert h % 2 == 0 and w % 2 == 0 and h * w <= 4096
    assert abs(h / w - size[0] / size[1]) < 0.25 * size[0] / size[1] + 0.2
    assert native_grid_size(210, 160) == (16, 12)  # small images keep native size (padded)
