"""The browser environment: headless Chromium (via Playwright) as a pixel screen.

``BrowserEnv`` drives one page with mouse/keyboard at screenshot-pixel coordinates;
``BrowserConfig`` sets the binary, viewport and device scale factor. Importing this package
does not start a browser (Playwright is imported when the env launches).
"""

from envs.browser.capture import css_to_pixel, pixel_to_css
from envs.browser.env import DRAG_STEPS, WHEEL_NOTCH_PX, BrowserEnv
from envs.browser.launch import CHROMIUM_FLAGS, BrowserConfig, browser_pid, launch_browser

__all__ = [
    "BrowserConfig", "BrowserEnv", "CHROMIUM_FLAGS", "DRAG_STEPS", "WHEEL_NOTCH_PX", "browser_pid",
    "css_to_pixel", "launch_browser", "pixel_to_css",
]
