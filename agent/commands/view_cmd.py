"""``pixelpilot view`` (HTML pages of episodes/runs) and ``pixelpilot traj`` (ls / show / reindex / export).

Thin wrappers over ``trajectories``: argument parsing and printing only.
"""

from __future__ import annotations

import argparse
import json
import webbrowser
from pathlib import Path

from trajectories.reader import read_episode
from trajectories.store import EPISODES_DIRNAME, TrajectoryStore
from trajectories.viewer import write_episode_html, write_run_html
from trajectories.writer import JSONL_NAME


def _is_episode(path: Path) -> bool:
    return (path / JSONL_NAME).is_file() or (path.is_file() and path.name == JSONL_NAME)


def _view(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if _is_episode(path):
        out = write_episode_html(path if path.is_dir() else path.parent, args.out, inline=args.inline)
    elif (path / EPISODES_DIRNAME).is_dir():
        with TrajectoryStore(path) as store:
            out = write_run_html(store, args.out, inline=args.inline)
    else:
        print(f"error: {path} is neither an episode directory (with {JSONL_NAME}) nor a run directory "
              f"(with {EPISODES_DIRNAME}/)")
        return 2
    print(out)
    if args.open:
        webbrowser.open(out.resolve().as_uri())
    return 0


def _filters(args: argparse.Namespace) -> dict[str, str]:
    names = {"task": args.task, "suite": args.suite, "outcome": args.outcome, "model": args.model}
    return {k: v for k, v in names.items() if v is not None}


def _ls(args: argparse.Namespace) -> int:
    with TrajectoryStore(args.run) as store:
        rows = store.query(**_filters(args))
    if args.json:
        for r in rows:
            print(json.dumps({**r.__dict__, "path": str(r.path)}))
        return 0
    for r in rows:
        print(f"{r.episode_id:32} {r.outcome:12} reward={r.reward:<5g} steps={r.steps:<4} {r.task_id} [{r.model}]")
    print(f"{len(rows)} episodes")
    return 0


def _show(args: argparse.Namespace) -> int:
    ep = read_episode(args.episode)
    if args.json:
        print(json.dumps({"meta": ep.meta.to_json(), "end": ep.end.to_json() if ep.end else None,
                          "status": ep.status, "torn_tail": ep.torn_tail, "steps": len(ep.steps)}))
        return 0
    m = ep.meta
    print(f"{m.episode_id}: {ep.outcome} reward={ep.end.reward if ep.end else '-'} task={m.task_id} model={m.model}")
    print(f"instruction: {m.instruction}")
    for s in ep.steps:
        action = json.dumps(s.action) if s.action else "-"
        print(f"  {s.index:3d} {action}" + (f"  error: {s.error}" if s.error else ""))
    return 0


def _reindex(args: argparse.Namespace) -> int:
    with TrajectoryStore(args.run) as store:
        report = store.reindex()
    print(f"indexed {report.indexed} episodes")
    for path, why in report.skipped:
        print(f"skipped {path}: {why}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from trajectories.export import export_parquet

    with TrajectoryStore(args.run) as store:
        report = export_parquet(store, args.out, **_filters(args))
    print(f"wrote {report.rows} steps of {report.episodes} episodes to {report.path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="write an HTML page for an episode or a run directory")
    p.add_argument("path", help="an episode directory or a run directory")
    p.add_argument("--out", help="HTML file to write (default: index.html inside PATH)")
    p.add_argument("--inline", action="store_true", help="embed screenshots as data URLs (one portable file)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.set_defaults(func=_view)

    traj = sub.add_parser("traj", help="list, show, reindex and export recorded trajectories")
    tsub = traj.add_subparsers(dest="traj_command", metavar="ACTION", required=True)
    for name, fn, text in (("ls", _ls, "list a run's episodes"), ("export", _export, "steps to Parquet")):
        q = tsub.add_parser(name, help=text)
        q.add_argument("run", help="run directory")
        for flag in ("task", "suite", "outcome", "model"):
            q.add_argument(f"--{flag}", help=f"only episodes with this {flag}")
        q.set_defaults(func=fn)
        if name == "ls":
            q.add_argument("--json", action="store_true", help="one JSON object per line")
        else:
            q.add_argument("--out", required=True, help="Parquet file to write")
    q = tsub.add_parser("show", help="print one episode's steps")
    q.add_argument("episode", help="episode directory")
    q.add_argument("--json", action="store_true", help="print meta/end as JSON")
    q.set_defaults(func=_show)
    q = tsub.add_parser("reindex", help="rebuild a run's index.sqlite from its episode files")
    q.add_argument("run", help="run directory")
    q.set_defaults(func=_reindex)
