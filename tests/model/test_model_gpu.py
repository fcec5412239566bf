"""CUDA paths: flash-attn varlen packing and a bf16 forward (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from model import vision
from model.config import VisionConfig, tiny
from model.modeling import build_model

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.skipif(vision.flash_attn_varlen_func is None, reason="needs the flash_attn package")
def test_flash_varlen_matches_per_image_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    vit = vision.MoonViT(VisionConfig(hidden_size=128, num_layers=2, num_heads=2,
                                      intermediate_size=256)).cuda().to(torch.bfloat16).eval()
    grids = torch.tensor([[8, 8], [2, 18], [30, 4]])
    pixels = torch.randn(int((grids[:, 0] * grids[:, 1]).sum()), 3, 14, 14, device="cuda")
    with torch.no_grad():
        flash = vit(pixels, grids)
        monkeypatch.setattr(vision, "flash_attn_varlen_func", None)
        blocks = vit(pixels, grids)
    torch.testing.assert_close(flash.float(), blocks.float(), atol=3e-2, rtol=3e-2)


@needs_cuda
def test_bf16_generation_on_cuda() -> None:
    torch.manual_seed(0)
    model = build_model(tiny(), dtype=torch.bfloat16).cuda().eval()
    ids = torch.tensor([[20, 21, 6, 9, 8, 30]], device="cuda")
    pixels = torch.randn(4, 3, 14, 14, device="cuda")
    out = model.generate(ids, pixel_values=pixels, image_grid_hws=torch.tensor([[2, 2]]),
                         max_new_tokens=4)
    assert out.new_tokens.shape == (1, 4) and torch.isfinite(out.logprobs).all()
