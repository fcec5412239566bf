"""training.data.sft / cot: trajectory steps → SFT samples in the agent's own chat layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agent.formats import get_format
from agent.policy import HistoryStep, PolicyInput
from envs.actions import Click, TypeText
from envs.observation import Observation
from model.processing import Processor
from model.processing.processor import IGNORE_INDEX
from model.special_tokens import IM_END_TOKEN_ID, MEDIA_START_TOKEN_ID
from trajectories import EpisodeMeta, TrajectoryStore, new_episode_id
from training.data.cot import cot_samples
from training.data.sft import SFTConfig, TrajectoryDataError, image_frame, trajectory_samples
from training.data.synthetic import layout, render

INSTRUCTION = "Sign in as jo"


def _shots() -> list[np.ndarray]:
    # Desktop-sized frames are scaled down by the processor: coordinates must follow.
    return [render(layout(s, style="desktop", size=(1280, 800))) for s in (1, 2, 3)] + [
        render(layout(4, style="miniwob", size=(160, 210)))]


def _write(store: TrajectoryStore, *, outcome: str, privileged: bool, steps: list[dict]) -> str:
    meta = EpisodeMeta(episode_id=new_episode_id(), task_id="login", instruction=INSTRUCTION, policy="test",
                       privileged=privileged)
    writer = store.new_episode(meta)
    for step in steps:
        writer.add_step(**step)
    writer.finish(outcome)
    return meta.episode_id


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sft") / "run"
    shots = _shots()
    with TrajectoryStore(root) as store:
        _write(store, outcome="success", privileged=False, steps=[
            dict(screenshot=shots[0], action=Click(640, 400), thought="The Name field is in the middle."),
            dict(screenshot=shots[1], action=TypeText("jo"), thought="Type the name."),
            dict(screenshot=shots[2], action=Click(5000, 5), thought="Off screen.", error="invalid action: off screen"),
            dict(screenshot=shots[2], action=Click(1200, 700), thought="Press Sign in."),
        ])
        _write(store, outcome="failure", privileged=True, steps=[
            dict(screenshot=shots[3], action=Click(10, 60), thought="Expert click.", extra={"cot": "A long, careful plan."}),
        ])
    return root


@pytest.fixture(scope="module")
def processor() -> Processor:
    return Processor.default()


def _target_ids(sample: dict) -> list[int]:
    return [t for t, lab in zip(sample["input_ids"], sample["labels"]) if lab != IGNORE_INDEX]


def test_labels_cover_exactly_the_final_assistant_turn(run_dir: Path, processor: Processor) -> None:
    samples = list(trajectory_samples(run_dir, processor))
    assert len(samples) == 4  # the errored step is history, not a target
    first = samples[0]
    frame = image_frame(processor, _shots()[0])
    assert frame.image_size != frame.screen_size  # the 1280x800 frame was scaled by the processor
    reply = get_format("native").format([Click(640, 400)], frame, "The Name field is in the middle.")
    expected = processor.encode_conversation([{"role": "assistant", "content": reply}], iter(())).input_ids
    tail = [t for t, m in zip(expected, processor.encode_conversation(
        [{"role": "assistant", "content": reply}], iter(())).assistant_mask) if m]
    assert _target_ids(first) == tail and tail[-1] == IM_END_TOKEN_ID
    for s in samples:  # the labelled tokens are one run at the very end: earlier replies carry no loss
        labelled = [i for i, lab in enumerate(s["labels"]) if lab != IGNORE_INDEX]
        assert labelled == list(range(labelled[0], len(s["input_ids"])))


def test_click_targets_are_in_the_processors_image_pixels(run_dir: Path, processor: Processor) -> None:
    sample = next(iter(trajectory_samples(run_dir, processor)))
    frame = image_frame(processor, _shots()[0])
    text = processor.decode(_target_ids(sample), skip_special_tokens=False).removesuffix("<|im_end|>")
    click = get_format("native").parse(text, frame).actions[0]
    assert isinstance(click, Click) and abs(click.x - 640) <= 1 and abs(click.y - 400) <= 1


@pytest.mark.parametrize("history_images", [0, 1, 2])
def test_images_per_sample_are_the_current_one_plus_the_window(run_dir: Path, processor: Processor,
                                                              history_images: int) -> None:
    samples = list(trajectory_samples(run_dir, processor, SFTConfig(history_images=history_images)))
    step_of = [0, 1, 3, 0]  # targets: steps 0, 1, 3 of the first episode, step 0 of the second
    for sample, step in zip(samples, step_of):
        assert sample["input_ids"].count(MEDIA_START_TOKEN_ID) == min(step, history_images) + 1
        assert sample["image_grid_hws"].shape[0] == min(step, history_images) + 1


def test_errored_steps_stay_in_the_history_with_the_environment_note(run_dir: Path, processor: Processor) -> None:
    last = list(trajectory_samples(run_dir, processor))[2]
    text = processor.decode(last["input_ids"], skip_special_tokens=False)
    assert "[environment: invalid action: off screen]" in text and "Type the name." in text


def test_filters(run_dir: Path, processor: Processor) -> None:
    assert len(list(trajectory_samples(run_dir, processor, SFTConfig(only_successful=True)))) == 3
    assert len(list(trajectory_samples(run_dir, processor, SFTConfig(skip_privileged=True)))) == 3
    assert len(list(trajectory_samples(run_dir, processor, SFTConfig(max_steps_per_episode=1)))) == 2
    no_thoughts = next(iter(trajectory_samples(run_dir, processor, SFTConfig(include_thoughts=False))))
    assert processor.decode(_target_ids(no_thoughts), skip_special_tokens=False).startswith("click(x=")
    with pytest.raises(TrajectoryDataError, match="pixelpilot collect"):
        list(trajectory_samples(run_dir / "nope", processor))
    later_typo = trajectory_samples([run_dir, run_dir / "nope"], processor)
    with pytest.raises(TrajectoryDataError, match="nope is not a trajectory run"):
        next(later_typo)  # refused before the first run's samples are built


def test_compact_format_and_shuffled_episode_order(run_dir: Path, processor: Processor) -> None:
    full = list(trajectory_samples(run_dir, processor))
    compact = list(trajectory_samples(run_dir, processor, SFTConfig(output_format="native-compact")))
    assert [_target_ids(a) for a in full] == [_target_ids(b) for b in compact]  # same replies
    assert all(len(b["input_ids"]) < len(a["input_ids"]) - 200 for a, b in zip(full, compact))  # shorter prompt
    assert "GUI agent." in processor.decode(compact[0]["input_ids"], skip_special_tokens=False)
    orders = {tuple(s["id"] for s in trajectory_samples(run_dir, processor, SFTConfig(shuffle_seed=k)))
              for k in range(6)}
    assert len(orders) > 1 and all(sorted(o) == sorted(s["id"] for s in full) for o in orders)
    again = [s["id"] for s in trajectory_samples(run_dir, processor, SFTConfig(shuffle_seed=3))]
    assert tuple(again) in orders  # one seed, one order: resumable
    with pytest.raises(ValueError, match="native"):
        SFTConfig(output_format="uitars")
    with pytest.raises(KeyError, match="unknown output format"):
        SFTConfig(output_format="native-tiny")


def test_the_prompt_is_what_the_local_model_policy_sends(run_dir: Path, processor: Processor,
                                                         tmp_path: Path) -> None:
    """Same token ids as the in-process policy's request, up to the assistant header."""
    from agent.policies.local_model import LocalModelPolicy, LocalModelPolicyConfig
    from model.config import tiny
    from model.modeling import build_model

    torch.manual_seed(0)
    build_model(tiny()).save_pretrained(str(tmp_path / "m"))
    processor.save_pretrained(tmp_path / "m")
    policy = LocalModelPolicy(LocalModelPolicyConfig(str(tmp_path / "m"), max_new_tokens=2, history_images=1))
    sent: list = []
    original = policy.engine.complete
    policy.engine.complete = lambda req, *a, **k: (sent.append(req), original(req, *a, **k))[1]  # type: ignore[method-assign]
    samples = list(trajectory_samples(run_dir, processor, SFTConfig(history_images=1)))
    shots, fmt = _shots(), get_format("native")
    history = []
    for k, (shot, action, thought) in enumerate([(shots[0], Click(640, 400), "The Name field is in the middle."),
                                                 (shots[1], TypeText("jo"), "Type the name.")]):
        policy.act(PolicyInput(INSTRUCTION, Observation(shot, INSTRUCTION), tuple(history), step_index=k))
        prompt = processor(sent[-1].messages, add_generation_prompt=True)["input_ids"][0].tolist()
        first_label = next(i for i, lab in enumerate(samples[k]["labels"]) if lab != IGNORE_INDEX)
        assert samples[k]["input_ids"][:first_label] == prompt
        history.append(HistoryStep(fmt.format([action], image_frame(processor, shot), thought), shot))


def test_cot_samples_keep_a_long_thought_in_think(run_dir: Path, processor: Processor) -> None:
    samples = list(cot_samples(run_dir, processor, SFTConfig(include_thoughts=False)))
    assert len(samples) == 4 and all(s["id"].startswith("cot:") for s in samples)
    first = processor.decode(_target_ids(samples[0]), skip_special_tokens=False)
    assert first.startswith("<think>Goal: Sign in as jo") and "Decision: click(x=" in first and "</think>" in first
    # A synthesized CoT stored on the step wins over the built one.
    expert = processor.decode(_target_ids(samples[3]), skip_special_tokens=False)
    assert expert.startswith("<think>A long, careful plan.</think>")
    # History replies carry the long thoughts too (what the model would have written).
    assert "Progress so far: step 1: click(x=" in processor.decode(samples[1]["input_ids"])


def test_data_specs_visit_a_runs_episodes_in_a_seeded_shuffled_order(run_dir: Path, processor: Processor) -> None:
    """``pixelpilot train --data trajectories:DIR`` (and ``cot:DIR``): runs are grouped by task, so
    the source visits episodes shuffled by the run's seed (in stored order, a 60-step run met a task
    it had not seen at step 41 and its loss jumped 3.3 → 5.0)."""
    from training.data import resolve

    for kind in ("trajectories", "cot"):
        orders = {}
        for seed in range(6):
            (source,) = resolve(f"{kind}:{run_dir}", processor=processor, seed=seed)
            orders[seed] = tuple(s["id"] for s in source)
            assert orders[seed] == tuple(s["id"] for s in source)  # re-iterable, same order
            expected = SFTConfig(shuffle_seed=seed)
            assert orders[seed] == tuple(s["id"] for s in (trajectory_samples(run_dir, processor, expected)
                                                           if kind == "trajectories" else
                                                           cot_samples(run_dir, processor, expected)))
        assert len(set(orders.values())) > 1
