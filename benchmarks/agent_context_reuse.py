"""Per-step cost of an agent context with and without reuse of the unchanged history.

An episode of ``--history + 1`` steps: at step t the prompt is a system prompt + instruction,
then for every earlier step its screenshot and the action the model generated, then the new
screenshot. Each step generates ``--new-tokens`` tokens (greedy) and the action is appended to
the history, so the context only grows (the usual agent prompt with full history).

- scratch: ``model.generate`` on the whole prompt — every screenshot re-encoded by MoonViT,
  every token prefilled.
- reuse: ``model.context_cache.ReusableContext`` — vision embeddings looked up by image hash,
  the KV cache of the longest unchanged prefix (history + earlier actions) kept, so only the new
  screenshot and the new text are encoded/prefilled.

Both modes must produce identical tokens (checked). Times are the best of ``--repeats``
episodes per step (the first doubles as warm-up). The default clock is process CPU time with
one intra-op thread (``--threads 1 --clock cpu``): on a shared, oversubscribed machine wall time
swings several-fold between identical runs while CPU time does not; use ``--clock wall
--threads N`` on a quiet machine. The headline is the step whose context holds
``--history`` earlier screenshots; the whole-episode total is reported too. With a sliding
window that drops the oldest screenshot the text prefix changes every step, so only the vision
cache would help there; this benchmark measures the append-only history.

    .venv/bin/python benchmarks/agent_context_reuse.py --out agent_context_reuse.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from model.config import PRESETS
from model.context_cache import ReusableContext
from model.modeling import build_model
from model.special_tokens import (
    IM_END_TOKEN_ID,
    MEDIA_END_TOKEN_ID,
    MEDIA_PAD_TOKEN_ID,
    MEDIA_START_TOKEN_ID,
    TOKEN_IDS,
)
from model.vision import native_grid_size

TARGET_RATIO = 3.0
IM_USER_ID, IM_ASSISTANT_ID = TOKEN_IDS["<|im_user|>"], TOKEN_IDS["<|im_assistant|>"]
IM_MIDDLE_ID = TOKEN_IDS["<|im_middle|>"]


def screenshot_block(grid: tuple[int, int], text: list[int]) -> list[int]:
    """A user turn: screenshot placeholder tokens then some text."""
    pads = [MEDIA_PAD_TOKEN_ID] * ((grid[0] // 2) * (grid[1] // 2))
    return ([IM_USER_ID, IM_MIDDLE_ID, MEDIA_START_TOKEN_ID] + pads + [MEDIA_END_TOKEN_ID]
            + text + [IM_END_TOKEN_ID, IM_ASSISTANT_ID, IM_MIDDLE_ID])


def run_episode(model: torch.nn.Module, args: argparse.Namespace, grid: tuple[int, int]
                ) -> list[dict[str, float]]:
    """One episode in both modes; per step: scratch and reuse seconds."""
    g = torch.Generator().manual_seed(0)
    patches = grid[0] * grid[1]
    screens = torch.randn((args.history + 1) * patches, 3, 14, 14, generator=g)
    ids = torch.randint(20, 4000, (args.system_tokens,), generator=g).tolist()
    ctx = ReusableContext(model)
    steps = []
    for t in range(1, args.history + 2):
        ids += screenshot_block(grid, torch.randint(20, 4000, (12,), generator=g).tolist())
        prompt = torch.tensor([ids])
        pixels, grids = screens[:t * patches], torch.tensor([grid] * t)
        gen = {"max_new_tokens": args.new_tokens, "stop_token_ids": [-1]}  # fixed-length actions
        now = time.process_time if args.clock == "cpu" else time.perf_counter
        start = now()
        fresh = model.generate(prompt, pixel_values=pixels, image_grid_hws=grids, **gen)
        scratch_s = now() - start
        start = now()
        reused = ctx.generate(prompt, pixels, grids, **gen)
        reuse_s = now() - start
        if not torch.equal(fresh.sequences, reused.sequences):
            raise SystemExit(f"step {t}: reuse changed the generated tokens — benchmark invalid")
        steps.append({"step": t, "screenshots": t, "prompt_tokens": len(ids),
                      "reused_tokens": ctx.reused_tokens, "scratch_s": scratch_s,
                      "reuse_s": reuse_s})
        ids += reused.new_tokens[0].tolist() + [IM_END_TOKEN_ID]
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--history", type=int, default=5, help="earlier screenshots in context")
    parser.add_argument("--screen", default="1280x800", help="screenshot size WxH")
    parser.add_argument("--max-patches", type=int, default=1024, help="per-image token limit")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens per action")
    parser.add_argument("--system-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="episodes; best time per step")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                        help="cpu: process CPU time (robust on a shared machine); wall: elapsed")
    parser.add_argument("--out", type=Path, help="write results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.screen.lower().split("x"))
    grid = native_grid_size(height, width, max_patches=args.max_patches)
    torch.manual_seed(0)
    model = build_model(PRESETS[args.preset]()).eval()
    episodes = [run_episode(model, args, grid) for _ in range(args.repeats)]
    steps = []
    for i, first in enumerate(episodes[0]):
        row = dict(first)
        for key in ("scratch_s", "reuse_s"):
            row[key] = min(ep[i][key] for ep in episodes)
        steps.append(row)
    print(f"clock {args.clock}, {args.threads} thread(s); preset {args.preset}, screenshot "
          f"{args.screen} → grid {grid[0]}x{grid[1]} ({grid[0] * grid[1] // 4} tokens), "
          f"{args.new_tokens} new tokens per step")
    print(f"{'step':>4} {'shots':>5} {'prompt':>7} {'reused':>7} {'scratch ms':>11} "
          f"{'reuse ms':>9} {'ratio':>6}")
    for r in steps:
        print(f"{r['step']:4d} {r['screenshots']:5d} {r['prompt_tokens']:7d} "
              f"{r['reused_tokens']:7d} {r['scratch_s'] * 1e3:11.1f} {r['reuse_s'] * 1e3:9.1f} "
              f"{r['scratch_s'] / r['reuse_s']:6.2f}")
    last = steps[-1]
    ratio = last["scratch_s"] / last["reuse_s"]
    total = sum(r["scratch_s"] for r in steps) / sum(r["reuse_s"] for r in steps)
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(f"step with {args.history} earlier screenshots: scratch/reuse = {ratio:.2f}x "
          f"({verdict} the {TARGET_RATIO:.0f}x target); whole episode = {total:.2f}x")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "grid": grid, "steps": steps, "last_step_ratio": ratio,
                                        "episode_ratio": total}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
