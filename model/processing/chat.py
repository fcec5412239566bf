"""The pixelpilot chat template: OpenAI-style messages → a flat list of typed segments.

Layout (``CHAT_FORMAT`` = "pixelpilot-chat-v1"; Kimi-VL-like, see ``model.special_tokens``)::

    <|im_system|>system<|im_middle|>You are ...<|im_end|>
    <|im_user|>user<|im_middle|>Look: <|media_start|><|media_pad|>×N<|media_end|>Click OK.<|im_end|>
    <|im_assistant|>assistant<|im_middle|><think>reasoning</think>answer<|im_end|>

Markup is produced only here, as ``Special`` segments; text content is always ordinary text,
so a screen that shows the string ``<|im_end|>`` cannot inject a turn boundary. An assistant
turn's reasoning comes from its ``reasoning_content`` (or ``thinking``) field, or from inline
``<think>…</think>`` at the start of its text. Segments of assistant turns after the role
header (reasoning, answer and the closing ``<|im_end|>``) are ``trainable``: the loss mask.

``CHAT_TEMPLATE_JINJA`` renders the same text (an image as a single ``<|media_pad|>``) for
tools that only know Hugging Face ``apply_chat_template``. This module knows nothing about
token ids of text or about pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

CHAT_FORMAT = "pixelpilot-chat-v1"
ROLES: tuple[str, ...] = ("system", "user", "assistant")
_ROLE_TOKEN = {"system": "<|im_system|>", "user": "<|im_user|>", "assistant": "<|im_assistant|>"}
THINK_START, THINK_END = "<think>", "</think>"


class ChatFormatError(ValueError):
    """A message list does not follow the OpenAI chat format this template accepts."""


@dataclass(frozen=True)
class Special:
    """One special token, by its text (e.g. ``<|im_end|>``)."""

    token: str
    trainable: bool = False


@dataclass(frozen=True)
class Text:
    """Ordinary text, tokenised with special-token strings treated as plain text."""

    text: str
    trainable: bool = False


@dataclass(frozen=True)
class ImageSlot:
    """An image placeholder; ``source`` is the inline image of the part, or None (take from ``images``)."""

    source: Any = None
    trainable: bool = False


Segment = Union[Special, Text, ImageSlot]


def render(messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = False,
           thinking: bool | None = None) -> list[Segment]:
    """Segments of one conversation.

    ``add_generation_prompt`` appends the assistant header; then ``thinking=True`` opens a
    ``<think>`` section, ``thinking=False`` adds an empty one (answer directly), ``None``
    leaves the choice to the model.
    """
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence) or not messages:
        raise ChatFormatError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out: list[Segment] = []
    for i, msg in enumerate(messages):
        out.extend(_render_message(i, msg))
    if add_generation_prompt:
        out += [Special(_ROLE_TOKEN["assistant"]), Text("assistant"), Special("<|im_middle|>")]
        if thinking is True:
            out.append(Special(THINK_START))
        elif thinking is False:
            out += [Special(THINK_START), Special(THINK_END)]
    return out


def _render_message(index: int, msg: Mapping[str, Any]) -> list[Segment]:
    if not isinstance(msg, Mapping):
        raise ChatFormatError(f"message {index} must be a dict, got {type(msg).__name__}")
    role = msg.get("role")
    if role not in ROLES:
        raise ChatFormatError(f"message {index} has role {role!r}; use one of {ROLES}")
    train = role == "assistant"
    out: list[Segment] = [Special(_ROLE_TOKEN[role]), Text(role), Special("<|im_middle|>")]
    parts = _content_parts(index, msg.get("content"))
    reasoning = msg.get("reasoning_content", msg.get("thinking"))
    if role == "assistant":
        if reasoning is None and parts and isinstance(parts[0], Text):
            reasoning, answer = split_thinking(parts[0].text)
            if reasoning is not None:
                parts = ([Text(answer)] if answer else []) + parts[1:]
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise ChatFormatError(f"message {index}: reasoning_content must be a string")
            out += [Special(THINK_START, True), Text(reasoning, True), Special(THINK_END, True)]
    elif reasoning is not None:
        raise ChatFormatError(f"message {index}: only assistant messages can carry reasoning_content")
    for part in parts:
        if isinstance(part, ImageSlot) and role != "user":
            raise ChatFormatError(f"message {index}: images are only accepted in user messages")
        out.append(_with_trainable(part, train))
    out.append(Special("<|im_end|>", train))
    return out


def _with_trainable(seg: Segment, trainable: bool) -> Segment:
    if isinstance(seg, Text):
        return Text(seg.text, trainable)
    if isinstance(seg, ImageSlot):
        return ImageSlot(seg.source, trainable)
    return Special(seg.token, trainable)


def _content_parts(index: int, content: Any) -> list[Segment]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    if not isinstance(content, Sequence):
        raise ChatFormatError(f"message {index}: content must be a string or a list of parts")
    parts: list[Segment] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise ChatFormatError(f"message {index} part {j}: text parts need a string 'text'")
            if text:
                parts.append(Text(text))
        elif kind == "image":
            parts.append(ImageSlot(part.get("image")))
        elif kind == "image_url":
            url = part.get("image_url")
            url = url.get("url") if isinstance(url, Mapping) else url
            if not isinstance(url, str):
                raise ChatFormatError(f"message {index} part {j}: image_url parts need {{'url': 'data:image/...'}}")
            parts.append(ImageSlot(url))
        else:
            raise ChatFormatError(
                f"message {index} part {j}: unknown part {part!r}; use {{'type': 'text', 'text': ...}}, "
                "{'type': 'image'} or {'type': 'image_url', 'image_url': {'url': 'data:...'}}"
            )
    return parts


def split_thinking(text: str) -> tuple[str | None, str]:
    """Split ``"<think>r</think>answer"`` into ``("r", "answer")``; no section → ``(None, text)``.

    A leading ``<think>`` is optional (a generation prompt may already have opened it); an
    unclosed section counts as all reasoning with an empty answer.
    """
    stripped = text.lstrip()
    opened = stripped.startswith(THINK_START)
    body = stripped[len(THINK_START):] if opened else text
    if THINK_END in body:
        reasoning, _, answer = body.partition(THINK_END)
        return reasoning, answer
    if opened:
        return body, ""
    return None, text


def segments_to_text(segments: Sequence[Segment], *, image_placeholder: str = "<|media_pad|>") -> str:
    """The template text of ``segments``; each image as start + ``image_placeholder`` + end."""
    out = []
    for seg in segments:
        if isinstance(seg, Special):
            out.append(seg.token)
        elif isinstance(seg, Text):
            out.append(seg.text)
        else:
            out.append(f"<|media_start|>{image_placeholder}<|media_end|>")
    return "".join(out)


# Same text as segments_to_text(render(...)) for messages whose parts are text/image and
# whose reasoning is given as reasoning_content (checked in the tests).
CHAT_TEMPLATE_JINJA = (
    "{%- for m in messages -%}"
    "{{- '<|im_' + m['role'] + '|>' + m['role'] + '<|im_middle|>' -}}"
    "{%- if m.get('reasoning_content') is not none -%}"
    "{{- '<think>' + m['reasoning_content'] + '</think>' -}}{%- endif -%}"
    "{%- if m['content'] is string -%}{{- m['content'] -}}"
    "{%- elif m['content'] is not none -%}{%- for c in m['content'] -%}"
    "{%- if c['type'] == 'text' -%}{{- c['text'] -}}"
    "{%- else -%}{{- '<|media_start|><|media_pad|><|media_end|>' -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_assistant|>assistant<|im_middle|>' -}}{%- endif -%}"
)
