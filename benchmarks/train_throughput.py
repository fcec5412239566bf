"""Training throughput on trajectory SFT data: sequence packing vs padding, side by side.

Trains the tiny (or small) model for one pass over the same SFT samples (MiniWoB expert
trajectories, ``training.data.sft``) twice, from the same initial weights and in the same
batches of ``--batch-size`` samples, the two runs taking steps in turn (so that the machine's
slower and faster spells fall on both alike, not on one run timed after the other): once
padded (one sample per row, padded to the batch's longest) and once packed
(``collate_packed``: the batch's samples laid end to end, isolated by segment ids, positions
restarting per sample; by default all in one row, as Hugging Face's
``DataCollatorWithFlattening`` does, or in rows of ``--max-len`` as ``pixelpilot train``
packs). Every step sees the same samples in both modes, so the two loss curves agree (up to
float summation order: a check that packing keeps samples apart); the figure is real (non-pad)
tokens per second of forward + backward + AdamW step.

    .venv/bin/python benchmarks/train_throughput.py [--run DIR ...] [--samples 96] [--batch-size 4,16] [--config tiny]

Without ``--run`` a small run is collected first with ``pixelpilot collect`` (MiniWoB experts,
Chromium) into ``out/bench/train_run``. ``--run`` repeated pools several runs: MiniWoB screens
are 160×210 while a docker desktop is 1024×768 at native resolution, so a pool of both (as a
user collecting in a browser and in a container trains on) spreads sample lengths far wider than
either alone. Prints the ratio and writes JSON (``--out``).

One draw of ``--samples`` from the run can land high or low (the same runs gave 1.25× and 1.53×
at 16 a batch on two draws): ``--repeats N`` measures N draws (the pool shuffled with seeds
seed, seed+1, …) and reports the median ratio with its range.

Padding to the batch's longest sample (dynamic padding, the strong baseline) wastes the share
1 − fill of the decoder's slots, so packing gains at most about 1/fill over it where the decoder
dominates the step. ``--fixed`` also times a third layout, every row padded to one fixed length
(the draw's longest sample: the shortest static shape that holds all), as trainers with fixed
shapes pad; the report gives packing against both.

Two data mixes: ``trajectories`` (SFT samples of the run only) and ``sft`` (what the ``sft``
recipe trains on: those samples plus synthetic grounding and text samples in the recipe's
proportions 1 : 0.5 : 0.1). Packing pays off in proportion to the spread of sample lengths, so
both are shown. ``--nproc`` also measures ``pixelpilot train --recipe sft`` with 1 and with 2
processes (gloo DDP) on the same data, from the trainer's own tokens/s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from model.config import PRESETS
from model.modeling import build_model
from model.processing import Processor
from model.processing.processor import IGNORE_INDEX
from model.special_tokens import PAD_TOKEN_ID
from training.data import SFTConfig, batch_tokens
from training.data.packing import collate_packed, collate_padded, sample_length
from training.data.sft import TrajectoryDataError, trajectory_samples

TASKS = "click-button,click-checkboxes,click-button-sequence,enter-text,enter-password,login-user,focus-text,click-tab"


def ensure_runs(runs: list[Path] | None, episodes: int) -> list[Path]:
    """``runs`` if given, else a small MiniWoB expert run collected (once) under ``out/bench``."""
    if runs:
        return runs
    run = Path("out/bench/train_run")
    if not (run / "episodes").is_dir():
        subprocess.run([sys.executable, "-m", "agent.cli", "collect", "--tasks", TASKS, "--episodes", str(episodes),
                        "--out", str(run)], check=True)
    return [run]


class Pass:
    """One training run (model + AdamW from the seed's initial weights) and its timing totals."""

    def __init__(self, config: str, seed: int) -> None:
        torch.manual_seed(seed)
        self.model = build_model(PRESETS[config]()).train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        self.real = self.slots = self.steps = 0
        self.elapsed = 0.0
        self.losses: list[float] = []

    def step(self, batch: dict[str, torch.Tensor], timed: bool) -> None:
        """Forward + backward + AdamW step on ``batch``; counted only when ``timed``."""
        t0 = time.perf_counter()
        loss = self.model(**batch).loss
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.model.update_routing_biases()
        dt = time.perf_counter() - t0
        self.losses.append(loss.item())
        if timed:
            r, s = batch_tokens(batch)
            self.real, self.slots, self.steps = self.real + r, self.slots + s, self.steps + 1
            self.elapsed += dt

    def result(self) -> dict[str, float]:
        return {"real_tokens": self.real, "slots": self.slots, "fill": self.real / max(self.slots, 1),
                "steps": self.steps, "seconds": self.elapsed, "tokens_per_s": self.real / max(self.elapsed, 1e-9),
                "first_loss": self.losses[0], "last_loss": self.losses[-1]}


def interleaved(groups: list[list[dict]], collate: dict[str, Callable[[list[dict]], dict[str, torch.Tensor]]],
                config: str, seed: int) -> dict[str, dict[str, float]]:
    """Train every mode on the same groups, step by step in turn (the order flips every step), so
    that a slower or faster spell of the machine falls on both modes alike; the first step of each
    warms up and is not timed. Batches are collated outside the timing."""
    passes = {name: Pass(config, seed) for name in collate}
    for k, group in enumerate(groups):
        names = list(collate) if k % 2 == 0 else list(reversed(list(collate)))
        for name in names:
            passes[name].step(collate[name](group), timed=k > 0)
    return {name: p.result() for name, p in passes.items()}


def sft_mix(samples: list[dict], seed: int) -> list[dict]:
    """``samples`` plus grounding and text samples in the sft recipe's proportions (1 : 0.5 : 0.1)."""
    from itertools import islice

    from training.data import resolve

    n = len(samples)
    grounding, text = resolve("synthetic-grounding,text", processor=Processor.default(), seed=seed)
    mixed = samples + list(islice(iter(grounding), max(1, n // 2))) + list(islice(iter(text), max(1, n // 10)))
    random.Random(seed).shuffle(mixed)
    return mixed


def compare(samples: list[dict], mix: str, batch_size: int, args: argparse.Namespace) -> dict:
    """Train one pass padded and one pass packed on ``samples``; print and return the figures."""
    lengths = sorted(len(s["input_ids"]) for s in samples)
    print(f"[{mix}, {batch_size} samples a batch] {len(samples)} samples: tokens min {lengths[0]}, "
          f"median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
    groups = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
    fixed = lengths[-1]  # the shortest fixed row length that holds every sample of the draw
    modes: dict[str, Callable[[list[dict]], dict[str, torch.Tensor]]] = {
        "padded": collate_padded,
        "packed": lambda g: collate_packed(g, args.max_len or sum(map(sample_length, g)), pad_to_max_len=False),
    }
    if args.fixed:
        modes["padded-fixed"] = lambda g: pad_to_width(collate_padded(g), fixed)
    results = interleaved(groups, modes, args.config, args.seed)
    for name, r in results.items():
        print(f"{name:>12}: {r['tokens_per_s']:8.0f} real tokens/s  fill {r['fill']:.0%}  steps {r['steps']}  "
              f"loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}")
    ratio = results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"]
    print(f"[{mix}, {batch_size} samples a batch] packing / padding to the batch's longest: {ratio:.2f}x "
          f"(target >= 1.5x; at most about 1/fill = {1 / results['padded']['fill']:.2f}x where the decoder dominates)")
    report = {"samples": len(samples), "batch_size": batch_size, "results": results,
              "packed_over_padded": ratio,
              "lengths": {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]}}
    if "padded-fixed" in results:
        report["packed_over_fixed"] = results["packed"]["tokens_per_s"] / results["padded-fixed"]["tokens_per_s"]
        print(f"[{mix}, {batch_size} samples a batch] packing / padding to a fixed {fixed} tokens: "
              f"{report['packed_over_fixed']:.2f}x")
    return report


def pad_to_width(batch: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    """A padded batch widened to ``width`` tokens a row (static shapes, as a fixed-length trainer pads)."""
    extra = width - batch["input_ids"].shape[1]
    if extra < 0:
        raise ValueError(f"batch rows hold {batch['input_ids'].shape[1]} tokens, more than width={width}")
    out = dict(batch)
    for key, fill in (("input_ids", PAD_TOKEN_ID), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
        out[key] = torch.nn.functional.pad(batch[key], (0, extra), value=fill)
    return out


def summarise(draws: list[dict]) -> dict:
    """Median, min and max packed/padded ratio over the draws, with every draw's figures."""
    ratios = [d["packed_over_padded"] for d in draws]
    got = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "draws": draws}
    fixed = [d["packed_over_fixed"] for d in draws if "packed_over_fixed" in d]
    if fixed:
        got["fixed"] = {"median": statistics.median(fixed), "min": min(fixed), "max": max(fixed)}
    return got


def processes(run: Path, nproc: int, steps: int) -> float:
    """Median tokens/s of ``pixelpilot train --recipe sft`` with ``nproc`` processes (first step excluded)."""
    import tempfile

    out = Path(tempfile.mkdtemp(prefix=f"tt{nproc}_"))
    subprocess.run([sys.executable, "-m", "agent.cli", "train", "--recipe", "sft", "--data", f"trajectories:{run}",
                    "--out", str(out), "--steps", str(steps), "--nproc", str(nproc), "--no-progress"],
                   check=True, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["tokens_per_s"] for r in records if "tokens_per_s" in r][1:]
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, action="append",
                    help="trajectory run directory; repeat to pool several runs, e.g. a MiniWoB run and a "
                         "docker desktop run (default: collect a MiniWoB run)")
    ap.add_argument("--episodes", type=int, default=4, help="episodes per task when collecting")
    ap.add_argument("--samples", type=int, default=96)
    ap.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--history-images", type=int, default=3,
                    help="earlier screenshots a sample carries (3: the agent's default layout)")
    ap.add_argument("--batch-size", default="4,16",
                    help="samples per padded batch; a comma-separated list is measured size by size")
    ap.add_argument("--max-len", type=int, default=0,
                    help="tokens per packed row (0: each batch's samples in one row)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed", action="store_true",
                    help="also time padding every row to one fixed length (the draw's longest sample)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="draws of --samples from the run (shuffle seeds seed, seed+1, ...); median and range reported")
    ap.add_argument("--mix", choices=("trajectories", "sft", "both"), default="both")
    ap.add_argument("--nproc-steps", type=int, default=6, help="steps per 1-vs-2-process run (0 = skip)")
    ap.add_argument("--out", type=Path, default=Path("out/bench/train_throughput.json"))
    args = ap.parse_args(argv)
    try:
        sizes = [int(b) for b in str(args.batch_size).split(",")]
    except ValueError:
        ap.error(f"--batch-size takes whole numbers separated by commas, got {args.batch_size!r}")
    if not sizes or min(sizes) < 1:
        ap.error(f"--batch-size needs sizes >= 1, got {args.batch_size!r}")
    if args.repeats < 1:
        ap.error(f"--repeats needs at least 1 draw, got {args.repeats}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    runs = ensure_runs(args.run, args.episodes)
    try:
        pool = list(trajectory_samples(runs, Processor.default(), SFTConfig(history_images=args.history_images)))
    except TrajectoryDataError as exc:
        raise SystemExit(f"--run: {exc}") from exc
    report: dict = {"runs": [str(r) for r in runs], "config": args.config, "history_images": args.history_images,
                    "batch_sizes": sizes, "max_len": args.max_len, "torch_threads": torch.get_num_threads(), "repeats": args.repeats,
                    "pool": len(pool), "mixes": {}}
    names = ("trajectories", "sft") if args.mix == "both" else (args.mix,)
    draws: dict[str, dict[int, list[dict]]] = {m: {b: [] for b in sizes} for m in names}
    for r in range(args.repeats):
        seed = args.seed + r
        base = list(pool)
        random.Random(seed).shuffle(base)  # batches mix short and long steps, as a sampler would
        base = base[: args.samples]
        mixes = {"trajectories": base, "sft": sft_mix(base, seed)}
        for mix in names:
            for b in sizes:
                print(f"-- draw {r + 1}/{args.repeats} (shuffle seed {seed})")
                draws[mix][b].append(compare(mixes[mix], mix, b, args))
    for mix in names:
        report["mixes"][mix] = {str(b): summarise(draws[mix][b]) for b in sizes}
        for b in sizes:
            got = report["mixes"][mix][str(b)]
            print(f"[{mix}, {b} samples a batch] packing / padding to the batch's longest over {args.repeats} "
                  f"draw(s): median {got['median']:.2f}x (min {got['min']:.2f}x, max {got['max']:.2f}x; "
                  f"target >= 1.5x)")
            if "fixed" in got:
                f = got["fixed"]
                print(f"[{mix}, {b} samples a batch] packing / padding to a fixed length: median {f['median']:.2f}x "
                      f"(min {f['min']:.2f}x, max {f['max']:.2f}x)")
    if args.nproc_steps:
        one, two = processes(runs[0], 1, args.nproc_steps), processes(runs[0], 2, args.nproc_steps)
        report["processes"] = {"1": one, "2": two, "two_over_one": two / one}
        print(f"pixelpilot train --recipe sft: 1 process {one:.0f} tokens/s, 2 processes {two:.0f} tokens/s "
              f"= {two / one:.2f}x (2 cores)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
