"""Screenshots of a Playwright page as RGB arrays at device pixels, and CSS ↔ pixel maps.

Two capture paths give identical pixels (checked in tests):
- ``cdp``: Chrome DevTools ``Page.captureScreenshot`` as PNG with ``optimizeForSpeed`` (a
  faster zlib level, still lossless) and a viewport clip scaled by the device scale factor.
  Measured here: 1280×800@1 ~34 ms vs ~60 ms for ``page.screenshot``; 640×480@2 ~51 vs ~85 ms.
- ``playwright``: ``page.screenshot(type="png")``.
JPEG/WebP would be a little faster but lossy, so they are not offered.

Coordinates: a screenshot pixel ``x`` maps to CSS ``x / scale`` (the pixel's top-left edge,
which at scale 1 is the pixel itself); a CSS point maps back to ``floor(css * scale)``.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
from PIL import Image


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes → RGB uint8 array (H, W, 3)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def capture_cdp(cdp: Any, width: int, height: int, scale: float) -> np.ndarray:
    """Viewport screenshot through a CDP session (``width``/``height`` in CSS pixels)."""
    clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": scale}
    reply = cdp.send("Page.captureScreenshot", {"format": "png", "clip": clip, "optimizeForSpeed": True})
    return decode_png(base64.b64decode(reply["data"]))


def capture_playwright(page: Any) -> np.ndarray:
    """Viewport screenshot through ``page.screenshot``."""
    return decode_png(page.screenshot(type="png"))


def fit_to(shot_HWC: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop or pad (black) ``shot_HWC`` to exactly ``size`` = (width, height).

    Chromium occasionally returns one pixel more or less when ``scale`` is not an integer.
    """
    w, h = size
    if shot_HWC.shape[0] == h and shot_HWC.shape[1] == w:
        return shot_HWC
    out = np.zeros((h, w, 3), dtype=np.uint8)
    hh, ww = min(h, shot_HWC.shape[0]), min(w, shot_HWC.shape[1])
    out[:hh, :ww] = shot_HWC[:hh, :ww]
    return out


def pixel_to_css(v: int, scale: float) -> float:
    """Screenshot pixel coordinate → CSS pixel coordinate."""
    return v / scale


def css_to_pixel(v: float, scale: float) -> int:
    """CSS pixel coordinate → the screenshot pixel that contains it."""
    return int(math.floor(v * scale + 1e-9))
