"""A writer process killed with SIGKILL mid-episode leaves every fsynced step readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from trajectories.reader import read_episode
from trajectories.writer import JSONL_NAME

ROOT = Path(__file__).resolve().parents[2]
# The child writes distinct frames forever (bounded as a safety net) until it is killed.
CHILD = """
import sys, numpy as np
from envs.actions import Click
from tests.trajectories.helpers import make_meta
from trajectories.writer import EpisodeWriter, WriterConfig
w = EpisodeWriter(sys.argv[1], make_meta("killed"), config=WriterConfig(fsync=True, encode_threads=2))
for i in range(100_000):
    frame = np.full((120, 160, 3), i % 251, np.uint8)
    frame[i % 120, :, :] = 255
    w.add_step(frame, action=Click(i % 160, i % 120), thought=f"step {i}", raw_text="x" * (i % 500))
"""


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_sigkill_mid_episode_leaves_readable_prefix(tmp_path: Path) -> None:
    episode = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(episode)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _lines(episode / JSONL_NAME) < 1 + 25 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"writer exited early: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        seen = _lines(episode / JSONL_NAME) - 1
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    ep = read_episode(episode)
    assert ep.status == "incomplete" and ep.end is None
    assert len(ep.steps) >= seen >= 25
    for step in ep.steps:  # every recorded step points at a complete, exact frame
        expected = np.full((120, 160, 3), step.index % 251, np.uint8)
        expected[step.index % 120, :, :] = 255
        np.testing.assert_array_equal(ep.frame(step), expected)
        assert step.thought == f"step {step.index}"
