"""Preparing screenshots for a model: per-model resize rules and data-URL encoding.

A ``ResizeRule`` says how a model wants its images: ``native`` (as captured),
``smart`` (Qwen2-VL / UI-TARS smart resize with min/max pixels), or ``max_side`` (scale so
the longer side is at most N). The rule is pure: ``target_size(w, h)`` tells the image size
the model will see, which is also what the output format needs to map coordinates back.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

from envs.geometry import smart_resize


@dataclass(frozen=True)
class ResizeRule:
    """How to resize a screenshot before sending it to a model."""

    mode: Literal["native", "smart", "max_side"] = "native"
    min_pixels: int = 100 * 28 * 28
    max_pixels: int = 16384 * 28 * 28
    factor: int = 28
    max_side: int = 1280

    def __post_init__(self) -> None:
        if self.mode not in ("native", "smart", "max_side"):
            raise ValueError(f"resize mode must be native, smart or max_side, got {self.mode!r}")
        if self.min_pixels <= 0 or self.max_pixels < self.min_pixels or self.max_side <= 0 or self.factor <= 0:
            raise ValueError(f"invalid resize limits: {self}")

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the image the model will see."""
        if self.mode == "native":
            return width, height
        if self.mode == "smart":
            h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
            return w, h
        scale = min(1.0, self.max_side / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    @classmethod
    def parse(cls, spec: str) -> "ResizeRule":
        """``native`` | ``smart`` | ``smart:MAX_PIXELS`` | ``max_side:N`` (CLI syntax)."""
        name, _, arg = spec.partition(":")
        try:
            if name == "native" and not arg:
                return cls("native")
            if name == "smart":
                return cls("smart", max_pixels=int(arg)) if arg else cls("smart")
            if name == "max_side" and arg:
                return cls("max_side", max_side=int(arg))
        except ValueError:
            pass
        raise ValueError(f"bad resize rule {spec!r}: use native, smart, smart:MAX_PIXELS or max_side:N")


def resize_rgb(image_HWC: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 array to ``(width, height)`` (bicubic); no copy if already that size."""
    if (image_HWC.shape[1], image_HWC.shape[0]) == tuple(size):
        return image_HWC
    from PIL import Image

    return np.asarray(Image.fromarray(image_HWC, "RGB").resize(size, Image.BICUBIC))


def encode_data_url(image_HWC: np.ndarray, fmt: Literal["png", "jpeg"] = "png", quality: int = 90) -> str:
    """``data:image/...;base64,...`` for an RGB uint8 array (PNG is lossless, JPEG smaller)."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(image_HWC, "RGB")
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=quality)
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def decode_data_url(url: str) -> np.ndarray:
    """Inverse of ``encode_data_url``: an RGB uint8 array; ValueError on anything else."""
    from PIL import Image

    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:image/") or ";base64" not in head:
        raise ValueError("expected a data URL like data:image/png;base64,...")
    try:
        raw = base64.b64decode(payload, validate=True)
        return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
    except Exception as exc:  # binascii.Error, PIL.UnidentifiedImageError
        raise ValueError(f"data URL does not hold a readable image: {exc}") from None
