"""Support report: can each task's setup steps, getters and metrics run here, and are its apps installed?

``check_task`` inspects one ``Task`` without running anything; ``summarize`` aggregates per
domain. A task is *fully supported* when every setup/postconfig step type, getter and metric it
needs is implemented; it is *runnable here* when, in addition, the programs it needs are on
``PATH`` and every remote resource (downloads, cloud files, tabs) is available under the fetch
policy (a local mirror; see ``envs.tasks.fetch``).
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from envs.tasks.evaluate import missing_pieces
from envs.tasks.fetch import FetchPolicy, is_local_url
from envs.tasks.model import Task
from envs.tasks.setup_steps import ChromeTabsStep, DownloadStep, LaunchStep, SetupStep, step_support

# related_apps value (lower-cased) -> programs, any of which provides the app. Unlisted names
# ("os", "pdf", "image") need no particular program.
APP_BINARIES: dict[str, tuple[str, ...]] = {
    "chrome": ("google-chrome", "chromium"), "browser": ("google-chrome", "chromium"),
    "libreoffice": ("libreoffice", "soffice"), "libreoffice_calc": ("libreoffice", "soffice"),
    "libreoffice calc": ("libreoffice", "soffice"), "calc": ("libreoffice", "soffice"),
    "libreoffice_writer": ("libreoffice", "soffice"), "writer": ("libreoffice", "soffice"),
    "libreoffice_impress": ("libreoffice", "soffice"), "gimp": ("gimp",), "vscode": ("code",), "vs_code": ("code",),
    "thunderbird": ("thunderbird",), "vlc": ("vlc",), "ubuntu_media_player": ("vlc", "totem"),
    "terminal": ("gnome-terminal", "xterm"), "picard": ("picard",),
}
# Programs launched by setup steps that a stand-in provides here (google-chrome -> chromium).
PROGRAM_ALTERNATIVES: dict[str, tuple[str, ...]] = {"google-chrome": ("google-chrome", "chromium")}


@dataclass(frozen=True)
class AppStatus:
    name: str
    candidates: tuple[str, ...]
    found: str | None  # the first candidate on PATH


@dataclass(frozen=True)
class TaskSupport:
    id: str
    domain: str
    feasible: bool
    missing: tuple[str, ...]  # "step:TYPE (reason)", "getter:NAME", "metric:NAME"
    apps: tuple[AppStatus, ...]
    remote_urls: tuple[str, ...]
    unavailable_urls: tuple[str, ...]

    @property
    def fully_supported(self) -> bool:
        return not self.missing

    @property
    def missing_apps(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.apps if a.found is None)

    @property
    def runnable_here(self) -> bool:
        return self.fully_supported and not self.missing_apps and not self.unavailable_urls

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "domain": self.domain, "feasible": self.feasible,
                "fully_supported": self.fully_supported, "runnable_here": self.runnable_here,
                "missing": list(self.missing), "missing_apps": list(self.missing_apps),
                "apps": {a.name: a.found for a in self.apps},
                "remote_hosts": sorted({urllib.parse.urlsplit(u).hostname or "" for u in self.remote_urls}),
                "remote_urls": len(self.remote_urls), "unavailable_urls": len(self.unavailable_urls)}


def _program(step: LaunchStep) -> str | None:
    words = step.command.split() if isinstance(step.command, str) else list(step.command)
    words = [w for w in words if "=" not in w.split("/")[0]]  # drop leading VAR=value assignments
    return words[0].rsplit("/", 1)[-1] if words else None


def _urls(steps: Iterable[SetupStep], task: Task) -> list[str]:
    urls: list[str] = []
    for step in steps:
        if isinstance(step, DownloadStep):
            urls.extend(f.url for f in step.files)
        elif isinstance(step, ChromeTabsStep):
            urls.extend(step.urls)
    for call in task.evaluator.calls:
        for spec in (call.result, call.expected):
            if spec is not None and spec.type == "cloud_file":
                path = spec.get("path")
                urls.extend(path if isinstance(path, list) else [path])
    return [u for u in urls if isinstance(u, str)]


def _apps(task: Task, steps: list[SetupStep], which: Callable[[str], str | None]) -> tuple[AppStatus, ...]:
    wanted: dict[str, tuple[str, ...]] = {}
    for app in task.related_apps:
        cands = APP_BINARIES.get(app.lower())
        if cands:
            wanted.setdefault(app.lower(), cands)
    for step in steps:
        prog = _program(step) if isinstance(step, LaunchStep) else None
        if prog and not step.shell:
            wanted.setdefault(prog, PROGRAM_ALTERNATIVES.get(prog, (prog,)))
    unique = {cands: name for name, cands in reversed(list(wanted.items()))}  # one entry per program set
    return tuple(AppStatus(name, cands, next((c for c in cands if which(c)), None)) for cands, name in unique.items())


def check_task(task: Task, fetch: FetchPolicy | None = None,
               which: Callable[[str], str | None] = shutil.which) -> TaskSupport:
    """What ``task`` needs that is missing here (nothing is run)."""
    policy = fetch or FetchPolicy()
    steps = list(task.config) + list(task.evaluator.postconfig)
    missing = [f"step:{s.type} ({reason})" for s in steps if (reason := step_support(s)) is not None]
    missing += missing_pieces(task.evaluator)
    remote = [u for u in _urls(steps, task) if not is_local_url(u)]
    unavailable = [u for u in remote if not policy.available(u)]
    return TaskSupport(task.id, task.domain, task.feasible, tuple(dict.fromkeys(missing)), _apps(task, steps, which),
                       tuple(remote), tuple(unavailable))


@dataclass(frozen=True)
class DomainSummary:
    domain: str
    total: int
    feasible: int
    fully_supported: int
    runnable_here: int
    top_missing: tuple[tuple[str, int], ...]


def summarize(reports: Iterable[TaskSupport], top: int = 5) -> list[DomainSummary]:
    """Per-domain counts, sorted by domain, plus an ``ALL`` row at the end."""
    by_domain: dict[str, list[TaskSupport]] = {}
    for r in reports:
        by_domain.setdefault(r.domain or "-", []).append(r)

    def row(name: str, rs: list[TaskSupport]) -> DomainSummary:
        counts = Counter(m.split(" (")[0] for r in rs for m in r.missing)
        counts.update(f"app:{a}" for r in rs for a in r.missing_apps)
        counts.update("remote file (no mirror)" for r in rs if r.unavailable_urls)
        return DomainSummary(name, len(rs), sum(r.feasible for r in rs), sum(r.fully_supported for r in rs),
                             sum(r.runnable_here for r in rs), tuple(counts.most_common(top)))

    rows = [row(d, rs) for d, rs in sorted(by_domain.items())]
    rows.append(row("ALL", [r for rs in by_domain.values() for r in rs]))
    return rows
