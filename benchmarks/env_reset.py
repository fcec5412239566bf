"""Reset time of the docker, VM and desktop envs, each beside a cold start of the same guest.

Rows (all measured in one run, on one machine, so the ratios compare like with like):

- docker cold start     a new container of ``pixelpilot/desktop`` from the image until its guest
                        controller answers an authenticated ping (create + start + Xvfb + openbox).
- docker reset (fresh)  ``DockerEnv(prestart=False).reset()``: a fresh container, started synchronously;
                        the old one is removed in the background.
- docker reset (spare)  ``DockerEnv(prestart=True).reset()`` in steady state: the next container
                        booted during the episode, so a reset swaps containers (target < 2 s).
- desktop cold start    a new ``DesktopEnv`` (Xvfb + openbox) until the first observation.
- desktop reset         ``DesktopEnv.reset()`` on a running session (apps killed, server kept).
- vm cold boot          a fresh ``VMEnv``'s first reset: overlay, define, TCG boot, controller ready, snapshot.
- vm snapshot revert    ``VMEnv.reset()``: ``loadvm`` of the clean snapshot into the running QEMU.
- vm revert (libvirt)   ``VMEnv(revert="libvirt").reset()``: libvirt's revertToSnapshot (restarts QEMU).

With ``--episodes N`` it also runs N episodes of the docker task ``terminal-file`` with its
scripted solution and reports episodes per hour and per hour per core (the load figure).

    .venv/bin/python benchmarks/env_reset.py --repeats 5 --episodes 10 --out env_reset.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SIZE = (1280, 800)


def _timed(fn: Callable[[], Any], repeats: int, before: Callable[[], None] | None = None) -> list[float]:
    out = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _row(name: str, times: list[float] | None, note: str = "") -> dict[str, Any]:
    if not times:
        return {"name": name, "median_s": None, "min_s": None, "max_s": None, "n": 0, "note": note}
    return {"name": name, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "n": len(times), "note": note}


def docker_rows(repeats: int) -> list[dict[str, Any]]:
    from envs.docker.container import ContainerSpec, GuestContainer, docker_client
    from envs.docker.env import DockerEnv
    from envs.docker.image import build_image

    docker = docker_client()
    build_image(log=lambda m: print(m, file=sys.stderr))
    spec = ContainerSpec(size=SIZE)
    cold, removal = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g = GuestContainer(docker, spec)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        g.destroy()
        removal.append(time.perf_counter() - t0)
    rows = [_row("docker cold start", cold, "image → controller ready"),
            _row("docker container removal", removal, "done in the background by reset")]
    with DockerEnv(size=SIZE, prestart=False) as env:
        env.reset()
        rows.append(_row("docker reset (fresh)", _timed(env.reset, repeats), "new container, synchronous"))
    with DockerEnv(size=SIZE, prestart=True) as env:
        env.reset()

        # The episode is assumed to last at least one container boot.
        rows.append(_row("docker reset (spare)", _timed(env.reset, repeats, before=env.wait_for_spare),
                         "new container booted during the episode"))
    return rows


def desktop_rows(repeats: int) -> list[dict[str, Any]]:
    from envs.desktop import DesktopEnv

    cold = []
    for _ in range(repeats):
        env = DesktopEnv(size=SIZE, window_manager=True)
        t0 = time.perf_counter()
        env.reset()
        cold.append(time.perf_counter() - t0)
        env.close()
    with DesktopEnv(size=SIZE, window_manager=True) as env:
        env.reset()
        warm = _timed(env.reset, repeats)
    return [_row("desktop cold start", cold, "Xvfb + openbox → first observation"),
            _row("desktop reset", warm, "session kept, apps killed")]


def vm_rows(repeats: int) -> list[dict[str, Any]]:
    """VM rows: a cold boot until the guest controller answers, and the two snapshot reverts.

    ``vm cold boot`` is a fresh ``VMEnv``'s first reset (new overlay, define, boot, controller
    ready, clean snapshot, first observation); the reverts are later resets of the same env:
    ``loadvm`` into the running QEMU (the default) and libvirt's ``revertToSnapshot`` (restarts QEMU).
    """
    from envs.errors import EnvSetupError

    try:
        from envs.vm.env import VMEnv
        from envs.vm.image import VMImage

        VMImage.load()
    except (ImportError, EnvSetupError) as exc:
        note = f"not measured ({exc})"
        return [_row(n, None, note) for n in ("vm cold boot", "vm snapshot revert", "vm revert (libvirt)")]
    cold: list[float] = []
    reverts: dict[str, list[float]] = {"loadvm": [], "libvirt": []}
    for mode in ("loadvm", "libvirt"):
        with VMEnv(size=SIZE, revert=mode) as env:
            cold += _timed(env.reset, 1)
            reverts[mode] = _timed(env.reset, repeats)
    for _ in range(repeats - 2):  # more cold boots, on fresh envs (each is a new domain)
        with VMEnv(size=SIZE) as env:
            cold += _timed(env.reset, 1)
    return [_row("vm cold boot", cold, "new overlay + boot (TCG) → controller ready → snapshot → first obs"),
            _row("vm snapshot revert", reverts["loadvm"], "loadvm in the running QEMU → first obs (the default)"),
            _row("vm revert (libvirt)", reverts["libvirt"], "revertToSnapshot: QEMU restarts, channel reconnects")]


def episode_rate(episodes: int) -> dict[str, Any]:
    """Scripted ``terminal-file`` episodes on one DockerEnv: episodes/hour and per core."""
    from envs.docker.env import DockerEnv

    ok = 0
    with DockerEnv(size=SIZE) as env:
        t0 = time.perf_counter()
        for seed in range(episodes):
            env.reset(seed=seed, options={"task": "terminal-file"})
            for action in env.solution():
                result = env.step(action)
            ok += int(bool(result[4].get("success")))
        wall = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    return {"episodes": episodes, "success": ok, "wall_s": wall, "episodes_per_hour": episodes / wall * 3600,
            "episodes_per_hour_per_core": episodes / wall * 3600 / cores, "cores": cores}


def _ratio(rows: dict[str, dict[str, Any]], slow: str, fast: str) -> float | None:
    a, b = rows.get(slow, {}).get("median_s"), rows.get(fast, {}).get("median_s")
    return a / b if a and b else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="measurements per row")
    p.add_argument("--episodes", type=int, default=0, help="also run N scripted docker episodes (load figure)")
    p.add_argument("--skip-docker", action="store_true", help="desktop (and VM) rows only")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    args = p.parse_args(argv)
    rows: list[dict[str, Any]] = []
    if not args.skip_docker:
        rows += docker_rows(args.repeats)
    rows += vm_rows(args.repeats)
    rows += desktop_rows(args.repeats)
    by_name = {r["name"]: r for r in rows}
    ratios = {
        "docker cold / docker reset (spare)": _ratio(by_name, "docker cold start", "docker reset (spare)"),
        "docker cold / docker reset (fresh)": _ratio(by_name, "docker cold start", "docker reset (fresh)"),
        "vm cold / vm snapshot revert": _ratio(by_name, "vm cold boot", "vm snapshot revert"),
        "vm cold / vm revert (libvirt)": _ratio(by_name, "vm cold boot", "vm revert (libvirt)"),
        "desktop cold / desktop reset": _ratio(by_name, "desktop cold start", "desktop reset"),
        "docker reset (spare) / desktop reset": _ratio(by_name, "docker reset (spare)", "desktop reset"),
    }
    print(f"{'row':28} {'median':>9} {'min':>9} {'max':>9}  note")
    for r in rows:
        cells = [f"{r[k] * 1000:8.0f}ms" if r[k] is not None else f"{'-':>10}" for k in ("median_s", "min_s", "max_s")]
        print(f"{r['name']:28} {' '.join(cells)}  {r['note']}")
    for name, value in ratios.items():
        print(f"ratio {name:40} {'not measured' if value is None else f'{value:.1f}x'}")
    result: dict[str, Any] = {"rows": rows, "ratios": ratios, "size": SIZE, "machine": platform.platform(),
                              "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    if args.episodes and not args.skip_docker:
        rate = episode_rate(args.episodes)
        result["episode_rate"] = rate
        print(f"docker terminal-file: {rate['success']}/{rate['episodes']} ok in {rate['wall_s']:.1f}s = "
              f"{rate['episodes_per_hour']:.0f} episodes/hour, {rate['episodes_per_hour_per_core']:.0f} per core-hour")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
