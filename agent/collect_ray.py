"""Ray-based trajectory collection: the same work items as ``agent.collect``, spread over a Ray cluster.

One Ray actor per worker (``num_cpus=1``) owns one environment and one policy, built by the
same ``SUITES`` / ``_policy`` functions as the process-based collector. The driver hands out
``WorkItem``s (resume-aware through ``split_pending``) and gathers one result per item.

Actors on other machines cannot write into the driver's run directory, so every actor writes
its episode into a private local run directory and ships the finished episode back as one
uncompressed tar (``episodes/<id>/episode.jsonl``, ``episodes/<id>/DONE``, ``frames/*``). The
driver validates the archive, adds frames it does not have yet (content-addressed, so dedup
across the whole run is kept), moves the episode into place (``DONE`` last) and indexes it.
On one machine (``--ray local``) the very same path is used: one code path, tested here.

A dead actor (process killed, env crashed in its constructor) is recorded in
``collect.json["worker_crashes"]``, replaced, and its item re-queued once; a second failure
makes the item's final outcome ``error``. No item is dropped silently.

What this module does not do: install pixelpilot on remote nodes (every node needs the same
version in its Python environment), or open any port itself (Ray does; ``local`` binds
127.0.0.1 only).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.collect import (
    SUITES,
    CollectConfig,
    CollectSummary,
    WorkItem,
    _collect_one,
    _policy,
    _summarize,
    pending_items,
)
from envs.errors import PixelPilotError

_ADDRESS_RE = re.compile(r"^(ray://)?[A-Za-z0-9.\-_\[\]:]+:\d{1,5}$")
_FRAME_NAME_RE = re.compile(r"^[0-9a-f]{64}\.(png|jpg|webp)$")
_EPISODE_FILES = ("episode.jsonl", "DONE")
INCOMING_SUFFIX = ".incoming"


class RayCollectError(PixelPilotError, RuntimeError):
    """Ray could not be started/reached, or an actor shipped an episode the driver cannot accept."""


@dataclass(frozen=True)
class RayConfig:
    """Where the actors run.

    ``address``: ``local`` starts a private single-node Ray instance bound to 127.0.0.1 (no
    dashboard, no usage stats) and shuts it down afterwards; ``ray://host:port`` (Ray Client)
    or ``host:port`` (the driver runs on a cluster node) joins an existing cluster.
    ``object_store_mb`` sizes the local instance's object store (episodes travel through it).
    """

    address: str = "local"
    object_store_mb: int = 256

    def __post_init__(self) -> None:
        if self.address != "local" and not _ADDRESS_RE.match(self.address):
            raise ValueError(f"--ray takes 'local', 'ray://HOST:PORT' or 'HOST:PORT', got {self.address!r}")
        if self.object_store_mb < 80:
            raise ValueError(f"object_store_mb must be at least 80 (Ray's minimum), got {self.object_store_mb}")


# -- episodes as bytes ----------------------------------------------------------------------
def pack_episode(root: Path, episode_id: str) -> bytes:
    """Tar one episode of the run ``root`` with every frame in ``root/frames`` (the actor's run holds one episode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in _EPISODE_FILES:
            path = root / "episodes" / episode_id / name
            if path.is_file():
                tar.add(path, arcname=f"episodes/{episode_id}/{name}", recursive=False)
        frames = root / "frames"
        for path in sorted(frames.iterdir()) if frames.is_dir() else ():
            if _FRAME_NAME_RE.match(path.name):
                tar.add(path, arcname=f"frames/{path.name}", recursive=False)
    return buf.getvalue()


def _bundle_members(bundle: bytes, episode_id: str) -> Iterator[tuple[str, bytes]]:
    """Yield ``(arcname, data)`` of a shipped episode, rejecting anything but its files and frames."""
    allowed = {f"episodes/{episode_id}/{name}" for name in _EPISODE_FILES}
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:") as tar:
        for member in tar.getmembers():
            name = member.name
            is_frame = name.startswith("frames/") and _FRAME_NAME_RE.match(name[len("frames/"):])
            if not member.isfile() or not (name in allowed or is_frame):
                raise RayCollectError(f"episode {episode_id}: unexpected archive member {name!r} "
                                      f"({'not a file' if not member.isfile() else 'outside the episode'}); "
                                      "the worker runs a different pixelpilot version?")
            f = tar.extractfile(member)
            assert f is not None  # a regular file always has data
            yield name, f.read()


def ingest_episode(store: Any, episode_id: str, bundle: bytes) -> Path:
    """Write a shipped episode into the driver's ``TrajectoryStore`` and index it; returns its directory.

    Frames already in the run are not rewritten. The episode appears under its final name only
    when complete (it is assembled in ``episodes/.<id>.incoming`` first, ``DONE`` written last).
    """
    from trajectories.frames import fsync_dir, write_atomic

    final = store.episodes_dir / episode_id
    if final.exists():
        raise RayCollectError(f"{final} already exists; the driver collected {episode_id} twice (a bug: report it)")
    incoming = store.episodes_dir / f".{episode_id}{INCOMING_SUFFIX}"
    shutil.rmtree(incoming, ignore_errors=True)  # a leftover of a driver killed mid-ingest
    files: dict[str, bytes] = {}
    store.frames_dir.mkdir(parents=True, exist_ok=True)
    for name, data in _bundle_members(bundle, episode_id):
        if name.startswith("frames/"):
            target = store.frames_dir / name[len("frames/"):]
            if not target.exists():
                write_atomic(target, data)
        else:
            files[name.rsplit("/", 1)[1]] = data
    if "episode.jsonl" not in files:
        raise RayCollectError(f"episode {episode_id} arrived without episode.jsonl")
    incoming.mkdir(parents=True)
    for name in _EPISODE_FILES:  # the JSONL first, DONE last: a reader never sees DONE without its steps
        if name in files:
            write_atomic(incoming / name, files[name])
    os.rename(incoming, final)
    fsync_dir(store.episodes_dir)
    _index_episode(store, final)
    return final


def _index_episode(store: Any, path: Path) -> None:
    """Index one episode directory that was moved into the run (not written through ``new_episode``)."""
    store.index_episode(path)


# -- the actor ------------------------------------------------------------------------------
class EpisodeWorker:
    """One env + one policy in a Ray actor; episodes go to a private run directory and back as bytes.

    Plain class: ``collect_ray`` wraps it with ``ray.remote`` so importing this module needs no Ray.
    """

    def __init__(self, config: CollectConfig, worker_id: int) -> None:
        from agent.loop import LoopConfig
        from agent.risk import RiskConfig
        from trajectories.store import TrajectoryStore

        self.worker_id = worker_id
        self.root = Path(tempfile.mkdtemp(prefix=f"pixelpilot-ray-w{worker_id}-"))
        self.store = TrajectoryStore(self.root)
        self.loop_config = LoopConfig(max_steps=config.max_steps,
                                      risk=RiskConfig(redact_passwords=config.redact_passwords))
        self.env = None
        try:
            self.env = SUITES[config.suite](config)
            self.policy = _policy(config, self.env)
        except BaseException:
            self.close()
            raise

    def collect(self, item: WorkItem) -> tuple[dict[str, Any], bytes | None]:
        """Run one item; returns its result record and the packed episode (``None`` if none was written)."""
        record = _collect_one(item, self.env, self.policy, self.store, self.loop_config, self.worker_id)
        record["host"] = socket.gethostname()
        episode_dir = self.root / "episodes" / item.episode_id
        bundle = pack_episode(self.root, item.episode_id) if (episode_dir / "episode.jsonl").is_file() else None
        # The actor's run holds one episode at a time: what was shipped is removed (frames too;
        # the driver keeps the run-wide dedup).
        shutil.rmtree(episode_dir, ignore_errors=True)
        shutil.rmtree(self.root / "frames", ignore_errors=True)
        return record, bundle

    def pid(self) -> int:
        """The actor's process id (tests kill it to check crash handling)."""
        return os.getpid()

    def close(self) -> None:
        """Close the env and remove the private run directory."""
        try:
            if self.env is not None:
                self.env.close()
        finally:
            self.store.close()
            shutil.rmtree(self.root, ignore_errors=True)


# -- Ray session ----------------------------------------------------------------------------
class _RaySession:
    """``ray.init`` for a ``RayConfig``; shuts down only an instance it started itself."""

    def __init__(self, ray_config: RayConfig, num_cpus: int) -> None:
        self.ray_config, self.num_cpus, self.started = ray_config, num_cpus, False

    def __enter__(self) -> Any:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        local = self.ray_config.address == "local"
        if local:
            # Off, Ray resolves "127.0.0.1" to the machine's outward IP and its gRPC servers
            # listen on every interface; on, everything binds to the loopback address.
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        try:
            import ray
            from ray._private import ray_constants
        except ImportError as exc:
            raise RayCollectError("Ray is not installed: pip install 'pixelpilot[ray]'") from exc
        if ray.is_initialized():
            return ray  # the caller's instance: reuse it, leave it running
        if local:
            ray_constants.ENABLE_RAY_CLUSTER = False  # in case ray was imported before the variable was set
            kwargs: dict[str, Any] = {"address": "local", "num_cpus": self.num_cpus, "include_dashboard": False,
                                      "_node_ip_address": "127.0.0.1",
                                      "object_store_memory": self.ray_config.object_store_mb * 1024 * 1024}
        else:
            kwargs = {"address": self.ray_config.address}
        try:
            ray.init(**kwargs, configure_logging=False, log_to_driver=True)
        except Exception as exc:  # re-raised typed, with what to check
            raise RayCollectError(f"could not start/join Ray at {self.ray_config.address!r}: {exc}; for a cluster "
                                  "check the address and that its Ray version matches this one") from exc
        self.started = True
        if local and ray.util.get_node_ip_address() != "127.0.0.1":
            ray.shutdown()
            raise RayCollectError("the local Ray instance did not bind to 127.0.0.1; refusing to collect")
        return ray

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            ray.shutdown()


# -- the driver -----------------------------------------------------------------------------
class _Driver:
    """Hands items to actors, ingests what comes back, replaces dead actors, re-queues once."""

    def __init__(self, ray: Any, config: CollectConfig, store: Any, n_workers: int, on_result: Any) -> None:
        self.ray, self.config, self.store, self.on_result = ray, config, store, on_result
        self.actor_cls = ray.remote(num_cpus=1)(EpisodeWorker)
        self.actors = {slot: self.actor_cls.remote(config, slot) for slot in range(n_workers)}
        self.records: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []

    def run(self, todo: list[WorkItem]) -> None:
        queue: deque[tuple[WorkItem, int]] = deque((item, 0) for item in todo)
        inflight: dict[Any, tuple[int, WorkItem, int]] = {}

        def feed(slot: int) -> None:
            if queue:
                item, attempt = queue.popleft()
                inflight[self.actors[slot].collect.remote(item)] = (slot, item, attempt)

        for slot in self.actors:
            feed(slot)
        while inflight:
            (ref,), _ = self.ray.wait(list(inflight), num_returns=1)
            slot, item, attempt = inflight.pop(ref)
            failure = self._finish(ref, item)
            if failure is not None:
                self.crashes.append(failure)
                if failure["actor_died"]:
                    self._replace(slot)
                if attempt == 0:
                    queue.append((item, 1))
                else:
                    self._record(failure)
            feed(slot)

    def _finish(self, ref: Any, item: WorkItem) -> dict[str, Any] | None:
        """Ingest one result; returns a failure record instead when the actor or the ingest failed."""
        from ray.exceptions import RayActorError, RayError

        try:
            record, bundle = self.ray.get(ref)
            if bundle is not None:
                ingest_episode(self.store, item.episode_id, bundle)
        except (RayError, RayCollectError, OSError) as exc:
            died = isinstance(exc, RayActorError)
            return {"item": asdict(item), "outcome": "error", "reward": 0.0, "steps": 0,
                    "error": f"{type(exc).__name__}: {str(exc)[-2000:]}", "seconds": 0.0, "worker": None,
                    "actor_died": died}
        self._record(record)
        return None

    def _record(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.on_result(record)

    def _replace(self, slot: int) -> None:
        self.ray.kill(self.actors[slot], no_restart=True)
        self.actors[slot] = self.actor_cls.remote(self.config, slot)

    def close(self) -> None:
        """Close every actor's env (best effort, bounded), then end the actors."""
        refs = [a.close.remote() for a in self.actors.values()]
        try:
            self.ray.wait(refs, num_returns=len(refs), timeout=60)
        finally:
            for actor in self.actors.values():
                self.ray.kill(actor, no_restart=True)


def collect_ray(config: CollectConfig, ray_config: RayConfig, progress: bool = True) -> CollectSummary:
    """Run the collection on Ray actors (``config.workers`` of them); returns (and saves) a summary.

    Same run directory, resume rules, summary and ``collect.json`` as ``agent.collect.collect``,
    plus ``collect.json["ray"]`` and ``collect.json["worker_crashes"]``.
    """
    from rich.progress import Progress

    from trajectories.store import TrajectoryStore

    todo, done, moved = pending_items(config)
    Path(config.out).mkdir(parents=True, exist_ok=True)
    n_workers = min(config.workers, max(1, len(todo)))
    driver: _Driver | None = None
    t0 = time.perf_counter()
    nodes = 0
    with TrajectoryStore(config.out) as store:
        if todo:
            with _RaySession(ray_config, num_cpus=n_workers) as ray, \
                    Progress(disable=not progress, transient=False) as bar:
                nodes = len([n for n in ray.nodes() if n.get("Alive")])
                task = bar.add_task(f"collect {config.suite} on ray", total=len(todo))
                driver = _Driver(ray, config, store, n_workers, on_result=lambda r: bar.advance(task))
                try:
                    driver.run(todo)
                finally:
                    driver.close()
    wall = time.perf_counter() - t0
    records = driver.records if driver else []
    crashes = driver.crashes if driver else []
    summary = _summarize(records, done, moved, wall)
    with open(Path(config.out) / "collect.json", "w", encoding="utf-8") as f:
        json.dump({"config": asdict(config), "ray": {"address": ray_config.address, "nodes": nodes,
                                                      "workers": n_workers, "python": sys.version.split()[0]},
                   "summary": asdict(summary), "episodes": records, "worker_crashes": crashes}, f, indent=1)
    return summary


__all__ = ["EpisodeWorker", "RayCollectError", "RayConfig", "collect_ray", "ingest_episode", "pack_episode"]
