"""EpisodeWriter → read_episode: round-trip, dedup, finalisation, torn lines, failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envs.actions import Click, Drag
from tests.trajectories.helpers import make_meta, screen, write_episode
from trajectories.frames import FrameCodec, frame_sha256
from trajectories.reader import CorruptTrajectoryError, read_episode, read_header
from trajectories.schema import SchemaError
from trajectories.writer import DONE_NAME, JSONL_NAME, EpisodeWriter, TrajectoryWriteError, WriterConfig


def test_round_trip_keeps_every_field_and_exact_pixels(tmp_path: Path) -> None:
    meta = make_meta("ep-1", env_config={"size": (64, 48)}, run_config={"max_steps": 5})
    frames = [screen(i) for i in range(3)]
    with EpisodeWriter(tmp_path / "ep-1", meta) as w:  # default config: fsync on
        assert w.add_step(frames[0], action=Click(3, 4), thought="look", raw_text="raw <b>", token_ids=[1, 2],
                          logprobs=[-0.5, -0.1], timings={"model_s": 1.5}, info={"url": "x"}) == 0
        w.add_step(frames[1], action=None, error="could not parse: 'clik(3,4)'")
        w.add_step(frames[2], action=Drag(1, 2, 30, 40), reward=1.0, terminated=True, extra={"cot_level": 2})
        end = w.finish("success", 1.0, final_screenshot=frames[0], info={"metric": "exact_match"})
    ep = read_episode(tmp_path / "ep-1")
    assert ep.meta == meta and ep.end == end and ep.status == "complete" and not ep.torn_tail
    assert [s.index for s in ep.steps] == [0, 1, 2] and end.steps == 3
    s0, s1, s2 = ep.steps
    assert (s0.thought, s0.raw_text, s0.token_ids, s0.logprobs) == ("look", "raw <b>", [1, 2], [-0.5, -0.1])
    assert s0.parsed_action() == Click(3, 4) and s1.action is None and "clik" in (s1.error or "")
    assert s2.terminated and s2.reward == 1.0 and s2.extra == {"cot_level": 2}
    for step, frame in zip(ep.steps, frames):
        assert step.screenshot is not None and step.screenshot.sha256 == frame_sha256(frame)
        assert np.array_equal(ep.frame(step), frame)
    assert np.array_equal(ep.frame(ep.end.final_screenshot), frames[0])  # type: ignore[arg-type]
    assert read_header(tmp_path / "ep-1").steps == 3 and (tmp_path / "ep-1" / DONE_NAME).is_file()


def test_identical_frames_are_stored_once(tmp_path: Path) -> None:
    shared = tmp_path / "frames"
    with EpisodeWriter(tmp_path / "a", make_meta("a"), frames_dir=shared, config=WriterConfig(fsync=False)) as w:
        for i in [0, 0, 0, 1, 1, 2, 0]:
            w.add_step(screen(i))
        w.finish("failure")
    write_episode(tmp_path, "b", steps=3, frames_dir=shared)  # frames 0, 1, 2 again + final 99
    files = sorted(p.name for p in shared.iterdir())
    assert len(files) == 4, files
    a = read_episode(tmp_path / "a")
    assert len({s.screenshot.sha256 for s in a.steps}) == 3  # type: ignore[union-attr]
    assert a.frames_dir == shared.resolve() and np.array_equal(a.frame(a.steps[6]), screen(0))


def test_lossy_codec_stores_jpeg(tmp_path: Path) -> None:
    cfg = WriterConfig(codec=FrameCodec("jpeg", quality=95), fsync=False)
    with EpisodeWriter(tmp_path / "j", make_meta("j"), config=cfg) as w:
        w.add_step(screen(1))
        w.finish("success", 1.0)
    ep = read_episode(tmp_path / "j")
    assert ep.steps[0].screenshot.filename.endswith(".jpg")  # type: ignore[union-attr]
    assert np.abs(ep.frame(ep.steps[0]).astype(int) - screen(1)).mean() < 8


def test_exception_inside_with_finalises_as_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="env exploded"):
        with EpisodeWriter(tmp_path / "e", make_meta("e"), config=WriterConfig(fsync=False)) as w:
            w.add_step(screen(0))
            raise RuntimeError("env exploded")
    ep = read_episode(tmp_path / "e")
    assert ep.outcome == "error" and "env exploded" in (ep.end.error or "") and len(ep.steps) == 1  # type: ignore[union-attr]
    with EpisodeWriter(tmp_path / "f", make_meta("f"), config=WriterConfig(fsync=False)):
        pass
    assert "without finish" in (read_episode(tmp_path / "f").end.error or "")  # type: ignore[union-attr]


def test_misuse_is_reported(tmp_path: Path) -> None:
    write_episode(tmp_path, "dup")
    with pytest.raises(TrajectoryWriteError, match="already exists"):
        EpisodeWriter(tmp_path / "dup", make_meta("dup"))
    with EpisodeWriter(tmp_path / "m", make_meta("m"), config=WriterConfig(fsync=False)) as w:
        with pytest.raises(SchemaError, match="RGB uint8"):
            w.add_step(np.zeros((4, 4), np.uint8))
        with pytest.raises(SchemaError, match="valid action"):
            w.add_step(screen(0), action={"kind": "click", "x": -0.5, "y": 1})
        w.finish("failure")
        with pytest.raises(TrajectoryWriteError, match="finished"):
            w.add_step(screen(0))
    assert read_episode(tmp_path / "m").steps == ()


def test_background_failure_surfaces_and_leaves_a_valid_prefix(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the frames directory should be")
    w = EpisodeWriter(tmp_path / "x", make_meta("x"), frames_dir=blocker / "frames", config=WriterConfig(fsync=False))
    w.add_step(None, action=Click(1, 1))  # text-only step: written fine
    w.add_step(screen(0))  # its frame cannot be stored
    with pytest.raises(TrajectoryWriteError, match="steps before the failure"):
        w.finish("success")
    ep = read_episode(tmp_path / "x")
    assert ep.status == "incomplete" and len(ep.steps) == 1 and ep.steps[0].screenshot is None


def test_torn_last_line_is_dropped_and_reported(tmp_path: Path) -> None:
    path = write_episode(tmp_path, "t", steps=3)
    jsonl = path / JSONL_NAME
    lines = jsonl.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["type"] == "end"
    jsonl.write_bytes(b"".join(lines[:-2]) + lines[-2][: len(lines[-2]) // 2])  # crash mid-way through step 2
    (path / DONE_NAME).unlink()
    ep = read_episode(path)
    assert ep.torn_tail and ep.status == "incomplete" and ep.outcome == "incomplete"
    assert [s.index for s in ep.steps] == [0, 1]
    assert read_header(path).outcome == "incomplete"


def test_damage_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = write_episode(tmp_path, "c", steps=3)
    jsonl = path / JSONL_NAME
    lines = jsonl.read_bytes().splitlines(keepends=True)
    lines[2] = b"garbage\n"
    jsonl.write_bytes(b"".join(lines))
    with pytest.raises(CorruptTrajectoryError, match=f"{JSONL_NAME}:3"):
        read_episode(path)
    jsonl.write_bytes(b"")
    with pytest.raises(CorruptTrajectoryError, match="no meta line"):
        read_episode(path)


def test_concurrent_puts_of_one_frame_encode_it_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from trajectories.frames import FrameStore

    store = FrameStore(tmp_path / "frames", fsync=False)
    big = np.repeat(np.repeat(screen(3), 8, axis=0), 8, axis=1)  # slow enough to encode that puts overlap
    with ThreadPoolExecutor(4) as pool:
        refs = list(pool.map(lambda _: store.put(big), range(8)))
    assert len({r.sha256 for r in refs}) == 1
    assert store.stats["new_frames"] == 1 and store.stats["frames"] == 8
    assert [p.name for p in (tmp_path / "frames").iterdir()] == [refs[0].filename]
    np.testing.assert_array_equal(store.load(refs[0]), big)
