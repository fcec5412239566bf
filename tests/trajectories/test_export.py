"""Export to Parquet (read back with pyarrow) and to a Hugging Face dataset."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from envs.actions import Click, Done
from tests.trajectories.helpers import make_meta, screen
from trajectories.export import export_parquet, to_hf_dataset
from trajectories.store import TrajectoryStore
from trajectories.writer import WriterConfig

pq = pytest.importorskip("pyarrow.parquet")


def _store(tmp_path: Path) -> TrajectoryStore:
    store = TrajectoryStore(tmp_path / "run", config=WriterConfig(fsync=False))
    for k, outcome in enumerate(["success", "failure"]):
        with store.new_episode(make_meta(f"e{k}", f"task-{k}", model="m")) as w:
            w.add_step(screen(k), action=Click(3, 4), thought="find the button", token_ids=[5, 6], logprobs=[-1.0, -2.0])
            w.add_step(None, action=None, error="parse error: no action")
            w.add_step(screen(k + 10), action=Done(), terminated=True, reward=float(k == 0))
            w.finish(outcome, float(outcome == "success"))
    return store


def test_parquet_round_trip(tmp_path: Path) -> None:
    from PIL import Image

    store = _store(tmp_path)
    report = export_parquet(store, tmp_path / "out" / "steps.parquet", batch_rows=2)
    assert (report.episodes, report.rows) == (2, 6) and report.image_bytes > 0
    rows = pq.read_table(report.path).to_pylist()
    assert [(r["episode_id"], r["step_index"]) for r in rows] == [("e0", 0), ("e0", 1), ("e0", 2),
                                                                  ("e1", 0), ("e1", 1), ("e1", 2)]
    first = rows[0]
    assert first["instruction"] == "do task-0" and first["thought"] == "find the button"
    assert json.loads(first["action_json"]) == {"kind": "click", "x": 3, "y": 4, "button": "left", "count": 1}
    assert first["episode_outcome"] == "success" and first["token_ids"] == [5, 6] and first["logprobs"] == [-1.0, -2.0]
    decoded = np.asarray(Image.open(io.BytesIO(first["image"]["bytes"])).convert("RGB"))
    np.testing.assert_array_equal(decoded, screen(0))
    assert rows[1]["image"] is None and rows[1]["action_json"] is None and "parse error" in rows[1]["error"]
    only_failures = export_parquet(store, tmp_path / "f.parquet", outcome="failure")
    assert only_failures.rows == 3 and {r["episode_id"] for r in pq.read_table(only_failures.path).to_pylist()} == {"e1"}


def test_hf_dataset_decodes_images(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    store = _store(tmp_path)
    ds = to_hf_dataset(store)
    assert len(ds) == 6 and ds.features["image"].__class__.__name__ == "Image"
    np.testing.assert_array_equal(np.asarray(ds[3]["image"].convert("RGB")), screen(1))
    assert ds[3]["task_id"] == "task-1"
