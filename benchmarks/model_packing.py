"""Packed (cu_seqlens) vs padded batches through MoonViT on a realistic mix of screenshot sizes.

Both modes run the same encoder weights (``model.config.small()`` vision tower unless
``--preset``) on the same images; only the batching differs:

- packed: all patches in one sequence, attention per image block (``MoonViT.forward``).
- padded: every image padded to the longest one, ``[B, L_max, C]`` with a key-padding mask
  through ``scaled_dot_product_attention`` (the usual fixed-shape batch).

Image sizes go through ``model.vision.native_grid_size`` (token limit ``--max-patches``, padded
to a multiple of 28). Throughput: patches per second of a ``no_grad`` forward, best of
``--repeats`` rounds that alternate the two modes. The default clock is the process CPU time
with one intra-op thread (``--threads 1 --clock cpu``): on a shared, oversubscribed machine
wall time swings several-fold between identical runs while CPU time does not; use
``--clock wall --threads N`` on a quiet machine. Peak memory: each mode does one forward in
its own child process; peak RSS (``VmHWM`` after resetting it via ``/proc/self/clear_refs``)
minus RSS before the forward. The parent first checks both modes give the same features.

    .venv/bin/python benchmarks/model_packing.py --repeats 3 --out model_packing.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from model.config import PRESETS
from model.vision import MoonViT, native_grid_size

# (label, height, width, count): one training batch across our suites.
MIXES: dict[str, list[tuple[str, int, int, int]]] = {
    "one-each": [("1920x1080", 1080, 1920, 1), ("1280x800", 800, 1280, 1),
                 ("800x600", 600, 800, 1), ("390x844 phone", 844, 390, 1),
                 ("160x210 miniwob", 210, 160, 1)],
    "suite-mix": [("1920x1080", 1080, 1920, 1), ("1280x800", 800, 1280, 1),
                  ("800x600", 600, 800, 1), ("390x844 phone", 844, 390, 2),
                  ("160x210 miniwob", 210, 160, 3)],
}
TARGET_RATIO = 2.0


def make_inputs(mix: str, max_patches: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised patches ``[L, 3, 14, 14]`` and grids ``[N, 2]`` for a mix."""
    grids = [native_grid_size(h, w, max_patches=max_patches)
             for _, h, w, count in MIXES[mix] for _ in range(count)]
    total = sum(h * w for h, w in grids)
    g = torch.Generator().manual_seed(seed)
    return torch.randn(total, 3, 14, 14, generator=g), torch.tensor(grids)


def padded_forward(vit: MoonViT, pixel_values: torch.Tensor, grid_hws: torch.Tensor
                   ) -> torch.Tensor:
    """The baseline: pad every image to the longest, mask padded keys; returns ``[L, C]``."""
    lengths = (grid_hws[:, 0] * grid_hws[:, 1]).tolist()
    batch, longest = len(lengths), max(lengths)
    x_LC = vit.embed(pixel_values, grid_hws)
    cos_LP, sin_LP = vit.rope(grid_hws)
    x_BLC = x_LC.new_zeros(batch, longest, x_LC.shape[-1])
    cos_BLP = cos_LP.new_ones(batch, longest, cos_LP.shape[-1])
    sin_BLP = sin_LP.new_zeros(batch, longest, sin_LP.shape[-1])
    for b, (x, c, s) in enumerate(zip(x_LC.split(lengths), cos_LP.split(lengths),
                                      sin_LP.split(lengths))):
        x_BLC[b, :len(x)], cos_BLP[b, :len(x)], sin_BLP[b, :len(x)] = x, c, s
    keep_B11L = (torch.arange(longest) < torch.tensor(lengths)[:, None])[:, None, None, :]

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), attn_mask=keep_B11L)
        return out.transpose(1, 2)

    y_BLC = vit.run_blocks(x_BLC, cos_BLP, sin_BLP, attend)
    return torch.cat([y_BLC[b, :n] for b, n in enumerate(lengths)])


def build_vit(preset: str) -> MoonViT:
    torch.manual_seed(0)
    return MoonViT(PRESETS[preset]().vision).eval()


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status (Linux only)")


def peak_memory_child(mode: str, mix: str, preset: str, max_patches: int) -> dict[str, Any]:
    """Peak RSS growth of one forward in this (fresh) process, in MiB."""
    vit = build_vit(preset)
    pixels, grids = make_inputs(mix, max_patches)
    with torch.no_grad():
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _rss_kib("VmRSS")
        _forward(vit, mode, pixels, grids)
        peak = _rss_kib("VmHWM")
    return {"mode": mode, "mix": mix, "peak_mib": (peak - before) / 1024}


def _forward(vit: MoonViT, mode: str, pixels: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    return vit(pixels, grids) if mode == "packed" else padded_forward(vit, pixels, grids)


def time_modes(vit: MoonViT, mix: str, max_patches: int, repeats: int, clock: str
               ) -> dict[str, Any]:
    """Alternate padded/packed forwards; min and median seconds per mode on ``clock``."""
    pixels, grids = make_inputs(mix, max_patches)
    now = time.process_time if clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {"padded": [], "packed": []}
    with torch.no_grad():
        for _ in range(repeats):
            for mode, samples in times.items():
                start = now()
                _forward(vit, mode, pixels, grids)
                samples.append(now() - start)
    lengths = (grids[:, 0] * grids[:, 1]).tolist()
    patches = sum(lengths)
    rows: dict[str, Any] = {"images": len(lengths), "patches": patches,
                            "padded_positions": max(lengths) * len(lengths)}
    for mode, values in times.items():
        rows[mode] = {"min_s": min(values), "median_s": statistics.median(values),
                      "patches_per_s": patches / min(values)}
    return rows


def measure_memory(mode: str, mix: str, args: argparse.Namespace) -> float:
    cmd = [sys.executable, __file__, "--child", mode, mix, "--preset", args.preset,
           "--max-patches", str(args.max_patches), "--threads", str(args.threads)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"])


def check_equivalence(preset: str) -> float:
    """Max abs difference between packed and padded features on a small mix."""
    vit = build_vit(preset)
    pixels, grids = make_inputs("suite-mix", max_patches=256)
    with torch.no_grad():
        return float((vit(pixels, grids) - padded_forward(vit, pixels, grids)).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--max-patches", type=int, default=4096, help="per-image token limit")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; min")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                        help="cpu: process CPU time (robust on a shared machine); wall: elapsed")
    parser.add_argument("--mix", default="all", choices=["all", *MIXES])
    parser.add_argument("--out", type=Path, help="write results as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "MIX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(peak_memory_child(*args.child, args.preset, args.max_patches)))
        return 0
    diff = check_equivalence(args.preset)
    print(f"packed vs padded max |diff| = {diff:.2e} (same features)")
    if diff > 1e-3:
        raise SystemExit("packed and padded features disagree: the benchmark would be invalid")
    vit = build_vit(args.preset)
    results = []
    mixes = list(MIXES) if args.mix == "all" else [args.mix]
    for mix in mixes:
        rows = time_modes(vit, mix, args.max_patches, args.repeats, args.clock)
        for mode in ("padded", "packed"):
            rows[mode]["peak_mib"] = measure_memory(mode, mix, args)
        ratio = rows["packed"]["patches_per_s"] / rows["padded"]["patches_per_s"]
        mem_ratio = rows["padded"]["peak_mib"] / max(rows["packed"]["peak_mib"], 1e-9)
        print(f"\n[{mix}] {rows['images']} images, {rows['patches']} patches "
              f"(padded computes {rows['padded_positions']} positions)")
        for mode in ("padded", "packed"):
            r = rows[mode]
            print(f"  {mode:7s} {args.clock} min {r['min_s'] * 1e3:8.1f} ms  median {r['median_s'] * 1e3:8.1f} ms"
                  f"  {r['patches_per_s']:7.0f} patches/s  peak +{r['peak_mib']:7.1f} MiB")
        verdict = "meets" if ratio >= TARGET_RATIO else "below"
        print(f"  throughput packed/padded = {ratio:.2f}x ({verdict} the {TARGET_RATIO:.0f}x "
              f"target); peak memory padded/packed = {mem_ratio:.2f}x")
        results.append({"mix": mix, "clock": args.clock, **rows, "throughput_ratio": ratio, "memory_ratio": mem_ratio})
    if args.out:
        args.out.write_text(json.dumps({"preset": args.preset, "max_patches": args.max_patches,
                                        "threads": args.threads, "equivalence_max_diff": diff,
                                        "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
