"""Image processor: native resolution, budget downscale, pad-not-stretch, raster patches, coords."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.processing.image_processor import (
    CLIP_MEAN,
    CLIP_STD,
    ImageInputError,
    ImageProcessor,
    ImageProcessorConfig,
    image_to_model_coords,
    load_image,
    model_to_image_coords,
    num_media_tokens,
)


def _random_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("w,h", [(1, 1), (13, 999), (1920, 1080), (160, 210), (28, 28), (29, 27)])
def test_odd_sizes_give_even_grids_and_matching_patch_counts(w: int, h: int) -> None:
    proc = ImageProcessor()
    patches, meta = proc.preprocess(_random_image(w, h))
    gh, gw = meta.grid_hw
    assert gh % 2 == 0 and gw % 2 == 0 and gh > 0 and gw > 0
    assert patches.shape == (gh * gw, 3, 14, 14) and patches.dtype == torch.float32
    assert meta.num_patches == gh * gw <= proc.config.max_patches
    assert meta.padded_size == (gw * 14, gh * 14)
    assert meta.padded_size[0] % 28 == 0 and meta.padded_size[1] % 28 == 0
    assert num_media_tokens(meta.grid_hw) == gh * gw // 4


def test_native_resolution_is_kept_under_the_budget() -> None:
    meta = ImageProcessor().plan(160, 210)
    assert meta.resized_size == (160, 210) and meta.scale == (1.0, 1.0)
    assert meta.padded_size == (168, 224) and meta.grid_hw == (16, 12)


def test_large_image_is_scaled_down_keeping_aspect() -> None:
    proc = ImageProcessor()
    meta = proc.plan(1920, 1080)
    assert meta.resized_size != meta.original_size  # 1920x1080 needs 138·78 > 4096 patches
    assert meta.num_patches <= 4096
    w, h = meta.resized_size
    assert abs(w / h - 1920 / 1080) < 0.01
    assert meta.num_patches > 0.8 * 4096  # does not shrink far below the budget
    big = ImageProcessor(ImageProcessorConfig(max_patches=16384)).plan(1920, 1080)
    assert big.resized_size == (1920, 1080) and big.grid_hw == (78, 138)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from([4, 64, 256, 1000, 4096]))
def test_plan_always_fits_the_budget(w: int, h: int, max_patches: int) -> None:
    meta = ImageProcessor(ImageProcessorConfig(max_patches=max_patches)).plan(w, h)
    assert meta.num_patches <= max_patches
    assert meta.grid_hw[0] % 2 == 0 and meta.grid_hw[1] % 2 == 0
    rw, rh = meta.resized_size
    assert rw <= w and rh <= h and rw <= meta.padded_size[0] and rh <= meta.padded_size[1]
    assert meta.padded_size[0] - rw < 28 and meta.padded_size[1] - rh < 28


def test_raster_order_and_normalisation_hand_checked() -> None:
    arr = np.zeros((30, 50, 3), dtype=np.uint8)  # 50x30 → padded 56x56 → grid 4x4
    arr[14:28, 28:42] = (255, 0, 51)  # exactly patch (row 1, col 2)
    patches, meta = ImageProcessor().preprocess(arr)
    assert meta.grid_hw == (4, 4)
    target = patches[1 * 4 + 2]
    assert torch.allclose(target[0], torch.full((14, 14), 1.0))  # (255/255 - 0.5)/0.5
    assert torch.allclose(target[1], torch.full((14, 14), -1.0))
    assert torch.allclose(target[2], torch.full((14, 14), (51 / 255 - 0.5) / 0.5))
    others = torch.cat([patches[:6], patches[7:]])
    assert torch.all(others == -1.0)  # black content and black padding


def test_patch_pixels_match_the_source_exactly() -> None:
    img = _random_image(70, 45, seed=3)
    patches, meta = ImageProcessor().preprocess(img)
    gh, gw = meta.grid_hw
    arr = np.asarray(img).astype(np.float32) / 255.0 * 2 - 1
    r, c = 2, 4  # patch covering rows 28..41, cols 56..69 (all content)
    expected = torch.from_numpy(arr[r * 14:(r + 1) * 14, c * 14:(c + 1) * 14]).permute(2, 0, 1)
    assert torch.allclose(patches[r * gw + c], expected, atol=1e-6)


def test_padding_does_not_stretch() -> None:
    img = _random_image(30, 20, seed=1)
    cfg = ImageProcessorConfig(pad_value=255)
    patches, meta = ImageProcessor(cfg).preprocess(img)
    assert meta.resized_size == (30, 20) and meta.padded_size == (56, 28)
    full = patches.reshape(2, 4, 3, 14, 14).permute(2, 0, 3, 1, 4).reshape(3, 28, 56)
    content = (np.asarray(img).astype(np.float32) / 255.0 - 0.5) / 0.5
    assert torch.allclose(full[:, :20, :30], torch.from_numpy(content).permute(2, 0, 1), atol=1e-6)
    assert torch.all(full[:, 20:, :] == 1.0) and torch.all(full[:, :, 30:] == 1.0)  # pad 255 → +1


def test_clip_normalisation_is_configurable() -> None:
    cfg = ImageProcessorConfig(image_mean=CLIP_MEAN, image_std=CLIP_STD)
    patches, _ = ImageProcessor(cfg).preprocess(np.full((28, 28, 3), 128, dtype=np.uint8))
    expected = [(128 / 255 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)]
    for ch in range(3):
        assert torch.allclose(patches[:, ch], torch.tensor(expected[ch]), atol=1e-6)


def test_coordinate_maps_round_trip() -> None:
    meta = ImageProcessor().plan(1920, 1080)
    sx, sy = meta.scale
    assert model_to_image_coords(0, 0, meta) == (0.0, 0.0)
    x, y = model_to_image_coords(meta.resized_size[0] / 2, meta.resized_size[1] / 2, meta)
    assert abs(x - 960) < 1e-6 and abs(y - 540) < 1e-6
    for px, py in [(1, 1), (100, 700), (1919, 1079)]:
        mx, my = image_to_model_coords(px, py, meta)
        back = model_to_image_coords(mx, my, meta)
        assert abs(back[0] - px) < 1e-6 and abs(back[1] - py) < 1e-6
    # a point in the padding clamps onto the last real pixel
    assert model_to_image_coords(meta.padded_size[0], meta.padded_size[1], meta) == (1919.0, 1079.0)
    native = ImageProcessor().plan(160, 210)
    assert model_to_image_coords(37, 101, native) == (37.0, 101.0)


def test_load_image_inputs(tmp_path: Path) -> None:
    img = _random_image(9, 7)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    path = tmp_path / "x.png"
    path.write_bytes(buf.getvalue())
    for src in (img, np.asarray(img), buf.getvalue(), url, path, str(path), img.convert("RGBA")):
        assert np.array_equal(np.asarray(load_image(src)), np.asarray(img))
    with pytest.raises(ImageInputError, match="data:image/png;base64"):
        load_image("https://example.com/a.png")
    with pytest.raises(ImageInputError, match="base64"):
        load_image("data:image/png;base64,@@@")
    with pytest.raises(ImageInputError, match="decode"):
        load_image(b"not an image")
    with pytest.raises(ImageInputError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_config_validation_and_save_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_patches"):
        ImageProcessorConfig(max_patches=2)
    with pytest.raises(ValueError, match="pad_value"):
        ImageProcessorConfig(pad_value=300)
    with pytest.raises(ValueError, match="resample"):
        ImageProcessorConfig(resample="nearest-ish")
    proc = ImageProcessor(ImageProcessorConfig(max_patches=1024, image_mean=CLIP_MEAN, image_std=CLIP_STD))
    proc.save_pretrained(tmp_path)
    again = ImageProcessor.from_pretrained(tmp_path)
    assert again.config == proc.config
    img = _random_image(300, 200)
    assert torch.equal(again.preprocess(img)[0], proc.preprocess(img)[0])


def test_batch_call_concatenates_in_order() -> None:
    proc = ImageProcessor()
    a, b = _random_image(30, 30, 1), _random_image(60, 20, 2)
    out = proc([a, b])
    pa, _ = proc.preprocess(a)
    pb, _ = proc.preprocess(b)
    assert torch.equal(out["pixel_values"], torch.cat([pa, pb]))
    assert out["image_grid_hws"].tolist() == [[4, 4], [2, 6]]
