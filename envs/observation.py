"""What the agent sees after each step.

``screenshot_HWC`` is an RGB uint8 array at native resolution (H rows, W columns, 3 channels).
The size is always ``(width, height)``, the order actions and geometry use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Observation:
    """One look at the screen.

    Attributes:
        screenshot: RGB uint8 array of shape (H, W, 3).
        instruction: the task the agent is working on ("" if none).
        timestamp: ``time.time()`` when the screenshot was taken.
        a11y_tree: accessibility tree as text, when the env provides one.
        dom: DOM / page text, when the env provides one (browser envs).
        extra: small JSON-ready facts the env wants to share (url, window title, ...).
    """

    screenshot: np.ndarray
    instruction: str = ""
    timestamp: float = field(default_factory=time.time)
    a11y_tree: str | None = None
    dom: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.screenshot
        if not isinstance(s, np.ndarray) or s.dtype != np.uint8 or s.ndim != 3 or s.shape[2] != 3:
            raise ValueError(
                "screenshot must be an RGB uint8 array of shape (H, W, 3), got "
                f"{type(s).__name__} {getattr(s, 'dtype', '')} {getattr(s, 'shape', '')}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the screenshot in pixels."""
        return int(self.screenshot.shape[1]), int(self.screenshot.shape[0])

    def to_pil(self) -> Any:
        """The screenshot as a PIL image (imported lazily)."""
        from PIL import Image

        return Image.fromarray(self.screenshot, "RGB")
