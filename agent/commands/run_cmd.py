"""``pixelpilot run "<prompt>"``: one episode on a desktop or in a browser, recorded and viewable."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agent.factory import ENV_FACTORIES, make_env, make_policy
from agent.loop import LoopConfig, run_episode
from agent.recording import StoreRecorders
from agent.risk import RISK_CATEGORIES, RiskConfig, ask_on_terminal
from trajectories.schema import Step


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x800, got {text!r}") from None
    return w, h


def _live_table(steps: list[Step], prompt: str, status: str):  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"pixelpilot run: {prompt[:70]}", caption=status)
    for col in ("step", "action", "thought", "model s", "error"):
        table.add_column(col, overflow="fold")
    for s in steps[-12:]:
        action = s.action or {}
        text = " ".join(f"{k}={v}" for k, v in action.items() if k != "kind")
        table.add_row(str(s.index), f"{action.get('kind', '-')} {text}"[:60], (s.thought or "")[:60],
                      f"{s.timings.get('model_s', 0):.2f}", (s.error or "")[:50])
    return table


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from trajectories.store import TrajectoryStore

    console = Console()
    policy = make_policy(args.model, model_name=args.model_name, output_format=args.format, resize=args.resize,
                         history_images=args.history_images, max_tokens=args.max_tokens)
    env_kwargs = {"size": args.size, "max_steps": args.max_steps}
    options = {"url": args.url} if args.env == "browser" and args.url else {}
    if args.env == "desktop" and args.launch:
        env_kwargs["launch"] = (tuple(args.launch.split()),)
    out = Path(args.out or f"runs/run-{time.strftime('%Y%m%d-%H%M%S')}")
    store = TrajectoryStore(out)
    loop_cfg = LoopConfig(max_steps=args.max_steps, dry_run=args.dry_run,
                          risk=RiskConfig(confirm=frozenset(args.confirm or ()), redact_passwords=not args.keep_secrets))
    steps: list[Step] = []
    with make_env(args.env, **env_kwargs) as env, Live(_live_table(steps, args.prompt, "starting"), console=console,
                                                       refresh_per_second=4) as live:
        recorder = StoreRecorders(store, env, policy, task_id="adhoc", suite="run",
                                  run_config={"argv": vars(args) | {"func": None}})

        def on_step(step: Step) -> None:
            steps.append(step)
            live.update(_live_table(steps, args.prompt, f"step {step.index + 1}/{args.max_steps}"))

        result = run_episode(env, policy, recorder=recorder, config=loop_cfg, options=options,
                             instruction=args.prompt, confirm=ask_on_terminal, on_step=on_step)
        live.update(_live_table(steps, args.prompt, f"{result.outcome} after {result.steps} steps"))
    path = recorder.made[0].path if recorder.made else out
    console.print(f"[bold]{result.outcome}[/bold] reward={result.reward} steps={result.steps}"
                  + (f" error={result.error}" if result.error else ""))
    console.print(f"trajectory: {path}\nview it: pixelpilot view {path}")
    store.close()
    return 0 if result.outcome in ("success", "infeasible") else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the agent on a prompt in a desktop or browser env",
                       description="Run one episode: screenshots → model → actions until done, recorded to --out.")
    p.add_argument("prompt", help="what the agent should do")
    p.add_argument("--env", choices=sorted(ENV_FACTORIES), default="desktop")
    p.add_argument("--model", required=True,
                   help="http(s) URL of an OpenAI-compatible server (…/v1) or a local model directory")
    p.add_argument("--model-name", help="model name to request from the server (default: pixelpilot)")
    p.add_argument("--format", help="output format the model speaks: native, uitars, opencua, qwen, computer13")
    p.add_argument("--resize", help="image resize rule: native | smart | smart:MAX_PIXELS | max_side:N")
    p.add_argument("--size", type=_size, default=(1280, 800), help="screen size WxH (default 1280x800)")
    p.add_argument("--url", help="browser env: the page to open first")
    p.add_argument("--launch", help="desktop env: command to start on the display, e.g. 'xterm'")
    p.add_argument("--max-steps", type=int, default=15)
    p.add_argument("--max-tokens", type=int, help="reply budget (default: the model directory's agent.json, else 512)")
    p.add_argument("--history-images", type=int,
                   help="screenshots of earlier steps kept in context (default: agent.json, else 3)")
    p.add_argument("--confirm", nargs="*", choices=RISK_CATEGORIES,
                   help="ask before risky actions of these kinds")
    p.add_argument("--keep-secrets", action="store_true", help="do not redact text typed into password fields")
    p.add_argument("--dry-run", action="store_true", help="ask the model and record, but do not act")
    p.add_argument("--out", help="run directory (default runs/run-TIMESTAMP)")
    p.set_defaults(func=_run)
