"""A run directory of many episodes, with a disposable SQLite index for queries.

Layout::

    RUN/episodes/<episode_id>/episode.jsonl (+ DONE)   one directory per episode (the truth)
    RUN/frames/<sha256>.png                            frames shared by the whole run (dedup across episodes)
    RUN/index.sqlite                                   the index: rebuilt by ``reindex()`` at any time

Several processes may write to one run at once (parallel collection): each opens its own
``TrajectoryStore``; SQLite runs in WAL mode with short transactions, a busy timeout and a
retry loop. An episode is indexed when it starts (outcome ``incomplete``) and again when it
finishes, so crashed episodes stay visible. The index is a cache of the JSONL files, never the
other way round.
"""

from __future__ import annotations

import fcntl
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from envs.errors import PixelPilotError
from trajectories.reader import CorruptTrajectoryError, Episode, EpisodeHeader, read_episode, read_header
from trajectories.schema import EpisodeEnd, EpisodeMeta, SchemaError
from trajectories.writer import JSONL_NAME, EpisodeSummary, EpisodeWriter, WriterConfig

INDEX_NAME = "index.sqlite"
LOCK_NAME = ".index.lock"
EPISODES_DIRNAME = "episodes"
RUN_FRAMES_DIRNAME = "frames"
_COLUMNS = ("episode_id", "task_id", "suite", "instruction", "outcome", "reward", "model", "policy",
            "env_name", "privileged", "steps", "started_at", "ended_at", "seed", "code_version", "path")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    episode_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, suite TEXT NOT NULL, instruction TEXT NOT NULL,
    outcome TEXT NOT NULL, reward REAL NOT NULL, model TEXT NOT NULL, policy TEXT NOT NULL,
    env_name TEXT NOT NULL, privileged INTEGER NOT NULL, steps INTEGER NOT NULL, started_at REAL NOT NULL,
    ended_at REAL, seed INTEGER, code_version TEXT NOT NULL, path TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS episodes_task ON episodes(task_id);
CREATE INDEX IF NOT EXISTS episodes_outcome ON episodes(outcome);
CREATE INDEX IF NOT EXISTS episodes_model ON episodes(model);
"""
_FILTERS = ("task_id", "suite", "outcome", "model", "policy", "env_name")
T = TypeVar("T")


class StoreError(PixelPilotError, RuntimeError):
    """The run's index could not be read or written (e.g. locked for too long)."""


@dataclass(frozen=True)
class IndexRow:
    """One indexed episode (``path`` is absolute)."""

    episode_id: str
    task_id: str
    suite: str
    instruction: str
    outcome: str
    reward: float
    model: str
    policy: str
    env_name: str
    privileged: bool
    steps: int
    started_at: float
    ended_at: float | None
    seed: int | None
    code_version: str
    path: Path


@dataclass(frozen=True)
class ReindexReport:
    """What ``reindex`` found: episodes indexed and directories it could not read (with why)."""

    indexed: int
    skipped: tuple[tuple[Path, str], ...] = field(default_factory=tuple)


class TrajectoryStore:
    """Create, find and query the episodes of one run directory."""

    def __init__(self, root: Path | str, *, config: WriterConfig | None = None, busy_timeout_s: float = 30.0) -> None:
        self.root = Path(root)
        self.config = config or WriterConfig()
        self.busy_timeout_s = busy_timeout_s
        self.episodes_dir = self.root / EPISODES_DIRNAME
        self.frames_dir = self.root / RUN_FRAMES_DIRNAME
        self.index_path = self.root / INDEX_NAME
        self.episodes_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Creating the index is serialised across processes (flock), so that one process never
        # mistakes another's brand-new index for a deleted one and removes its WAL files.
        with open(self.root / LOCK_NAME, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                self._db = self._open_index()
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _open_index(self) -> sqlite3.Connection:
        fresh = not self.index_path.exists()
        if fresh:  # a stale WAL from a deleted index must not be replayed into the new one
            for suffix in ("-wal", "-shm"):
                Path(str(self.index_path) + suffix).unlink(missing_ok=True)
        self._db = sqlite3.connect(self.index_path, timeout=self.busy_timeout_s, check_same_thread=False,
                                   isolation_level=None)
        self._retry(lambda db: db.execute("PRAGMA journal_mode=WAL").fetchone())
        self._retry(lambda db: db.executescript(_SCHEMA))
        if fresh and any(self.episodes_dir.iterdir()):
            self.reindex()
        return self._db

    # -- sqlite plumbing ---------------------------------------------------------------------
    def _retry(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in its own short transaction, retrying while another process holds the lock."""
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.01
        while True:
            try:
                with self._lock:
                    return fn(self._db)
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise StoreError(f"index {self.index_path}: {exc}; if no other process is writing, delete the "
                                     "file and call reindex()") from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    def _upsert(self, rows: list[tuple[Any, ...]], *, replace_all: bool = False) -> None:
        sql = f"INSERT OR REPLACE INTO episodes ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"

        def run(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                if replace_all:
                    db.execute("DELETE FROM episodes")
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        self._retry(run)

    def _row(self, path: Path, meta: EpisodeMeta, end: EpisodeEnd | None, steps: int) -> tuple[Any, ...]:
        rel = str(path.resolve().relative_to(self.root.resolve())) if path.resolve().is_relative_to(
            self.root.resolve()) else str(path.resolve())
        return (meta.episode_id, meta.task_id, meta.suite, meta.instruction,
                end.outcome if end else "incomplete", end.reward if end else 0.0, meta.model, meta.policy,
                meta.env_name, int(meta.privileged), end.steps if end else steps, meta.started_at,
                end.ended_at if end else None, meta.seed, meta.code_version, rel)

    # -- writing -----------------------------------------------------------------------------
    def new_episode(self, meta: EpisodeMeta) -> EpisodeWriter:
        """A writer for a new episode in this run; it is indexed now and again when it finishes."""
        writer = EpisodeWriter(self.episodes_dir / meta.episode_id, meta, frames_dir=self.frames_dir,
                               config=self.config, on_finish=self._on_finish)
        self._upsert([self._row(writer.path, meta, None, 0)])
        return writer

    def _on_finish(self, summary: EpisodeSummary) -> None:
        self._upsert([self._row(summary.path, summary.meta, summary.end, summary.end.steps)])

    def index_episode(self, path: Path | str) -> None:
        """Index an episode directory that was moved into the run (not written through ``new_episode``)."""
        header = read_header(path)
        self._upsert([self._row(header.path, header.meta, header.end, header.steps)])

    def reindex(self) -> ReindexReport:
        """Rebuild the index from the episode directories (the JSONL files are the truth)."""
        rows, skipped = [], []
        for jsonl in sorted(self.episodes_dir.glob(f"*/{JSONL_NAME}")):
            try:
                header: EpisodeHeader = read_header(jsonl.parent)
            except (CorruptTrajectoryError, SchemaError, OSError) as exc:
                skipped.append((jsonl.parent, str(exc)))
                continue
            rows.append(self._row(header.path, header.meta, header.end, header.steps))
        self._upsert(rows, replace_all=True)
        return ReindexReport(len(rows), tuple(skipped))

    # -- reading -----------------------------------------------------------------------------
    def query(self, *, task: str | None = None, suite: str | None = None, outcome: str | None = None,
              model: str | None = None, policy: str | None = None, env_name: str | None = None,
              privileged: bool | None = None, limit: int | None = None) -> list[IndexRow]:
        """Indexed episodes matching every given filter (exact match), oldest first."""
        values = dict(zip(_FILTERS, (task, suite, outcome, model, policy, env_name)))
        where = [f"{col} = ?" for col, v in values.items() if v is not None]
        args: list[Any] = [v for v in values.values() if v is not None]
        if privileged is not None:
            where.append("privileged = ?")
            args.append(int(privileged))
        sql = f"SELECT {', '.join(_COLUMNS)} FROM episodes"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY started_at, episode_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self._retry(lambda db: db.execute(sql, args).fetchall())
        return [self._index_row(r) for r in rows]

    def _index_row(self, r: tuple[Any, ...]) -> IndexRow:
        data = dict(zip(_COLUMNS, r))
        data["privileged"] = bool(data["privileged"])
        data["path"] = (self.root / data["path"]).resolve()
        return IndexRow(**data)

    def counts(self) -> dict[str, int]:
        """Number of episodes per outcome."""
        rows = self._retry(lambda db: db.execute("SELECT outcome, COUNT(*) FROM episodes GROUP BY outcome").fetchall())
        return {outcome: n for outcome, n in rows}

    def __len__(self) -> int:
        return int(self._retry(lambda db: db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]))

    def open(self, episode_id: str) -> Episode:
        """Read one episode by id."""
        rows = self._retry(lambda db: db.execute("SELECT path FROM episodes WHERE episode_id = ?",
                                                 (episode_id,)).fetchall())
        if not rows:
            raise KeyError(f"no episode {episode_id!r} in {self.root}; list them with store.query() "
                           "or call reindex() if the index is stale")
        return read_episode(self.root / rows[0][0])

    def episodes(self, **filters: Any) -> Iterator[Episode]:
        """Read every episode ``query(**filters)`` returns, one at a time."""
        for row in self.query(**filters):
            yield read_episode(row.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "TrajectoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["IndexRow", "ReindexReport", "StoreError", "TrajectoryStore"]
