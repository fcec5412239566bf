"""How well a model reads: click accuracy on held-out synthetic reading screens, per family.

MiniWoB's reading tasks (click-test-2, click-button, click-link, click-option, ...) need a
browser and minutes to evaluate; the same skill on ``training.data.reading_screens``' drawings
takes seconds in process and separates "clicks the named word" from "clicks *a* button":
``hit`` is the share of clicks inside the named target, ``on_element`` the share inside any
clickable element drawn (button, link, option). A model that localises but cannot read has
``on_element`` near 1 and ``hit`` near chance (1/2 on two-buttons).

    python -m training.reading_eval MODEL_DIR [--per-family 100] [--out FILE.json]

Seeds start at ``EVAL_SEED`` (far from any training seed of ``training.miniwob_tiny``).
What this module does not do: MiniWoB episodes (``pixelpilot eval``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.formats import ModelFrame, ParseError, get_format
from agent.policies.local_model import LocalModelPolicy, LocalModelPolicyConfig
from agent.policy import PolicyInput
from envs.actions import Click
from envs.observation import Observation
from training.data.reading_screens import FAMILIES, reading_screen

#: First seed of the evaluation screens.
EVAL_SEED = 900_000_000


def _inside(click: Click | None, box: tuple[int, int, int, int]) -> bool:
    return click is not None and box[0] <= click.x < box[2] and box[1] <= click.y < box[3]


def reading_accuracy(model_dir: str, per_family: int = 100, seed: int = EVAL_SEED,
                     output_format: str = "native-compact") -> dict[str, dict[str, float]]:
    """``{family: {"hit": share, "on_element": share, "screens": n}}`` over ``per_family`` screens each."""
    if per_family < 1:
        raise ValueError(f"per_family must be >= 1, got {per_family}")
    fmt = get_format(output_format)
    policy = LocalModelPolicy(LocalModelPolicyConfig(model_dir=model_dir, output_format=output_format,
                                                     history_images=0, max_new_tokens=48, thinking=False))
    out: dict[str, dict[str, float]] = {}
    for k, family in enumerate(FAMILIES):
        hit = on_element = 0
        for i in range(per_family):
            screen = reading_screen(seed + k * 1_000_000 + i, family)
            policy.reset(screen.instruction)
            reply = policy.act(PolicyInput(screen.instruction, Observation(screen.image, screen.instruction)))
            h, w = screen.image.shape[:2]
            try:
                actions = fmt.parse(reply.text or "", ModelFrame((w, h), reply.image_size or (w, h))).actions
            except ParseError:
                actions = ()
            click = actions[0] if actions and isinstance(actions[0], Click) else None
            hit += _inside(click, screen.target)
            on_element += any(_inside(click, box) for _, _, box in screen.elements)
        out[family] = {"hit": hit / per_family, "on_element": on_element / per_family, "screens": per_family}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="model directory (save_pretrained output, e.g. model/zoo/miniwob-tiny)")
    ap.add_argument("--per-family", type=int, default=100)
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    if not (Path(args.model) / "config.json").is_file():
        ap.error(f"{args.model} holds no config.json: give a model directory")
    result: dict[str, Any] = reading_accuracy(args.model, args.per_family)
    for family, r in result.items():
        print(f"{family:12s} hit {r['hit']:6.1%}   on some element {r['on_element']:6.1%}   ({r['screens']} screens)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": args.model, "families": result}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EVAL_SEED", "reading_accuracy"]
