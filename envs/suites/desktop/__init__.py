"""The desktop suite: OSWorld-format tasks for light X applications from Debian.

Layout (the same as OSWorld's): ``test_all.json`` maps domain -> task ids, and each task is
``examples/<domain>/<id>.json``. Paths in the files use ``{HOME}``, which ``TaskEnv`` fills with
the session's sandbox home; commands run by a shell use ``~``. Applications: xterm, mousepad,
galculator, pcmanfm (``scripts/setup.sh`` installs them).

``load_suite()`` returns the tasks; ``solutions.SOLUTIONS`` solves each one.
"""

from __future__ import annotations

from pathlib import Path

from envs.tasks.model import Task, load_index, resolve_index

SUITE_DIR = Path(__file__).resolve().parent
INDEX_PATH = SUITE_DIR / "test_all.json"
EXAMPLES_DIR = SUITE_DIR / "examples"


def load_suite(ids: tuple[str, ...] = ()) -> list[Task]:
    """Every task of the suite in index order (only ``ids``, when given)."""
    tasks, missing = resolve_index(load_index(INDEX_PATH), EXAMPLES_DIR)
    if missing:
        raise FileNotFoundError(f"{INDEX_PATH} names tasks without files: {missing}")
    if ids:
        unknown = set(ids) - {t.id for t in tasks}
        if unknown:
            raise KeyError(f"unknown desktop-suite task(s) {sorted(unknown)}; see {INDEX_PATH}")
        tasks = [t for t in tasks if t.id in ids]
    return tasks


__all__ = ["EXAMPLES_DIR", "INDEX_PATH", "SUITE_DIR", "load_suite"]
