"""Checkpoints: an interrupted + resumed run gives the uninterrupted loss curve; the output
loads with ``from_pretrained``; metrics JSONL, loss-curve PNG and configs are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.modeling import PixelPilotVLForConditionalGeneration
from training import checkpoint as ckpt
from training.trainer import losses, read_metrics

from tests.training.core_helpers import image_samples, make_trainer, text_samples

SOURCES = {"text": lambda: text_samples(0, count=12),
           "synthetic-caption": lambda: image_samples(1, count=6)}


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path: Path) -> None:
    kw = dict(steps=5, micro_batch_size=2, grad_accum_steps=2)
    full = make_trainer("joint_pretrain", str(tmp_path / "full"), SOURCES, **kw).train()
    first = make_trainer("joint_pretrain", str(tmp_path / "cut"), SOURCES, **kw)
    first.train(until=2)
    assert ckpt.latest(tmp_path / "cut").name == "step-00000002"
    assert not (tmp_path / "cut" / "final").exists()
    second = make_trainer("joint_pretrain", str(tmp_path / "cut"), SOURCES, seed=0, **kw)
    rest = second.train(resume=True)
    assert [r.step for r in rest] == [3, 4, 5]
    resumed = losses(read_metrics(tmp_path / "cut"))
    assert len(resumed) == 5
    assert resumed == pytest.approx(losses(full), abs=1e-6)
    a = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / "full" / "final")
    b = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path / "cut" / "final")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6, msg=name)


def test_outputs_configs_and_pruning(tmp_path: Path) -> None:
    trainer = make_trainer("sft", str(tmp_path), {"trajectories": SOURCES["synthetic-caption"]},
                           steps=3, micro_batch_size=2, save_every=1)
    trainer.train()
    out = tmp_path
    records = read_metrics(out)
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"loss", "lr", "grad_norm", "tokens", "tokens_per_s"} <= set(records[0])
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert kept == ["step-00000002", "step-00000003"]  # keep_checkpoints=2
    for directory in [out / "checkpoints" / k for k in kept] + [out / "final"]:
        config = json.loads((directory / ckpt.CONFIG_NAME).read_text())
        assert config["recipe"] == "sft" and config["trainer"]["max_steps"] == 3
    model = PixelPilotVLForConditionalGeneration.from_pretrained(out / "final")
    for name, value in model.state_dict().items():
        assert torch.equal(value, trainer.vlm.state_dict()[name]), name
    assert not list((out / "checkpoints").glob(".*tmp*"))


def test_resume_without_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    trainer = make_trainer("sft", str(tmp_path), {"trajectories": SOURCES["text"]}, steps=1)
    with pytest.raises(ckpt.CheckpointError, match="without --resume"):
        trainer.train(resume=True)


def test_progress_into_a_log_is_not_redrawn_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Into a file (not a terminal) the bar is drawn at start and end, not once per step."""
    steps = 6
    trainer = make_trainer("sft", str(tmp_path), {"trajectories": SOURCES["synthetic-caption"]},
                           steps=steps, micro_batch_size=2, progress=True)
    trainer.train()
    err = capsys.readouterr().err
    draws = [d for d in err.split("\r") if "step" in d]
    assert f"{steps}/{steps}" in err and "loss=" in err  # the final state, with its postfix
    assert 0 < len(draws) < steps, draws


def test_a_model_dir_whose_run_names_agent_settings_runs_as_trained(tmp_path: Path) -> None:
    """A stage's output (``final`` and every checkpoint) carries ``agent.json`` when its run config
    says how the agent must run it, so ``pixelpilot eval --model DIR`` does not fall back to the
    generic defaults (another output format: the model would answer out of format)."""
    from agent.factory import AGENT_SETTINGS_FILE, agent_settings

    from tests.training.core_helpers import tiny_model

    settings = {"output_format": "native-compact", "history_images": 0, "max_tokens": 48}
    ckpt.save_model_dir(tmp_path / "with", tiny_model(0), None, {"recipe": "x", "agent": settings}, {})
    assert agent_settings(str(tmp_path / "with")) == settings
    ckpt.save_model_dir(tmp_path / "without", tiny_model(0), None, {"recipe": "x"}, {})
    assert not (tmp_path / "without" / AGENT_SETTINGS_FILE).exists()
    assert agent_settings(str(tmp_path / "without")) == {}


def test_a_trained_dir_without_agent_json_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stage output copied without ``agent.json`` still names its settings in train_config.json:
    the agent says it runs the model with the generic ones instead, and what to write."""
    from agent.factory import AGENT_SETTINGS_FILE, agent_settings

    from tests.training.core_helpers import tiny_model

    settings = {"output_format": "native-compact", "history_images": 0, "max_tokens": 48}
    ckpt.save_model_dir(tmp_path / "m", tiny_model(0), None, {"recipe": "x", "agent": settings}, {})
    (tmp_path / "m" / AGENT_SETTINGS_FILE).unlink()
    capsys.readouterr()  # saving draws progress bars on stderr
    assert agent_settings(str(tmp_path / "m")) == {}
    err = capsys.readouterr().err
    assert "has no agent.json" in err and '"native-compact"' in err and str(tmp_path / "m" / "agent.json") in err
    ckpt.save_model_dir(tmp_path / "plain", tiny_model(0), None, {"recipe": "x"}, {})
    capsys.readouterr()
    assert agent_settings(str(tmp_path / "plain")) == {} and capsys.readouterr().err == ""
