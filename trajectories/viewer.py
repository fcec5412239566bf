"""Self-contained HTML pages for looking at trajectories: one per episode, one per run.

An episode page shows a header (outcome, reward, instruction, model, ...) and, per step, the
screenshot with the action drawn on top (an SVG overlay whose ``viewBox`` is the screenshot's
pixel grid, so markers sit on the pixels the action names at any display size), the thought,
the action JSON, timings, errors, and the raw model text collapsed. A run page lists the
episodes in a table filterable by outcome and task, linking to the episode pages.

Frames are linked relatively (small pages, frames shared with the run) or inlined as data
URLs (``inline=True``: one file to mail around). Every model- or env-provided string is
HTML-escaped; the page loads nothing from the network (a Content-Security-Policy says so).
"""

from __future__ import annotations

import base64
import html
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from trajectories.reader import Episode, read_episode
from trajectories.schema import FrameRef, Step
from trajectories.store import TrajectoryStore

PAGE_NAME = "index.html"
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_OUTCOME_COLOURS = {"success": "#1a7f37", "failure": "#cf222e", "truncated": "#9a6700", "error": "#8250df",
                    "setup_error": "#8250df", "infeasible": "#0969da", "interrupted": "#6e7781",
                    "incomplete": "#6e7781"}
MARKER_COLOUR = "#ff0000"
DRAG_END_COLOUR = "#0050ff"

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:12px;max-width:1400px;color:#1f2328}
h1{font-size:20px;margin:4px 0}h2{font-size:16px;margin:0 0 6px}
table.meta td{padding:1px 10px 1px 0;vertical-align:top}table.meta td:first-child{color:#57606a}
.badge{color:#fff;border-radius:10px;padding:1px 8px;font-weight:600}
.step{display:flex;flex-wrap:wrap;gap:16px;border-top:1px solid #d0d7de;padding:12px 0}
.shot{position:relative;margin:0;flex:0 1 auto;line-height:0}
.shot img{display:block;width:100%;height:auto;border:1px solid #d0d7de;box-sizing:border-box}
.shot svg{position:absolute;left:0;top:0;width:100%;height:100%;overflow:visible;pointer-events:none}
@media (min-width:900px){.shot{max-width:calc(100% - 340px)}}
.side{flex:1 1 300px;min-width:280px}pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;
padding:6px;margin:4px 0;line-height:1.35}.error{color:#cf222e;font-weight:600}
.warn{background:#fff8c5;padding:6px;border:1px solid #d4a72c}
table.run{border-collapse:collapse;width:100%}table.run td,table.run th{border-bottom:1px solid #d0d7de;
padding:3px 8px;text-align:left}
"""
_CSP = ("default-src 'none'; img-src 'self' data: file:; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str, script: str = "") -> str:
    js = f"<script>{script}</script>" if script else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n{js}</body></html>\n")


def _badge(outcome: str) -> str:
    colour = _OUTCOME_COLOURS.get(outcome, "#6e7781")
    return f'<span class="badge outcome" style="background:{colour}">{_e(outcome)}</span>'


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _frame_src(episode: Episode, ref: FrameRef, out_dir: Path, inline: bool) -> str:
    if inline:
        data = base64.b64encode(episode.frames.read_bytes(ref)).decode("ascii")
        return f"data:{_MIME[ref.format]};base64,{data}"
    rel = os.path.relpath(episode.frame_path(ref), out_dir)
    return quote(Path(rel).as_posix())


# -- markers ----------------------------------------------------------------------------------


def _point(x: int, y: int, r: float, colour: str, role: str) -> str:
    """A solid dot (the exact pixel) inside a ring, so both the spot and its area show."""
    return (f'<circle class="ring" cx="{x}" cy="{y}" r="{r:.1f}" fill="none" stroke="{colour}" '
            f'stroke-width="{r / 3:.1f}"/>'
            f'<circle class="pt {role}" cx="{x}" cy="{y}" r="{r / 2.5:.1f}" fill="{colour}"/>')


def action_markers(action: dict[str, Any] | None, size: tuple[int, int]) -> str:
    """SVG elements (in screenshot pixels) marking where ``action`` (action JSON) acts."""
    if not action:
        return ""
    w, h = size
    r = max(4.0, min(w, h) * 0.015)
    kind = action["kind"]
    attrs = f'class="marker" data-kind="{_e(kind)}"'
    if kind in ("click", "move", "mouse_down", "mouse_up") and action.get("x") is not None:
        x, y = action["x"], action["y"]
        inner = _point(x, y, r, MARKER_COLOUR, "at")
        if kind == "click" and action.get("count", 1) > 1:
            inner += f'<text x="{x + r * 1.3:.1f}" y="{y - r:.1f}" fill="{MARKER_COLOUR}" font-size="{r * 2:.0f}">×{action["count"]}</text>'
        return f'<g {attrs} data-x="{x}" data-y="{y}">{inner}</g>'
    if kind == "drag":
        x1, y1, x2, y2 = action["x1"], action["y1"], action["x2"], action["y2"]
        line = (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{MARKER_COLOUR}" stroke-width="{r / 2:.1f}" '
                f'stroke-dasharray="{r:.1f} {r / 2:.1f}"/>')
        return (f'<g {attrs} data-x1="{x1}" data-y1="{y1}" data-x2="{x2}" data-y2="{y2}">{line}'
                f'{_point(x1, y1, r, MARKER_COLOUR, "from")}{_point(x2, y2, r, DRAG_END_COLOUR, "to")}</g>')
    if kind == "scroll":
        x, y, dx, dy = action["x"], action["y"], action["dx"], action["dy"]
        norm = max(1.0, (dx * dx + dy * dy) ** 0.5)
        ex, ey = x + dx / norm * r * 4, y + dy / norm * r * 4
        arrow = (f'<line x1="{x}" y1="{y}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{MARKER_COLOUR}" '
                 f'stroke-width="{r / 2:.1f}"/><circle cx="{ex:.1f}" cy="{ey:.1f}" r="{r / 2:.1f}" fill="{MARKER_COLOUR}"/>')
        return f'<g {attrs} data-x="{x}" data-y="{y}" data-dx="{dx}" data-dy="{dy}">{arrow}{_point(x, y, r, MARKER_COLOUR, "at")}</g>'
    return ""  # keyboard, wait, done, fail: nothing to point at


# -- episode page -----------------------------------------------------------------------------


def _header(ep: Episode) -> str:
    m, end = ep.meta, ep.end
    duration = f"{end.ended_at - m.started_at:.1f} s" if end else ""
    rows = [("outcome", _badge(ep.outcome)), ("reward", _e(end.reward if end else "")),
            ("instruction", f"<b>{_e(m.instruction)}</b>"), ("task", _e(f"{m.suite}/{m.task_id}" if m.suite else m.task_id)),
            ("model", _e(m.model)), ("policy", _e(m.policy)), ("env", _e(m.env_name)),
            ("steps", _e(len(ep.steps))), ("started", _e(_when(m.started_at))), ("duration", _e(duration)),
            ("seed", _e(m.seed)), ("privileged", _e(m.privileged)), ("code", _e(m.code_version)), ("host", _e(m.hostname))]
    table = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    notes = ""
    if end is not None and end.error:
        notes += f'<details open><summary class="error">episode error</summary><pre>{_e(end.error)}</pre></details>'
    if ep.end is None:
        notes += '<p class="warn">No end record: the writer died or is still running (status incomplete).</p>'
    if ep.torn_tail:
        notes += '<p class="warn">The last line was torn by a crash and was dropped.</p>'
    return f'<header><h1>Episode {_e(m.episode_id)}</h1><table class="meta">{table}</table>{notes}</header>'


def _figure(ep: Episode, ref: FrameRef, action: dict[str, Any] | None, out_dir: Path, inline: bool) -> str:
    w, h = ref.width, ref.height
    src = _frame_src(ep, ref, out_dir, inline)
    return (f'<figure class="shot" style="width:min(100%,{w}px)">'
            f'<img src="{_e(src)}" width="{w}" height="{h}" alt="screenshot {w}x{h}" data-sha256="{ref.sha256}">'
            f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
            f'{action_markers(action, (w, h))}</svg></figure>')


def _step(ep: Episode, step: Step, out_dir: Path, inline: bool) -> str:
    kind = step.action["kind"] if step.action else "no action"
    shot = _figure(ep, step.screenshot, step.action, out_dir, inline) if step.screenshot else ""
    parts = [f"<h2>Step {step.index} · {_e(kind)}</h2>"]
    if step.thought:
        parts.append(f'<div class="thought"><b>Thought</b><pre>{_e(step.thought)}</pre></div>')
    if step.action is not None:
        parts.append(f'<div><b>Action</b><pre class="action">{_e(json.dumps(step.action))}</pre></div>')
    if step.error:
        parts.append(f'<pre class="error">{_e(step.error)}</pre>')
    flags = f"reward {step.reward:g}" + (" · terminated" if step.terminated else "") + (" · truncated" if step.truncated else "")
    timings = " · ".join(f"{_e(k)} {v:.3f}s" for k, v in step.timings.items())
    parts.append(f"<div>{_e(flags)}</div><div class=\"timings\">{timings}</div>")
    if step.raw_text:
        parts.append(f"<details><summary>raw model text</summary><pre class=\"raw\">{_e(step.raw_text)}</pre></details>")
    for name in ("info", "extra"):
        if getattr(step, name):
            parts.append(f"<details><summary>{name}</summary><pre>{_e(json.dumps(getattr(step, name), indent=1))}</pre></details>")
    if step.token_ids is not None:
        parts.append(f"<div>{len(step.token_ids)} tokens</div>")
    return f'<section class="step" id="step-{step.index}" data-index="{step.index}">{shot}<div class="side">{"".join(parts)}</div></section>'


def render_episode(source: Episode | Path | str, *, out_dir: Path | str | None = None, inline: bool = False) -> str:
    """The HTML page of one episode. Frame links are relative to ``out_dir`` (default: the episode dir)."""
    ep = source if isinstance(source, Episode) else read_episode(source)
    base = Path(out_dir).resolve() if out_dir is not None else ep.path.resolve()
    body = [_header(ep)] + [_step(ep, s, base, inline) for s in ep.steps]
    if ep.end is not None and ep.end.final_screenshot is not None:
        body.append(f'<section class="step final"><h2>Final screen</h2>'
                    f'{_figure(ep, ep.end.final_screenshot, None, base, inline)}</section>')
    return _page(f"{ep.meta.episode_id} · {ep.outcome}", "\n".join(body))


def write_episode_html(source: Episode | Path | str, out: Path | str | None = None, *, inline: bool = False) -> Path:
    """Write the episode page (default ``<episode>/index.html``); returns its path."""
    ep = source if isinstance(source, Episode) else read_episode(source)
    target = Path(out) if out is not None else ep.path / PAGE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_episode(ep, out_dir=target.parent, inline=inline), encoding="utf-8")
    return target


# -- run page ---------------------------------------------------------------------------------

_FILTER_JS = """
const sel=document.getElementById('outcome'),txt=document.getElementById('task');
function apply(){const o=sel.value,t=txt.value.toLowerCase();let n=0;
for(const r of document.querySelectorAll('tr.episode')){const show=(!o||r.dataset.outcome===o)&&
(!t||r.dataset.task.toLowerCase().includes(t));r.hidden=!show;if(show)n++;}
document.getElementById('shown').textContent=n;}
sel.addEventListener('change',apply);txt.addEventListener('input',apply);apply();
"""


def render_run(store: TrajectoryStore, *, out_dir: Path | str | None = None, **filters: Any) -> str:
    """The HTML table of a run's episodes (``filters`` as in ``store.query``), linking to episode pages."""
    base = Path(out_dir).resolve() if out_dir is not None else store.root.resolve()
    rows = store.query(**filters)
    counts: dict[str, int] = {}
    lines = []
    for r in rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
        href = quote(Path(os.path.relpath(r.path / PAGE_NAME, base)).as_posix())
        duration = f"{r.ended_at - r.started_at:.1f}" if r.ended_at is not None else ""
        lines.append(f'<tr class="episode" data-outcome="{_e(r.outcome)}" data-task="{_e(r.task_id)}">'
                     f'<td><a href="{_e(href)}">{_e(r.episode_id)}</a></td><td>{_e(r.suite)}</td><td>{_e(r.task_id)}</td>'
                     f'<td>{_badge(r.outcome)}</td><td>{r.reward:g}</td><td>{r.steps}</td><td>{_e(r.model)}</td>'
                     f'<td>{_e(r.policy)}</td><td>{_e(_when(r.started_at))}</td><td>{duration}</td></tr>')
    options = "".join(f'<option value="{_e(o)}">{_e(o)} ({n})</option>' for o, n in sorted(counts.items()))
    summary = " · ".join(f"{_e(o)}: {n}" for o, n in sorted(counts.items()))
    body = (f"<h1>Run {_e(store.root.name)}</h1><p>{len(rows)} episodes — {summary}</p>"
            f'<p><label>outcome <select id="outcome"><option value="">all</option>{options}</select></label> '
            f'<label>task <input id="task" placeholder="filter"></label> showing <span id="shown">{len(rows)}</span></p>'
            "<table class=\"run\"><thead><tr><th>episode</th><th>suite</th><th>task</th><th>outcome</th><th>reward</th>"
            "<th>steps</th><th>model</th><th>policy</th><th>started</th><th>seconds</th></tr></thead><tbody>"
            + "".join(lines) + "</tbody></table>")
    return _page(f"run {store.root.name}", body, _FILTER_JS)


def write_run_html(store: TrajectoryStore, out: Path | str | None = None, *, inline: bool = False,
                   **filters: Any) -> Path:
    """Write every episode page (``<episode>/index.html``) and the run page (default ``<run>/index.html``)."""
    for row in store.query(**filters):
        write_episode_html(row.path, inline=inline)
    target = Path(out) if out is not None else store.root / PAGE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_run(store, out_dir=target.parent, **filters), encoding="utf-8")
    return target


__all__ = ["action_markers", "render_episode", "render_run", "write_episode_html", "write_run_html"]
