"""``MiniWoBEnv``: one MiniWoB++ task in headless Chromium, scored by the task's own JavaScript.

Screen: the whole viewport, which is exactly MiniWoB's 160×210 CSS task area (instruction
bar on top, task below; MiniWoB's reward HUD to the right is hidden), rendered at
``scale`` device pixels per CSS pixel: 320×420 screenshots by default, big enough for a small
model to read the 10 px task text.

Episode: ``reset(seed=)`` loads the task (or, when the same task is already loaded, ends the
running episode as MiniWoB's own Python env does), seeds ``Math.seedrandom``, calls
``core.startEpisodeReal()`` and reads the instruction with ``core.getUtterance()``. After every
step the env reads ``WOB_DONE_GLOBAL``, ``WOB_RAW_REWARD_GLOBAL`` (task reward, −1..1),
``WOB_REWARD_GLOBAL`` (the same scaled down by elapsed time) and ``WOB_REWARD_REASON``.

- ``reward`` is the raw reward by default (``reward="timed"`` for the time-penalised one), and
  0 while the task has not ended. Both are always in ``info``.
- ``terminated`` when the task ends (``WOB_DONE_GLOBAL``) or on ``Done``/``Fail`` (whatever
  the task reported by then is the score, 0 if nothing). ``info["success"]`` = raw reward > 0.
- Time limit: MiniWoB's own episode timer (10 s for most tasks; ``episode_ms`` overrides it —
  slow agents need more) ends the episode with raw reward −1 ("timed out"); ``max_steps``
  truncates. The time-penalised reward is computed against that same limit.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any, Literal

from envs.actions import Action
from envs.browser.env import BrowserEnv
from envs.browser.launch import DEFAULT_CHROMIUM, BrowserConfig, DomMode
from envs.errors import EnvSetupError
from envs.miniwob.suite import task_path, task_url
from envs.observation import Observation

TASK_WIDTH, TASK_HEIGHT = 160, 210  # CSS pixels of MiniWoB's #wrap
READY_TIMEOUT_S = 5.0

_STATE_JS = """() => ({done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL, timed: WOB_REWARD_GLOBAL,
                       reason: WOB_REWARD_REASON === null ? null : String(WOB_REWARD_REASON)})"""
_START_JS = """([seed, episodeMs]) => {
  if (core.EP_TIMER !== null) { core.endEpisode(0, false, 'reset'); }
  if (episodeMs !== null) { core.EPISODE_MAX_TIME = episodeMs; }
  Math.seedrandom(seed);
  core.startEpisodeReal();
  // The reward HUD sits right of the task area; hidden, the page cannot scroll sideways
  // (jQuery UI focus handling otherwise scrolls the task out of the 160 px viewport).
  const hud = document.getElementById('reward-display');
  if (hud) { hud.style.display = 'none'; }
  window.scrollTo(0, 0);
}"""
_READY_JS = "() => (typeof WOB_TASK_READY === 'undefined' || WOB_TASK_READY) && !!document.getElementById('query')"


@dataclass(frozen=True)
class MiniWoBConfig:
    """One MiniWoB++ env.

    Attributes:
        task: default task name (``reset(options={"task": ...})`` picks another per episode).
        scale: device pixels per CSS pixel; the screen is ``160·scale × 210·scale``.
        reward: ``"raw"`` (task reward, −1..1) or ``"timed"`` (MiniWoB's time-penalised reward).
        max_steps: step budget per episode (truncation).
        episode_ms: override MiniWoB's episode timer (ms); None keeps the task's own (mostly 10 s).
        fresh_page: reload the task page in a new browser context on every reset
            (slower; by default a loaded task is reused as MiniWoB itself does).
        dom: ``Observation.dom`` content: ``"none"``, ``"text"`` or ``"html"``.
        executable_path: the Chromium binary.
    """

    task: str | None = "click-button"
    scale: float = 2.0
    reward: Literal["raw", "timed"] = "raw"
    max_steps: int = 20
    episode_ms: int | None = None
    fresh_page: bool = False
    dom: DomMode = "none"
    executable_path: str = DEFAULT_CHROMIUM

    def __post_init__(self) -> None:
        if self.task is not None:
            task_path(self.task)  # raises EnvSetupError with close matches
        if self.reward not in ("raw", "timed"):
            raise ValueError(f"reward must be 'raw' or 'timed', got {self.reward!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps <= 0:
            raise ValueError(f"max_steps must be a positive int, got {self.max_steps!r}")
        if self.episode_ms is not None and (not isinstance(self.episode_ms, int) or self.episode_ms < 100):
            raise ValueError(f"episode_ms must be an int >= 100 (milliseconds) or None, got {self.episode_ms!r}")

    def browser_config(self) -> BrowserConfig:
        """The viewport/browser settings this env runs with."""
        return BrowserConfig(
            executable_path=self.executable_path, width=TASK_WIDTH, height=TASK_HEIGHT,
            device_scale_factor=self.scale, dom=self.dom,
        )


class MiniWoBEnv(BrowserEnv):
    """A MiniWoB++ task as a pixel env; see the module docstring for scoring and timing."""

    name = "miniwob"

    def __init__(self, config: MiniWoBConfig | None = None) -> None:
        self.mw_config = config or MiniWoBConfig()
        super().__init__(self.mw_config.browser_config(), max_steps=self.mw_config.max_steps)
        self._task: str | None = None
        self._loaded_url: str | None = None
        self._seed: int | None = None

    @property
    def task(self) -> str | None:
        """The task of the current (or last) episode."""
        return self._task

    @property
    def seed(self) -> int | None:
        """The seed of the current episode (drawn at random when reset got none)."""
        return self._seed

    def task_state(self) -> dict[str, Any]:
        """The task's own globals: ``done``, ``raw``, ``timed`` rewards and ``reason``."""
        return self.evaluate(_STATE_JS)

    # -- GUIEnv hooks --------------------------------------------------------------------
    def _start(self, seed: int | None, options: dict[str, Any]) -> str:
        task = options.get("task") or self.mw_config.task or self._task
        if task is None:
            raise EnvSetupError("no MiniWoB++ task given: set MiniWoBConfig.task or reset(options={'task': ...})")
        url = task_url(str(task))
        if self._launched is None or self._page is None or self.mw_config.fresh_page:
            self._loaded_url = None
            super()._start(seed, {"url": url})  # new browser context
        elif url != self._loaded_url:
            self._loaded_url = None
            self.navigate(url)
        self._loaded_url = url
        self._task = str(task)
        self._seed = int(seed) if seed is not None else random.SystemRandom().randrange(2**31)
        self.evaluate(_START_JS, [self._seed, self.mw_config.episode_ms])
        self._wait_ready()
        return str(self.evaluate("() => core.getUtterance()"))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.evaluate(_READY_JS):
            if time.monotonic() > deadline:
                raise EnvSetupError(f"MiniWoB++ task {self._task} did not become ready in {READY_TIMEOUT_S} s")
            time.sleep(0.02)

    def _observe(self) -> Observation:
        obs = super()._observe()
        return dataclasses.replace(obs, extra={**obs.extra, "task": self._task, "seed": self._seed})

    def _reward(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        state = self.task_state()
        done = bool(state["done"])
        raw = float(state["raw"]) if done else 0.0
        timed = float(state["timed"]) if done else 0.0
        info = {
            "raw_reward": raw, "timed_reward": timed, "task_done": done, "reason": state["reason"],
            "success": done and raw > 0, "timed_out": done and state["reason"] == "timed out",
        }
        return (raw if self.mw_config.reward == "raw" else timed), done, info

    def _shutdown(self) -> None:
        self._loaded_url = None
        super()._shutdown()
