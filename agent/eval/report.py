"""The evaluation report: ``report.json`` + ``report.md`` + a self-contained ``report.html``.

Everything is computed from the run's trajectory store (``records.read_records``), so a report
can be rebuilt at any time (``build_report`` + ``write_report``).

Counting rules (documented in the report itself):

- ``success`` is the task's verdict: for OSWorld-format tasks the evaluator's score reaches
  ``envs.tasks.DEFAULT_SUCCESS_THRESHOLD`` (1 − 1e-9: full marks); for MiniWoB++ the task's own
  raw reward is > 0.
- ``setup_error`` episodes (the task's setup failed its postconditions, or hung) are not the
  agent's failures: ``success_rate`` divides by the episodes the agent actually got
  (``evaluated``); ``success_rate_all`` divides by every episode, for OSWorld-style comparison.
- crashed and timed-out episodes count as failures (``error``), never dropped.
- feasible and infeasible tasks are reported separately.

The HTML page embeds its CSS, loads nothing, and links each episode to its viewer page
(``episodes/<id>/episode.html``, written by ``trajectories.viewer``).
"""

from __future__ import annotations

import html
import json
import statistics
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.eval.records import VIEWER_PAGE, EvalRecord, read_records
from agent.eval.suites import EvalItem
from envs.tasks.evaluate import DEFAULT_SUCCESS_THRESHOLD

REPORT_NAMES = ("report.json", "report.md", "report.html")
RULES = (f"success: OSWorld-format tasks need evaluator score >= {DEFAULT_SUCCESS_THRESHOLD!r} (full marks); "
         "MiniWoB++ tasks need raw reward > 0. success_rate excludes setup_error episodes (not the agent's fault); "
         "success_rate_all counts them as failures. Crashes and timeouts count as failures.")


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return statistics.fmean(vals) if vals else 0.0


def group_stats(records: list[EvalRecord]) -> dict[str, Any]:
    """Success and cost figures of a group of episodes (all, one domain, feasible ones, ...)."""
    setup = sum(r.outcome == "setup_error" for r in records)
    evaluated = len(records) - setup
    wins = sum(r.success for r in records)
    kinds = Counter(r.error_kind for r in records if r.error_kind)
    return {
        "episodes": len(records), "evaluated": evaluated, "successes": wins,
        "success_rate": wins / evaluated if evaluated else None,
        "success_rate_all": wins / len(records) if records else None,
        "setup_errors": setup, "timeouts": kinds["timeout"], "crashes": kinds["crash"],
        "exceptions": kinds["exception"], "mean_score": _mean(r.score for r in records),
        "mean_steps": _mean(r.steps for r in records), "mean_wall_s": _mean(r.wall_s for r in records),
        "mean_model_s": _mean(r.model_s for r in records),
        "prompt_tokens": sum(r.prompt_tokens for r in records),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "outcomes": dict(sorted(Counter(r.outcome for r in records).items())),
    }


def _by(records: list[EvalRecord], key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[EvalRecord]] = {}
    for r in records:
        groups.setdefault(str(getattr(r, key)), []).append(r)
    return {k: group_stats(v) for k, v in sorted(groups.items())}


def build_report(out: str | Path, items: list[EvalItem], settings: dict[str, Any]) -> dict[str, Any]:
    """The full report of the run ``out`` over ``items`` (JSON-ready)."""
    records = read_records(out, items)
    found = {r.episode_id for r in records}
    not_run = [i.episode_id for i in items if i.episode_id not in found]
    return {
        "settings": settings, "rules": RULES, "success_threshold": DEFAULT_SUCCESS_THRESHOLD,
        "summary": {**group_stats(records), "not_run": len(not_run)},
        "feasible": group_stats([r for r in records if r.feasible]),
        "infeasible": group_stats([r for r in records if not r.feasible]),
        "per_domain": _by(records, "domain"), "per_task": _by(records, "task_id"),
        "not_run": not_run, "episodes": [r.to_json() for r in records],
    }


def attach_baseline(report: dict[str, Any], baseline: dict[str, Any], where: str) -> dict[str, Any]:
    """``report`` with a ``baseline`` entry: the baseline run's policy, location and success per task.

    ``baseline`` is the report of the same suite and seeds played by a baseline policy
    (``--baseline random``); ``where`` is its directory relative to the report.
    """
    per_task = {task: g["success_rate"] for task, g in baseline["per_task"].items()}
    return {**report, "baseline": {"policy": baseline["settings"]["policy"], "run": where,
                                   "summary": baseline["summary"], "per_task": per_task}}


def baseline_rows(report: dict[str, Any]) -> list[list[str]]:
    base = report["baseline"]
    rows = []
    groups = {**report["per_task"], "ALL": report["summary"]}
    for task, g in groups.items():
        other = base["summary"]["success_rate"] if task == "ALL" else base["per_task"].get(task)
        mine = g["success_rate"]
        diff = "–" if mine is None or other is None else f"{100 * (mine - other):+.1f} pt"
        rows.append([task, _pct(mine), _pct(other), diff])
    return rows


# -- rendering ----------------------------------------------------------------------------------
def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


_GROUP_COLS = (("episodes", "episodes"), ("evaluated", "evaluated"), ("successes", "successes"),
               ("success", "success_rate"), ("success (all)", "success_rate_all"), ("setup errors", "setup_errors"),
               ("timeouts", "timeouts"), ("crashes", "crashes"), ("mean steps", "mean_steps"),
               ("mean s", "mean_wall_s"))
_EPISODE_COLS = ("episode", "task", "domain", "feasible", "seed", "outcome", "score", "steps", "wall s", "model s",
                 "tokens", "error")


def _cell(key: str, value: Any) -> str:
    if key.startswith("success_rate"):
        return _pct(value)
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _group_rows(groups: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[name] + [_cell(k, g[k]) for _, k in _GROUP_COLS] for name, g in groups.items()]


def _episode_row(e: dict[str, Any]) -> list[str]:
    tokens = e["prompt_tokens"] + e["completion_tokens"]
    error = (e["error"] or "").strip().splitlines()
    return [e["episode_id"], e["task_id"], e["domain"], "yes" if e["feasible"] else "no", str(e["seed"]),
            e["outcome"] + (f" ({e['error_kind']})" if e["error_kind"] else ""), f"{e['score']:g}", str(e["steps"]),
            f"{e['wall_s']:.1f}", f"{e['model_s']:.1f}", str(tokens) if tokens else "", error[-1][:160] if error else ""]


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the Markdown and HTML renderers."""
    head = ["group"] + [name for name, _ in _GROUP_COLS]
    overall = {"all": report["summary"], "feasible": report["feasible"], "infeasible": report["infeasible"]}
    sections = [
        ("Overall, feasible and infeasible", head, _group_rows(overall)),
        ("Per domain", ["domain"] + head[1:], _group_rows(report["per_domain"])),
        ("Per task", ["task"] + head[1:], _group_rows(report["per_task"])),
    ]
    if "baseline" in report:
        base = report["baseline"]
        sections.append((f"Per task beside the {base['policy']} baseline ({base['run']})",
                         ["task", report["settings"].get("policy", "policy"), base["policy"], "difference"],
                         baseline_rows(report)))
    return sections


def render_markdown(report: dict[str, Any]) -> str:
    """The report as GitHub Markdown (episode ids link to their viewer pages)."""
    s = report["settings"]
    lines = [f"# Evaluation: {s.get('suite', '')}", "",
             " · ".join(f"**{k}** {v}" for k, v in s.items()), "", f"_{report['rules']}_", ""]
    for title, header, rows in _sections(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["## Episodes", "", "| " + " | ".join(_EPISODE_COLS) + " |", "|" + "---|" * len(_EPISODE_COLS)]
    for e in report["episodes"]:
        row = _episode_row(e)
        row[0] = f"[{row[0]}]({e['viewer']})"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    if report["not_run"]:
        lines += ["", f"Not run ({len(report['not_run'])}): " + ", ".join(report["not_run"])]
    return "\n".join(lines) + "\n"


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1400px;color:#1f2328}
h1{font-size:20px}h2{font-size:16px;margin-top:20px}table{border-collapse:collapse;margin:6px 0}
td,th{border-bottom:1px solid #d0d7de;padding:3px 8px;text-align:left}th{background:#f6f8fa}
td.success{color:#1a7f37;font-weight:600}td.fail{color:#cf222e}p.rules{color:#57606a}"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(table_id: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(report: dict[str, Any]) -> str:
    """A self-contained HTML page: settings, summary tables, and every episode linked to its viewer page."""
    s = report["settings"]
    parts = [f"<h1>Evaluation: {_e(s.get('suite', ''))}</h1>",
             "<p>" + " · ".join(f"<b>{_e(k)}</b> {_e(v)}" for k, v in s.items()) + "</p>",
             f'<p class="rules">{_e(report["rules"])}</p>']
    for (title, header, rows), tid in zip(_sections(report), ("summary", "domains", "tasks", "baseline")):
        parts += [f"<h2>{_e(title)}</h2>", _table(tid, header, [[_e(c) for c in r] for r in rows])]
    episode_rows = []
    for e in report["episodes"]:
        row = [_e(c) for c in _episode_row(e)]
        row[0] = f'<a href="{_e(e["viewer"])}">{row[0]}</a>'
        episode_rows.append(row)
    parts += [f"<h2>Episodes ({len(episode_rows)})</h2>", _table("episodes", list(_EPISODE_COLS), episode_rows)]
    if report["not_run"]:
        parts.append(f"<p>Not run: {_e(', '.join(report['not_run']))}</p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>eval {_e(s.get('suite', ''))}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(out: str | Path, report: dict[str, Any], *, viewer_pages: bool = True) -> tuple[Path, ...]:
    """Write the three report files (and each episode's viewer page) into ``out``; returns their paths."""
    from trajectories.viewer import write_episode_html

    root = Path(out)
    if viewer_pages:
        for e in report["episodes"]:
            write_episode_html(root / e["trajectory"], root / e["trajectory"] / VIEWER_PAGE)
    texts = (json.dumps(report, indent=1, ensure_ascii=False), render_markdown(report), render_html(report))
    paths = []
    for name, text in zip(REPORT_NAMES, texts):
        tmp = root / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(root / name)  # never a half-written report
        paths.append(root / name)
    return tuple(paths)


__all__ = ["REPORT_NAMES", "RULES", "attach_baseline", "baseline_rows", "build_report", "group_stats", "render_html", "render_markdown", "write_report"]
