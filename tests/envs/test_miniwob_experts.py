"""Scripted MiniWoB++ experts solve their tasks through pixel actions; wrong actions score ≤ 0."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from envs import Click, Done
from envs.miniwob import MiniWoBConfig, MiniWoBEnv, list_tasks
from envs.miniwob.experts import EXPERTS, ExpertError, PageView, click_button, quoted, run_expert

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")]
SEEDS = (11, 12, 13)
PIXEL_KINDS = {"click", "type", "hotkey", "wait"}


@pytest.fixture(scope="module")
def env() -> Iterator[MiniWoBEnv]:
    e = MiniWoBEnv(MiniWoBConfig(task=None, max_steps=15))
    yield e
    e.close()


def test_registry_covers_at_least_ten_real_tasks() -> None:
    assert len(EXPERTS) >= 10
    assert set(EXPERTS) <= set(list_tasks())


@pytest.mark.parametrize("task", sorted(EXPERTS))
def test_expert_solves_task(env: MiniWoBEnv, task: str) -> None:
    for seed in SEEDS:
        ep = run_expert(env, task, seed)
        assert ep.error is None, ep.error
        assert ep.success and ep.raw_reward == 1.0, f"{task} seed {seed}: {ep}"
        assert {a["kind"] for a in ep.actions} <= PIXEL_KINDS
        assert len(ep.rationales) == ep.steps and all(len(r) > 20 for r in ep.rationales)


@pytest.mark.parametrize("task", sorted(EXPERTS))
def test_doing_nothing_useful_scores_at_most_zero(env: MiniWoBEnv, task: str) -> None:
    env.reset(seed=SEEDS[0], options={"task": task})
    env.step(Click(1, 1))  # the instruction bar, inert in every task
    _, reward, terminated, _, info = env.step(Done())
    assert terminated and reward <= 0 and not info["success"]


def test_clicking_the_wrong_button_scores_minus_one(env: MiniWoBEnv) -> None:
    for seed in range(20):
        env.reset(seed=seed, options={"task": "click-button"})
        view = PageView(env)
        target = quoted(view.utterance)[0]
        wrong = [b for b in view.visible("#area button") if b.text != target]
        if wrong:
            _, reward, terminated, _, info = env.step(Click(*wrong[0].center))
            assert (reward, terminated, info["success"]) == (-1.0, True, False)
            return
    pytest.fail("no seed in 0..19 produced a wrong button to click")


def test_expert_on_a_page_it_does_not_know_raises(env: MiniWoBEnv) -> None:
    env.reset(seed=1, options={"task": "click-test"})
    with pytest.raises((ExpertError, IndexError)):
        click_button(PageView(env))
    ep = run_expert(env, "click-test", 1, expert=EXPERTS["click-dialog"])
    assert ep.error is not None and not ep.success
