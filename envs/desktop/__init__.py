"""The desktop environment: a real X display (managed Xvfb + openbox, or an existing ``$DISPLAY``).

- ``Xvfb`` / ``XvfbConfig``: start, own and stop a virtual display (or attach to one).
- ``DesktopEnv`` / ``DesktopConfig``: the ``GUIEnv`` over it — mss capture, XTEST input,
  app launching, reset / restart.
- ``XTestInput``, ``ScreenCapture``: the input and screen parts, usable on their own.

Importing this package starts nothing.
"""

from envs.desktop.capture import ScreenCapture, bgrx_to_rgb
from envs.desktop.env import DesktopConfig, DesktopEnv
from envs.desktop.inputs import InputBackendError, XTestInput
from envs.desktop.xvfb import Xvfb, XvfbConfig

__all__ = [
    "DesktopConfig", "DesktopEnv", "InputBackendError", "ScreenCapture", "XTestInput", "Xvfb",
    "XvfbConfig", "bgrx_to_rgb",
]
