"""The HF-wrapped VLM: configs, image splicing, loss, generation, save/load, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

from model.config import ModelConfigError, TextConfig, VisionConfig, VLConfig, kimi_vl_a3b, tiny
from model.decoder import MoEDecoder, parameter_counts
from model.modeling import PixelPilotVLConfig, PixelPilotVLForConditionalGeneration, build_model
from model.special_tokens import (
    IM_END_TOKEN_ID,
    MEDIA_END_TOKEN_ID,
    MEDIA_PAD_TOKEN_ID,
    MEDIA_START_TOKEN_ID,
    PAD_TOKEN_ID,
)


def _image_block(grid: tuple[int, int]) -> list[int]:
    n = (grid[0] // 2) * (grid[1] // 2)
    return [MEDIA_START_TOKEN_ID] + [MEDIA_PAD_TOKEN_ID] * n + [MEDIA_END_TOKEN_ID]


def _batch(grids: list[list[tuple[int, int]]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Left-padded batch: row i = text + images grids[i] + text, processor layout."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for row_grids in grids:
        ids = torch.randint(20, 4000, (3,), generator=g).tolist()
        for grid in row_grids:
            ids += _image_block(grid) + torch.randint(20, 4000, (2,), generator=g).tolist()
        rows.append(ids)
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([[PAD_TOKEN_ID] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    flat = [grid for row in grids for grid in row]
    total = sum(h * w for h, w in flat)
    return {"input_ids": input_ids, "attention_mask": mask,
            "pixel_values": torch.randn(total, 3, 14, 14, generator=g),
            "image_grid_hws": torch.tensor(flat)}


@pytest.fixture(scope="module")
def model() -> PixelPilotVLForConditionalGeneration:
    torch.manual_seed(0)
    return build_model(tiny()).eval()


def test_config_validation_messages() -> None:
    with pytest.raises(ModelConfigError, match="multiple of 4"):
        VisionConfig(hidden_size=60, num_heads=2)
    with pytest.raises(ModelConfigError, match="num_kv_heads"):
        TextConfig(num_heads=6, num_kv_heads=4)
    with pytest.raises(ModelConfigError, match="media_placeholder_token_id"):
        VLConfig(text=TextConfig(vocab_size=13), media_placeholder_token_id=20)
    with pytest.raises(ModelConfigError, match="unknown keys"):
        VLConfig.from_dict({"text": {"hidden": 3}})
    assert VLConfig.from_dict(tiny().to_dict()) == tiny()


def test_hf_config_round_trip(tmp_path: Path) -> None:
    cfg = PixelPilotVLConfig.from_vl_config(tiny())
    assert cfg.to_vl_config() == tiny() and cfg.vocab_size == 4096
    cfg.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, PixelPilotVLConfig) and loaded.to_vl_config() == tiny()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "pixelpilot_vl"


def test_images_replace_media_pads_in_order(model: PixelPilotVLForConditionalGeneration) -> None:
    batch = _batch([[(4, 6)], [(2, 2), (2, 18)]])
    embeds = model.embed_images(batch["pixel_values"], batch["image_grid_hws"])
    assert embeds.shape == (6 + 1 + 9, 128)
    spliced = model.build_inputs_embeds(batch["input_ids"], batch["pixel_values"],
                                        batch["image_grid_hws"], None)
    media = batch["input_ids"] == MEDIA_PAD_TOKEN_ID
    torch.testing.assert_close(spliced[media], embeds)
    with pytest.raises(ValueError, match="image embeddings"):
        model(batch["input_ids"], pixel_values=batch["pixel_values"][:24],
              image_grid_hws=batch["image_grid_hws"][:1])


def test_loss_ignores_minus_100(model: PixelPilotVLForConditionalGeneration) -> None:
    batch = _batch([[(2, 4)]])
    labels = batch["input_ids"].clone()
    labels[:, :-3] = -100
    out = model(**batch, labels=labels)
    logp = torch.log_softmax(out.logits[0, -4:-1].float(), -1)
    expected = -logp.gather(-1, batch["input_ids"][0, -3:, None]).mean()
    torch.testing.assert_close(out.loss, expected)


def test_generation_with_cache_equals_without(model: PixelPilotVLForConditionalGeneration
                                              ) -> None:
    batch = _batch([[(4, 6)], [(2, 2), (2, 4)]])
    kwargs = {"max_new_tokens": 6, "return_logits": True, "stop_token_ids": [IM_END_TOKEN_ID]}
    cached = model.generate(**batch, **kwargs)
    plain = model.generate(**batch, use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, plain.sequences)
    torch.testing.assert_close(cached.logits, plain.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(cached.logprobs, plain.logprobs, atol=1e-4, rtol=1e-4)
    # A left-padded row generates what it generates alone.
    row = batch["input_ids"][1][batch["attention_mask"][1] == 1]
    alone = {"input_ids": row[None], "pixel_values": batch["pixel_values"][24:],
             "image_grid_hws": batch["image_grid_hws"][1:]}
    single = model.generate(**alone, **kwargs)
    assert torch.equal(single.new_tokens[0], cached.new_tokens[1])


def test_sampling_reproducible_and_logprobs(model: PixelPilotVLForConditionalGeneration) -> None:
    batch = _batch([[(2, 2)]])
    runs = [model.generate(**batch, max_new_tokens=5, do_sample=True, temperature=0.8,
                           top_p=0.9, return_logits=True,
                           generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(runs[0].new_tokens, runs[1].new_tokens)
    logp = torch.log_softmax(runs[0].logits / 0.8, -1)
    picked = logp.gather(-1, runs[0].new_tokens[..., None]).squeeze(-1)
    torch.testing.assert_close(runs[0].logprobs, picked)
    with pytest.raises(ValueError, match="left padding"):
        right = {**batch, "attention_mask": torch.cat([batch["attention_mask"][:, 1:],
                                                       torch.zeros(1, 1, dtype=torch.long)], 1)}
        model.generate(**right, max_new_tokens=1)


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("shard", [None, "300KB"])
def test_save_load_bit_exact(model: PixelPilotVLForConditionalGeneration, tmp_path: Path,
                             shard: str | None) -> None:
    model.language_model.moe_layers()[0].e_score_correction_bias.fill_(0.25)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(tmp_path, **kwargs)
    files = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert len(files) > 1 if shard else files == ["model.safetensors"]
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, PixelPilotVLForConditionalGeneration)
    _assert_same_state(model, loaded)
    batch = _batch([[(2, 4)]])
    # Weights are bit-exact; logits only close: safetensors' mmapped tensors are not 64-byte
    # aligned, so BLAS may take a different SIMD path (differences ~1e-7).
    torch.testing.assert_close(model(**batch).logits, loaded(**batch).logits, atol=1e-5, rtol=0)
    model.language_model.moe_layers()[0].e_score_correction_bias.zero_()


def test_auto_causal_lm_registration(tmp_path: Path) -> None:
    cfg = PixelPilotVLConfig.from_vl_config(tiny())
    assert isinstance(AutoModelForCausalLM.from_config(cfg), PixelPilotVLForConditionalGeneration)


def test_kimi_vl_a3b_parameter_counts_on_meta() -> None:
    cfg = kimi_vl_a3b()
    with torch.device("meta"):
        lm = MoEDecoder(cfg.text)
    counts = parameter_counts(lm)
    assert 15.5e9 < counts.total < 16.5e9  # "16B"
    assert 2.7e9 < counts.activated < 3.2e9  # "A3B"
    # Moonlight reports 15.29B total / 2.24B activated without embeddings (with MLA attention).
    assert abs(counts.total_non_embedding / 15.29e9 - 1) < 0.01
    assert abs(counts.activated_non_embedding / 2.24e9 - 1) < 0.05


def test_one_optimizer_step_lowers_loss() -> None:
    torch.manual_seed(0)
    model = build_model(tiny()).train()
    batch = _batch([[(4, 4)], [(2, 6)]])
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model(**batch, labels=labels).loss
    before.backward()
    assert model.vision_tower.patch_embed.weight.grad.abs().sum() > 0  # gradients reach the ViT
    opt.step()
    opt.zero_grad()
    loads = model.update_routing_biases()
    assert len(loads) == 2 and all(load.sum() > 0 for load in loads)
    after = model(**batch, labels=labels).loss
    assert after < before - 0.05


def test_bf16_load_keeps_routing_bias_float32(model: PixelPilotVLForConditionalGeneration,
                                              tmp_path: Path) -> None:
    model.save_pretrained(tmp_path)
    loaded = PixelPilotVLForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.bfloat16)
    moe = loaded.moe_layers()[0]
    assert moe.router.weight.dtype == torch.bfloat16
    assert moe.e_score_correction_bias.dtype == torch.float32
    out = loaded.generate(**_batch([[(2, 2)]]), max_new_tokens=2)
    assert out.new_tokens.shape == (1, 2)
