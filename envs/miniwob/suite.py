"""The MiniWoB++ task suite as shipped in the ``miniwob`` wheel.

Every ``miniwob/html/miniwob/<task>.html`` is one task and runs straight from ``file://``
(the FlightWoB pages under ``html/flight/`` need a web server and are not listed). This
module only finds files; it does not start a browser.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from envs.errors import EnvSetupError


@functools.lru_cache(maxsize=1)
def html_dir() -> Path:
    """``.../miniwob/html/miniwob`` of the installed ``miniwob`` package."""
    try:
        import miniwob
    except ImportError as exc:
        raise EnvSetupError("MiniWoB++ tasks need the miniwob package: pip install 'pixelpilot[browser]'") from exc
    path = Path(miniwob.__file__).resolve().parent / "html" / "miniwob"
    if not path.is_dir():
        raise EnvSetupError(f"the installed miniwob package has no task HTML at {path}; reinstall miniwob>=1.0")
    return path


@functools.lru_cache(maxsize=1)
def list_tasks() -> tuple[str, ...]:
    """Names of every MiniWoB++ task (``click-button``, ...), sorted."""
    return tuple(sorted(p.stem for p in html_dir().glob("*.html")))


def task_path(task: str) -> Path:
    """The HTML file of ``task``; ``EnvSetupError`` naming close matches if there is none."""
    tasks = list_tasks()
    if task not in tasks:
        close = difflib.get_close_matches(task, tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `pixelpilot miniwob list` shows them all"
        raise EnvSetupError(f"unknown MiniWoB++ task {task!r}{hint}")
    return html_dir() / f"{task}.html"


def task_url(task: str) -> str:
    """``file://`` URL of ``task``."""
    return task_path(task).as_uri()
