"""Every stage trains a few steps on the tiny model: the loss on a fixed batch goes down,
trainable parameters move, frozen ones (and a frozen decoder's routing biases) stay
bit-identical; every recipe also runs from the ``pixelpilot train`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.cli import main as cli_main
from model.modeling import PixelPilotVLForConditionalGeneration
from training.recipes import RECIPES

from tests.training.core_helpers import (caption_samples, image_samples, make_trainer,
                                         text_samples)

# Each stage's test data: few distinct samples, cycled, so a few steps visibly fit them.
SOURCES = {
    "vit_pretrain": {"synthetic-caption": lambda: caption_samples(0, count=8)},
    "align": {"synthetic-caption": lambda: image_samples(0, count=8)},
    "joint_pretrain": {"text": lambda: text_samples(0, count=8),
                       "synthetic-caption": lambda: image_samples(1, count=8)},
    "cooldown": {"text": lambda: text_samples(2, count=8),
                 "synthetic-grounding": lambda: image_samples(3, count=8)},
    "long_context": {"long-text": lambda: text_samples(4, count=4, lo=150, hi=250),
                     "text": lambda: text_samples(5, count=8)},
    "sft": {"trajectories": lambda: image_samples(6, count=8)},
    "long_cot_sft": {"cot": lambda: text_samples(7, count=8)},
}


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", list(RECIPES))
def test_stage_lowers_the_loss_and_trains_only_its_parameters(name: str, tmp_path: Path
                                                              ) -> None:
    trainer = make_trainer(name, str(tmp_path), SOURCES[name], steps=3)
    fixed = trainer.collate(list(SOURCES[name][next(iter(SOURCES[name]))]())[:4], 256)
    module = trainer.module
    with torch.no_grad():
        s, n = module(fixed)
        before = float(s) / n
    frozen = {k for k, p in module.named_parameters() if not p.requires_grad}
    start = _snapshot(module)
    trainer.train()
    with torch.no_grad():
        s, n = module(fixed)
        after = float(s) / n
    assert after < before, (name, before, after)
    end = _snapshot(module)
    stage = trainer.run_config.get("recipe")
    assert stage == name
    for key, value in end.items():
        if key in frozen:
            assert torch.equal(value, start[key]), f"{name}: frozen {key} changed"
    trainable = [k for k, p in module.named_parameters() if p.requires_grad]
    assert trainable and any(not torch.equal(end[k], start[k]) for k in trainable)
    decoder_frozen = all(k in frozen for k in end if k.startswith("vlm.language_model.")
                         and k in dict(module.named_parameters()))
    biases = [k for k in end if k.endswith("e_score_correction_bias")]
    if decoder_frozen:  # align / vit_pretrain: routing biases must not drift either
        assert all(torch.equal(end[k], start[k]) for k in biases)
    else:
        assert any(not torch.equal(end[k], start[k]) for k in biases)
    if name == "long_context":
        saved = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / "final")
        assert saved.vl_config.text.rope_theta == 800_000.0


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_runs_from_the_cli(name: str, tmp_path: Path) -> None:
    data = {"vit_pretrain": "synthetic-caption:2", "long_cot_sft": "text:64",
            "sft": "synthetic-grounding:4", "long_context": "long-text:64,text:32"}.get(name)
    argv = ["train", "--recipe", name, "--out", str(tmp_path), "--steps", "1",
            "--batch-size", "1", "--max-len", "2048", "--no-progress"]
    if data:
        argv += ["--data", data]
    assert cli_main(argv) == 0
    assert PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / "final") is not None
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1
    assert (tmp_path / "loss_curve.png").stat().st_size > 0
