"""``pixelpilot run`` end to end: CLI → OpenAI-compatible server on 127.0.0.1 → Chromium → run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from trajectories.store import TrajectoryStore

from .responder import ScriptedServer

pytestmark = pytest.mark.integration


def test_run_command_succeeds_and_writes_a_viewable_run(page_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    with ScriptedServer() as server:
        code = main(["run", "Click the green button", "--env", "browser", "--url", page_url, "--size", "640x400",
                     "--model", server.base_url, "--model-name", "ui-tars", "--format", "uitars",
                     "--resize", "smart:1003520", "--max-steps", "5", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "success" in printed and "pixelpilot view" in printed
    rows = TrajectoryStore(out).query()
    assert len(rows) == 1 and rows[0].outcome == "success" and rows[0].model == "ui-tars"
    assert main(["view", str(out)]) == 0


def test_run_command_rejects_a_model_path_without_config(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "x", "--env", "browser", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "OpenAI-compatible" in err
