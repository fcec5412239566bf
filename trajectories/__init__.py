"""pixelpilot trajectories: the episode record.

- ``schema``  — typed records (``EpisodeMeta``, ``Step``, ``EpisodeEnd``, ``FrameRef``), schema v1.
- ``frames``  — content-addressed screenshot files (hash, encode once, load lazily).
- ``writer``  — ``EpisodeWriter``: crash-safe append-only JSONL, frames encoded off the caller's thread.
- ``reader``  — ``read_episode``: typed objects, tolerant of a torn last line / missing end.
- ``store``   — ``TrajectoryStore``: a run directory with a disposable SQLite index.
- ``export``  — one row per step to Parquet / Hugging Face ``datasets`` (lazy pyarrow import).
- ``viewer``  — self-contained HTML pages with action markers drawn on the screenshots.

Imports ``envs`` only (never agent/model/training).
"""

from trajectories.frames import FrameCodec, FrameMissingError, FrameStore
from trajectories.reader import CorruptTrajectoryError, Episode, EpisodeHeader, read_episode, read_header
from trajectories.schema import (
    OUTCOMES,
    SCHEMA_VERSION,
    EpisodeEnd,
    EpisodeMeta,
    FrameRef,
    SchemaError,
    Step,
    new_episode_id,
)
from trajectories.store import IndexRow, ReindexReport, StoreError, TrajectoryStore
from trajectories.writer import EpisodeSummary, EpisodeWriter, TrajectoryWriteError, WriterConfig

__all__ = [
    "CorruptTrajectoryError", "Episode", "EpisodeEnd", "EpisodeHeader", "EpisodeMeta", "EpisodeSummary",
    "EpisodeWriter", "FrameCodec", "FrameMissingError", "FrameRef", "FrameStore", "IndexRow", "OUTCOMES",
    "ReindexReport", "SCHEMA_VERSION", "SchemaError", "Step", "StoreError", "TrajectoryStore",
    "TrajectoryWriteError", "WriterConfig", "new_episode_id", "read_episode", "read_header",
]
