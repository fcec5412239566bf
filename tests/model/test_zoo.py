"""The shipped model directory: complete, small, loadable, and runnable as the agent's policy."""

from __future__ import annotations

import json

import pytest

from model.zoo import DEFAULT_MODEL, ModelNotShippedError, model_dir, zoo_models

torch = pytest.importorskip("torch")


def test_the_default_model_ships_complete_and_under_50_mb() -> None:
    assert DEFAULT_MODEL in zoo_models()
    path = model_dir()
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json",
                 "agent.json", "training.json"):
        assert (path / name).is_file(), name
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    assert size < 50e6, f"{size / 1e6:.1f} MB"
    info = json.loads((path / "training.json").read_text())
    assert len(info["tasks"]) >= 15 and info["recipe"] == "miniwob-tiny"


def test_it_loads_and_is_picked_up_as_a_policy_with_its_settings() -> None:
    from agent.factory import agent_settings, make_policy
    from model.modeling import PixelPilotVLForConditionalGeneration

    model = PixelPilotVLForConditionalGeneration.from_pretrained(model_dir())
    assert model.vl_config.vision.pos_init == "sincos"
    policy = make_policy(str(model_dir()))
    settings = agent_settings(str(model_dir()))
    assert policy.output_format == settings["output_format"] == "native-compact"


def test_a_missing_model_says_how_to_build_it() -> None:
    with pytest.raises(ModelNotShippedError, match="pixelpilot train --recipe nope"):
        model_dir("nope")
