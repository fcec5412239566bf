"""``pixelpilot keys`` and ``pixelpilot action``: inspect the action vocabulary."""

from __future__ import annotations

import argparse
import json

from envs.actions import ACTIONS_BY_KIND, action_from_json, action_to_json
from envs.errors import InvalidActionError
from envs.keys import KEYBOARD_KEYS


def _keys(args: argparse.Namespace) -> int:
    names = sorted(k for k in KEYBOARD_KEYS if len(k) > 1)
    print(" ".join(names))
    return 0


def _action(args: argparse.Namespace) -> int:
    try:
        action = action_from_json(json.loads(args.json))
    except json.JSONDecodeError as exc:
        print(f"error: not JSON ({exc}); example: '{{\"kind\": \"click\", \"x\": 10, \"y\": 20}}'")
        return 2
    except InvalidActionError as exc:
        print(f"error: {exc}")
        return 2
    print(json.dumps(action_to_json(action)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="list the named keys hotkey actions accept")
    p.set_defaults(func=_keys)
    p = sub.add_parser("action", help="validate an action given as JSON and print its canonical form",
                       description=f"Action kinds: {', '.join(sorted(ACTIONS_BY_KIND))}.")
    p.add_argument("json", help='e.g. \'{"kind": "hotkey", "keys": ["ctrl", "c"]}\'')
    p.set_defaults(func=_action)
