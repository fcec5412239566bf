"""Schema v1: validation and JSON round-trip of every record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.actions import Click, Hotkey, action_to_json
from trajectories.schema import (
    OUTCOMES,
    SCHEMA_VERSION,
    EpisodeEnd,
    EpisodeMeta,
    FrameRef,
    SchemaError,
    Step,
    json_safe,
    new_episode_id,
)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
text = st.text(max_size=40)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**53, 2**53), finite, text)
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                         st.dictionaries(text, c, max_size=3)), max_leaves=8)
frame_refs = st.builds(FrameRef, sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
                       format=st.sampled_from(["png", "jpeg", "webp"]),
                       width=st.integers(1, 8000), height=st.integers(1, 8000))
actions = st.one_of(
    st.none(),
    st.builds(lambda x, y: action_to_json(Click(x, y)), st.integers(0, 4000), st.integers(0, 4000)),
    st.just({"kind": "hotkey", "keys": ["ctrl", "c"]}),
    st.just({"kind": "drag", "x1": 1, "y1": 2, "x2": 3, "y2": 4, "button": "left"}),
)
steps = st.builds(
    Step, index=st.integers(0, 10_000), screenshot=st.one_of(st.none(), frame_refs), thought=st.one_of(st.none(), text),
    raw_text=text, action=actions, error=st.one_of(st.none(), text),
    token_ids=st.one_of(st.none(), st.lists(st.integers(0, 200_000), max_size=5)),
    logprobs=st.one_of(st.none(), st.lists(finite, max_size=5)),
    timings=st.dictionaries(text, finite, max_size=3), info=st.dictionaries(text, json_value, max_size=3),
    reward=finite, terminated=st.booleans(), truncated=st.booleans(),
    extra=st.dictionaries(text, json_value, max_size=3),
)
metas = st.builds(
    EpisodeMeta, episode_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), task_id=text,
    instruction=text, suite=text, env_name=text, env_config=st.dictionaries(text, json_value, max_size=3),
    policy=text, model=text, privileged=st.booleans(), run_config=st.dictionaries(text, json_value, max_size=3),
    seed=st.one_of(st.none(), st.integers(-2**31, 2**31)), code_version=text, started_at=finite, hostname=text,
)


def _through_json(record: object) -> dict:
    return json.loads(json.dumps(record.to_json(), allow_nan=False))  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(steps)
def test_step_round_trips_through_json(step: Step) -> None:
    assert Step.from_json(_through_json(step)) == step


@settings(max_examples=40, deadline=None)
@given(metas)
def test_meta_round_trips_through_json(meta: EpisodeMeta) -> None:
    assert EpisodeMeta.from_json(_through_json(meta)) == meta
    assert meta.schema_version == SCHEMA_VERSION


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(OUTCOMES), finite, st.integers(0, 500), st.one_of(st.none(), frame_refs))
def test_end_round_trips_through_json(outcome: str, reward: float, n: int, ref: FrameRef | None) -> None:
    end = EpisodeEnd(outcome=outcome, reward=reward, steps=n, final_screenshot=ref, info={"metric": "exact"})
    assert EpisodeEnd.from_json(_through_json(end)) == end


def test_actions_are_stored_canonically_and_parse_back() -> None:
    step = Step(index=0, action=Hotkey(("Control", "c")))
    assert step.action == {"kind": "hotkey", "keys": ["ctrl", "c"]}
    assert step.parsed_action() == Hotkey(("ctrl", "c"))
    assert Step(index=1, action={"kind": "left_click", "x": 1, "y": 2}).action == action_to_json(Click(1, 2))


def test_numpy_values_become_plain_json() -> None:
    step = Step(index=0, info={"score": np.float32(0.5), "ids": np.arange(3), "ok": np.bool_(True)},
                token_ids=np.array([1, 2]), reward=np.float64(1.0))
    assert step.info == {"score": 0.5, "ids": [0, 1, 2], "ok": True}
    assert step.token_ids == [1, 2]
    json.dumps(step.to_json(), allow_nan=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"index": -1}, "index"),
    ({"index": 0, "action": {"kind": "click", "x": 1.5, "y": 2}}, "not a valid action"),
    ({"index": 0, "reward": float("nan")}, "finite"),
    ({"index": 0, "info": {"blob": object()}}, "not JSON"),
    ({"index": 0, "info": {1: "x"}}, "non-string key"),
    ({"index": 0, "token_ids": [1, "2"]}, "ints"),
])
def test_invalid_steps_are_rejected_with_a_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        Step(**kwargs)


def test_meta_and_end_validation() -> None:
    with pytest.raises(SchemaError, match="names a directory"):
        EpisodeMeta(episode_id="../escape", task_id="t", instruction="i")
    with pytest.raises(SchemaError, match="outcome must be one of"):
        EpisodeEnd(outcome="won")
    meta = EpisodeMeta(episode_id=new_episode_id(), task_id="t", instruction="i")
    assert meta.hostname and meta.code_version and meta.started_at > 0


def test_newer_schema_and_unknown_fields_are_refused() -> None:
    data = Step(index=0).to_json()
    with pytest.raises(SchemaError, match="upgrade pixelpilot"):
        Step.from_json({**data, "schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(SchemaError, match="unknown field"):
        Step.from_json({**data, "surprise": 1})


def test_json_safe_rejects_big_arrays() -> None:
    with pytest.raises(SchemaError, match="frames"):
        json_safe({"img": np.zeros((100, 100, 3), np.uint8)})
