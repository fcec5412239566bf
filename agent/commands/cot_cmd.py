"""``pixelpilot cot``: rewrite a run with synthesized reflective chain-of-thought (``trajectories.cot``)."""

from __future__ import annotations

import argparse
import json

from agent.teachers import NativeSyntax, make_teacher
from trajectories.cot import REPORT_NAME, CoTConfig, synthesize_run


def _levels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--levels takes comma-separated numbers from 1,2,3, got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    thought_level = args.thought_level or (2 if 2 in args.levels else max(args.levels))
    config = CoTConfig(levels=args.levels, thought_level=thought_level, tolerance_px=args.tolerance,
                       seed=args.seed, resume=args.resume, progress=not args.quiet)
    teacher = make_teacher(args.teacher, model_name=args.model_name, seed=args.seed, max_tokens=args.max_tokens,
                           send_after=not args.before_only)
    report = synthesize_run(args.inp, args.out, teacher, NativeSyntax(), config)
    print(f"{report.episodes} episodes, {report.steps} steps: kept {report.kept}, dropped {report.dropped} "
          f"(inconsistent), {report.train} for training; labels {report.labels}")
    if report.drop_reasons:
        print(f"drop reasons: {json.dumps(report.drop_reasons)}")
    print(f"report: {args.out}/{REPORT_NAME}\nrun: {args.out} (pixelpilot view {args.out})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cot", help="synthesize reflective chain-of-thought for a recorded run (writes a new run)")
    p.add_argument("--in", dest="inp", required=True, help="run directory to read (from pixelpilot collect)")
    p.add_argument("--out", required=True, help="new run directory to write")
    p.add_argument("--teacher", default="expert",
                   help="'expert' (offline: recorded rationales + frame facts), an OpenAI-compatible URL, "
                        "or a model directory")
    p.add_argument("--model-name", help="model name on an OpenAI-compatible server")
    p.add_argument("--levels", type=_levels, default=(1, 2, 3),
                   help="levels to write: 1 action, 2 thought+action, 3 observation+thought+action (default 1,2,3)")
    p.add_argument("--thought-level", type=int, choices=(1, 2, 3),
                   help="level whose thought becomes step.thought (default 2)")
    p.add_argument("--tolerance", type=float, default=8.0,
                   help="pixels a teacher's point may be off the recorded one (default 8)")
    p.add_argument("--max-tokens", type=int, help="reply budget of a model teacher")
    p.add_argument("--before-only", action="store_true", help="send model teachers only the screenshot before the action")
    p.add_argument("--seed", type=int, default=0, help="varies the expert teacher's phrasings")
    p.add_argument("--resume", action="store_true", help="keep finished episodes of --out and do the rest")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
