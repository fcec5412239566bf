"""``pixelpilot eval``: run a suite with a model or a baseline policy and write the report."""

from __future__ import annotations

import argparse
from typing import Any

from agent.eval.runner import BASELINES, ENV_KINDS, EvalConfig, run_eval


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    config = EvalConfig(suite=args.suite, out=args.out, env=args.env, policy=args.policy, model=args.model,
                        model_name=args.model_name, output_format=args.format, workers=args.workers,
                        max_steps=args.max_steps, episodes=args.episodes, seed_start=args.seed_start,
                        task_timeout_s=args.timeout, resume=args.resume, baseline=args.baseline)
    run = run_eval(config, progress=not args.no_progress)
    s = run.report["summary"]

    def pct(rate: float | None) -> str:
        return "-" if rate is None else f"{rate:.1%}"

    console = Console()
    console.print(f"ran {run.ran} episodes in {run.wall_s:.1f}s; skipped {run.skipped_done} finished, "
                  f"re-queued {run.requeued_partial} cut-off")
    console.print(f"success {s['successes']}/{s['evaluated']} = {pct(s['success_rate'])} "
                  f"(all {s['episodes']}: {pct(s['success_rate_all'])}); feasible {pct(run.report['feasible']['success_rate'])}, "
                  f"infeasible {pct(run.report['infeasible']['success_rate'])}; setup errors {s['setup_errors']}, "
                  f"timeouts {s['timeouts']}, crashes {s['crashes']}")
    if "baseline" in run.report:
        b = run.report["baseline"]
        console.print(f"baseline {b['policy']}: success {b['summary']['successes']}/{b['summary']['evaluated']} = "
                      f"{pct(b['summary']['success_rate'])} ({b['run']})")
        console.print(baseline_table(run.report))
    console.print("report: " + ", ".join(str(p) for p in run.report_paths))
    return 0


def baseline_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    from agent.eval.report import baseline_rows

    b = report["baseline"]
    table = Table(title=f"success per task beside the {b['policy']} baseline")
    for col in ("task", report["settings"]["policy"], b["policy"], "difference"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for row in baseline_rows(report):
        table.add_row(*row, style="bold" if row[0] == "ALL" else None)
    return table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a policy on a suite (MiniWoB++, desktop, OSWorld files) and report")
    p.add_argument("--suite", required=True,
                   help="miniwob | miniwob:TASK,... | desktop | desktop:ID,... | index file / task dir / task file")
    p.add_argument("--env", choices=ENV_KINDS, help="environment (default: browser for MiniWoB, desktop otherwise)")
    p.add_argument("--policy", help="scripted | noop | random | replay:RUN_DIR | model (default with --model)")
    p.add_argument("--model", help="OpenAI-compatible server URL or a model directory")
    p.add_argument("--model-name", help="model name on the OpenAI-compatible server")
    p.add_argument("--format", help="output format the model speaks (native, uitars, ...)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, one env each")
    p.add_argument("--max-steps", type=int, default=40, help="step budget per episode (OSWorld uses 15–100)")
    p.add_argument("--episodes", type=int, default=1, help="seeds per task")
    p.add_argument("--seed-start", type=int, help="first seed (default: 10000 for MiniWoB, held out; 0 otherwise)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per episode (setup and scoring included)")
    p.add_argument("--out", required=True, help="run directory (episodes + report)")
    p.add_argument("--resume", action="store_true", help="continue a run: skip finished episodes, redo cut-off ones")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar")
    p.add_argument("--baseline", choices=BASELINES,
                   help="also play the same seeds with this baseline policy (into OUT/baseline-NAME) and "
                        "report each task's success beside it")
    p.set_defaults(func=_run)
