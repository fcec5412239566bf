"""Pure coordinate maps between model spaces and screen pixels.

Spaces:
- ``screen``:   integer pixels of the screenshot as captured (what actions carry).
- ``resized``:  pixels of a resized copy of the screenshot the model saw (``resized_size``),
                e.g. Qwen2-VL / UI-TARS "smart resize".
- ``norm1000``: 0..1000 on both axes (UI-TARS 1.0, Qwen-style relative boxes).
- ``unit``:     0..1 on both axes (OpenCUA relative coordinates, browser-use).

A value v in a space of extent E maps to screen extent S as ``v * S / E``, rounded to the
nearest pixel (half up) and clamped to ``[0, S-1]``; the inverse maps a pixel's centre-free
integer coordinate back. No function here touches a screen or an image.
"""

from __future__ import annotations

import math
from typing import Literal

Size = tuple[int, int]  # (width, height)
CoordSpace = Literal["screen", "resized", "norm1000", "unit"]
COORD_SPACES: tuple[str, ...] = ("screen", "resized", "norm1000", "unit")


def _extent(space: str, screen_size: Size, resized_size: Size | None) -> tuple[float, float]:
    if space == "screen":
        return float(screen_size[0]), float(screen_size[1])
    if space == "resized":
        if resized_size is None:
            raise ValueError("space 'resized' needs resized_size=(width, height) of the image the model saw")
        return float(resized_size[0]), float(resized_size[1])
    if space == "norm1000":
        return 1000.0, 1000.0
    if space == "unit":
        return 1.0, 1.0
    raise ValueError(f"unknown coordinate space {space!r}; use one of {COORD_SPACES}")


def _check_size(size: Size, name: str) -> None:
    if len(size) != 2 or size[0] <= 0 or size[1] <= 0:
        raise ValueError(f"{name} must be (width, height) with positive values, got {size!r}")


def round_half_up(v: float) -> int:
    """Round to the nearest integer, halves away from -inf (Python's round() is banker's)."""
    return int(math.floor(v + 0.5))


def to_screen(
    x: float,
    y: float,
    *,
    space: CoordSpace,
    screen_size: Size,
    resized_size: Size | None = None,
    clamp: bool = True,
) -> tuple[int, int]:
    """Map a point from ``space`` to integer screen pixels.

    With ``clamp`` (default) results are clamped onto the screen, so the model saying 1000 in
    0–1000 space lands on the last pixel rather than one past it.
    """
    _check_size(screen_size, "screen_size")
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"coordinates must be finite numbers, got ({x!r}, {y!r})")
    ex, ey = _extent(space, screen_size, resized_size)
    sx = round_half_up(x * screen_size[0] / ex)
    sy = round_half_up(y * screen_size[1] / ey)
    if clamp:
        sx = min(max(sx, 0), screen_size[0] - 1)
        sy = min(max(sy, 0), screen_size[1] - 1)
    return sx, sy


def from_screen(
    x: int,
    y: int,
    *,
    space: CoordSpace,
    screen_size: Size,
    resized_size: Size | None = None,
) -> tuple[float, float]:
    """Map integer screen pixels into ``space``.

    Integer spaces (``screen``, ``resized``, ``norm1000``) give integers (as float-typed ints
    are awkward in model text, they are returned as ``int``); ``unit`` gives floats rounded to
    4 decimals, which round-trips exactly for screens up to 5000 pixels wide.
    """
    _check_size(screen_size, "screen_size")
    ex, ey = _extent(space, screen_size, resized_size)
    fx = x * ex / screen_size[0]
    fy = y * ey / screen_size[1]
    if space == "unit":
        return round(fx, 4), round(fy, 4)
    return round_half_up(fx), round_half_up(fy)


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 100 * 28 * 28,
    max_pixels: int = 16384 * 28 * 28,
) -> tuple[int, int]:
    """Qwen2-VL's resize rule, returning ``(height, width)``.

    Both sides become multiples of ``factor``, the pixel count lands in
    ``[min_pixels, max_pixels]``, and the aspect ratio is kept as closely as possible.
    UI-TARS 1.5 and Qwen2.5-VL give absolute coordinates in this resized space. The defaults
    are the ``ui-tars`` package's (min 100·28², max 16384·28²); deployments often lower
    ``max_pixels`` (e.g. 1280·28²) — pass the value the served model uses.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {max(height, width) / min(height, width):.1f}")
    # Python's round() (banker's) on purpose: it is what the reference implementation uses.
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def box_center(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float]:
    """Centre of a box given by two corners (either order)."""
    return (x1 + x2) / 2.0, (y1 + y2) / 2.0


def point_in_box(x: float, y: float, box: tuple[float, float, float, float]) -> bool:
    """True if (x, y) lies inside ``(x1, y1, x2, y2)`` (edges included)."""
    x1, y1, x2, y2 = box
    return min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2)
