"""``pixelpilot eval`` on the desktop suite (TaskEnv on a real Xvfb): scripted solutions succeed, the
noop baseline fails, feasible and infeasible tasks are reported apart, a broken setup is a
``setup_error`` (not an agent failure)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.eval.runner import EvalConfig, run_eval
from agent.eval.suites import desktop_suite_index

pytestmark = pytest.mark.integration
needs_x = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xterm")), reason="needs Xvfb and xterm")
needs_suite = pytest.mark.skipif(not desktop_suite_index().is_file(), reason="the desktop suite is not installed")
TASKS = "terminal-mkdir-project,os-bluetooth-pair"  # feasible, infeasible


def _bad_setup_suite(root: Path) -> Path:
    """An index with one task whose setup cannot work and one that is fine."""
    good = json.loads((desktop_suite_index().parent / "examples/terminal/terminal-mkdir-project.json").read_text())
    bad = {**good, "id": "launch-missing-app",
           "config": [{"type": "launch", "parameters": {"command": ["/nonexistent/pixelpilot-app"]}}]}
    (root / "examples" / "broken").mkdir(parents=True)
    for task in (good, bad):
        (root / "examples" / "broken" / f"{task['id']}.json").write_text(json.dumps(task))
    index = root / "test_broken.json"
    index.write_text(json.dumps({"broken": [good["id"], bad["id"]]}))
    return index


@needs_x
@needs_suite
def test_noop_fails_and_a_broken_setup_is_a_setup_error(tmp_path: Path) -> None:
    index = _bad_setup_suite(tmp_path / "suite")
    run = run_eval(EvalConfig(suite=str(index), out=str(tmp_path / "run"), policy="noop", max_steps=3),
                   progress=False)
    by_task = {e["task_id"]: e for e in run.report["episodes"]}
    bad, good = by_task["launch-missing-app"], by_task["terminal-mkdir-project"]
    assert (bad["outcome"], bad["error_kind"], bad["steps"]) == ("setup_error", "setup", 0)
    assert "setup step 0 (launch)" in bad["error"]
    assert (good["outcome"], good["success"], good["score"]) == ("failure", False, 0.0)
    s = run.report["summary"]
    assert (s["episodes"], s["evaluated"], s["setup_errors"], s["success_rate"]) == (2, 1, 1, 0.0)
    html = (tmp_path / "run" / "report.html").read_text()
    assert "launch-missing-app" in html and "setup_error" in html


@needs_x
@needs_suite
def test_scripted_solutions_succeed_and_noop_fails_feasible_and_infeasible_apart(tmp_path: Path) -> None:
    suite = f"desktop:{TASKS},editor-new-note"
    scripted = run_eval(EvalConfig(suite=suite, out=str(tmp_path / "scripted"), policy="scripted", max_steps=20),
                        progress=False)
    r = scripted.report
    assert (r["summary"]["episodes"], r["summary"]["successes"]) == (3, 3)
    assert (r["feasible"]["episodes"], r["feasible"]["success_rate"]) == (2, 1.0)
    assert (r["infeasible"]["episodes"], r["infeasible"]["success_rate"]) == (1, 1.0)
    assert set(r["per_domain"]) == {"terminal", "os", "text_editor"}
    for e in r["episodes"]:
        assert e["steps"] >= 1 and e["setup_s"] > 0 and (tmp_path / "scripted" / e["viewer"]).is_file()
    noop = run_eval(EvalConfig(suite=suite, out=str(tmp_path / "noop"), policy="noop"), progress=False).report
    assert noop["summary"]["successes"] == 0 and noop["summary"]["outcomes"] == {"failure": 3}
    assert noop["infeasible"]["success_rate"] == 0.0  # declaring Done on an infeasible task scores nothing
    details = json.loads((tmp_path / "noop" / "report.json").read_text())["episodes"]
    assert all(e["score"] == 0.0 for e in details)
