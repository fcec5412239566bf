"""Export episodes as one row per step: Parquet (pyarrow) and Hugging Face ``datasets``.

Each row holds the step's screenshot bytes as stored (PNG/JPEG/WebP, not re-encoded), the
instruction, thought, raw text, action JSON, step reward/flags, timings and the episode's
fields (task, outcome, reward, model, ...). The ``image`` column is a ``{bytes, path}``
struct with Hugging Face ``Image`` feature metadata, so ``datasets`` decodes it to PIL images
and ``pyarrow``/``pandas`` see plain bytes. Rows stream in batches: memory is bounded by
``batch_rows`` frames, not by the run size. pyarrow and datasets are imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trajectories.reader import Episode, read_episode
from trajectories.store import TrajectoryStore

# (column, pyarrow type name, Hugging Face Value dtype); "image" is special-cased.
_SCALARS: tuple[tuple[str, str], ...] = (
    ("episode_id", "string"), ("task_id", "string"), ("suite", "string"), ("instruction", "string"),
    ("env_name", "string"), ("policy", "string"), ("model", "string"), ("privileged", "bool"),
    ("seed", "int64"), ("episode_outcome", "string"), ("episode_reward", "float64"), ("episode_steps", "int64"),
    ("step_index", "int64"), ("image_sha256", "string"), ("image_format", "string"), ("image_width", "int64"),
    ("image_height", "int64"), ("thought", "string"), ("raw_text", "string"), ("action_kind", "string"),
    ("action_json", "string"), ("error", "string"), ("reward", "float64"), ("terminated", "bool"),
    ("truncated", "bool"), ("timings_json", "string"), ("info_json", "string"), ("extra_json", "string"),
)
_LISTS: tuple[tuple[str, str], ...] = (("token_ids", "int64"), ("logprobs", "float64"))


class ExportDependencyError(ImportError):
    """pyarrow / datasets is not installed."""


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    path: Path
    episodes: int
    rows: int
    image_bytes: int


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401 - registers pa.parquet

        return pa
    except ImportError as exc:
        raise ExportDependencyError("Parquet export needs pyarrow: pip install pyarrow") from exc


def arrow_schema() -> Any:
    """The export's pyarrow schema, with Hugging Face feature metadata."""
    pa = _pyarrow()
    types = {"string": pa.string(), "bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64()}
    cols = [pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]))]
    cols += [pa.field(name, types[t]) for name, t in _SCALARS]
    cols += [pa.field(name, pa.list_(types[t])) for name, t in _LISTS]
    features: dict[str, Any] = {"image": {"_type": "Image"}}
    features.update({name: {"dtype": t, "_type": "Value"} for name, t in _SCALARS})
    features.update({name: {"feature": {"dtype": t, "_type": "Value"}, "_type": "Sequence"} for name, t in _LISTS})
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    return pa.schema(cols, metadata=meta)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def step_rows(episode: Episode) -> Iterator[dict[str, Any]]:
    """One export row per step of ``episode`` (frames read from disk as stored)."""
    m, end = episode.meta, episode.end
    common = {"episode_id": m.episode_id, "task_id": m.task_id, "suite": m.suite, "instruction": m.instruction,
              "env_name": m.env_name, "policy": m.policy, "model": m.model, "privileged": m.privileged,
              "seed": m.seed, "episode_outcome": episode.outcome, "episode_reward": end.reward if end else 0.0,
              "episode_steps": len(episode.steps)}
    for step in episode.steps:
        ref = step.screenshot
        data = episode.frames.read_bytes(ref) if ref is not None else None
        yield {
            **common, "step_index": step.index,
            "image": {"bytes": data, "path": ref.filename if ref else None} if data is not None else None,
            "image_sha256": ref.sha256 if ref else None, "image_format": ref.format if ref else None,
            "image_width": ref.width if ref else None, "image_height": ref.height if ref else None,
            "thought": step.thought, "raw_text": step.raw_text,
            "action_kind": step.action["kind"] if step.action else None,
            "action_json": _dump(step.action) if step.action is not None else None, "error": step.error,
            "reward": step.reward, "terminated": step.terminated, "truncated": step.truncated,
            "timings_json": _dump(step.timings), "info_json": _dump(step.info), "extra_json": _dump(step.extra),
            "token_ids": step.token_ids, "logprobs": step.logprobs,
        }


def _episodes(source: TrajectoryStore | Iterable[Episode | Path | str], filters: dict[str, Any]) -> Iterator[Episode]:
    if isinstance(source, TrajectoryStore):
        yield from source.episodes(**filters)
        return
    if filters:
        raise ValueError("filters apply to a TrajectoryStore source only; filter the episodes yourself")
    for item in source:
        yield item if isinstance(item, Episode) else read_episode(item)


def export_parquet(source: TrajectoryStore | Iterable[Episode | Path | str], path: Path | str, *,
                   batch_rows: int = 64, include_incomplete: bool = True, **filters: Any) -> ExportReport:
    """Write every step of the selected episodes to one Parquet file.

    ``filters`` are ``TrajectoryStore.query`` keywords (``task=``, ``outcome=``, ``model=``, ...).
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    pa = _pyarrow()
    schema = arrow_schema()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    episodes = rows = image_bytes = 0
    batch: list[dict[str, Any]] = []
    with pa.parquet.ParquetWriter(tmp, schema) as writer:
        for episode in _episodes(source, filters):
            if episode.end is None and not include_incomplete:
                continue
            episodes += 1
            for row in step_rows(episode):
                batch.append(row)
                rows += 1
                image_bytes += len(row["image"]["bytes"]) if row["image"] else 0
                if len(batch) >= batch_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    batch.clear()
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    tmp.replace(out)
    return ExportReport(out, episodes, rows, image_bytes)


def to_hf_dataset(source: TrajectoryStore | Iterable[Episode | Path | str], *, parquet_path: Path | str | None = None,
                  **filters: Any) -> Any:
    """A ``datasets.Dataset`` of the steps (``image`` decodes to PIL). Exports to Parquet first
    (``parquet_path``, default ``<run>/export/steps.parquet`` for a store) and memory-maps it."""
    try:
        import datasets
    except ImportError as exc:
        raise ExportDependencyError("to_hf_dataset needs the datasets package: pip install datasets") from exc
    if parquet_path is None:
        if not isinstance(source, TrajectoryStore):
            raise ValueError("pass parquet_path= when the source is not a TrajectoryStore")
        parquet_path = source.root / "export" / "steps.parquet"
    report = export_parquet(source, parquet_path, **filters)
    table = _pyarrow().parquet.read_table(report.path, memory_map=True)
    return datasets.Dataset(table)


__all__ = ["ExportDependencyError", "ExportReport", "arrow_schema", "export_parquet", "step_rows", "to_hf_dataset"]
