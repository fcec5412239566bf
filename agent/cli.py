"""The ``pixelpilot`` command: one entry point, thin sub-commands over library code.

Each sub-command lives in its own module under ``agent.commands`` and exposes
``register(subparsers)``; the explicit list below is the registry (no discovery magic).
A module whose optional dependencies are missing is skipped with a note in ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from envs.errors import PixelPilotError

# Explicit registry of sub-command modules, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "agent.commands.run_cmd",
    "agent.commands.collect_cmd",
    "agent.commands.eval_cmd",
    "agent.commands.envs_cmd",
    "agent.commands.tasks_cmd",
    "agent.commands.view_cmd",
    "agent.commands.miniwob_cmd",
    "agent.commands.serve_cmd",
    "training.cli",
    "agent.commands.cot_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="pixelpilot",
        description="GUI computer-use agent runtime: run, collect, evaluate, train, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    unavailable: list[str] = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # optional extra not installed
            unavailable.append(f"{name.rsplit('.', 1)[-1]} ({exc.name} missing)")
            continue
        module.register(sub)
    if unavailable:
        parser.epilog = "unavailable here: " + ", ".join(unavailable)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen sub-command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except (ValueError, PixelPilotError, FileNotFoundError, FileExistsError) as exc:
        # Bad input: say what was wrong and stop; PIXELPILOT_DEBUG=1 shows the traceback.
        if os.environ.get("PIXELPILOT_DEBUG"):
            raise
        print(f"pixelpilot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
