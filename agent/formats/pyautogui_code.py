"""Parse pyautogui-style code into actions with ``ast`` against a whitelist — never eval/exec.

Model text such as ``pyautogui.click(412, 88)\\ntime.sleep(1)`` is parsed with ``ast.parse``
and every statement must be one of:

- ``import pyautogui`` / ``import time`` (ignored), a bare string (a comment), ``pass``;
- a call of a whitelisted function (``CALLS``, plus any extra ones a format adds, such as
  OpenCUA's ``computer.terminate``) whose arguments are literals: numbers, strings, None,
  True/False, lists/tuples of those, and ``+ - * / //`` on numbers at most.

Anything else (names, attribute access, loops, assignments, ``os.system``...) is a
``ParseError`` naming the construct and the line. Several statements give several actions.

Semantics follow pyautogui: ``scroll(clicks)`` positive scrolls *up* (``Scroll.dy`` is
positive *down*, so ``dy = -clicks``); ``hscroll`` positive scrolls right. A call without a
position (``click()``, ``dragTo`` after ``moveTo``) uses the pointer position an earlier call in
the same reply set; a scroll with no known position happens at the screen centre.
``keyDown``/``keyUp`` pairs become ``Hotkey`` actions (``keyDown('shift'); press('a');
keyUp('shift')`` → ``Hotkey(('shift', 'a'))``); holding a key across a mouse action or past the
end of the reply cannot be expressed with ``envs.actions`` and is a ``ParseError``.

``ActionBuilder`` carries that pointer / held-key state; OSWorld ``computer_13`` reuses it.
"""

from __future__ import annotations

import ast
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from envs.actions import (Action, Click, Done, Drag, Fail, Hotkey, MouseDown, MouseUp, Move, Scroll,
                          TypeText, Wait)

from agent.formats.base import ParseError, fmt_number, make_action

PointMap = Callable[[Any, Any], tuple[int, int]]
_MAX_DEPTH = 16
_MAX_MAGNITUDE = 1e9
_MAX_PRESSES = 100
_BUTTONS = {"left": "left", "right": "right", "middle": "middle", "primary": "left", "secondary": "right"}


def literal_value(node: ast.AST, names: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """The value of a literal expression node; ``ParseError`` for anything else.

    ``names`` maps bare identifiers to constants (the native format accepts JSON's
    ``true``/``false``/``null``); no other name is ever looked up.
    """
    if depth > _MAX_DEPTH:
        raise ParseError("argument nesting is too deep; use plain numbers, strings and short lists")
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return _bounded(node.value)
    if isinstance(node, ast.Name) and names is not None and node.id in names:
        return names[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal_value(e, names, depth + 1) for e in node.elts]
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_hashable(literal_value(k, names, depth + 1)): literal_value(v, names, depth + 1)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _number(literal_value(node.operand, names, depth + 1))
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv)):
        a = _number(literal_value(node.left, names, depth + 1))
        b = _number(literal_value(node.right, names, depth + 1))
        if isinstance(node.op, (ast.Div, ast.FloorDiv)) and b == 0:
            raise ParseError("division by zero in an argument")
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda p, q: p + q, ast.Sub: lambda p, q: p - q, ast.Mult: lambda p, q: p * q,
            ast.Div: lambda p, q: p / q, ast.FloorDiv: lambda p, q: p // q}
        return _bounded(ops[type(node.op)](a, b))
    raise ParseError(f"arguments must be literals (numbers, strings, lists), not a {type(node).__name__} expression")


def _hashable(value: Any) -> Any:
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise ParseError("dictionary keys must be strings or numbers")
    return value


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParseError(f"arithmetic is only allowed on numbers, got {value!r}")
    return value


def _bounded(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise ParseError(f"numbers must be finite, got {value!r}")
        if abs(value) > _MAX_MAGNITUDE:
            raise ParseError(f"number {value!r} is too large for a screen coordinate or count")
    return value


class ActionBuilder:
    """Collects actions from pyautogui-semantics calls, tracking the pointer and held keys.

    ``point`` maps model coordinates to screen pixels (raising ``ParseError``);
    ``scroll_point`` is where a scroll with no known position happens.
    """

    def __init__(self, point: PointMap, scroll_point: tuple[int, int]) -> None:
        self.point = point
        self.scroll_point = scroll_point
        self.actions: list[Action] = []
        self.cursor: tuple[int, int] | None = None
        self.held: list[str] = []
        self._held_used = False

    def _add(self, action: Action) -> None:
        self.actions.append(action)

    def _no_keys_held(self, what: str) -> None:
        if self.held:
            raise ParseError(
                f"{what} while holding {self.held} cannot be expressed: only key combinations are "
                "supported; use hotkey('ctrl', 'c') style calls, and keyUp every key before mouse actions")

    def at(self, x: Any, y: Any, what: str) -> tuple[int, int]:
        """Resolve an optional model point: given → screen pixels; both None → current pointer."""
        if x is None and y is None:
            if self.cursor is None:
                raise ParseError(f"{what} needs x and y: no earlier call in this reply says where the pointer is")
            self._fold_move()
            return self.cursor
        if x is None or y is None:
            raise ParseError(f"{what} needs both x and y, got x={x!r}, y={y!r}")
        self.cursor = self.point(x, y)
        return self.cursor

    def _fold_move(self) -> bool:
        """Drop a trailing move to the pointer: an action there right after it does the same."""
        last = self.actions[-1] if self.actions else None
        if isinstance(last, Move) and (last.x, last.y) == self.cursor:
            self.actions.pop()
            return True
        return False

    def click(self, x: Any, y: Any, button: Any = "left", count: Any = 1, what: str = "click") -> None:
        """Click ``count`` times with ``button`` at (x, y) or at the pointer."""
        self._no_keys_held(what)
        px, py = self.at(x, y, what)
        self._add(make_action(Click, what, x=px, y=py, button=button_name(button), count=count))

    def move(self, x: Any, y: Any, what: str = "moveTo") -> None:
        """Move the pointer."""
        self._no_keys_held(what)
        px, py = self.at(x, y, what)
        self._add(Move(px, py))

    def drag_to(self, x: Any, y: Any, button: Any = "left", what: str = "dragTo") -> None:
        """Drag from the pointer to (x, y); a preceding ``Move`` to the start is folded in."""
        self._no_keys_held(what)
        btn = button_name(button)
        start = self.cursor
        tx, ty = self.at(x, y, what)
        if start is None:  # pointer unknown: press where it is, release at the target
            self._add(MouseDown(btn))  # type: ignore[arg-type]
            self._add(MouseUp(btn, tx, ty))  # type: ignore[arg-type]
            return
        last = self.actions[-1] if self.actions else None
        if isinstance(last, Move) and (last.x, last.y) == start:
            self.actions.pop()
        self._add(Drag(start[0], start[1], tx, ty, btn))  # type: ignore[arg-type]

    def mouse(self, down: bool, x: Any, y: Any, button: Any = "left") -> None:
        """Press (``down``) or release ``button``, at (x, y) if given."""
        what = "mouseDown" if down else "mouseUp"
        self._no_keys_held(what)
        cls = MouseDown if down else MouseUp
        if x is None and y is None and self._fold_move():  # moveTo(p); mouseDown() == mouseDown at p
            x, y = self.cursor  # type: ignore[misc]
            self._add(make_action(cls, what, button=button_name(button), x=x, y=y))
            return
        point = self.at(x, y, what) if (x is not None or y is not None) else (None, None)
        self._add(make_action(cls, what, button=button_name(button), x=point[0], y=point[1]))

    def scroll(self, x: Any, y: Any, dx: Any = 0, dy: Any = 0, what: str = "scroll") -> None:
        """Scroll by ``dx``/``dy`` notches (positive dy = down) at (x, y), the pointer or the centre."""
        self._no_keys_held(what)
        if x is None and y is None and self.cursor is None:
            px, py = self.scroll_point  # documented fallback: no position known at all
        else:
            px, py = self.at(x, y, what)  # at the pointer, a move right before it is folded in
        self._add(make_action(Scroll, what, x=px, y=py, dx=whole(dx, "scroll amount"), dy=whole(dy, "scroll amount")))

    def type_text(self, text: Any, what: str = "write") -> None:
        """Type ``text`` (a list of key names presses them one by one, as ``typewrite`` does)."""
        self._no_keys_held(what)
        if isinstance(text, list):
            for key in text:
                self.press([key], 1, what)
            return
        if not isinstance(text, str):
            raise ParseError(f"{what} needs a string to type, got {text!r}")
        self._add(make_action(TypeText, what, text=text))

    def press(self, keys: Any, presses: Any = 1, what: str = "press") -> None:
        """Press each key in ``keys`` (a name or list) ``presses`` times; with keys held, a chord."""
        names = [keys] if isinstance(keys, str) else keys
        if not isinstance(names, list) or not names or not all(isinstance(k, str) for k in names):
            raise ParseError(f"{what} needs a key name or a list of key names, got {keys!r}")
        count = whole(presses, "presses")
        if not 1 <= count <= _MAX_PRESSES:
            raise ParseError(f"{what} presses must be 1..{_MAX_PRESSES}, got {count}")
        for _ in range(count):
            for key in names:
                self._add(make_action(Hotkey, what, keys=tuple(self.held) + (key,)))
        self._held_used = self._held_used or bool(self.held)

    def hotkey(self, keys: Any, what: str = "hotkey") -> None:
        """Press ``keys`` together (plus any held keys)."""
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ParseError(f"{what} needs key names, e.g. hotkey('ctrl', 'c'), got {keys!r}")
        self._add(make_action(Hotkey, what, keys=tuple(self.held) + tuple(keys)))
        self._held_used = self._held_used or bool(self.held)

    def key_down(self, key: Any) -> None:
        """Start holding ``key`` (resolved when it is released)."""
        if not isinstance(key, str):
            raise ParseError(f"keyDown needs a key name, got {key!r}")
        if not self.held:
            self._held_used = False
        self.held.append(key)

    def key_up(self, key: Any) -> None:
        """Release ``key``; a chord nothing was pressed with becomes one ``Hotkey``."""
        if not isinstance(key, str) or key not in self.held:
            raise ParseError(f"keyUp({key!r}) has no matching keyDown; keys held: {self.held}")
        if not self._held_used:
            self._add(make_action(Hotkey, "keyDown/keyUp", keys=tuple(self.held)))
            self._held_used = True
        self.held.remove(key)

    def wait(self, seconds: Any = 1.0, what: str = "sleep") -> None:
        """Wait ``seconds``."""
        self._add(make_action(Wait, what, seconds=seconds))

    def done(self, answer: Any = None) -> None:
        """End the episode as a success."""
        self._add(make_action(Done, "done", answer=None if answer is None else str(answer)))

    def fail(self, reason: Any = "") -> None:
        """End the episode as a failure."""
        self._add(make_action(Fail, "fail", reason="" if reason is None else str(reason)))

    def finish(self) -> tuple[Action, ...]:
        """All actions; ``ParseError`` if keys are still held or nothing was done."""
        if self.held:
            raise ParseError(f"keyDown({self.held[0]!r}) has no matching keyUp; release every key you hold")
        return tuple(self.actions)


def button_name(button: Any) -> str:
    """pyautogui's button names (``primary``/``secondary`` too) → ``left``/``right``/``middle``."""
    if isinstance(button, str) and button.lower() in _BUTTONS:
        return _BUTTONS[button.lower()]
    raise ParseError(f"button must be 'left', 'right' or 'middle', got {button!r}")


def whole(value: Any, what: str) -> int:
    """An integer argument (``3`` or ``3.0``); ``ParseError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise ParseError(f"{what} must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class CallSpec:
    """One whitelisted function: its parameter names (positional order) and what it does.

    ``varargs``: all positional arguments go, as a list, to that parameter (``hotkey``).
    """

    params: tuple[str, ...]
    run: Callable[[ActionBuilder, dict[str, Any]], None]
    varargs: str | None = None


def _xy(a: dict[str, Any]) -> tuple[Any, Any]:
    x, y = a.get("x"), a.get("y")
    if isinstance(x, list) and y is None:  # click((x, y))
        if len(x) != 2:
            raise ParseError(f"a point must be (x, y), got {x!r}")
        x, y = x
    return x, y


_CLICK = ("x", "y", "clicks", "interval", "button", "duration", "tween", "logScreenshot", "_pause")
_MOVE = ("x", "y", "duration", "tween", "logScreenshot", "_pause")
_SCROLL = ("clicks", "x", "y", "logScreenshot", "_pause")

#: The whitelist: dotted name → spec. Nothing outside it is ever called or evaluated.
CALLS: dict[str, CallSpec] = {
    "pyautogui.click": CallSpec(_CLICK, lambda b, a: b.click(*_xy(a), a.get("button", "left"), a.get("clicks", 1), "click")),
    "pyautogui.doubleClick": CallSpec(("x", "y", "interval", "button", "duration", "tween"),
                                      lambda b, a: b.click(*_xy(a), a.get("button", "left"), 2, "doubleClick")),
    "pyautogui.tripleClick": CallSpec(("x", "y", "interval", "button", "duration", "tween"),
                                      lambda b, a: b.click(*_xy(a), a.get("button", "left"), 3, "tripleClick")),
    "pyautogui.rightClick": CallSpec(_MOVE, lambda b, a: b.click(*_xy(a), "right", 1, "rightClick")),
    "pyautogui.middleClick": CallSpec(_MOVE, lambda b, a: b.click(*_xy(a), "middle", 1, "middleClick")),
    "pyautogui.moveTo": CallSpec(_MOVE, lambda b, a: b.move(*_xy(a))),
    "pyautogui.dragTo": CallSpec(("x", "y", "duration", "tween", "button", "logScreenshot", "_pause", "mouseDownUp"),
                                 lambda b, a: b.drag_to(*_xy(a), a.get("button", "left"))),
    "pyautogui.mouseDown": CallSpec(("x", "y", "button", "duration", "tween", "logScreenshot", "_pause"),
                                    lambda b, a: b.mouse(True, *_xy(a), a.get("button", "left"))),
    "pyautogui.mouseUp": CallSpec(("x", "y", "button", "duration", "tween", "logScreenshot", "_pause"),
                                  lambda b, a: b.mouse(False, *_xy(a), a.get("button", "left"))),
    "pyautogui.scroll": CallSpec(_SCROLL, lambda b, a: b.scroll(a.get("x"), a.get("y"), 0, -whole(a.get("clicks"), "clicks"))),
    "pyautogui.vscroll": CallSpec(_SCROLL, lambda b, a: b.scroll(a.get("x"), a.get("y"), 0, -whole(a.get("clicks"), "clicks"))),
    "pyautogui.hscroll": CallSpec(_SCROLL, lambda b, a: b.scroll(a.get("x"), a.get("y"), whole(a.get("clicks"), "clicks"), 0)),
    "pyautogui.write": CallSpec(("message", "interval", "logScreenshot", "_pause"), lambda b, a: b.type_text(a.get("message"))),
    "pyautogui.typewrite": CallSpec(("message", "interval", "logScreenshot", "_pause"),
                                    lambda b, a: b.type_text(a.get("message"), "typewrite")),
    "pyautogui.press": CallSpec(("keys", "presses", "interval", "logScreenshot", "_pause"),
                                lambda b, a: b.press(a.get("keys"), a.get("presses", 1))),
    "pyautogui.hotkey": CallSpec(("keys", "interval", "logScreenshot", "_pause"), lambda b, a: b.hotkey(_flat_keys(a.get("keys"))),
                                 varargs="keys"),
    "pyautogui.keyDown": CallSpec(("key", "logScreenshot", "_pause"), lambda b, a: b.key_down(a.get("key"))),
    "pyautogui.keyUp": CallSpec(("key", "logScreenshot", "_pause"), lambda b, a: b.key_up(a.get("key"))),
    "time.sleep": CallSpec(("secs",), lambda b, a: b.wait(a.get("secs"))),
}


def _flat_keys(keys: Any) -> Any:
    if isinstance(keys, list) and len(keys) == 1 and isinstance(keys[0], list):  # hotkey(['ctrl', 'c'])
        return keys[0]
    return keys


_ALLOWED_IMPORTS = frozenset({"pyautogui", "time"})


def quiet_parse(source: str) -> ast.Module:
    """``ast.parse`` without the warnings model text triggers (invalid escape sequences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode="exec")


def parse_pyautogui_code(code: str, builder: ActionBuilder, extra: Mapping[str, CallSpec] | None = None) -> None:
    """Parse ``code`` statement by statement, feeding whitelisted calls into ``builder``."""
    calls = dict(CALLS, **(extra or {}))
    try:
        tree = quiet_parse(code)
    except SyntaxError as exc:
        raise ParseError(f"code is not valid Python ({exc.msg}, line {exc.lineno}); write one call per line, "
                         "e.g. pyautogui.click(412, 88)") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ParseError(f"code could not be parsed ({type(exc).__name__}); write short pyautogui calls") from None
    lines = code.splitlines()
    for stmt in tree.body:
        source = lines[stmt.lineno - 1].strip()[:80] if 0 < stmt.lineno <= len(lines) else ""
        try:
            _statement(stmt, calls, builder)
        except ParseError as exc:
            raise ParseError(f"line {stmt.lineno} `{source}`: {exc}") from None


def _statement(stmt: ast.stmt, calls: Mapping[str, CallSpec], builder: ActionBuilder) -> None:
    if isinstance(stmt, ast.Pass):
        return
    if isinstance(stmt, ast.Import):
        bad = [a.name for a in stmt.names if a.name not in _ALLOWED_IMPORTS or a.asname]
        if bad:
            raise ParseError(f"import of {bad} is not allowed; only `import pyautogui` and `import time`")
        return
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
        return  # a string statement is a comment
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        raise ParseError(f"{type(stmt).__name__} statements are not allowed; only calls such as "
                         "pyautogui.click(412, 88) or time.sleep(1)")
    call = stmt.value
    name = _dotted(call.func)
    spec = calls.get(name) if name else None
    if spec is None:
        allowed = ", ".join(sorted(calls))
        raise ParseError(f"`{name or type(call.func).__name__}` is not an allowed function; allowed: {allowed}")
    spec.run(builder, _bind(name, spec, call))  # type: ignore[arg-type]


def _dotted(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


def _bind(name: str, spec: CallSpec, call: ast.Call) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    positional = []
    for arg in call.args:
        if isinstance(arg, ast.Starred):
            raise ParseError(f"{name}: *arguments are not allowed; write the values out")
        positional.append(literal_value(arg))
    if spec.varargs is not None:
        bound[spec.varargs] = positional
    else:
        if len(positional) > len(spec.params):
            raise ParseError(f"{name} takes at most {len(spec.params)} positional arguments {spec.params}, "
                             f"got {len(positional)}")
        bound.update(zip(spec.params, positional))
    for kw in call.keywords:
        if kw.arg is None:
            raise ParseError(f"{name}: **arguments are not allowed; write the values out")
        if kw.arg not in spec.params:
            raise ParseError(f"{name} has no argument {kw.arg!r}; its arguments are {spec.params}")
        if kw.arg in bound:
            raise ParseError(f"{name} got argument {kw.arg!r} twice")
        bound[kw.arg] = literal_value(kw.value)
    return bound


def parse_code_actions(code: str, point: PointMap, scroll_point: tuple[int, int],
                       extra: Mapping[str, CallSpec] | None = None) -> tuple[Action, ...]:
    """Parse ``code`` into actions (``point`` maps model coordinates to the screen)."""
    builder = ActionBuilder(point, scroll_point)
    parse_pyautogui_code(code, builder, extra)
    return builder.finish()


def py_literal(text: str) -> str:
    """``text`` as a Python string literal that is safe inside Markdown fences and tag-delimited replies.

    Backticks and ``<`` are written as ``\\x60`` / ``\\x3c`` so a typed "```" or "</think>" cannot end
    the surrounding code block or section.
    """
    return repr(text).replace("`", "\\x60").replace("<", "\\x3c")


def _key_args(keys: tuple[str, ...]) -> str:
    return ", ".join(py_literal(k) for k in keys)


def format_code_line(action: Action, point: Callable[[int, int], tuple[float, float]]) -> list[str]:
    """One action as pyautogui code lines (``point`` maps screen pixels to model coordinates).

    ``Done``/``Fail`` have no pyautogui form; callers handle them before calling this.
    """
    def xy(x: int, y: int) -> str:
        mx, my = point(x, y)
        return f"x={fmt_number(mx)}, y={fmt_number(my)}"

    if isinstance(action, Click):
        fn = {1: "click", 2: "doubleClick", 3: "tripleClick"}[action.count]
        if action.button != "left":
            if action.count == 1 and action.button == "right":
                return [f"pyautogui.rightClick({xy(action.x, action.y)})"]
            if action.count == 1 and action.button == "middle":
                return [f"pyautogui.middleClick({xy(action.x, action.y)})"]
            return [f"pyautogui.{fn}({xy(action.x, action.y)}, button={action.button!r})"]
        return [f"pyautogui.{fn}({xy(action.x, action.y)})"]
    if isinstance(action, Move):
        return [f"pyautogui.moveTo({xy(action.x, action.y)})"]
    if isinstance(action, Drag):
        btn = "" if action.button == "left" else f", button={action.button!r}"
        return [f"pyautogui.moveTo({xy(action.x1, action.y1)})", f"pyautogui.dragTo({xy(action.x2, action.y2)}{btn})"]
    if isinstance(action, Scroll):
        out = []
        if action.dy:
            out.append(f"pyautogui.scroll({-action.dy}, {xy(action.x, action.y)})")
        if action.dx:
            out.append(f"pyautogui.hscroll({action.dx}, {xy(action.x, action.y)})")
        return out
    if isinstance(action, TypeText):
        return [f"pyautogui.write({py_literal(action.text)})"]
    if isinstance(action, Hotkey):
        if len(action.keys) == 1:
            return [f"pyautogui.press({py_literal(action.keys[0])})"]
        return [f"pyautogui.hotkey({_key_args(action.keys)})"]
    if isinstance(action, (MouseDown, MouseUp)):
        fn = "mouseDown" if isinstance(action, MouseDown) else "mouseUp"
        args = [] if action.x is None else [xy(action.x, action.y)]  # type: ignore[arg-type]
        if action.button != "left":
            args.append(f"button={action.button!r}")
        return [f"pyautogui.{fn}({', '.join(args)})"]
    if isinstance(action, Wait):
        seconds = action.seconds
        return [f"time.sleep({int(seconds) if seconds.is_integer() else repr(seconds)})"]
    raise TypeError(f"format_code_line does not handle {type(action).__name__}")


__all__ = ["ActionBuilder", "CALLS", "CallSpec", "PointMap", "button_name", "format_code_line", "literal_value",
           "parse_code_actions", "parse_pyautogui_code", "py_literal", "quiet_parse", "whole"]
