"""``pixelpilot collect``: record many episodes in parallel, resumably."""

from __future__ import annotations

import argparse

from agent.collect import SUITES, CollectConfig, collect


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    tasks = tuple(t for t in (args.tasks or "").split(",") if t)
    if not tasks and args.suite == "miniwob":
        from envs.miniwob.experts import EXPERTS

        tasks = tuple(sorted(EXPERTS))
    policy_kwargs = {k: v for k, v in {"model_name": args.model_name, "output_format": args.format}.items() if v}
    config = CollectConfig(out=args.out, tasks=tasks, suite=args.suite, episodes=args.episodes,
                           seed_start=args.seed_start, workers=args.workers, policy=args.policy,
                           policy_kwargs=policy_kwargs, max_steps=args.max_steps, resume=args.resume,
                           redact_passwords=not args.keep_secrets)
    try:
        if args.ray:
            from agent.collect_ray import RayConfig, collect_ray

            summary = collect_ray(config, RayConfig(address=args.ray))
        else:
            summary = collect(config)
    except FileExistsError as exc:
        print(f"error: {exc}")
        return 2
    print(f"collected {summary.collected} episodes in {summary.wall_s:.1f}s ({summary.episodes_per_hour:.0f}/hour); "
          f"skipped {summary.skipped_done} finished, re-queued {summary.requeued_partial} cut-off")
    table = Table(title="success per task")
    table.add_column("task")
    table.add_column("success", justify="right")
    for task, rate in summary.per_task_success.items():
        table.add_row(task, f"{rate:.0%}")
    Console().print(table)
    print(f"outcomes: {summary.outcomes}\nrun: {args.out} (pixelpilot view {args.out})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="collect trajectories in parallel (resumable)")
    p.add_argument("--suite", choices=sorted(SUITES), default="miniwob")
    p.add_argument("--tasks", help="comma-separated task names (default: every task with an expert)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task (seeds seed-start..)")
    p.add_argument("--seed-start", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes, one env each")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the workers as Ray actors: 'local' (a private instance on 127.0.0.1) or the "
                        "'ray://HOST:PORT' / 'HOST:PORT' of a cluster whose nodes have pixelpilot installed")
    p.add_argument("--policy", default="expert",
                   help="'expert' (privileged scripted experts) or a model URL / directory")
    p.add_argument("--model-name", help="model name for an OpenAI-compatible server")
    p.add_argument("--format", help="output format of the model")
    p.add_argument("--max-steps", type=int, default=20)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--keep-secrets", action="store_true",
                   help="keep text typed into password fields (only for synthetic secrets such as MiniWoB's)")
    p.add_argument("--resume", action="store_true", help="continue a run: skip finished episodes, redo cut-off ones")
    p.set_defaults(func=_run)
