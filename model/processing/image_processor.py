"""Native-resolution image preprocessing for the pixelpilot vision encoder (MoonViT style).

Pipeline for one image (``ImageProcessor.preprocess``):
1. Keep the native resolution. Only if the padded patch grid would exceed ``max_patches``
   is the image scaled down (aspect ratio kept, never up-scaled).
2. Pad bottom/right to a multiple of ``patch_size · merge_size`` (28) — padding, never
   stretching, so the content keeps its pixel geometry and model coordinates map back with one
   scale factor and zero offset. Padding pixels get the raw value ``pad_value`` (default 0,
   black) *before* normalisation, i.e. -1.0 after the default mean/std of 0.5.
3. Normalise: ``(pixel / 255 - mean) / std`` per channel.
4. Patchify in raster order over the patch grid: patch (r, c) is row-major index
   ``r · grid_w + c`` and holds pixels ``[r·14:(r+1)·14, c·14:(c+1)·14]`` as [3, 14, 14].

``ImageMeta`` records original / resized / padded sizes; ``model_to_image_coords`` and
``image_to_model_coords`` map points between the model's pixel space (the resized image) and
the original screenshot. ``plan`` computes the meta from a size alone, without pixels.
This module knows nothing about tokens or chat.

Shapes: H, W image height/width in pixels; gh, gw patch grid; N = gh·gw patches.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

ImageInput = Union[Image.Image, np.ndarray, bytes, str, Path]
CONFIG_NAME = "preprocessor_config.json"
_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "lanczos": Image.Resampling.LANCZOS}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageInputError(ValueError):
    """An image could not be read or decoded; the message says which input and why."""


@dataclass(frozen=True)
class ImageProcessorConfig:
    """Settings of the image processor (saved as ``preprocessor_config.json``)."""

    patch_size: int = 14
    merge_size: int = 2  # 2×2 pixel shuffle in the projector: grids must be multiples of this
    max_patches: int = 4096  # token limit before merging (4096 patches = 1024 LM tokens)
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # CLIP_MEAN also works
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    pad_value: int = 0  # raw 0..255 value of padding pixels, before normalisation
    resample: str = "bicubic"

    def __post_init__(self) -> None:
        if self.patch_size < 1 or self.merge_size < 1:
            raise ValueError(f"patch_size and merge_size must be >= 1, got {self.patch_size}, {self.merge_size}")
        if self.max_patches < self.merge_size**2:
            raise ValueError(f"max_patches must be >= merge_size² = {self.merge_size**2}, got {self.max_patches}")
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std need 3 values each, std > 0")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value is a raw pixel value in 0..255, got {self.pad_value}")
        if self.resample not in _RESAMPLE:
            raise ValueError(f"resample must be one of {sorted(_RESAMPLE)}, got {self.resample!r}")
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))

    @property
    def unit(self) -> int:
        """Pixel multiple the padded image must have: patch_size · merge_size (28)."""
        return self.patch_size * self.merge_size


@dataclass(frozen=True)
class ImageMeta:
    """Geometry of one processed image; sizes are (width, height) in pixels."""

    original_size: tuple[int, int]
    resized_size: tuple[int, int]  # the content the model sees (top-left of the padded image)
    padded_size: tuple[int, int]
    grid_hw: tuple[int, int]  # (grid_h, grid_w) in patches, both multiples of merge_size

    @property
    def num_patches(self) -> int:
        return self.grid_hw[0] * self.grid_hw[1]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy) = resized / original; 1.0 when the image kept its native size."""
        return (self.resized_size[0] / self.original_size[0], self.resized_size[1] / self.original_size[1])

    @property
    def offset(self) -> tuple[int, int]:
        """Where the content starts in the padded image: always (0, 0) (padding is bottom/right)."""
        return (0, 0)


def num_media_tokens(grid_hw: tuple[int, int], merge_size: int = 2) -> int:
    """LM tokens of one image: (grid_h / merge)·(grid_w / merge)."""
    return (grid_hw[0] // merge_size) * (grid_hw[1] // merge_size)


def model_to_image_coords(x: float, y: float, meta: ImageMeta, *, clamp: bool = True) -> tuple[float, float]:
    """Map a point in the model's pixel space (the resized image) to the original image.

    With ``clamp`` the result is kept inside ``[0, size-1]`` (points the model places in the
    padding land on the last real pixel).
    """
    sx, sy = meta.scale
    ox, oy = meta.offset
    ix, iy = (x - ox) / sx, (y - oy) / sy
    if clamp:
        ix = min(max(ix, 0.0), meta.original_size[0] - 1.0)
        iy = min(max(iy, 0.0), meta.original_size[1] - 1.0)
    return ix, iy


def image_to_model_coords(x: float, y: float, meta: ImageMeta) -> tuple[float, float]:
    """Inverse of ``model_to_image_coords`` (without clamping)."""
    sx, sy = meta.scale
    ox, oy = meta.offset
    return x * sx + ox, y * sy + oy


def load_image(source: ImageInput) -> Image.Image:
    """An RGB PIL image from a PIL image, HxWx3/HxW uint8 array, encoded bytes, data URL or path.

    Remote URLs are refused: this runtime never fetches images over the network.
    """
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim not in (2, 3):
            raise ImageInputError(f"array images must be uint8 HxW or HxWxC, got {source.dtype} {source.shape}")
        img = Image.fromarray(source)
    elif isinstance(source, bytes):
        img = _open_bytes(source, "image bytes")
    elif isinstance(source, str) and source.startswith("data:"):
        img = _open_bytes(decode_data_url(source), "data URL")
    elif isinstance(source, str) and source.split(":", 1)[0].lower() in ("http", "https", "ftp"):
        raise ImageInputError("remote image URLs are not fetched; send the image as a data:image/png;base64 URL")
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageInputError(f"image file {path} not found")
        img = _open_bytes(path.read_bytes(), str(path))
    else:
        raise ImageInputError(f"unsupported image input of type {type(source).__name__}")
    if img.width < 1 or img.height < 1:
        raise ImageInputError(f"image has no pixels ({img.width}x{img.height})")
    return img if img.mode == "RGB" else img.convert("RGB")


def decode_data_url(url: str) -> bytes:
    """The payload of a ``data:image/...;base64,...`` URL."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise ImageInputError("expected a data URL like 'data:image/png;base64,iVBOR...'")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageInputError(f"data URL payload is not valid base64 ({exc})") from None


def _open_bytes(data: bytes, what: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # PIL raises many types for corrupt input
        raise ImageInputError(f"could not decode {what} as an image ({type(exc).__name__}: {exc})") from None
    return img


class ImageProcessor:
    """Turns images into normalised patches + patch grids (see the module docstring)."""

    def __init__(self, config: ImageProcessorConfig | None = None) -> None:
        self.config = config or ImageProcessorConfig()

    def plan(self, width: int, height: int) -> ImageMeta:
        """The geometry ``preprocess`` will use for an image of this size (pure)."""
        if width < 1 or height < 1:
            raise ImageInputError(f"image size must be positive, got {width}x{height}")
        cfg, unit = self.config, self.config.unit
        scale = 1.0
        w, h = width, height
        while _padded_patches(w, h, unit, cfg.patch_size) > cfg.max_patches:
            # Shrink to the patch budget; the 0.99 step absorbs padding/rounding overshoot.
            if scale == 1.0:
                scale = math.sqrt(cfg.max_patches * cfg.patch_size**2 / (width * height))
            else:
                scale *= 0.99
            w, h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
        pw, ph = _round_up(w, unit), _round_up(h, unit)
        return ImageMeta((width, height), (w, h), (pw, ph), (ph // cfg.patch_size, pw // cfg.patch_size))

    def preprocess(self, image: ImageInput) -> tuple[torch.Tensor, ImageMeta]:
        """Patches ``[N, 3, p, p]`` (float32, raster order) and the image's ``ImageMeta``."""
        img = load_image(image)
        meta = self.plan(img.width, img.height)
        cfg = self.config
        if meta.resized_size != meta.original_size:
            img = img.resize(meta.resized_size, _RESAMPLE[cfg.resample])
        w, h = meta.resized_size
        pw, ph = meta.padded_size
        canvas = np.full((ph, pw, 3), cfg.pad_value, dtype=np.uint8)
        canvas[:h, :w] = np.asarray(img, dtype=np.uint8)
        # Patchify the uint8 pixels first, then normalise once in float: 3x faster than the
        # other order on a 1920x1080 screenshot (one float pass instead of three).
        return self.normalize(patchify(torch.from_numpy(canvas).permute(2, 0, 1), cfg.patch_size)), meta

    def _mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        return (torch.tensor(cfg.image_mean, dtype=torch.float32).view(1, 3, 1, 1),
                torch.tensor(cfg.image_std, dtype=torch.float32).view(1, 3, 1, 1))

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw 0..255 patches ``[N, 3, p, p]`` (uint8 or float) → float32 ``(raw / 255 - mean) / std``."""
        mean, std = self._mean_std()
        return raw.to(torch.float32).mul_(1.0 / (255.0 * std)).sub_(mean / std)

    def raw_patches(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The uint8 patches that ``normalize`` turns into ``pixel_values`` (4x smaller to keep in
        memory; ``normalize`` of the result gives back the same float32 values, bit for bit)."""
        mean, std = self._mean_std()
        raw = (pixel_values.to(torch.float32) + mean / std).mul_(255.0 * std).round_()
        if raw.numel() and (raw.min() < 0 or raw.max() > 255):
            raise ValueError("pixel_values were not made by this processor's normalize (outside 0..255 raw)")
        return raw.to(torch.uint8)

    def __call__(self, images: list[ImageInput]) -> dict[str, Any]:
        """Batch form: ``pixel_values`` [sum N, 3, p, p], ``image_grid_hws`` [n, 2], ``image_metas``."""
        patches, metas = [], []
        for image in images:
            p, m = self.preprocess(image)
            patches.append(p)
            metas.append(m)
        p = self.config.patch_size
        return {
            "pixel_values": torch.cat(patches) if patches else torch.zeros(0, 3, p, p),
            "image_grid_hws": torch.tensor([m.grid_hw for m in metas], dtype=torch.long).reshape(-1, 2),
            "image_metas": metas,
        }

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``preprocessor_config.json`` into ``directory``; returns its path."""
        path = Path(directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"image_processor_type": "PixelPilotImageProcessor", **asdict(self.config)}
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ImageProcessor:
        """Load from a directory written by ``save_pretrained``."""
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; save the processor with save_pretrained first")
        data = json.loads(path.read_text(encoding="utf-8"))
        data.pop("image_processor_type", None)
        known = set(ImageProcessorConfig.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path} has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        for key in ("image_mean", "image_std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(ImageProcessorConfig(**data))


def patchify(image_CHW: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[3, H, W] with H, W multiples of ``patch_size`` → [gh·gw, 3, p, p] in raster order."""
    c, h, w = image_CHW.shape
    gh, gw = h // patch_size, w // patch_size
    if gh * patch_size != h or gw * patch_size != w:
        raise ValueError(f"image {w}x{h} is not a multiple of patch_size {patch_size}")
    x = image_CHW.reshape(c, gh, patch_size, gw, patch_size)
    return x.permute(1, 3, 0, 2, 4).reshape(gh * gw, c, patch_size, patch_size).contiguous()


def _round_up(v: int, unit: int) -> int:
    return -(-v // unit) * unit


def _padded_patches(w: int, h: int, unit: int, patch_size: int) -> int:
    return (_round_up(w, unit) // patch_size) * (_round_up(h, unit) // patch_size)
