"""``PageView``: PRIVILEGED read access to a MiniWoB++ page, for scripted experts.

Experts may look at the DOM and the task's JavaScript state to decide *where* to act, but
they act only through pixel actions on ``env.step`` — like an agent that sees the screen.
``PageView`` turns DOM elements into ``Element`` records whose ``center`` is already in
screenshot pixels (CSS × scale), so an expert never handles CSS coordinates. Nothing here
sends input to the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.browser.capture import css_to_pixel
from envs.miniwob.env import MiniWoBEnv

# For each element matching the selector: text, box, form state, and a point where a click
# lands on it (not covered by something else, inside the viewport).
_ELEMENTS_JS = """(selector) => Array.from(document.querySelectorAll(selector)).map(el => {
  const r = el.getBoundingClientRect();
  const style = window.getComputedStyle(el);
  const hits = (x, y) => {
    if (x < 0 || y < 0 || x >= window.innerWidth || y >= window.innerHeight) { return false; }
    const top = document.elementFromPoint(x, y);
    return !!top && (top === el || el.contains(top) || top.contains(el));
  };
  // The centre if a click there reaches the element, else the uncovered point nearest to it
  // on a 1-CSS-pixel grid (overlapping widgets), else the centre marked as not hit.
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  let px = cx, py = cy, hit = hits(cx, cy), best = Infinity;
  for (let y = Math.floor(r.top) + 0.5; !hit && y < r.bottom; y += 1) {
    for (let x = Math.floor(r.left) + 0.5; x < r.right; x += 1) {
      const d = (x - cx) ** 2 + (y - cy) ** 2;
      if (d < best && y > r.top && x > r.left && hits(x, y)) { best = d; px = x; py = y; }
    }
  }
  hit = hit || best < Infinity;
  const inView = r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0 && r.left < window.innerWidth && r.top < window.innerHeight;
  return {
    tag: el.tagName.toLowerCase(), id: el.id || '', classes: String(el.className || ''),
    text: (el.innerText !== undefined ? el.innerText : el.textContent || '').replace(/\\s+/g, ' ').trim(),
    left: r.left, top: r.top, width: r.width, height: r.height, px: px, py: py,
    visible: inView && style.visibility !== 'hidden' && style.display !== 'none',
    hit: hit, checked: el.checked === true, value: el.value === undefined ? null : String(el.value),
    focused: document.activeElement === el,
  };
})"""


@dataclass(frozen=True)
class Element:
    """One DOM element as an expert sees it.

    ``center`` (screenshot pixels) is the box centre, or, when something covers the centre,
    an uncovered point of the element; ``hit`` says whether a click there reaches it.
    """

    tag: str
    id: str
    classes: str
    text: str
    box_css: tuple[float, float, float, float]  # left, top, width, height
    center: tuple[int, int]
    visible: bool
    hit: bool
    checked: bool
    value: str | None
    focused: bool

    def describe(self) -> str:
        """Short human-readable description for rationales: ``<button> "Submit" at (80, 120)``."""
        label = f' "{self.text}"' if self.text else (f" #{self.id}" if self.id else "")
        return f"<{self.tag}>{label} at {self.center}"


class PageView:
    """Privileged DOM access to the page of a running ``MiniWoBEnv``."""

    def __init__(self, env: MiniWoBEnv) -> None:
        self.env = env

    @property
    def utterance(self) -> str:
        """The task instruction (``core.getUtterance()``)."""
        return self.env.instruction

    def js(self, expression: str) -> Any:
        """Evaluate a trusted JavaScript expression (project code only) in the page."""
        return self.env.evaluate(f"() => ({expression})")

    def elements(self, selector: str) -> list[Element]:
        """Every element matching the CSS ``selector``, in document order."""
        scale = self.env.scale
        w, h = self.env.screen_size
        out = []
        for d in self.env.evaluate(_ELEMENTS_JS, selector):
            cx = css_to_pixel(d["px"], scale)
            cy = css_to_pixel(d["py"], scale)
            out.append(Element(
                tag=d["tag"], id=d["id"], classes=d["classes"], text=d["text"],
                box_css=(d["left"], d["top"], d["width"], d["height"]),
                center=(min(max(cx, 0), w - 1), min(max(cy, 0), h - 1)),
                visible=d["visible"], hit=d["hit"], checked=d["checked"], value=d["value"], focused=d["focused"],
            ))
        return out

    def visible(self, selector: str) -> list[Element]:
        """Matching elements that are rendered inside the viewport."""
        return [e for e in self.elements(selector) if e.visible]

    def one(self, selector: str, text: str | None = None) -> Element | None:
        """The first visible element matching ``selector`` (and exactly ``text``, if given),
        preferring one a click can reach."""
        matches = [el for el in self.visible(selector) if text is None or el.text == text]
        return next((el for el in matches if el.hit), matches[0] if matches else None)
