"""Text-only data for the pre-training mix and long-context documents.

- ``corpus_documents``: the shipped corpus (``model/data/corpus/*.txt``: prose, chat, code,
  GUI actions, instructions, sentences), one document per blank-line-separated block.
- ``generated_documents``: text made here, deterministic from a seed: descriptions of
  synthetic screens (``gui_samples.caption_text`` without rendering), how-to paragraphs that
  pair a task with native actions, and small arithmetic drills.
- ``text_samples``: documents tokenised, each ending in ``<|endoftext|>``, cut into pieces of at
  most ``max_tokens``; loss on every token.
- ``long_text_samples``: documents concatenated (separated by ``<|endoftext|>``) into one
  sequence of exactly ``length`` tokens, each with a *pass key* stated near the start and
  asked for at the end, so the sample needs its whole context (long-context activation).

This module knows nothing about images or packing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from model.processing import Processor
from model.processing.tokenizer import CORPUS_DIR, encode_text
from model.special_tokens import EOS_TOKEN_ID
from training.data.gui_samples import caption_text
from training.data.synthetic import layout

Sample = dict[str, Any]
_TASKS = (("save the document", ('hotkey(keys=["ctrl", "s"])',)),
          ("copy the selected text", ('hotkey(keys=["ctrl", "c"])',)),
          ("search for {w}", ("click(x={x}, y={y})", 'type(text="{w}\\n")')),
          ("rename the file to {w}.txt", ("click(x={x}, y={y}, button=\"right\")", 'type(text="{w}.txt\\n")')),
          ("scroll down to the footer", ("scroll(x={x}, y={y}, dy=5)",)),
          ("close the dialog", ("click(x={x}, y={y})",)))
_WORDS = ("garden", "invoice", "meeting", "river", "photos", "budget", "kernel", "recipe", "ticket", "planet")


@lru_cache(maxsize=4)
def corpus_documents(corpus_dir: Path = CORPUS_DIR) -> tuple[str, ...]:
    """Blank-line-separated blocks of every ``*.txt`` under ``corpus_dir`` (sorted by file name)."""
    files = sorted(Path(corpus_dir).glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no *.txt corpus files in {corpus_dir}; pass the directory of the text corpus")
    docs: list[str] = []
    for path in files:
        blocks = path.read_text(encoding="utf-8").split("\n\n")
        docs += [b.strip() for b in blocks if b.strip()]
    return tuple(docs)


def _howto(rng: random.Random) -> str:
    task, actions = rng.choice(_TASKS)
    word = rng.choice(_WORDS)
    x, y = rng.randint(0, 1279), rng.randint(0, 799)
    steps = "\n".join(a.format(x=x, y=y, w=word) for a in actions)
    return f"To {task.format(w=word)}, the agent writes:\n{steps}\nand then checks the screen again."


def _arithmetic(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(3, 8)):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice("+-*")
        value = a + b if op == "+" else a - b if op == "-" else a * b
        lines.append(f"{a} {op} {b} = {value}")
    return "\n".join(lines)


def generated_documents(count: int, seed: int = 0) -> list[str]:
    """``count`` generated documents (screen descriptions, how-tos, arithmetic), deterministic."""
    rng = random.Random(seed)
    makers = (lambda: caption_text(layout(rng.randrange(1 << 30))), lambda: _howto(rng), lambda: _arithmetic(rng))
    return [makers[i % len(makers)]() for i in range(count)]


def _tokenize(processor: Processor, text: str) -> list[int]:
    return encode_text(processor.tokenizer, text)


def text_samples(processor: Processor | None = None, *, max_tokens: int = 512, generated: int = 300,
                 seed: int = 0, corpus_dir: Path = CORPUS_DIR) -> Iterator[Sample]:
    """Corpus + ``generated`` documents, shuffled by ``seed``, as samples of ≤ ``max_tokens`` tokens."""
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
    processor = processor or Processor.default()
    docs = list(corpus_documents(corpus_dir)) + generated_documents(generated, seed)
    random.Random(seed).shuffle(docs)
    for d, doc in enumerate(docs):
        ids = _tokenize(processor, doc) + [EOS_TOKEN_ID]
        for k, start in enumerate(range(0, len(ids), max_tokens)):
            piece = ids[start:start + max_tokens]
            if len(piece) >= 2:
                yield {"input_ids": piece, "labels": list(piece), "id": f"text:{seed}:{d}:{k}"}


def long_text_sample(processor: Processor, length: int, seed: int, corpus_dir: Path = CORPUS_DIR) -> Sample:
    """One document of exactly ``length`` tokens that ends by recalling a pass key from its start."""
    rng = random.Random(seed)
    key = f"{rng.randrange(10**5):05d}"
    head = _tokenize(processor, f"Remember this: the pass key is {key}.\n")
    tail = _tokenize(processor, f"\nWhat is the pass key? The pass key is {key}.") + [EOS_TOKEN_ID]
    if len(head) + len(tail) >= length:
        raise ValueError(f"length {length} is too short for a long document; use at least {len(head) + len(tail) + 1}")
    docs = corpus_documents(corpus_dir)
    body: list[int] = []
    room = length - len(head) - len(tail)
    while len(body) < room:
        body += _tokenize(processor, rng.choice(docs)) + [EOS_TOKEN_ID]
    ids = head + body[:room] + tail
    return {"input_ids": ids, "labels": list(ids), "id": f"long-text:{length}:{seed}"}


def long_text_samples(processor: Processor | None = None, *, length: int = 4096, count: int | None = 64,
                      seed: int = 0, corpus_dir: Path = CORPUS_DIR) -> Iterator[Sample]:
    """``count`` long documents (endless when None) of ``length`` tokens each."""
    processor = processor or Processor.default()
    i = 0
    while count is None or i < count:
        yield long_text_sample(processor, length, seed + i, corpus_dir)
        i += 1


__all__ = ["corpus_documents", "generated_documents", "long_text_sample", "long_text_samples", "text_samples"]
