"""Trajectory I/O benchmark: what recording costs the agent, and what deduplication saves.

Measured side by side in one run, on synthetic 1920x1080 "desktop" frames where each step
changes a small region (pointer, a line of typed text) and about half the steps repeat the
previous frame exactly (waiting / no-op steps):

1. ``add_step`` latency on the caller's thread (p50 / p95 / max) — the agent-visible cost —
   in two modes: *paced* (one step every ``--paced-interval`` seconds, like an agent whose
   model and env take that long) and *burst* (back to back: the writer's worst case, where
   the bounded queue applies back-pressure).
2. Throughput: steps per second from the first ``add_step`` to a durable ``finish``.
3. Bytes per step with deduplication (what is on disk) and without (every step's frame
   encoded and stored, as a naive writer would).

The reference step time is explicit: if an X server can be started (Xvfb), the benchmark
measures one mss capture + one XTEST pointer move at 1920x1080 (the floor of a real step,
before any model time); it also reports against an assumed model step of ``--assumed-step``
seconds. Results are printed and written as JSON (``--out``).

Usage: ``.venv/bin/python benchmarks/trajectory_io.py [--steps 40] [--out out/bench/trajectory_io.json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import Click, Move, Wait
from trajectories.frames import FrameCodec, frame_sha256
from trajectories.schema import EpisodeMeta, new_episode_id
from trajectories.writer import EpisodeWriter, WriterConfig

W, H = 1920, 1080


def desktop_frames(steps: int, repeat_fraction: float, seed: int = 0) -> list[np.ndarray]:
    """A desktop-like sequence: windows, text-ish rows, a moving pointer; a ``repeat_fraction`` share of
    steps (evenly spread) repeats the previous frame exactly."""
    rng = np.random.default_rng(seed)
    base = np.empty((H, W, 3), np.uint8)
    base[:] = np.linspace(40, 90, W, dtype=np.uint8)[None, :, None]  # wallpaper gradient
    for _ in range(6):  # windows with title bars and "text" rows
        x, y = int(rng.integers(0, W - 700)), int(rng.integers(0, H - 500))
        base[y:y + 480, x:x + 680] = 245
        base[y:y + 28, x:x + 680] = (60, 90, 160)
        for row in range(y + 40, y + 460, 18):
            n = int(rng.integers(100, 600))
            base[row:row + 9, x + 10:x + 10 + n] = rng.integers(0, 120, (9, n, 1), dtype=np.uint8)
    frames, current = [], base
    for i in range(steps):
        if i > 0 and int((i + 1) * repeat_fraction) > int(i * repeat_fraction):
            frames.append(current)  # a waiting step: the screen did not change
            continue
        current = current.copy()
        px, py = int(rng.integers(0, W - 20)), int(rng.integers(0, H - 20))
        current[py:py + 16, px:px + 10] = 0  # the pointer
        tx, ty = int(rng.integers(0, W - 400)), int(rng.integers(0, H - 20))
        current[ty:ty + 12, tx:tx + 300] = rng.integers(0, 255, (12, 300, 3), dtype=np.uint8)  # typed text
        frames.append(current)
    return frames


def measure_x_step(samples: int = 20) -> dict[str, Any] | None:
    """Mean time of one mss capture + one XTEST move on a managed 1920x1080 Xvfb, or None."""
    try:
        from envs.desktop import ScreenCapture, XTestInput, Xvfb, XvfbConfig
    except ImportError:
        return None
    try:
        with Xvfb(XvfbConfig(size=(W, H))).start() as display:
            capture = ScreenCapture(display.display, (W, H))
            inputs = XTestInput(display.display)
            try:
                capture.grab()
                times = []
                for i in range(samples):
                    t0 = time.perf_counter()
                    capture.grab()
                    inputs.execute(Move(100 + i, 200 + i))
                    times.append(time.perf_counter() - t0)
            finally:
                inputs.close()
        return {"source": "measured: mss grab + XTEST move on Xvfb 1920x1080", "seconds": statistics.mean(times)}
    except Exception as exc:  # noqa: BLE001 - no X here: the report says the reference was assumed instead
        return {"source": f"unavailable ({type(exc).__name__}: {exc})", "seconds": None}


def run_writer(frames: list[np.ndarray], config: WriterConfig, root: Path, interval_s: float) -> dict[str, Any]:
    """Record ``frames`` as one episode; ``interval_s`` > 0 paces steps like a real agent."""
    meta = EpisodeMeta(episode_id=new_episode_id(), task_id="bench", instruction="benchmark")
    latencies = []
    t_start = time.perf_counter()
    with EpisodeWriter(root / meta.episode_id, meta, config=config) as writer:
        for i, frame in enumerate(frames):
            action = Wait(1.0) if i % 2 else Click(i % W, i % H)
            t0 = time.perf_counter()
            writer.add_step(frame, action=action, thought="I will click the button " * 4, raw_text="x" * 400,
                            timings={"model_s": interval_s, "env_s": 0.0})
            latencies.append(time.perf_counter() - t0)
            if interval_s > 0:
                time.sleep(max(0.0, interval_s - latencies[-1]))
        writer.finish("success", 1.0)
        stats = dict(writer.frames.stats)
    total = time.perf_counter() - t_start
    disk = sum(p.stat().st_size for p in (root / meta.episode_id).rglob("*") if p.is_file())
    lat = sorted(latencies)
    return {"steps": len(frames), "add_step_p50_s": lat[len(lat) // 2], "add_step_p95_s": lat[int(len(lat) * 0.95)],
            "add_step_max_s": lat[-1], "total_s": total, "steps_per_s": len(frames) / total,
            "unique_frames": stats["new_frames"], "bytes_on_disk": disk, "bytes_per_step": disk / len(frames)}


def bytes_without_dedup(frames: list[np.ndarray], codec: FrameCodec) -> int:
    """Encoded bytes if every step stored its own frame (deterministic encoder: encode uniques once)."""
    sizes: dict[str, int] = {}
    total = 0
    for frame in frames:
        key = frame_sha256(frame)
        if key not in sizes:
            sizes[key] = len(codec.encode(frame))
        total += sizes[key]
    return total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat-fraction", type=float, default=0.5, help="share of steps that repeat the last frame")
    parser.add_argument("--paced-interval", type=float, default=0.25, help="seconds between steps in paced mode")
    parser.add_argument("--assumed-step", type=float, default=1.0, help="assumed model+env step time (s) for ratios")
    parser.add_argument("--codec", default="png", choices=["png", "jpeg", "webp"])
    parser.add_argument("--no-x", action="store_true", help="skip measuring the X capture+action reference")
    parser.add_argument("--out", default="out/bench/trajectory_io.json")
    args = parser.parse_args(argv)

    codec = FrameCodec(args.codec)
    frames = desktop_frames(args.steps, args.repeat_fraction)
    reference = None if args.no_x else measure_x_step()
    config = WriterConfig(codec=codec, fsync=True)
    with tempfile.TemporaryDirectory() as tmp:
        paced = run_writer(frames, config, Path(tmp), args.paced_interval)
        burst = run_writer(frames, config, Path(tmp), 0.0)
        burst_nofsync = run_writer(frames, WriterConfig(codec=codec, fsync=False), Path(tmp), 0.0)
    naive = bytes_without_dedup(frames, codec)
    json_bytes = burst["bytes_on_disk"] - sum(len(codec.encode(f)) for f in {frame_sha256(f): f for f in frames}.values())
    x_step = reference["seconds"] if reference else None
    result = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "frames": {"size": [W, H], "steps": args.steps, "unique": burst["unique_frames"], "codec": args.codec},
        "reference_step": {"x_capture_action": reference, "assumed_step_s": args.assumed_step,
                           "paced_interval_s": args.paced_interval},
        "paced": paced, "burst": burst, "burst_no_fsync": burst_nofsync,
        "bytes_per_step": {"dedup": burst["bytes_on_disk"] / args.steps,
                           "no_dedup": (naive + json_bytes) / args.steps},
        "ratios": {
            "paced_add_step_p50_over_assumed_step": paced["add_step_p50_s"] / args.assumed_step,
            "paced_add_step_p50_over_x_step": paced["add_step_p50_s"] / x_step if x_step else None,
            "burst_steps_per_s_times_assumed_step": burst["steps_per_s"] * args.assumed_step,
            "bytes_no_dedup_over_dedup": (naive + json_bytes) / burst["bytes_on_disk"],
            "fsync_slowdown_burst": burst["total_s"] / burst_nofsync["total_s"],
        },
    }
    _report(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


def _report(r: dict[str, Any]) -> None:
    ref, ratios = r["reference_step"], r["ratios"]
    x = ref["x_capture_action"]
    print(f"frames: {r['frames']['steps']} steps of {W}x{H}, {r['frames']['unique']} unique, codec {r['frames']['codec']}")
    if x:
        secs = f"{x['seconds'] * 1e3:.1f} ms" if x["seconds"] else "-"
        print(f"reference: X capture+action {secs} ({x['source']}); assumed model step {ref['assumed_step_s']} s")
    for mode in ("paced", "burst", "burst_no_fsync"):
        m = r[mode]
        print(f"{mode:15} add_step p50 {m['add_step_p50_s'] * 1e3:7.2f} ms  p95 {m['add_step_p95_s'] * 1e3:7.2f} ms  "
              f"max {m['add_step_max_s'] * 1e3:7.2f} ms  throughput {m['steps_per_s']:6.1f} steps/s")
    b = r["bytes_per_step"]
    print(f"bytes/step: dedup {b['dedup'] / 1e3:.1f} kB, no dedup {b['no_dedup'] / 1e3:.1f} kB")
    for name, value in ratios.items():
        print(f"  {name}: {'-' if value is None else f'{value:.4g}'}")


if __name__ == "__main__":
    main()
