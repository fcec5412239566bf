"""Crash-safe episode writer: one directory per episode, an append-only JSONL, frames on the side.

Layout of an episode directory::

    episode.jsonl   line 1: {"type": "meta", "frames_dir": REL, ...EpisodeMeta}
                    then one {"type": "step", ...Step} per step, last {"type": "end", ...EpisodeEnd}
    DONE            written last, atomically: {"meta": ..., "end": ..., "lines": n}
    frames/         content-addressed frames (or REL points at a frames dir shared by a run)

Guarantees (the reader relies on them):

- **Off the critical path.** ``add_step`` validates the record, hands the screenshot to a
  small thread pool (hash + encode + write) and returns; it blocks only when more than
  ``max_pending`` steps are queued (back-pressure instead of unbounded memory).
- **Ordered, never dangling.** One committer thread appends lines in step order, and a step's
  line is written only after its frame file exists completely (atomic rename + fsync). A crash
  at any point leaves a prefix of steps, each of whose frames is readable; at worst the last
  line is torn, which the reader drops.
- **Durable per step.** Each line is fsynced; the JSONL and the episode directory entry are
  fsynced on creation. ``fsync=False`` trades this for speed (benchmarks, throwaway runs).
- **Always finalised.** Used as a context manager, an exception finalises the episode as
  ``error`` (``interrupted`` for Ctrl-C) with the traceback; ``DONE`` appears only after the
  end record is durable.

The writer keeps a reference to each screenshot until it is encoded: do not modify the array
in place afterwards (observations are fresh arrays), or set ``copy_frames=True``.
One writer is driven by one thread.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import Action
from envs.errors import PixelPilotError
from trajectories.frames import FrameCodec, FrameStore, check_frame, fsync_dir, write_atomic
from trajectories.schema import EpisodeEnd, EpisodeMeta, FrameRef, Step

JSONL_NAME = "episode.jsonl"
DONE_NAME = "DONE"
FRAMES_DIRNAME = "frames"


class TrajectoryWriteError(PixelPilotError, OSError):
    """Writing the episode failed (disk full, permissions, directory already used)."""


@dataclass(frozen=True)
class WriterConfig:
    """How episodes are written.

    Attributes:
        codec: frame format and compression (PNG level 1 by default: lossless, ~10x faster than level 6).
        fsync: fsync every line and new file (crash-safe against power loss, not only process death).
        encode_threads: threads that hash/encode/write frames in parallel.
        max_pending: steps queued before ``add_step`` blocks.
        copy_frames: copy each screenshot on the caller's thread (only if the caller mutates arrays).
    """

    codec: FrameCodec = FrameCodec()
    fsync: bool = True
    encode_threads: int = 2
    max_pending: int = 32
    copy_frames: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.codec, FrameCodec):
            raise ValueError(f"codec must be a trajectories.frames.FrameCodec, got {self.codec!r}")
        if not 1 <= self.encode_threads <= 32:
            raise ValueError(f"encode_threads must be 1..32, got {self.encode_threads}")
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {self.max_pending}")


@dataclass(frozen=True)
class EpisodeSummary:
    """What ``finish`` produced: handed to the ``on_finish`` callback (the store's index)."""

    path: Path
    meta: EpisodeMeta
    end: EpisodeEnd


_STOP = object()


class EpisodeWriter:
    """Write one episode. ``with EpisodeWriter(dir, meta) as w: w.add_step(...); w.finish("success", 1.0)``."""

    def __init__(self, episode_dir: Path | str, meta: EpisodeMeta, *, frames_dir: Path | str | None = None,
                 config: WriterConfig | None = None,
                 on_finish: Callable[[EpisodeSummary], None] | None = None) -> None:
        if not isinstance(meta, EpisodeMeta):
            raise TypeError(f"meta must be a trajectories.schema.EpisodeMeta, got {type(meta).__name__}")
        self.path = Path(episode_dir)
        self.meta = meta
        self.config = config or WriterConfig()
        self.frames = FrameStore(frames_dir if frames_dir is not None else self.path / FRAMES_DIRNAME,
                                 self.config.codec, fsync=self.config.fsync)
        self._on_finish = on_finish
        self._steps = 0
        self._end: EpisodeEnd | None = None
        self._end_written: EpisodeEnd | None = None  # set by the committer (with the final frame's ref)
        self._error: BaseException | None = None
        self._file = self._create()
        self._pool = ThreadPoolExecutor(self.config.encode_threads, thread_name_prefix="traj-encode")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.config.max_pending)
        self._committer = threading.Thread(target=self._commit_loop, name="traj-commit", daemon=True)
        self._committer.start()

    # -- setup -------------------------------------------------------------------------------
    def _create(self) -> Any:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            f = open(self.path / JSONL_NAME, "xb")  # exclusive: never append to someone else's episode
        except FileExistsError:
            raise TrajectoryWriteError(f"{self.path / JSONL_NAME} already exists; use a new episode_id "
                                       "(trajectories.schema.new_episode_id())") from None
        except OSError as exc:
            raise TrajectoryWriteError(f"cannot create episode directory {self.path}: {exc}") from exc
        rel = os.path.relpath(self.frames.directory, self.path)
        self._write_line(f, {"type": "meta", "frames_dir": rel, **self.meta.to_json()})
        if self.config.fsync:
            fsync_dir(self.path)
            fsync_dir(self.path.parent)
        return f

    def _write_line(self, f: Any, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n"
        f.write(line.encode("utf-8"))
        f.flush()
        if self.config.fsync:
            os.fsync(f.fileno())

    # -- background --------------------------------------------------------------------------
    def _commit_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, record, future = item
            if kind == "flush":
                record.future.set_result(None)
                continue
            if self._error is not None:
                continue  # after a failure nothing more is written: the file stays a valid prefix
            try:
                if future is not None:
                    record = replace(record, **{"screenshot" if kind == "step" else "final_screenshot": future.result()})
                self._write_line(self._file, {"type": kind, **record.to_json()})
                if kind == "end":
                    self._end_written = record
            except BaseException as exc:  # noqa: BLE001 - surfaced to the caller by _raise_if_failed
                self._error = exc

    def _submit_frame(self, frame_HWC: np.ndarray | None) -> Future[FrameRef] | None:
        if frame_HWC is None:
            return None
        frame_HWC = check_frame(frame_HWC)
        if self.config.copy_frames:
            frame_HWC = frame_HWC.copy()
        return self._pool.submit(self.frames.put, frame_HWC)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise TrajectoryWriteError(f"writing {self.path} failed: {self._error!r}; the steps before the "
                                       "failure are on disk") from self._error

    # -- public API --------------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Number of steps added so far."""
        return self._steps

    @property
    def finished(self) -> bool:
        return self._end is not None

    def add_step(self, screenshot: np.ndarray | None, *, action: Action | dict[str, Any] | None = None,
                 thought: str | None = None, raw_text: str = "", error: str | None = None,
                 token_ids: list[int] | None = None, logprobs: list[float] | None = None,
                 timings: dict[str, float] | None = None, info: dict[str, Any] | None = None,
                 reward: float = 0.0, terminated: bool = False, truncated: bool = False,
                 extra: dict[str, Any] | None = None) -> int:
        """Queue one step (fields as in ``schema.Step``); returns its index without waiting for I/O.

        ``screenshot`` is the RGB (H, W, 3) frame the model saw before acting. Invalid fields
        raise ``SchemaError`` here, on the caller's thread.
        """
        if self._end is not None:
            raise TrajectoryWriteError(f"episode {self.meta.episode_id} is finished; start a new writer")
        self._raise_if_failed()
        step = Step(index=self._steps, thought=thought, raw_text=raw_text, action=action, error=error,
                    token_ids=token_ids, logprobs=logprobs, timings=dict(timings or {}), info=dict(info or {}),
                    reward=reward, terminated=terminated, truncated=truncated, extra=dict(extra or {}))
        self._queue.put(("step", step, self._submit_frame(screenshot)))
        self._steps += 1
        return step.index

    def flush(self) -> None:
        """Block until every queued step is on disk (used by tests and before forking)."""
        done = threading.Event()
        future: Future[FrameRef] = Future()
        future.add_done_callback(lambda _f: done.set())
        # A marker item: the committer reaches it only after everything queued before it.
        self._queue.put(("flush", _FlushMarker(future), None))
        done.wait()
        self._raise_if_failed()

    def finish(self, outcome: str, reward: float = 0.0, *, error: str | None = None,
               final_screenshot: np.ndarray | None = None, info: dict[str, Any] | None = None) -> EpisodeEnd:
        """Write the end record, wait for everything to be durable, then write ``DONE``."""
        if self._end is not None:
            raise TrajectoryWriteError(f"episode {self.meta.episode_id} is already finished")
        end = EpisodeEnd(outcome=outcome, reward=reward, steps=self._steps, error=error, info=dict(info or {}))
        try:
            self._queue.put(("end", end, self._submit_frame(final_screenshot)))
        finally:
            self._shutdown()
        self._raise_if_failed()
        end = self._end_written or end
        self._end = end
        done = {"meta": self.meta.to_json(), "end": end.to_json(), "lines": self._steps + 2}
        write_atomic(self.path / DONE_NAME, json.dumps(done, ensure_ascii=False).encode("utf-8"),
                     fsync=self.config.fsync)
        if self._on_finish is not None:
            self._on_finish(EpisodeSummary(self.path, self.meta, end))
        return end

    def _shutdown(self) -> None:
        self._queue.put(_STOP)
        self._committer.join()
        self._pool.shutdown(wait=True)
        self._file.close()

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._end is not None:
            return
        if exc is None:
            outcome, text = "error", "the episode writer was closed without finish(); the loop ended early"
        else:
            outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
            text = "".join(traceback.format_exception(exc_type, exc, tb))[-8000:]
        try:
            self.finish(outcome, error=text)
        except TrajectoryWriteError as write_exc:
            if exc is None:
                raise
            exc.add_note(f"and finalising the trajectory failed too: {write_exc}")


class _FlushMarker:
    """Queue item for ``flush``: completes its future when the committer reaches it."""

    def __init__(self, future: Future[FrameRef]) -> None:
        self.future = future

    def to_json(self) -> dict[str, Any]:
        raise AssertionError("flush markers are never written")
