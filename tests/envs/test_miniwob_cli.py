"""``pixelpilot miniwob list`` / ``pixelpilot demo`` and the reusable report code."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.cli import main
from envs.miniwob import list_tasks
from envs.miniwob.experts import EXPERTS
from envs.miniwob.report import summarize, write_results


@dataclass(frozen=True)
class _Ep:
    task: str
    seed: int
    success: bool
    raw_reward: float
    steps: int
    elapsed_s: float


def test_summarize_and_write_results(tmp_path: Path) -> None:
    eps = [_Ep("a", 1, True, 1.0, 2, 0.5), _Ep("a", 2, False, -1.0, 4, 1.5), _Ep("b", 1, True, 1.0, 1, 0.1)]
    rows = summarize(eps)
    assert [r.task for r in rows] == ["a", "b", "ALL"]
    assert (rows[0].successes, rows[0].success_rate, rows[0].mean_raw_reward, rows[0].mean_steps) == (1, 0.5, 0.0, 3.0)
    assert (rows[2].episodes, rows[2].successes) == (3, 2)
    path = write_results(tmp_path / "out", eps, {"policy": "test"})
    data = json.loads(path.read_text())
    assert data["settings"] == {"policy": "test"} and len(data["episodes"]) == 3
    assert data["summary"][-1]["success_rate"] == pytest.approx(2 / 3)
    assert summarize([]) == []


def test_miniwob_list_prints_every_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["miniwob", "list"]) == 0
    assert capsys.readouterr().out.split() == list(list_tasks())
    assert main(["miniwob", "list", "--experts"]) == 0
    assert capsys.readouterr().out.split() == sorted(EXPERTS)


def test_demo_rejects_tasks_without_expert(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--experts", "--tasks", "book-flight", "--out", str(tmp_path)]) == 2
    assert "no scripted expert" in capsys.readouterr().out


@pytest.mark.integration
@pytest.mark.skipif(not os.path.exists("/usr/bin/chromium"), reason="needs /usr/bin/chromium")
def test_demo_runs_experts_and_writes_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["demo", "--experts", "--tasks", "click-test", "enter-text", "--seeds", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "click-test" in out and "ALL" in out
    data = json.loads((tmp_path / "results.json").read_text())
    assert [s["task"] for s in data["summary"]] == ["click-test", "enter-text", "ALL"]
    assert data["summary"][-1]["success_rate"] == 1.0
    assert {e["seed"] for e in data["episodes"]} == {10_000, 10_001}
    assert all(e["rationales"] for e in data["episodes"])
