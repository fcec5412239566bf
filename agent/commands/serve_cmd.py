"""``pixelpilot serve``: an OpenAI-compatible chat-completions server for a saved model directory.

Thin wrapper over ``model.serve``: parse flags → ``ServerConfig`` → ``ChatServer``. With
``--port 0`` a free port is picked; the line ``serving <name> at http://HOST:PORT/v1`` on stdout
tells clients where to connect (printed once the socket is listening).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from pathlib import Path

# torch/transformers are imported only when the command runs (keeps `pixelpilot --help` fast);
# without them the registry lists the command as unavailable.
for _dep in ("torch", "transformers"):
    if importlib.util.find_spec(_dep) is None:
        raise ImportError(f"pixelpilot serve needs {_dep}: pip install 'pixelpilot[model]'", name=_dep)


def _serve(args: argparse.Namespace) -> int:
    from model.serve import ChatServer, ServerConfig

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ServerConfig(model_dir=Path(args.model), host=args.host, port=args.port, model_name=args.name,
                              api_key=args.api_key, default_max_tokens=min(256, args.max_tokens_limit),
                              max_tokens_limit=args.max_tokens_limit, reasoning=args.reasoning,
                              device=args.device)
        server = ChatServer.from_config(config)
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"serving {config.name} at {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a saved model over an OpenAI-compatible HTTP API",
                       description="POST /v1/chat/completions, GET /v1/models, GET /health.")
    p.add_argument("--model", required=True, help="directory holding config.json, weights and processor files")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one and prints it")
    p.add_argument("--name", default=None, help="model id clients send (default: the directory name)")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (default: accept any)")
    p.add_argument("--max-tokens-limit", type=int, default=4096, help="largest max_tokens a request may ask for")
    p.add_argument("--reasoning", choices=("separate", "inline"), default="separate",
                   help="thinking in message.reasoning_content (separate, default) or as <think>…</think> in content")
    p.add_argument("--device", default="cpu", help="torch device for the model: cpu, cuda, cuda:1, ...")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.set_defaults(func=_serve)
