"""``pixelpilot tasks check PATH``: which OSWorld-style tasks can run here, and what is missing.

PATH is a task file, a directory of task files, or an index file (``{"domain": [ids]}``) whose
tasks live in ``--examples`` (default: ``examples/`` next to the index). Prints a per-domain
table and optionally writes every task's report as JSON (``--json OUT``). Files that do not
load are reported with their error, never skipped silently.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from envs.tasks.check import TaskSupport, check_task, summarize
from envs.tasks.errors import TaskFormatError
from envs.tasks.fetch import FetchPolicy
from envs.tasks.model import Task, load_index, load_task


def _load(path: Path, examples: Path | None) -> tuple[list[Task], list[str], list[str]]:
    """(tasks, load errors, index entries without a file)."""
    tasks: list[Task] = []
    errors: list[str] = []
    missing: list[str] = []
    if path.is_dir():
        files = [(p, None) for p in sorted(path.rglob("*.json"))]
    else:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [], [f"{path}: {exc}"], []
        if isinstance(raw, dict) and "evaluator" not in raw:  # an index file
            index = load_index(path)
            root = examples or path.parent / "examples"
            files = []
            for domain, task_id in index.entries():
                p = root / domain / f"{task_id}.json"
                if p.is_file():
                    files.append((p, domain))
                else:
                    missing.append(f"{domain}/{task_id}")
        else:
            files = [(path, None)]
    for p, domain in files:
        try:
            tasks.append(load_task(p, domain))
        except TaskFormatError as exc:
            errors.append(str(exc))
    return tasks, errors, missing


def _print(reports: list[TaskSupport], errors: list[str], missing: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="OSWorld task support here")
    for col in ("domain", "total", "feasible", "fully supported", "runnable here", "top missing pieces"):
        table.add_column(col, justify="right" if col not in ("domain", "top missing pieces") else "left")
    rows = summarize(reports, top=3)
    for i, s in enumerate(rows):
        tops = ", ".join(f"{name} ×{n}" for name, n in s.top_missing) or "-"
        table.add_row(s.domain, str(s.total), str(s.feasible), str(s.fully_supported), str(s.runnable_here), tops,
                      end_section=i == len(rows) - 2)
    console = Console() if Console().is_terminal else Console(width=150)
    console.print(table)
    for e in errors:
        console.print(f"[red]load error[/red] {e}")
    if missing:
        console.print(f"[yellow]{len(missing)} index entries have no task file[/yellow]: {', '.join(missing[:10])}")


def _check(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        print(f"error: {path} does not exist; pass a task file, a directory of task files or an index file")
        return 2
    tasks, errors, missing = _load(path, Path(args.examples) if args.examples else None)
    policy = FetchPolicy(Path(args.mirror) if args.mirror else None)
    reports = [check_task(t, policy) for t in tasks]
    _print(reports, errors, missing)
    if args.json:
        out: dict[str, Any] = {
            "path": str(path), "tasks": [r.to_json() for r in reports], "load_errors": errors,
            "missing_index_entries": missing,
            "summary": [{"domain": s.domain, "total": s.total, "feasible": s.feasible,
                         "fully_supported": s.fully_supported, "runnable_here": s.runnable_here,
                         "top_missing": [list(m) for m in s.top_missing]} for s in summarize(reports)],
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 1 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="inspect OSWorld-style task files")
    tsub = p.add_subparsers(dest="tasks_command", metavar="ACTION", required=True)
    c = tsub.add_parser("check", help="report which tasks' setup steps, getters, metrics and apps are supported here")
    c.add_argument("path", help="a task file, a directory of task files, or an index file")
    c.add_argument("--examples", help="examples directory for an index file (default: PATH's folder/examples)")
    c.add_argument("--mirror", help="local mirror of remote task files (MIRROR/<host>/<path>)")
    c.add_argument("--json", metavar="OUT", help="write every task's report and the summary as JSON")
    c.set_defaults(func=_check)
