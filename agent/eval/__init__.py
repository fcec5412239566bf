"""Evaluation: run a suite (MiniWoB++, the desktop suite, OSWorld-format files) with any policy, then report.

``suites`` resolves ``--suite`` into work items; ``runner`` runs them in K worker processes
with per-task timeouts, crash isolation and resume; ``records`` turns finished episodes into
report rows; ``report`` writes ``report.json`` / ``report.md`` / ``report.html``;
``policies`` holds the baselines (noop, random) and the scripted / replay / model policies.
"""

from agent.eval.report import build_report, write_report
from agent.eval.runner import EvalConfig, EvalRun, run_eval
from agent.eval.suites import EvalItem, Suite, resolve_suite

__all__ = ["EvalConfig", "EvalItem", "EvalRun", "Suite", "build_report", "resolve_suite", "run_eval", "write_report"]
