"""Model output formats (codecs) the agent speaks, and their explicit registry.

``get_format(name)`` returns a ready codec; ``FORMATS`` lists them all:

============== ===================================================================
native         the project's own: ``<think>…</think>`` then ``click(x=412, y=88)``
native-compact the same grammar behind a one-line system prompt (small models, e.g. miniwob-tiny)
uitars         UI-TARS 1.5: ``Thought: … Action: click(start_box='(x,y)')``, smart-resized pixels
uitars-1000    UI-TARS 1.0: the same syntax with 0–1000 relative coordinates
opencua        OpenCUA: ``## Thought / ## Action / ## Code`` pyautogui, 0–1 coordinates
opencua-abs    OpenCUA-7B/32B: the same with absolute smart-resized pixels
qwen25vl       Qwen2.5-VL ``computer_use`` ``<tool_call>`` JSON, smart-resized pixels
computer_13    OSWorld ``{"action_type": "CLICK", "parameters": {...}}`` dicts
pyautogui      OSWorld pyautogui code strings (and WAIT / FAIL / DONE)
============== ===================================================================
"""

from __future__ import annotations

from agent.formats.base import (CoordSystem, ModelFrame, OutputFormat, ParsedReply, ParseError,
                                UnsupportedActionError)
from agent.formats.computer13 import Computer13Format, OSWorldPyautoguiFormat
from agent.formats.native import NativeFormat
from agent.formats.opencua import OpenCUAFormat
from agent.formats.qwen import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, QwenComputerUseFormat
from agent.formats.thinking import ThinkingSplit, split_thinking
from agent.formats.uitars import UITarsFormat

#: The registry: name → codec. Add a format by adding a line here (no discovery magic).
FORMATS: dict[str, OutputFormat] = {
    "native": NativeFormat(),
    "native-compact": NativeFormat(name="native-compact", prompt="compact"),
    "uitars": UITarsFormat(),
    "uitars-1000": UITarsFormat(coords=CoordSystem("norm1000"), name="uitars-1000"),
    "opencua": OpenCUAFormat(),
    "opencua-abs": OpenCUAFormat(coords=CoordSystem("smart_resize", min_pixels=QWEN_MIN_PIXELS,
                                                    max_pixels=QWEN_MAX_PIXELS), name="opencua-abs"),
    "qwen25vl": QwenComputerUseFormat(),
    "computer_13": Computer13Format(),
    "pyautogui": OSWorldPyautoguiFormat(),
}


def get_format(name: str) -> OutputFormat:
    """The codec registered as ``name``; ``KeyError`` lists the known names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise KeyError(f"unknown output format {name!r}; known formats: {', '.join(FORMATS)}") from None


__all__ = [
    "Computer13Format", "CoordSystem", "FORMATS", "ModelFrame", "NativeFormat", "OSWorldPyautoguiFormat",
    "OpenCUAFormat", "OutputFormat", "ParseError", "ParsedReply", "QwenComputerUseFormat", "ThinkingSplit",
    "UITarsFormat", "UnsupportedActionError", "get_format", "split_thinking",
]
