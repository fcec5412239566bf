"""Prefill time and greedy decode tokens/s: our VLM vs a transformers Qwen2-VL of comparable size.

Both sides are randomly initialised from a config (no weights can be downloaded here), run in
float32 on the CPU, batch 1, with their own ``generate`` and KV cache:

- ours: ``model.modeling.build_model(PRESETS[--preset]())`` — MoonViT, projector, MoE decoder.
- ``Qwen2VLForConditionalGeneration`` built from a ``Qwen2VLConfig`` whose LM has the same
  hidden size, layers, heads / KV heads, head dim and vocabulary, and whose vision tower has the
  same width, depth, heads and MLP ratio. Qwen2's FFN is dense, so its width is solved twice:
  ``activated`` — the same number of LM parameters used per token as our top-k MoE (the fair
  compute match), and ``total`` — the same number of stored LM parameters (the memory match).
  Both counts are printed for every row. The vision counts differ by design: MoonViT carries a
  64×64 learnable position table (1 M parameters at width 256; a lookup, not compute) that
  Qwen2-VL's ViT, which has 2-D RoPE only, lacks.

Prompt: one screenshot of ``--screen`` pixels (random pixels) at our processor's sizing rule
(``native_grid_size`` with ``--max-patches``), fed to both models as the same patch grid, so both
see the same number of image tokens; plus ``--text-tokens`` random text tokens and the chat
markers. Greedy decoding of exactly ``--new-tokens`` tokens (stop tokens disabled).

Timing: each round runs ``generate`` with ``max_new_tokens=1`` (= prefill: vision encoder +
one LM pass over the prompt + the first token) and with ``max_new_tokens=N``; the decode time
is the difference, so each library's fixed ``generate`` overhead cancels out and decode
tokens/s = (N - 1) / decode time. One warm-up round, then ``--repeats`` rounds that alternate
the models; medians are reported. The default clock is process CPU time with one intra-op
thread (``--threads 1 --clock cpu``): on a shared, oversubscribed machine wall time swings
several-fold between identical runs while CPU time does not; use ``--clock wall --threads N``
on a quiet machine. Ratios are ours / transformers (above 1: ours is faster).

    .venv/bin/python benchmarks/decode_speed.py --out runs/bench/decode_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

from model.config import PRESETS, VLConfig
from model.decoder import parameter_counts
from model.modeling import PixelPilotVLForConditionalGeneration, build_model
from model.special_tokens import (
    IM_END_TOKEN_ID,
    MEDIA_END_TOKEN_ID,
    MEDIA_PAD_TOKEN_ID,
    MEDIA_START_TOKEN_ID,
    TOKEN_IDS,
)
from model.vision import native_grid_size

IM_USER_ID, IM_ASSISTANT_ID = TOKEN_IDS["<|im_user|>"], TOKEN_IDS["<|im_assistant|>"]
IM_MIDDLE_ID = TOKEN_IDS["<|im_middle|>"]
TEXT_ID_RANGE = (1000, 4000)  # ordinary (non-special) ids in both vocabularies
# A generate call: () -> number of new tokens it produced.
Generate = Callable[[int], int]


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of one model; LM counts exclude the embedding table and LM head."""

    lm_total: int
    lm_activated: int
    lm_embedding: int
    vision: int  # vision encoder + projector / merger

    @property
    def all_total(self) -> int:
        return self.lm_total + self.lm_embedding + self.vision

    @property
    def all_activated(self) -> int:
        return self.lm_activated + self.lm_embedding + self.vision


@dataclass(frozen=True)
class Prompt:
    """The shared prompt: one screenshot as a patch grid plus text token ids."""

    grid: tuple[int, int]  # patches (h, w); image tokens = h·w / 4
    text_ids: list[int]

    @property
    def image_tokens(self) -> int:
        return (self.grid[0] // 2) * (self.grid[1] // 2)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ours_counts(model: PixelPilotVLForConditionalGeneration) -> ParamCounts:
    """Parameter counts of our model (``model.decoder.parameter_counts`` for the LM)."""
    lm = parameter_counts(model.language_model)
    return ParamCounts(lm_total=lm.total_non_embedding, lm_activated=lm.activated_non_embedding,
                       lm_embedding=lm.embedding,
                       vision=_n_params(model.vision_tower) + _n_params(model.projector))


def qwen_counts(model: Qwen2VLForConditionalGeneration) -> ParamCounts:
    """Parameter counts of a Qwen2-VL (dense LM: activated == total)."""
    lm = model.model.language_model
    embedding = lm.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    non_embedding = _n_params(lm) - lm.embed_tokens.weight.numel()
    return ParamCounts(lm_total=non_embedding, lm_activated=non_embedding,
                       lm_embedding=embedding, vision=_n_params(model.model.visual))


def qwen_config(cfg: VLConfig, intermediate_size: int) -> Qwen2VLConfig:
    """A Qwen2-VL config shaped like our preset, with the given dense FFN width."""
    t, v = cfg.text, cfg.vision
    if t.hidden_size != t.num_heads * t.head_dim:
        raise SystemExit(f"preset LM has hidden {t.hidden_size} != heads {t.num_heads} × head_dim "
                         f"{t.head_dim}; Qwen2 ties them, pick another preset")
    if v.intermediate_size % v.hidden_size:
        raise SystemExit(f"preset ViT MLP {v.intermediate_size} is not a whole multiple of its "
                         f"width {v.hidden_size} (Qwen2-VL's mlp_ratio is an int); "
                         "pick another preset")
    # M-RoPE splits the head_dim/2 rotary pairs into (time, height, width) sections; Qwen2-VL
    # uses 16/24/24 of 64, i.e. a quarter then two equal halves of the rest.
    pairs = t.head_dim // 2
    rest = pairs - pairs // 4
    sections = [pairs // 4, rest // 2, rest - rest // 2]
    text = {"vocab_size": t.vocab_size, "hidden_size": t.hidden_size,
            "intermediate_size": intermediate_size, "num_hidden_layers": t.num_layers,
            "num_attention_heads": t.num_heads, "num_key_value_heads": t.num_kv_heads,
            "max_position_embeddings": t.max_position_embeddings, "rms_norm_eps": t.rms_norm_eps,
            "tie_word_embeddings": False, "bos_token_id": None, "eos_token_id": None,
            "pad_token_id": cfg.pad_token_id,
            "rope_parameters": {"rope_type": "default", "rope_theta": t.rope_theta,
                                "mrope_section": sections}}
    vision = {"depth": v.num_layers, "embed_dim": v.hidden_size, "hidden_size": t.hidden_size,
              "num_heads": v.num_heads, "mlp_ratio": v.intermediate_size // v.hidden_size,
              "patch_size": v.patch_size, "spatial_merge_size": 2, "temporal_patch_size": 2}
    qcfg = Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False,
                         image_token_id=MEDIA_PAD_TOKEN_ID,
                         video_token_id=TOKEN_IDS["<|media_content|>"],
                         vision_start_token_id=MEDIA_START_TOKEN_ID,
                         vision_end_token_id=MEDIA_END_TOKEN_ID)
    qcfg.bos_token_id, qcfg.eos_token_id, qcfg.pad_token_id = None, None, cfg.pad_token_id
    return qcfg


def solve_ffn_width(cfg: VLConfig, target_lm_params: int) -> int:
    """The Qwen2 FFN width whose LM (non-embedding) parameter count is closest to the target."""
    probe = 64
    with torch.device("meta"):
        base = qwen_counts(Qwen2VLForConditionalGeneration(qwen_config(cfg, probe))).lm_total
    per_unit = 3 * cfg.text.hidden_size * cfg.text.num_layers  # gate, up, down per layer
    return max(1, probe + round((target_lm_params - base) / per_unit))


def make_prompt(args: argparse.Namespace) -> Prompt:
    """The screenshot grid (our sizing rule) and seeded random text ids."""
    width, height = (int(v) for v in args.screen.lower().split("x"))
    grid = native_grid_size(height, width, max_patches=args.max_patches)
    g = torch.Generator().manual_seed(0)
    text = torch.randint(*TEXT_ID_RANGE, (args.text_tokens,), generator=g).tolist()
    return Prompt(grid=grid, text_ids=text)


def prompt_ids(prompt: Prompt) -> torch.Tensor:
    """``[1, T]``: user turn with the screenshot placeholders and the text, then the reply start.

    Our ``<|media_start|>``/``<|media_pad|>``/``<|media_end|>`` ids double as Qwen2-VL's
    vision start / image pad / vision end ids (``qwen_config``), so both models get the same ids.
    """
    ids = ([IM_USER_ID, IM_MIDDLE_ID, MEDIA_START_TOKEN_ID]
           + [MEDIA_PAD_TOKEN_ID] * prompt.image_tokens + [MEDIA_END_TOKEN_ID]
           + prompt.text_ids + [IM_END_TOKEN_ID, IM_ASSISTANT_ID, IM_MIDDLE_ID])
    return torch.tensor([ids])


def ours_generate(model: PixelPilotVLForConditionalGeneration, prompt: Prompt,
                  patch: int) -> Generate:
    """Greedy ``generate`` of our model on the prompt (patches ``[h·w, 3, 14, 14]``)."""
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(prompt.grid[0] * prompt.grid[1], 3, patch, patch, generator=g)
    grids, ids = torch.tensor([prompt.grid]), prompt_ids(prompt)

    def run(new_tokens: int) -> int:
        out = model.generate(ids, pixel_values=pixels, image_grid_hws=grids,
                             max_new_tokens=new_tokens, stop_token_ids=[-1])
        return int(out.new_tokens.shape[1])
    return run


def qwen_generate(model: Qwen2VLForConditionalGeneration, prompt: Prompt, patch: int
                  ) -> Generate:
    """Greedy HF ``generate`` of Qwen2-VL (patches ``[h·w, 3·2·14·14]``, temporal patch 2)."""
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(prompt.grid[0] * prompt.grid[1], 3 * 2 * patch * patch, generator=g)
    ids = prompt_ids(prompt)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pixels,
              "image_grid_thw": torch.tensor([[1, *prompt.grid]]),
              "mm_token_type_ids": (ids == MEDIA_PAD_TOKEN_ID).int()}  # transformers 5.x

    def run(new_tokens: int) -> int:
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, eos_token_id=None, pad_token_id=0)
        return int(out.shape[1] - ids.shape[1])
    return run


def build_rows(cfg: VLConfig, prompt: Prompt) -> list[tuple[str, ParamCounts, Generate]]:
    """Our model and the two Qwen2-VL matches (activated / total LM parameters)."""
    torch.manual_seed(0)
    ours = build_model(cfg).eval()
    counts = ours_counts(ours)
    rows = [("pixelpilot (MoE)", counts, ours_generate(ours, prompt, cfg.vision.patch_size))]
    for match, target in (("activated", counts.lm_activated), ("total", counts.lm_total)):
        width = solve_ffn_width(cfg, target)
        torch.manual_seed(0)
        qwen = Qwen2VLForConditionalGeneration(qwen_config(cfg, width)).eval()
        rows.append((f"qwen2-vl ffn {width} ({match}-matched)", qwen_counts(qwen),
                     qwen_generate(qwen, prompt, cfg.vision.patch_size)))
    return rows


def time_rows(rows: list[tuple[str, ParamCounts, Generate]], new_tokens: int, repeats: int,
              clock: str) -> dict[str, dict[str, list[float]]]:
    """Per row: prefill seconds and decode seconds (N-token run minus 1-token run) per round."""
    now = time.process_time if clock == "cpu" else time.perf_counter
    samples = {name: {"prefill_s": [], "decode_s": []} for name, _, _ in rows}
    with torch.no_grad():
        for round_ in range(repeats + 1):  # round 0 is the warm-up
            for name, _, run in rows:
                start = now()
                first = run(1)
                mid = now()
                produced = run(new_tokens)
                end = now()
                if (first, produced) != (1, new_tokens):
                    raise SystemExit(f"{name} produced {first}/{produced} tokens instead of "
                                     f"1/{new_tokens}: the timings would not compare")
                if round_:
                    samples[name]["prefill_s"].append(mid - start)
                    samples[name]["decode_s"].append((end - mid) - (mid - start))
    return samples


def summarise(rows: list[tuple[str, ParamCounts, Generate]],
              samples: dict[str, dict[str, list[float]]], prompt_len: int, new_tokens: int
              ) -> list[dict[str, Any]]:
    """One JSON-able result per row: counts, median prefill, decode tokens/s."""
    results = []
    for name, counts, _ in rows:
        prefill = statistics.median(samples[name]["prefill_s"])
        decode = statistics.median(samples[name]["decode_s"])
        if decode <= 0:
            raise SystemExit(f"{name}: the {new_tokens}-token run took no longer than the 1-token "
                             "run (clock noise); raise --new-tokens or --repeats")
        results.append({"name": name, "params": {**asdict(counts), "all_total": counts.all_total,
                                                 "all_activated": counts.all_activated},
                        "prefill_s": prefill, "prefill_tokens_per_s": prompt_len / prefill,
                        "decode_s": decode,
                        "decode_tokens_per_s": (new_tokens - 1) / decode,
                        "samples": samples[name]})
    return results


def print_table(results: list[dict[str, Any]], ratios: dict[str, dict[str, float]]) -> None:
    print(f"{'model':38s} {'LM total':>9s} {'LM activ':>9s} {'embed':>8s} {'vision':>8s} "
          f"{'prefill ms':>10s} {'decode tok/s':>12s}")
    for r in results:
        p = r["params"]
        print(f"{r['name']:38s} {p['lm_total']:9,d} {p['lm_activated']:9,d} "
              f"{p['lm_embedding']:8,d} {p['vision']:8,d} {r['prefill_s'] * 1e3:10.1f} "
              f"{r['decode_tokens_per_s']:12.1f}")
    for name, ratio in ratios.items():
        print(f"ours / {name}: decode tokens/s {ratio['decode']:.2f}x, "
              f"prefill speed {ratio['prefill']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--screen", default="1280x800", help="screenshot size WxH")
    parser.add_argument("--max-patches", type=int, default=4096,
                        help="per-image patch limit (our processor's default)")
    parser.add_argument("--text-tokens", type=int, default=50)
    parser.add_argument("--new-tokens", type=int, default=64, help="greedy tokens per run")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after a warm-up")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                        help="cpu: process CPU time (robust on a shared machine); wall: elapsed")
    parser.add_argument("--out", type=Path, help="write results as JSON here")
    args = parser.parse_args(argv)
    if args.new_tokens < 2 or args.repeats < 1:
        parser.error("--new-tokens must be >= 2 and --repeats >= 1")
    torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]()
    prompt = make_prompt(args)
    prompt_len = int(prompt_ids(prompt).shape[1])
    rows = build_rows(cfg, prompt)
    print(f"clock {args.clock}, {args.threads} thread(s); preset {args.preset}; prompt "
          f"{prompt_len} tokens ({args.screen} → grid {prompt.grid[0]}x{prompt.grid[1]} = "
          f"{prompt.image_tokens} image tokens + {args.text_tokens} text); "
          f"{args.new_tokens} greedy tokens; median of {args.repeats} rounds after a warm-up")
    samples = time_rows(rows, args.new_tokens, args.repeats, args.clock)
    results = summarise(rows, samples, prompt_len, args.new_tokens)
    ours = results[0]
    ratios = {r["name"]: {"decode": ours["decode_tokens_per_s"] / r["decode_tokens_per_s"],
                          "prefill": r["prefill_s"] / ours["prefill_s"]} for r in results[1:]}
    print_table(results, ratios)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "args": {k: str(v) for k, v in vars(args).items()}, "prompt_tokens": prompt_len,
            "image_tokens": prompt.image_tokens, "grid": list(prompt.grid), "rows": results,
            "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
