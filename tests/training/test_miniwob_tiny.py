"""The miniwob-tiny pipeline end to end at toy size: real Chromium episodes → CoT → SFT → model dir → demo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.miniwob_tiny import AGENT_SETTINGS, MiniWoBTinyConfig, run_pipeline  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[MiniWoBTinyConfig, dict]:
    out = tmp_path_factory.mktemp("mwt") / "run"
    config = MiniWoBTinyConfig(out=str(out), tasks=("click-test", "enter-text"), episodes=2, workers=1,
                               model="tiny", steps=4, batch_size=4, max_len=512, grounding_pool=6, ramp=0.5,
                               copy_steps=2, read_steps=2, read_episodes=1, read_adamw=True, save_every=2,
                               progress=False)
    return config, run_pipeline(config)


def test_every_part_leaves_its_output(pipeline: tuple[MiniWoBTinyConfig, dict]) -> None:
    config, summary = pipeline
    root = Path(config.out)
    assert len(list((root / "data" / "experts" / "episodes").iterdir())) == 4
    cot = json.loads((root / "data" / "cot" / "cot.json").read_text())
    assert cot["episodes"] == 4 and cot["train"] >= 4
    metrics = [json.loads(line) for line in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert metrics[0]["weights"]["reading"] == config.reading_weight > 0  # reading screens from the first step
    copy = [json.loads(line) for line in (root / "train-copy" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in copy] == [1, 2] and copy[0]["weights"]["copy-variants"] > 0
    read = [json.loads(line) for line in (root / "train-read" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in read] == [1, 2] and read[0]["weights"]["reading"] > 0
    assert (root / "train" / "loss_curve.png").is_file()
    trainers = {stage: json.loads((root / stage / "final" / "train_config.json").read_text())["trainer"]
                for stage in ("train", "train-copy", "train-read")}
    assert [t["optim"]["muon"] for t in trainers.values()] == [True, True, False]  # read_adamw: AdamW only
    assert [t["schedule"]["kind"] for t in trainers.values()] == ["cosine", "cosine", "constant"]
    for stage in trainers:  # every stage's model runs as trained (pixelpilot eval --model DIR/STAGE/final)
        assert json.loads((root / stage / "final" / "agent.json").read_text()) == AGENT_SETTINGS
    model = root / "model"
    assert json.loads((model / "agent.json").read_text()) == AGENT_SETTINGS
    info = json.loads((model / "training.json").read_text())
    assert info["tasks"] == ["click-test", "enter-text"] and info["config"]["steps"] == 4
    assert summary["steps_this_run"] == 8 and summary["model_bytes"] > 1e5
    assert set(summary["stage_seconds"]) == {"sft", "copy", "read"} and summary["training_seconds"] > 0
    assert json.loads((model / "preprocessor_config.json").read_text())["max_patches"] == 192


def test_training_moved_the_weights_and_the_model_loads_as_a_policy(pipeline: tuple[MiniWoBTinyConfig, dict]) -> None:
    from agent.factory import make_policy
    from model.modeling import PixelPilotVLForConditionalGeneration
    from training.run import load_model

    config, _ = pipeline
    trained = PixelPilotVLForConditionalGeneration.from_pretrained(Path(config.out) / "model")
    fresh = load_model("tiny", config.seed)
    moved = [n for n, p in trained.named_parameters() if not torch.equal(p, dict(fresh.named_parameters())[n])]
    assert any(n.startswith("vision_tower") for n in moved) and any(n.startswith("language_model") for n in moved)
    policy = make_policy(str(Path(config.out) / "model"))
    assert policy.output_format == "native-compact"


def test_a_second_run_resumes_instead_of_starting_over(pipeline: tuple[MiniWoBTinyConfig, dict]) -> None:
    config, first = pipeline
    again = run_pipeline(config)
    assert again["resumed"] and again["steps_this_run"] == 0
    assert again["loss_last"] is None and Path(again["model"]).is_dir()
    assert again["stage_seconds"] == first["stage_seconds"]  # the finished stages' own wall times


def test_demo_runs_the_model_beside_the_random_baseline(pipeline: tuple[MiniWoBTinyConfig, dict],
                                                        tmp_path: Path) -> None:
    from agent.cli import main

    config, _ = pipeline
    code = main(["demo", "--model", str(Path(config.out) / "model"), "--seeds", "1", "--workers", "1",
                 "--max-steps", "3", "--out", str(tmp_path)])
    assert code == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run / "report.json").read_text())
    assert report["summary"]["episodes"] == 2 and set(report["per_task"]) == {"click-test", "enter-text"}
    assert report["baseline"]["policy"] == "random" and set(report["baseline"]["per_task"]) == {"click-test", "enter-text"}
    html = (run / "report.html").read_text()
    assert "beside the random baseline" in html and "click-test" in html
    assert (run / "baseline-random" / "report.json").is_file()


def test_bad_settings_are_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tasks with an expert"):
        MiniWoBTinyConfig(out=str(tmp_path), tasks=("book-flight",))
    with pytest.raises(ValueError, match="preset"):
        MiniWoBTinyConfig(out=str(tmp_path), model="huge")
    with pytest.raises(ValueError, match="grounding_weight"):
        MiniWoBTinyConfig(out=str(tmp_path), grounding_weight=1.0)
    with pytest.raises(ValueError, match="random_labels"):
        MiniWoBTinyConfig(out=str(tmp_path), random_labels=2.0)
    with pytest.raises(ValueError, match="sft_copy_weight"):
        MiniWoBTinyConfig(out=str(tmp_path), grounding_weight=0.5, sft_copy_weight=0.5)
    with pytest.raises(ValueError, match="ramp needs synthetic"):
        MiniWoBTinyConfig(out=str(tmp_path), grounding_weight=0.0, ramp=0.2)
    with pytest.raises(ValueError, match="reading_weight"):
        MiniWoBTinyConfig(out=str(tmp_path), reading_weight=0.75)
    with pytest.raises(ValueError, match="read_weight"):
        MiniWoBTinyConfig(out=str(tmp_path), read_weight=1.0)
    with pytest.raises(ValueError, match="read_media_words"):
        MiniWoBTinyConfig(out=str(tmp_path), read_media_words=-0.5)
    with pytest.raises(ValueError, match="families maps"):
        MiniWoBTinyConfig(out=str(tmp_path), read_families=(("menus", 1.0),))


def test_stages_chain_and_replay_picks_seeds_from_sample_ids(tmp_path: Path) -> None:
    from training.miniwob_tiny import episode_seed, previous_stage

    full = MiniWoBTinyConfig(out=str(tmp_path), read_steps=100)
    assert [previous_stage(full, s) for s in ("sft", "copy", "read")] == [None, "sft", "copy"]
    no_copy = MiniWoBTinyConfig(out=str(tmp_path), copy_steps=0, read_steps=100)
    assert previous_stage(no_copy, "read") == "sft"
    assert previous_stage(MiniWoBTinyConfig(out=str(tmp_path)), "read") is None  # off by default
    assert episode_seed("miniwob.click-link.s000123:0") == 123
    assert episode_seed("miniwob.enter-text.s000007:2:copy1") == 7
    with pytest.raises(ValueError, match="no episode seed"):
        episode_seed("grounding:5")
