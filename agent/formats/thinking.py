"""Separate a model's thinking section from its answer.

Reasoning models wrap their chain of thought in ``<think>…</think>`` (the project's own
special tokens, ``model.special_tokens``). Replies come in four shapes, all handled:

- ``<think>reasoning</think>answer``           complete section(s) anywhere in the text;
- ``<think>reasoning`` (cut off, no end tag)   everything after the tag is thought, no answer;
- ``reasoning</think>answer``                  the chat template already opened the section;
- ``answer``                                   no thinking at all.

This module knows nothing about actions; formats call it before parsing their answer part.
"""

from __future__ import annotations

from dataclasses import dataclass

# The tokenizer's thinking markers (``model.special_tokens``); a test keeps the two in sync.
THINK_START = "<think>"
THINK_END = "</think>"


@dataclass(frozen=True)
class ThinkingSplit:
    """The result of ``split_thinking``.

    ``thought``: the thinking text (stripped), None when the reply had no thinking section.
    ``answer``: the rest of the reply (stripped).
    ``closed``: False when a thinking section was opened but never closed (truncated reply).
    """

    thought: str | None
    answer: str
    closed: bool = True


def split_thinking(text: str, start: str = THINK_START, end: str = THINK_END) -> ThinkingSplit:
    """Split ``text`` into its thinking sections and its answer (see the module docstring)."""
    if not start or not end:
        raise ValueError("thinking start and end markers must be non-empty strings")
    thoughts: list[str] = []
    answer: list[str] = []
    rest = text
    closed = True
    # An end tag before any start tag: the template opened the section for the model.
    first_end, first_start = rest.find(end), rest.find(start)
    if first_end != -1 and (first_start == -1 or first_end < first_start):
        thoughts.append(rest[:first_end])
        rest = rest[first_end + len(end):]
    while True:
        i = rest.find(start)
        if i == -1:
            answer.append(rest)
            break
        answer.append(rest[:i])
        rest = rest[i + len(start):]
        j = rest.find(end)
        if j == -1:
            thoughts.append(rest)
            closed = False
            break
        thoughts.append(rest[:j])
        rest = rest[j + len(end):]
    kept = [t.strip() for t in thoughts if t.strip()]
    had_section = bool(thoughts)
    thought = "\n\n".join(kept) if kept else ("" if had_section else None)
    joined = "".join(answer).replace(end, "")  # stray end tags are noise, not content
    return ThinkingSplit(thought=thought or None, answer=joined.strip(), closed=closed)


def join_thinking(thought: str | None, answer: str, start: str = THINK_START, end: str = THINK_END) -> str:
    """The inverse of ``split_thinking``: ``<think>thought</think>answer`` (no section for None/empty)."""
    if thought is None or not thought.strip():
        return answer
    return f"{start}{thought.strip()}{end}\n{answer}"


__all__ = ["THINK_END", "THINK_START", "ThinkingSplit", "join_thinking", "split_thinking"]
