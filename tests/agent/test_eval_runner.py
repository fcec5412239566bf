"""``pixelpilot eval`` on MiniWoB++ in real headless Chromium: experts, the noop baseline, a crashing
worker, a hung policy, a runner SIGKILLed mid-run and resumed, and the HTML report in a browser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.eval.runner import EvalConfig, _descendants, run_eval
from agent.eval.suites import EvalItem
from agent.policy import PolicyInput, PolicyReply
from trajectories.reader import read_episode
from trajectories.store import TrajectoryStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CRASH_SEED, HANG_SEED = 10001, 10001


class _Expert:
    """The MiniWoB expert, with a hook that misbehaves on one seed (set by subclasses)."""

    privileged, output_format = True, "native"

    def __init__(self, item: EvalItem, env: Any) -> None:
        from agent.policies.expert import MiniWoBExpertPolicy

        self.item, self.inner = item, MiniWoBExpertPolicy(env)
        self.name, self.model = "test-expert", "miniwob-expert"

    def reset(self, instruction: str) -> None:
        self.inner.reset(instruction)

    def act(self, inp: PolicyInput) -> PolicyReply:
        self.misbehave(inp)
        return self.inner.act(inp)

    def misbehave(self, inp: PolicyInput) -> None:
        pass


class CrashOnSecondStep(_Expert):
    def misbehave(self, inp: PolicyInput) -> None:
        if self.item.seed == CRASH_SEED and inp.step_index == 1:
            # Steps are written in the background: crash once step 0 is on disk, so the test
            # can check it survives (the run directory comes through the environment).
            jsonl = Path(os.environ["EVAL_TEST_RUN"]) / "episodes" / self.item.episode_id / "episode.jsonl"
            deadline = time.monotonic() + 30
            while jsonl.read_bytes().count(b"\n") < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            os._exit(3)  # a hard crash: no exception, no cleanup


class HangForever(_Expert):
    def misbehave(self, inp: PolicyInput) -> None:
        if self.item.seed == HANG_SEED:
            time.sleep(3600)  # e.g. a model call that never returns


def _report(run: Path) -> dict[str, Any]:
    return json.loads((run / "report.json").read_text())


def _browsers_below_us() -> list[int]:
    out = []
    for pid in _descendants(os.getpid()):
        try:
            if "chrom" in Path(f"/proc/{pid}/comm").read_text():
                out.append(pid)
        except OSError:
            pass
    return out


def test_scripted_experts_succeed_and_noop_fails(tmp_path: Path) -> None:
    scripted = run_eval(EvalConfig(suite="miniwob:click-button,enter-text", out=str(tmp_path / "scripted"),
                                   policy="scripted", workers=2), progress=False)
    s = scripted.report["summary"]
    assert (s["episodes"], s["successes"], s["success_rate"]) == (2, 2, 1.0)
    assert {e["seed"] for e in scripted.report["episodes"]} == {10000}
    assert scripted.report["per_task"]["enter-text"]["mean_steps"] >= 2
    for e in scripted.report["episodes"]:
        assert (tmp_path / "scripted" / e["viewer"]).is_file()
    replay = run_eval(EvalConfig(suite="miniwob:click-button,enter-text", out=str(tmp_path / "replay"),
                                 policy=f"replay:{tmp_path / 'scripted'}"), progress=False)
    assert replay.report["summary"]["successes"] == 2  # same seeds, same pixels: the recorded actions win again
    assert {e["steps"] for e in replay.report["episodes"]} == {e["steps"] for e in scripted.report["episodes"]}
    noop = run_eval(EvalConfig(suite="miniwob:click-button,enter-text", out=str(tmp_path / "noop"), policy="noop"),
                    progress=False)
    n = noop.report["summary"]
    beside = run_eval(EvalConfig(suite="miniwob:click-button,enter-text", out=str(tmp_path / "scripted"),
                                 policy="scripted", resume=True, baseline="noop"), progress=False)
    assert beside.ran == 0  # the scripted episodes were kept; only the baseline ran
    assert beside.report["baseline"]["per_task"] == {"click-button": 0.0, "enter-text": 0.0}
    md = (tmp_path / "scripted" / "report.md").read_text()
    assert "beside the noop baseline (baseline-noop)" in md and "| enter-text | 100.0% | 0.0% | +100.0 pt |" in md
    assert (tmp_path / "scripted" / "baseline-noop" / "report.json").is_file()
    with pytest.raises(ValueError, match="needs no model"):
        EvalConfig(suite="miniwob", out=str(tmp_path / "x"), baseline="scripted")
    assert (n["episodes"], n["successes"], n["outcomes"]) == (2, 0, {"failure": 2})
    assert all(e["steps"] == 1 and e["error"] is None for e in noop.report["episodes"])
    assert "| click-button | 1 | 1 | 0 | 0.0% |" in (tmp_path / "noop" / "report.md").read_text()
    assert _browsers_below_us() == []


def test_crashed_worker_is_a_recorded_failure_and_the_run_completes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    monkeypatch.setenv("EVAL_TEST_RUN", str(run))
    result = run_eval(EvalConfig(suite="miniwob:enter-text", out=str(run), episodes=3, workers=1),
                      progress=False, policy_factory=CrashOnSecondStep)
    by_seed = {e["seed"]: e for e in result.report["episodes"]}
    assert sorted(by_seed) == [10000, 10001, 10002]  # nothing dropped, the worker was replaced
    crashed = by_seed[CRASH_SEED]
    assert (crashed["outcome"], crashed["error_kind"], crashed["success"]) == ("error", "crash", False)
    assert "exited with code 3" in crashed["error"]
    assert by_seed[10000]["success"] and by_seed[10002]["success"]
    episode = read_episode(run / crashed["trajectory"])
    assert episode.status == "complete" and len(episode.steps) == 1  # the step before the crash is kept
    assert result.report["summary"]["crashes"] == 1 and result.report["summary"]["success_rate"] == pytest.approx(2 / 3)
    assert _browsers_below_us() == []


def test_hung_episode_is_killed_as_timeout_and_the_run_completes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_eval(EvalConfig(suite="miniwob:click-button", out=str(run), episodes=2, workers=2, task_timeout_s=30),
                      progress=False, policy_factory=HangForever)
    by_seed = {e["seed"]: e for e in result.report["episodes"]}
    hung = by_seed[HANG_SEED]
    assert (hung["outcome"], hung["error_kind"]) == ("error", "timeout") and "30 s" in hung["error"]
    assert by_seed[10000]["success"]
    assert result.report["summary"]["timeouts"] == 1
    assert len(TrajectoryStore(run).query()) == 2
    assert _browsers_below_us() == []  # the hung worker's Chromium went with it


def test_model_policy_through_a_real_openai_compatible_server_records_tokens(tmp_path: Path) -> None:
    from .responder import ScriptedServer

    # It answers wait() (5 s in UI-TARS) when it sees no green target, as here: MiniWoB's 10 s timer ends it.
    with ScriptedServer() as server:
        result = run_eval(EvalConfig(suite="miniwob:click-button", out=str(tmp_path / "run"), model=server.base_url,
                                     model_name="scripted", output_format="uitars", max_steps=3), progress=False)
        requests = len(server.requests)
    (e,) = result.report["episodes"]
    assert (e["outcome"], e["success"]) == ("failure", False) and e["steps"] == requests >= 1
    assert (e["prompt_tokens"], e["completion_tokens"]) == (100 * requests, 20 * requests) and e["model_s"] > 0
    assert result.report["settings"]["policy"] == f"model:{server.base_url}"


def _episode_dirs(run: Path) -> list[Path]:
    return sorted(p for p in (run / "episodes").iterdir() if p.is_dir())


def test_runner_sigkilled_mid_episode_resumes_without_duplicates(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "agent.cli", "eval", "--suite", "miniwob:login-user,enter-password", "--episodes", "3",
           "--policy", "scripted", "--no-progress", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    partial = None
    deadline = time.monotonic() + 240
    try:
        while partial is None and proc.poll() is None and time.monotonic() < deadline:
            if (run / "episodes").is_dir():
                dirs = _episode_dirs(run)
                done = [d for d in dirs if (d / "DONE").exists()]
                for d in dirs:
                    jsonl = d / "episode.jsonl"
                    if done and not (d / "DONE").exists() and jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 2:
                        partial = d
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert partial is not None, "the runner finished before it could be killed mid-episode"
    assert read_episode(partial).status == "incomplete"
    out = subprocess.run(cmd + ["--resume"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    dirs = _episode_dirs(run)
    assert len(dirs) == 6 and all((d / "DONE").exists() for d in dirs)
    assert len(list((run / "interrupted").iterdir())) == 1
    report = _report(run)
    assert report["summary"]["episodes"] == 6 and report["summary"]["successes"] == 6
    assert len({e["episode_id"] for e in report["episodes"]}) == 6


def test_report_html_opens_in_chromium_with_tables_and_viewer_links(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    run = tmp_path / "run"
    run_eval(EvalConfig(suite="miniwob:click-button,focus-text", out=str(run), policy="scripted"), progress=False)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args, headless=True)
        try:
            page = browser.new_page()
            page.goto((run / "report.html").as_uri())
            assert page.locator("#summary tbody tr").count() == 3  # all, feasible, infeasible
            assert page.locator("#tasks tbody tr").count() == 2
            assert "100.0%" in page.locator("#summary tbody tr").first.inner_text()
            links = page.locator("#episodes tbody tr a")
            assert links.count() == 2
            first = links.first.inner_text()
            links.first.click()
            page.wait_for_load_state()
            assert page.url.endswith("/episode.html") and first in page.title()
            assert page.locator("figure.shot img").count() >= 1
        finally:
            browser.close()
