"""``pixelpilot miniwob list`` and ``pixelpilot demo``: the MiniWoB++ suite from the command line.

``demo`` runs the embedded model (``model.zoo``, trained by ``pixelpilot train --recipe
miniwob-tiny``) from pixels only on held-out seeds (10000 on) of the tasks it was trained on, in
headless Chromium, beside a random-click baseline on the same seeds, through the evaluation
runner: trajectories, ``report.html`` / ``report.md`` / ``report.json`` and a printed success
table. ``demo --experts`` plays the privileged scripted experts (``envs.miniwob.experts``)
instead and writes ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from envs.miniwob import MiniWoBConfig, MiniWoBEnv, list_tasks
from envs.miniwob.experts import EXPERTS, ExpertEpisode, run_expert
from envs.miniwob.report import HELD_OUT_SEED_BASE, TaskSummary, summarize, write_results


def render_table(summaries: Sequence[TaskSummary], title: str = "MiniWoB++ success") -> Table:
    """A rich table with one row per task (and the ``ALL`` row last)."""
    table = Table(title=title)
    table.add_column("task", no_wrap=True)
    for col in ("success", "rate", "mean raw reward", "mean steps", "s/episode"):
        table.add_column(col, justify="right")
    for s in summaries:
        style = "bold" if s.task == "ALL" else ("green" if s.success_rate == 1.0 else "red")
        table.add_row(s.task, f"{s.successes}/{s.episodes}", f"{s.success_rate:.0%}", f"{s.mean_raw_reward:+.2f}",
                      f"{s.mean_steps:.1f}", f"{s.mean_elapsed_s:.2f}", style=style)
    return table


def run_demo(tasks: Sequence[str], seeds: Sequence[int], config: MiniWoBConfig,
             on_episode: Callable[[ExpertEpisode], None] | None = None) -> list[ExpertEpisode]:
    """Play every (task, seed) with its expert in one browser; returns the episodes."""
    episodes = []
    with MiniWoBEnv(config) as env:
        for task in tasks:
            for seed in seeds:
                ep = run_expert(env, task, seed)
                episodes.append(ep)
                if on_episode is not None:
                    on_episode(ep)
    return episodes


def _list(args: argparse.Namespace) -> int:
    for task in list_tasks():
        if not args.experts or task in EXPERTS:
            print(task)
    return 0


def _trained_tasks(model: Path) -> list[str]:
    """Tasks a shipped model was trained on (its ``training.json``), else every task with an expert."""
    info = model / "training.json"
    if info.is_file():
        tasks = json.loads(info.read_text(encoding="utf-8")).get("tasks")
        if isinstance(tasks, list) and tasks:
            return [str(t) for t in tasks]
    return sorted(EXPERTS)


def _model_demo(args: argparse.Namespace) -> int:
    from agent.commands.eval_cmd import baseline_table
    from agent.eval.runner import EvalConfig, run_eval
    from model.zoo import model_dir

    console = Console()
    model = Path(args.model) if args.model else model_dir()
    tasks = args.tasks or _trained_tasks(model)
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    console.print(f"model {model} on {len(tasks)} MiniWoB++ tasks × {args.seeds} held-out seeds "
                  f"(from {args.first_seed}), pixels only; random-click baseline on the same seeds")
    config = EvalConfig(suite="miniwob:" + ",".join(tasks), out=str(out), policy="model", model=str(model),
                        workers=args.workers, max_steps=args.max_steps, episodes=args.seeds,
                        seed_start=args.first_seed, baseline=None if args.no_baseline else "random",
                        env_kwargs={"scale": args.scale})
    run = run_eval(config, progress=True)
    s = run.report["summary"]
    if "baseline" in run.report:
        console.print(baseline_table(run.report))
    console.print(f"success {s['successes']}/{s['evaluated']} = {s['success_rate']:.1%} in {run.wall_s:.1f} s")
    console.print("report: " + ", ".join(str(p) for p in run.report_paths))
    return 0


def _demo(args: argparse.Namespace) -> int:
    if not args.experts:
        return _model_demo(args)
    console = Console()
    tasks = args.tasks or sorted(EXPERTS)
    unknown = [t for t in tasks if t not in EXPERTS]
    if unknown:
        console.print(f"[red]no scripted expert for {unknown}; choose from: {', '.join(sorted(EXPERTS))}")
        return 2
    seeds = [args.first_seed + i for i in range(args.seeds)]
    config = MiniWoBConfig(task=None, scale=args.scale, max_steps=args.max_steps)
    t0 = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("episodes", total=len(tasks) * len(seeds))

        def advance(ep: ExpertEpisode) -> None:
            progress.update(bar, advance=1, description=f"{ep.task} seed {ep.seed}")

        episodes = run_demo(tasks, seeds, config, on_episode=advance)
    wall = time.perf_counter() - t0
    console.print(render_table(summarize(episodes), title="MiniWoB++ scripted experts (held-out seeds)"))
    settings = {"policy": "scripted-experts", "tasks": list(tasks), "seeds": seeds, "scale": args.scale,
                "max_steps": args.max_steps, "wall_s": round(wall, 2)}
    path = write_results(Path(args.out), episodes, settings)
    console.print(f"{len(episodes)} episodes in {wall:.1f} s; results: {path}")
    return 0 if all(ep.success for ep in episodes) else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("miniwob", help="the MiniWoB++ task suite")
    msub = p.add_subparsers(dest="miniwob_command", metavar="ACTION", required=True)
    lp = msub.add_parser("list", help="list every MiniWoB++ task shipped with the miniwob package")
    lp.add_argument("--experts", action="store_true", help="only tasks that have a scripted expert")
    lp.set_defaults(func=_list)

    d = sub.add_parser("demo", help="run the embedded model on held-out MiniWoB++ seeds in headless Chromium "
                                    "beside a random baseline, and report success")
    d.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="tasks to run (default: the model's trained tasks; --experts: every task with an expert)")
    d.add_argument("--model", help="model directory (default: the shipped model, model/zoo/miniwob-tiny)")
    d.add_argument("--experts", action="store_true", help="play the privileged scripted experts instead of a model")
    d.add_argument("--workers", type=int, default=2, help="parallel browsers (model demo)")
    d.add_argument("--no-baseline", action="store_true", help="skip the random-click baseline")
    d.add_argument("--seeds", type=int, default=5, help="episodes per task (default 5)")
    d.add_argument("--first-seed", type=int, default=HELD_OUT_SEED_BASE,
                   help=f"first seed; seeds from {HELD_OUT_SEED_BASE} on are held out from tests and data")
    d.add_argument("--scale", type=float, default=2.0, help="device pixels per CSS pixel (screen = 160x210 × scale)")
    d.add_argument("--max-steps", type=int, default=15, help="step budget per episode")
    d.add_argument("--out", default="runs/demo", help="directory for results.json (default runs/demo)")
    d.set_defaults(func=_demo)
