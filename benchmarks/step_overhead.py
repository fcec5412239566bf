"""Per-step overhead of pixelpilot's envs vs the OSWorld approach, measured side by side.

One "step" = perform one input action (a move or left click to a random point) and return
the next screenshot as an RGB array, at 1920x1080 by default. Rows:

- desktop capture      ``ScreenCapture.grab`` alone (mss XShm → contiguous RGB); target ≤ 5 ms.
- desktop step         ``DesktopEnv.step`` on Xvfb (XTEST input + capture + bookkeeping).
- browser step         ``BrowserEnv.step`` (headless Chromium via Playwright, CDP capture),
                       or "unavailable" when ``envs.browser`` / Chromium cannot run here.
- osworld step         what OSWorld's guest server does per action: spawn
                       ``python -c "import pyautogui; pyautogui.moveTo(x, y)"`` (or ``click``;
                       with ``PAUSE = 0``, unlike OSWorld's 0.1 s default, so the row is a lower bound),
                       then take a screenshot in a *separate* process that writes a PNG, and
                       decode that PNG into an RGB array. OSWorld grabs with
                       ``pyautogui.screenshot()``, which fails on this machine (no scrot /
                       gnome-screenshot), so the grab subprocess uses mss + ``mss.tools.to_png``
                       instead — the same kind of work (process start, import, grab, PNG encode).
  The osworld row also reports its two parts (action process, screenshot process + decode).

All rows run against the same Xvfb in one process run, so the ratios compare like with like.
Results print as a table and, with ``--out FILE``, as JSON.

    .venv/bin/python benchmarks/step_overhead.py --steps 100 --out step_overhead.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from envs.actions import Action, Click, Move
from envs.desktop import DesktopEnv, ScreenCapture

CAPTURE_TARGET_MS = 5.0
RATIO_TARGET = 10.0

# OSWorld's server runs "import pyautogui; import time; pyautogui.FAILSAFE = False; {command}"
# and keeps pyautogui's default PAUSE of 0.1 s after every call. We set PAUSE = 0, so the
# osworld row is a lower bound of what OSWorld pays (the ratio is conservative).
_OSWORLD_ACTION = "import pyautogui; pyautogui.FAILSAFE = False; pyautogui.PAUSE = 0; pyautogui.{fn}({x}, {y})"
_OSWORLD_GRAB = (
    "import mss, mss.tools, sys; s = (getattr(mss, 'MSS', None) or mss.mss)(); shot = s.grab(s.monitors[1]); "
    "mss.tools.to_png(shot.rgb, shot.size, output=sys.argv[1])"
)


@dataclass(frozen=True)
class Row:
    """Timing summary of one measured thing (milliseconds)."""

    name: str
    n: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    note: str = ""

    @staticmethod
    def of(name: str, seconds: list[float], note: str = "") -> "Row":
        ms = sorted(s * 1e3 for s in seconds)
        return Row(name, len(ms), statistics.median(ms), ms[min(len(ms) - 1, int(0.9 * len(ms)))],
                   statistics.fmean(ms), note)


def random_actions(n: int, size: tuple[int, int], seed: int) -> list[Action]:
    """``n`` alternating moves and left clicks at seeded random points on a ``size`` screen."""
    rng = random.Random(seed)
    w, h = size
    return [(Move if i % 2 == 0 else Click)(rng.randrange(w), rng.randrange(h)) for i in range(n)]


def time_calls(fn: Callable[[Any], Any], items: list[Any], warmup: int) -> list[float]:
    """Wall time of ``fn(item)`` for each item after the first ``warmup`` (called untimed)."""
    for item in items[:warmup]:
        fn(item)
    out = []
    for item in items[warmup:]:
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
    return out


def bench_desktop(env: DesktopEnv, actions: list[Action], warmup: int) -> tuple[Row, Row]:
    capture = ScreenCapture(env.display, env.screen_size)
    try:
        grabs = time_calls(lambda _: capture.grab(), actions, warmup)
    finally:
        capture.close()
    env.max_steps = len(actions) + warmup + 1
    env.reset()
    steps = time_calls(env.step, actions, warmup)
    return (Row.of("desktop capture (mss → RGB)", grabs),
            Row.of("desktop step (DesktopEnv on Xvfb)", steps, "XTEST input + capture"))


def bench_browser(size: tuple[int, int], actions: list[Action], warmup: int) -> Row:
    try:
        from envs.browser import BrowserConfig, BrowserEnv
    except ImportError as exc:
        return Row("browser step (BrowserEnv)", 0, float("nan"), float("nan"), float("nan"), f"unavailable: {exc}")
    try:
        env = BrowserEnv(BrowserConfig(width=size[0], height=size[1]), max_steps=len(actions) + warmup + 1)
    except Exception as exc:  # noqa: BLE001 - report why the row is missing, keep the other rows
        return Row("browser step (BrowserEnv)", 0, float("nan"), float("nan"), float("nan"), f"unavailable: {exc}")
    try:
        env.reset(options={"html": "<html><body><h1>step overhead</h1><p>benchmark page</p></body></html>"})
        steps = time_calls(env.step, actions, warmup)
    except Exception as exc:  # noqa: BLE001
        return Row("browser step (BrowserEnv)", 0, float("nan"), float("nan"), float("nan"), f"unavailable: {exc}")
    finally:
        env.close()
    return Row.of("browser step (BrowserEnv)", steps, "Playwright input + CDP capture")


def _osworld_step(action: Action, env: dict[str, str], png_path: str, parts: dict[str, list[float]]) -> np.ndarray:
    fn = "moveTo" if isinstance(action, Move) else "click"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _OSWORLD_ACTION.format(fn=fn, x=action.x, y=action.y)],
                   env=env, check=True, stdin=subprocess.DEVNULL)
    t1 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _OSWORLD_GRAB, png_path], env=env, check=True, stdin=subprocess.DEVNULL)
    with open(png_path, "rb") as fh:
        rgb = np.asarray(Image.open(io.BytesIO(fh.read())).convert("RGB"))
    t2 = time.perf_counter()
    parts["action"].append(t1 - t0)
    parts["screenshot"].append(t2 - t1)
    return rgb


def bench_osworld(display: str, actions: list[Action], warmup: int) -> list[Row]:
    env = dict(os.environ, DISPLAY=display)
    parts: dict[str, list[float]] = {"action": [], "screenshot": []}
    with tempfile.TemporaryDirectory(prefix="pixelpilot-bench-") as tmp:
        png = os.path.join(tmp, "shot.png")
        steps = time_calls(lambda a: _osworld_step(a, env, png, parts), actions, warmup)
    return [Row.of("osworld step (subprocess per action + PNG grab)", steps, "python -c pyautogui + mss PNG"),
            Row.of("  osworld action process", parts["action"][warmup:]),
            Row.of("  osworld screenshot process + PNG decode", parts["screenshot"][warmup:])]


def _ratio(slow: Row, fast: Row) -> float | None:
    if fast.n == 0 or slow.n == 0 or fast.median_ms <= 0:
        return None
    return slow.median_ms / fast.median_ms


def print_table(rows: list[Row], ratios: dict[str, float | None], size: tuple[int, int]) -> None:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nper-step overhead at {size[0]}x{size[1]} (median over n steps; ms); "
          f"{os.cpu_count()} CPUs, load average {load}\n")
    print(f"{'what':<50} {'n':>5} {'median':>9} {'p90':>9} {'mean':>9}  note")
    for r in rows:
        if r.n == 0:
            print(f"{r.name:<50} {'-':>5} {'-':>9} {'-':>9} {'-':>9}  {r.note}")
        else:
            print(f"{r.name:<50} {r.n:>5} {r.median_ms:>9.2f} {r.p90_ms:>9.2f} {r.mean_ms:>9.2f}  {r.note}")
    print()
    for name, value in ratios.items():
        print(f"{name:<50} {'unavailable' if value is None else f'{value:.1f}x'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="timed steps per row (>= 100 for the reported medians)")
    p.add_argument("--osworld-steps", type=int, default=None, help="timed steps for the osworld row (default: --steps)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before each row")
    p.add_argument("--size", default="1920x1080", help="screen size WIDTHxHEIGHT")
    p.add_argument("--seed", type=int, default=0, help="seed of the random points")
    p.add_argument("--no-browser", action="store_true", help="skip the BrowserEnv row")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must look like 1920x1080, got {args.size!r}")
    args.size = (w, h)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size
    actions = random_actions(args.steps + args.warmup, size, args.seed)
    os_actions = actions[: (args.osworld_steps or args.steps) + args.warmup]
    with DesktopEnv(size=size, window_manager=False) as env:
        env.reset()
        capture_row, desktop_row = bench_desktop(env, actions, args.warmup)
        osworld_rows = bench_osworld(env.display, os_actions, args.warmup)
    browser_row = (Row("browser step (BrowserEnv)", 0, float("nan"), float("nan"), float("nan"), "skipped (--no-browser)")
                   if args.no_browser else bench_browser(size, actions, args.warmup))
    rows = [capture_row, desktop_row, browser_row, *osworld_rows]
    ratios = {"osworld / desktop (median step)": _ratio(osworld_rows[0], desktop_row),
              "osworld / browser (median step)": _ratio(osworld_rows[0], browser_row)}
    print_table(rows, ratios, size)
    targets = {f"desktop capture <= {CAPTURE_TARGET_MS} ms": capture_row.median_ms <= CAPTURE_TARGET_MS,
               f"osworld / desktop >= {RATIO_TARGET}x": (ratios["osworld / desktop (median step)"] or 0) >= RATIO_TARGET}
    for name, ok in targets.items():
        print(f"target {name:<43} {'met' if ok else 'NOT met'}")
    if args.out:
        result = {"size": list(size), "steps": args.steps, "warmup": args.warmup, "seed": args.seed,
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                              "loadavg": list(os.getloadavg())},
                  "rows": [{k: (None if isinstance(v, float) and v != v else v) for k, v in asdict(r).items()} for r in rows],
                  "ratios": ratios, "targets": targets}
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
