"""Starting and stopping child processes by PID, and a small poll helper.

Every process the desktop env starts goes through ``spawn`` (its own session, so the
process and everything *it* starts share a process group whose id is its PID) and is
ended by ``stop`` (SIGTERM to that group, wait, then SIGKILL). Nothing here looks
processes up by name, and nothing touches processes this module did not start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def spawn(cmd: Sequence[str], *, env: Mapping[str, str], **popen_kwargs: Any) -> subprocess.Popen:
    """Start ``cmd`` in a new session (process group id == its PID) with ``env``."""
    return subprocess.Popen(list(cmd), env=dict(env), start_new_session=True, **popen_kwargs)


def stop(proc: subprocess.Popen, *, timeout_s: float = 3.0) -> int | None:
    """End ``proc`` and its process group: SIGTERM, wait up to ``timeout_s``, then SIGKILL.

    Safe to call twice and on a process that already exited; always reaps ``proc``.
    Returns its exit code (``None`` only if it could not be reaped).
    """
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                return None
    else:
        # The leader is gone, but children it left in its group may still run.
        _signal_group(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group id is the PID of a process we started with start_new_session=True, so the
    # group holds only that process and its descendants.
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pid_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (reads ``/proc``, no signals sent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # Field 3 (after the parenthesised command name) is the state letter.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def poll_until(check: Callable[[], T | None], *, timeout_s: float, what: str,
               interval_s: float = 0.005, max_interval_s: float = 0.1,
               abort: Callable[[], str | None] | None = None) -> T:
    """Call ``check`` until it returns something other than ``None``/``False``.

    Backs off from ``interval_s`` to ``max_interval_s``. ``abort`` may return a reason to
    stop early (e.g. "Xvfb exited with code 1"). Raises ``TimeoutError`` naming ``what``.
    """
    deadline = time.monotonic() + timeout_s
    interval = interval_s
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if abort is not None:
            reason = abort()
            if reason:
                raise TimeoutError(f"gave up waiting for {what}: {reason}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, max_interval_s)
