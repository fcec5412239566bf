"""benchmarks/train_throughput.py: padded and packed runs take their steps in turn on the same
batches, so their losses agree and only the layout (fill) differs. Timings are never asserted."""

from __future__ import annotations

import argparse
import math

import pytest

from tests.benchmarks import load_benchmark
from tests.training.core_helpers import image_samples, text_samples


def test_padded_and_packed_train_in_turn_on_the_same_batches() -> None:
    bench = load_benchmark("train_throughput")
    samples = list(image_samples(0, count=6)) + list(text_samples(1, count=6, lo=10, hi=60))
    args = argparse.Namespace(max_len=0, config="tiny", seed=0, fixed=False)
    report = bench.compare(samples, "test", 4, args)
    padded, packed = report["results"]["padded"], report["results"]["packed"]
    assert padded["steps"] == packed["steps"] == 2  # 3 batches, the first one warms up
    assert packed["fill"] == 1.0 and 0 < padded["fill"] < 1.0  # lengths differ, so padding wastes slots
    assert padded["real_tokens"] == packed["real_tokens"]
    assert math.isclose(padded["first_loss"], packed["first_loss"], rel_tol=1e-4)
    assert math.isclose(padded["last_loss"], packed["last_loss"], rel_tol=1e-3)
    assert padded["last_loss"] != padded["first_loss"]
    assert report["packed_over_padded"] > 0 and report["lengths"]["min"] <= report["lengths"]["max"]


def test_interleaving_flips_the_order_every_step() -> None:
    bench = load_benchmark("train_throughput")
    seen: list[str] = []

    def recorder(name: str):
        def collate(group: list[dict]) -> dict:
            seen.append(name)
            return bench.collate_padded(group)
        return collate

    groups = [list(text_samples(k, count=2)) for k in range(3)]
    bench.interleaved(groups, {"a": recorder("a"), "b": recorder("b")}, "tiny", 0)
    assert seen == ["a", "b", "b", "a", "a", "b"]


def test_draws_are_summarised_by_median_and_range() -> None:
    bench = load_benchmark("train_throughput")
    got = bench.summarise([{"packed_over_padded": x} for x in (1.6, 1.2, 1.5)])
    assert (got["median"], got["min"], got["max"]) == (1.5, 1.2, 1.6) and len(got["draws"]) == 3


def test_fixed_length_padding_is_a_third_layout_with_the_same_losses() -> None:
    bench = load_benchmark("train_throughput")
    samples = list(image_samples(0, count=6)) + list(text_samples(1, count=6, lo=10, hi=60))
    args = argparse.Namespace(max_len=0, config="tiny", seed=0, fixed=True)
    report = bench.compare(samples, "test", 4, args)
    fixed, padded = report["results"]["padded-fixed"], report["results"]["padded"]
    assert fixed["real_tokens"] == padded["real_tokens"] and fixed["fill"] < padded["fill"]
    assert math.isclose(fixed["last_loss"], padded["last_loss"], rel_tol=1e-3)
    assert report["packed_over_fixed"] > 0
    batch = bench.pad_to_width(bench.collate_padded(samples[6:8]), 80)
    assert batch["input_ids"].shape[1] == batch["labels"].shape[1] == batch["attention_mask"].shape[1] == 80
    with pytest.raises(ValueError, match="more than width"):
        bench.pad_to_width(bench.collate_padded(samples[6:8]), 3)


def test_a_run_without_episodes_is_refused_with_what_to_give(tmp_path) -> None:
    bench = load_benchmark("train_throughput")
    (tmp_path / "good" / "episodes").mkdir(parents=True)
    assert bench.ensure_runs([tmp_path / "good"], 1) == [tmp_path / "good"]
    with pytest.raises(SystemExit, match="--run: .*typo is not a trajectory run .*pixelpilot collect"):
        bench.main(["--run", str(tmp_path / "good"), "--run", str(tmp_path / "typo"), "--nproc-steps", "0",
                    "--out", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()
