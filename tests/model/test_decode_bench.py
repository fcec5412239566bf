"""benchmarks/decode_speed.py runs end to end (tiny settings) and writes well-formed JSON.

Only the shape of the results and the size matching are checked: tests never assert timings.
"""

from __future__ import annotations

import json
import math

import torch

from model.config import tiny
from tests.benchmarks import load_benchmark


def test_qwen_config_matches_the_preset_lm_shape():
    bench = load_benchmark("decode_speed")
    cfg = tiny()
    qcfg = bench.qwen_config(cfg, intermediate_size=100)
    t = qcfg.text_config
    assert (t.vocab_size, t.hidden_size, t.num_hidden_layers, t.num_attention_heads,
            t.num_key_value_heads, t.intermediate_size) == (
        cfg.text.vocab_size, cfg.text.hidden_size, cfg.text.num_layers, cfg.text.num_heads,
        cfg.text.num_kv_heads, 100)
    assert sum(t.rope_parameters["mrope_section"]) == cfg.text.head_dim // 2
    assert (qcfg.vision_config.embed_dim, qcfg.vision_config.depth) == (
        cfg.vision.hidden_size, cfg.vision.num_layers)


def test_solved_ffn_width_matches_the_parameter_target():
    bench = load_benchmark("decode_speed")
    cfg = tiny()
    target = 500_000
    width = bench.solve_ffn_width(cfg, target)
    with torch.device("meta"):
        qwen = bench.Qwen2VLForConditionalGeneration(bench.qwen_config(cfg, width))
    per_unit = 3 * cfg.text.hidden_size * cfg.text.num_layers  # one FFN unit in every layer
    assert abs(bench.qwen_counts(qwen).lm_total - target) <= per_unit / 2


def test_benchmark_runs_and_writes_json(tmp_path):
    bench = load_benchmark("decode_speed")
    out = tmp_path / "decode.json"
    assert bench.main(["--preset", "tiny", "--max-patches", "64", "--text-tokens", "8",
                       "--new-tokens", "8", "--repeats", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["image_tokens"] == result["grid"][0] * result["grid"][1] // 4
    assert result["prompt_tokens"] == result["image_tokens"] + 8 + 7  # + chat/media markers
    rows = {r["name"]: r for r in result["rows"]}
    ours = rows.pop("pixelpilot (MoE)")
    assert ours["params"]["lm_activated"] < ours["params"]["lm_total"]  # top-k of the experts
    assert len(rows) == 2 and set(result["ratios"]) == set(rows)
    by_match = {name.split("(")[1].split("-")[0]: r for name, r in rows.items()}
    per_unit = 3 * tiny().text.hidden_size * tiny().text.num_layers
    activated = by_match["activated"]["params"]["lm_total"]
    assert abs(activated - ours["params"]["lm_activated"]) <= per_unit
    assert abs(by_match["total"]["params"]["lm_total"] - ours["params"]["lm_total"]) <= per_unit
    for row in result["rows"]:
        assert len(row["samples"]["prefill_s"]) == 1 and row["prefill_s"] > 0
        assert math.isfinite(row["decode_tokens_per_s"]) and row["decode_tokens_per_s"] > 0
    for ratio in result["ratios"].values():
        assert math.isfinite(ratio["decode"]) and ratio["decode"] > 0
        assert math.isfinite(ratio["prefill"]) and ratio["prefill"] > 0
