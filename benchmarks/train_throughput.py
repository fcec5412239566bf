"""Training throughput on trajectory SFT data: sequence packing vs padding, side by side.

Trains the tiny (or small) model for one pass over the same SFT samples (MiniWoB expert
trajectories, ``training.data.sft``) twice, from the same initial weights: once with padded
batches (one sample per row, padded to the batch's longest) and once with packed rows
(``collate_packed``: several samples per row, isolated by segment ids). Both see the same real
tokens; the figure is real (non-pad) tokens per second of forward + backward + AdamW step.

    .venv/bin/python benchmarks/train_throughput.py [--run DIR] [--samples 32] [--config tiny]

Without ``--run`` a small run is collected first with ``pixelpilot collect`` (MiniWoB experts,
Chromium) into ``out/bench/train_run``. Prints the ratio and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from model.config import PRESETS
from model.modeling import build_model
from model.processing import Processor
from training.data import SFTConfig, batch_tokens, iter_packed_batches, iter_padded_batches
from training.data.sft import trajectory_samples

TASKS = "click-button,click-checkboxes,click-button-sequence,enter-text,enter-password,login-user,focus-text,click-tab"


def ensure_run(run: Path | None, episodes: int) -> Path:
    """``run`` if given, else a small MiniWoB expert run collected (once) under ``out/bench``."""
    if run is not None:
        return run
    run = Path("out/bench/train_run")
    if not (run / "episodes").is_dir():
        subprocess.run([sys.executable, "-m", "agent.cli", "collect", "--tasks", TASKS, "--episodes", str(episodes),
                        "--out", str(run)], check=True)
    return run


def train_pass(batches: Iterable[dict[str, torch.Tensor]], config: str, seed: int) -> dict[str, float]:
    """One pass of training; the first batch warms up and is not timed."""
    torch.manual_seed(seed)
    model = build_model(PRESETS[config]()).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    real = slots = steps = 0
    elapsed = 0.0
    losses = []
    for k, batch in enumerate(batches):
        t0 = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.update_routing_biases()
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if k == 0:
            continue
        r, s = batch_tokens(batch)
        real, slots, steps, elapsed = real + r, slots + s, steps + 1, elapsed + dt
    return {"real_tokens": real, "slots": slots, "fill": real / max(slots, 1), "steps": steps, "seconds": elapsed,
            "tokens_per_s": real / max(elapsed, 1e-9), "first_loss": losses[0], "last_loss": losses[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="trajectory run directory (default: collect one)")
    ap.add_argument("--episodes", type=int, default=4, help="episodes per task when collecting")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--history-images", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4, help="samples per padded batch")
    ap.add_argument("--max-len", type=int, default=4096, help="tokens per packed row")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/bench/train_throughput.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    run = ensure_run(args.run, args.episodes)
    samples = list(trajectory_samples(run, Processor.default(), SFTConfig(history_images=args.history_images)))
    random.Random(args.seed).shuffle(samples)  # batches mix short and long steps, as a sampler would
    samples = samples[: args.samples]
    lengths = sorted(len(s["input_ids"]) for s in samples)
    print(f"{len(samples)} SFT samples from {run}: tokens min {lengths[0]}, median {lengths[len(lengths) // 2]}, "
          f"max {lengths[-1]}")
    # Packed batches hold about as many real tokens as padded ones: rows of max_len.
    rows = max(1, round(args.batch_size * sum(lengths) / len(lengths) / args.max_len))
    modes: dict[str, Iterator[dict[str, torch.Tensor]]] = {
        "padded": iter_padded_batches(samples, args.batch_size),
        "packed": iter_packed_batches(samples, args.max_len, rows),
    }
    results = {}
    for name, batches in modes.items():
        results[name] = train_pass(batches, args.config, args.seed)
        r = results[name]
        print(f"{name:>7}: {r['tokens_per_s']:8.0f} real tokens/s  fill {r['fill']:.0%}  steps {r['steps']}  "
              f"loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}")
    ratio = results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"]
    print(f"packing / padding throughput: {ratio:.2f}x (target >= 1.5x)")
    report = {"config": args.config, "samples": len(samples), "history_images": args.history_images,
              "batch_size": args.batch_size, "max_len": args.max_len, "rows_per_packed_batch": rows,
              "lengths": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]},
              "results": results, "packed_over_padded": ratio, "torch_threads": torch.get_num_threads()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
