"""The HTML viewer, checked in real headless Chromium: markers sit on the pixels actions name."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from envs.actions import Click, Done, Drag, Hotkey, Scroll
from tests.trajectories.helpers import make_meta
from trajectories.store import TrajectoryStore
from trajectories.viewer import render_episode, write_episode_html, write_run_html
from trajectories.writer import WriterConfig

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
W, H = 400, 300
GREY = 128


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _run(tmp_path: Path) -> TrajectoryStore:
    store = TrajectoryStore(tmp_path / "run", config=WriterConfig(fsync=False))
    grey = np.full((H, W, 3), GREY, np.uint8)
    with store.new_episode(make_meta("viewed", "task-x", model="tiny")) as w:
        w.add_step(grey, action=Click(300, 60), thought="<script>alert('x')</script> & click", raw_text="RAW-TEXT")
        w.add_step(grey, action=Drag(40, 250, 360, 200), timings={"model_s": 0.25})
        w.add_step(grey, action=Scroll(200, 150, dy=3))
        w.add_step(grey, action=Hotkey(("ctrl", "s")), error="env said: <no window>")
        w.add_step(grey, action=Done(), terminated=True)
        w.finish("failure", 0.0, final_screenshot=grey)
    with store.new_episode(make_meta("other", "task-y")) as w:
        w.finish("success", 1.0)
    return store


EXPECTED = {  # step index → [(role, x, y)] in screenshot pixels
    0: [("at", 300, 60)],
    1: [("from", 40, 250), ("to", 360, 200)],
    2: [("at", 200, 150)],
}

MEASURE_JS = """() => [...document.querySelectorAll('section.step[data-index]')].flatMap(sec => {
  const img = sec.querySelector('img'); if (!img) return [];
  const ir = img.getBoundingClientRect();
  return [...sec.querySelectorAll('circle.pt')].map(c => { const r = c.getBoundingClientRect();
    return {step: +sec.dataset.index, role: c.classList[1], cx: r.left + r.width / 2, cy: r.top + r.height / 2,
            left: ir.left, top: ir.top, width: ir.width, height: ir.height, natural: img.naturalWidth}; });
})"""


@pytest.mark.integration
def test_markers_are_drawn_where_the_actions_are(tmp_path: Path, browser: Any) -> None:
    from PIL import Image

    store = _run(tmp_path)
    page_path = write_episode_html(store.open("viewed").path)
    page = browser.new_page(viewport={"width": 330, "height": 4000}, device_scale_factor=1)
    try:
        page.goto(page_path.as_uri())
        page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        points = page.evaluate(MEASURE_JS)
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"))
        assert page.locator("script").count() == 0  # the model's <script> is text, not markup
        assert "<script>alert('x')</script> & click" in page.locator("section#step-0 .thought pre").inner_text()
        assert not page.locator("pre.raw").is_visible()  # raw text starts collapsed
        assert "<no window>" in page.locator("section#step-3 pre.error").inner_text()
        assert page.locator("section#step-3 circle.pt").count() == 0  # keyboard actions point nowhere
    finally:
        page.close()
    got = {(p["step"], p["role"]): p for p in points}
    assert len(got) == 4
    for step, marks in EXPECTED.items():
        for role, x, y in marks:
            p = got[(step, role)]
            assert p["natural"] == W and 0.5 < p["width"] / W < 0.9  # the screenshot really is scaled down
            ex, ey = p["left"] + x * p["width"] / W, p["top"] + y * p["height"] / H
            assert abs(p["cx"] - ex) < 1.0 and abs(p["cy"] - ey) < 1.0, (step, role, p, ex, ey)
            r, g, b = shot[round(ey), round(ex)]
            colour = (0, 80, 255) if role == "to" else (255, 0, 0)
            assert abs(int(r) - colour[0]) < 40 and abs(int(g) - colour[1]) < 40 and abs(int(b) - colour[2]) < 40, \
                (step, role, (r, g, b))
    p = got[(0, "at")]  # away from every marker the screenshot itself shows
    assert tuple(shot[round(p["top"] + 10), round(p["left"] + 10)]) == (GREY, GREY, GREY)


@pytest.mark.integration
def test_run_page_filters_and_links(tmp_path: Path, browser: Any) -> None:
    store = _run(tmp_path)
    run_page = write_run_html(store)
    page = browser.new_page()
    try:
        page.goto(run_page.as_uri())
        assert page.locator("tr.episode:visible").count() == 2
        page.select_option("#outcome", "failure")
        assert page.locator("tr.episode:visible").count() == 1 and page.inner_text("#shown") == "1"
        page.fill("#task", "task-y")
        assert page.locator("tr.episode:visible").count() == 0
        page.select_option("#outcome", "")
        page.click("text=other")
        assert page.locator("h1").inner_text() == "Episode other"
        assert page.locator(".outcome").first.inner_text() == "success"
    finally:
        page.close()


@pytest.mark.integration
def test_inline_page_needs_no_files(tmp_path: Path, browser: Any) -> None:
    store = _run(tmp_path)
    html = render_episode(store.open("viewed"), inline=True)
    assert 'src="data:image/png;base64,' in html and "frames/" not in html
    page = browser.new_page()
    try:
        page.set_content(html)
        assert page.evaluate("() => [...document.images].every(i => i.naturalWidth === 400)")
        assert page.locator("img").count() == 6
    finally:
        page.close()
