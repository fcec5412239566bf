"""`pixelpilot tasks check` covers every OSWorld task file without crashing and writes JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from envs.tasks.check import check_task, summarize
from envs.tasks.model import load_tasks_dir

OSWORLD = Path("/work/shared/osworld")
needs_osworld = pytest.mark.skipif(not (OSWORLD / "examples").is_dir(), reason="OSWorld task files not present")


@needs_osworld
def test_check_all_369_via_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.json"
    assert main(["tasks", "check", str(OSWORLD / "test_all.json"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["tasks"]) == 369 and report["load_errors"] == [] and report["missing_index_entries"] == []
    total = report["summary"][-1]
    assert total["domain"] == "ALL" and total["total"] == 369 and total["feasible"] == 340
    assert 0 < total["fully_supported"] < 369
    assert "OSWorld task support here" in capsys.readouterr().out
    by_id = {t["id"]: t for t in report["tasks"]}
    gdrive = by_id["4e9f0faf-2ecc-4ae8-a804-28c9a75d1ddc"]  # needs Google Drive
    assert not gdrive["fully_supported"] and any(m.startswith("step:googledrive") for m in gdrive["missing"])


@needs_osworld
def test_check_summary_counts_match_reports() -> None:
    reports = [check_task(t, which=lambda name: None) for t in load_tasks_dir(OSWORLD / "examples" / "os")]
    rows = summarize(reports)
    assert [r.domain for r in rows] == ["os", "ALL"] and rows[0].total == 24
    # with no program on PATH, only tasks that need no app and no remote file are runnable
    runnable = [r for r in reports if r.runnable_here]
    assert rows[0].runnable_here == len(runnable) and all(not r.apps and not r.unavailable_urls for r in runnable)
    gimp = load_tasks_dir(OSWORLD / "examples" / "gimp")[0]
    assert check_task(gimp, which=lambda name: None).missing_apps == ("gimp",)
    assert check_task(gimp, which=lambda name: f"/usr/bin/{name}").missing_apps == ()
    assert rows[0].fully_supported == sum(r.fully_supported for r in reports)


def test_check_directory_with_a_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "os").mkdir()
    good = {"id": "g", "instruction": "i", "related_apps": ["chrome"], "config": [
        {"type": "download", "parameters": {"files": [{"url": "https://huggingface.co/a", "path": "/tmp/a"}]}}],
        "evaluator": {"func": "exact_match", "result": {"type": "vm_command_line", "command": "true"},
                      "expected": {"type": "rule", "rules": {"expected": ""}}}}
    (tmp_path / "os" / "g.json").write_text(json.dumps(good))
    (tmp_path / "os" / "b.json").write_text(json.dumps({"id": "b"}))
    out = tmp_path / "r.json"
    assert main(["tasks", "check", str(tmp_path), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert len(report["load_errors"]) == 1 and "b.json" in report["load_errors"][0]
    task = report["tasks"][0]
    assert task["fully_supported"] and not task["runnable_here"] and task["remote_hosts"] == ["huggingface.co"]
    assert "load error" in capsys.readouterr().out
