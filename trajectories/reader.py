"""Read episodes written by ``trajectories.writer`` into typed objects.

Tolerant where a crash can leave marks, strict elsewhere:

- a torn last line (the writer died mid-write) is dropped and reported as ``torn_tail``;
- a missing end record means ``status == "incomplete"`` (the writer died or is still running);
- anything else that does not parse (a bad line in the middle, steps out of order, a newer
  schema) raises ``CorruptTrajectoryError`` / ``SchemaError`` naming the line.

Frames are not loaded until asked for (``Episode.frame``). This module never writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from envs.errors import PixelPilotError
from trajectories.frames import FrameStore
from trajectories.schema import EpisodeEnd, EpisodeMeta, FrameRef, SchemaError, Step
from trajectories.writer import DONE_NAME, FRAMES_DIRNAME, JSONL_NAME

Status = Literal["complete", "incomplete"]


class CorruptTrajectoryError(PixelPilotError, ValueError):
    """An episode file is damaged beyond what a crash can cause; the message names the line."""


@dataclass(frozen=True)
class Episode:
    """One episode as read from disk; frames load lazily from ``frames_dir``.

    Attributes:
        path: the episode directory.  meta / steps / end: the records (``end`` None if incomplete).
        frames_dir: where its frames live.  torn_tail: a torn last line was dropped.
    """

    path: Path
    meta: EpisodeMeta
    steps: tuple[Step, ...]
    end: EpisodeEnd | None
    frames_dir: Path
    torn_tail: bool = False

    @property
    def status(self) -> Status:
        """``complete`` once the end record is on disk, else ``incomplete``."""
        return "complete" if self.end is not None else "incomplete"

    @property
    def outcome(self) -> str:
        """The end record's outcome, or ``incomplete``."""
        return self.end.outcome if self.end is not None else "incomplete"

    @property
    def frames(self) -> FrameStore:
        return FrameStore(self.frames_dir)

    def frame(self, item: Step | FrameRef) -> np.ndarray:
        """Decode the screenshot of a step (or a ``FrameRef``) as an RGB (H, W, 3) array."""
        ref = item.screenshot if isinstance(item, Step) else item
        if ref is None:
            raise ValueError(f"step {getattr(item, 'index', '?')} has no screenshot")
        return self.frames.load(ref)

    def frame_path(self, ref: FrameRef) -> Path:
        return self.frames_dir / ref.filename

    def iter_frames(self) -> Iterator[tuple[Step, np.ndarray]]:
        """(step, frame) for every step that has a screenshot, decoding one at a time."""
        for step in self.steps:
            if step.screenshot is not None:
                yield step, self.frame(step)


def _jsonl_path(path: Path | str) -> Path:
    p = Path(path)
    p = p / JSONL_NAME if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"no {JSONL_NAME} at {path}; pass an episode directory written by EpisodeWriter")
    return p


def _parse_lines(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """JSON objects of every line; a last line that does not parse is dropped (torn)."""
    raw = path.read_bytes()
    pieces = raw.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    records, torn = [], False
    for number, piece in enumerate(pieces, start=1):
        try:
            obj = json.loads(piece)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if number == len(pieces):
                torn = True  # the writer died in the middle of this line
                break
            raise CorruptTrajectoryError(f"{path}:{number} is not a JSON object ({exc}); only the last line "
                                         "may be torn by a crash: the file was edited or damaged") from None
        records.append(obj)
    return records, torn


def read_episode(path: Path | str) -> Episode:
    """Read an episode directory (or its ``episode.jsonl``)."""
    jsonl = _jsonl_path(path)
    records, torn = _parse_lines(jsonl)
    if not records or records[0].get("type") != "meta":
        raise CorruptTrajectoryError(f"{jsonl} has no meta line: the writer died before writing it, or this "
                                     "is not an episode file")
    head = dict(records[0])
    head.pop("type")
    frames_dir = (jsonl.parent / head.pop("frames_dir", FRAMES_DIRNAME)).resolve()
    meta = EpisodeMeta.from_json(head)
    steps: list[Step] = []
    end: EpisodeEnd | None = None
    for number, record in enumerate(records[1:], start=2):
        kind = record.pop("type", None)
        if end is not None:
            raise CorruptTrajectoryError(f"{jsonl}:{number} comes after the end record")
        try:
            if kind == "step":
                step = Step.from_json(record)
                if step.index != len(steps):
                    raise CorruptTrajectoryError(f"{jsonl}:{number} is step {step.index}, expected {len(steps)}")
                steps.append(step)
            elif kind == "end":
                end = EpisodeEnd.from_json(record)
            else:
                raise CorruptTrajectoryError(f"{jsonl}:{number} has unknown record type {kind!r}")
        except SchemaError as exc:
            raise SchemaError(f"{jsonl}:{number}: {exc}") from None
    return Episode(path=jsonl.parent, meta=meta, steps=tuple(steps), end=end, frames_dir=frames_dir, torn_tail=torn)


@dataclass(frozen=True)
class EpisodeHeader:
    """Meta + end of an episode without its steps: what an index needs (cheap with ``DONE``)."""

    path: Path
    meta: EpisodeMeta
    end: EpisodeEnd | None
    steps: int

    @property
    def outcome(self) -> str:
        return self.end.outcome if self.end is not None else "incomplete"


def read_header(path: Path | str) -> EpisodeHeader:
    """Meta and end of an episode: from the small ``DONE`` file when present, else a full read."""
    jsonl = _jsonl_path(path)
    done = jsonl.parent / DONE_NAME
    if done.is_file():
        try:
            data = json.loads(done.read_text(encoding="utf-8"))
            meta, end = EpisodeMeta.from_json(data["meta"]), EpisodeEnd.from_json(data["end"])
            return EpisodeHeader(jsonl.parent, meta, end, end.steps)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged DONE is only a cache: the JSONL below is the source of truth
    episode = read_episode(jsonl)
    return EpisodeHeader(episode.path, episode.meta, episode.end, len(episode.steps))


__all__ = ["CorruptTrajectoryError", "Episode", "EpisodeHeader", "Status", "read_episode", "read_header"]
