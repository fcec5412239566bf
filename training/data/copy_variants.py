"""Copy variants: recorded steps that type a quoted phrase of the task, re-written with new phrases.

MiniWoB-style tasks quote what must be typed (``Enter "Sergio" into the text field``). A small
model trained on a few hundred episodes learns the names it saw instead of copying from the
instruction. For every episode whose instruction quotes phrases and which types them, this
module writes ``variants`` new samples per typing step: each quoted phrase is replaced by a
random phrase of the same shape (capitalised name, lower-case word, password-like mix) in the
instruction, in the typed text (keeping a lower/upper-case transform the task asked for) and
in the earlier replies of the history. The screenshot is the recorded one (taken before the
text was typed, so it does not show the phrase). Deterministic from ``seed`` and the episode id.

What this module does not do: pick which runs to read (``training.data.sft``), packing.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import string
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from envs.actions import Action, TypeText
from model.processing import Processor
from trajectories import Episode, Step
from training.data.sft import EpisodeRewrite, Sample, SFTConfig, episode_samples, run_episodes

_QUOTED = re.compile(r'"([^"\\]+)"')


def quoted_phrases(instruction: str) -> list[str]:
    """The distinct double-quoted phrases of an instruction, in order."""
    return list(dict.fromkeys(_QUOTED.findall(instruction)))


def random_phrase(like: str, rng: random.Random) -> str:
    """A random phrase shaped like ``like``: same character classes, similar length (2–12)."""
    n = max(2, min(12, len(like) + rng.randint(-2, 2)))
    if like.isalpha() and like[:1].isupper() and like[1:].islower():
        return rng.choice(string.ascii_uppercase) + "".join(rng.choices(string.ascii_lowercase, k=n - 1))
    if like.isalpha() and like.islower():
        return "".join(rng.choices(string.ascii_lowercase, k=n))
    if like.isalpha() and like.isupper():
        return "".join(rng.choices(string.ascii_uppercase, k=n))
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def rewrite_typed(text: str, mapping: Mapping[str, str]) -> str | None:
    """``text`` with every phrase of ``mapping`` replaced (also its lower/upper-case form); None if none occurs."""
    out, hit = text, False
    for old, new in mapping.items():
        for src, dst in ((old, new), (old.lower(), new.lower()), (old.upper(), new.upper())):
            if src and src in out:
                out, hit = out.replace(src, dst), True
                break
    return out if hit else None


def _rewrite_instruction(instruction: str, mapping: Mapping[str, str]) -> str:
    return _QUOTED.sub(lambda m: f'"{mapping.get(m.group(1), m.group(1))}"', instruction)


def _seed(seed: int, episode_id: str, variant: int) -> int:
    return zlib.crc32(f"{seed}:{episode_id}:{variant}".encode())


def episode_copy_variants(episode: Episode, processor: Processor, config: SFTConfig = SFTConfig(),
                          variants: int = 4, seed: int = 0) -> Iterator[Sample]:
    """``variants`` re-written samples per step of ``episode`` that types a quoted phrase.

    Built by ``episode_samples`` (the same layout as every SFT sample) with an ``EpisodeRewrite``;
    thoughts are left out, since the recorded ones name the old phrases.
    """
    phrases = quoted_phrases(episode.meta.instruction)
    if not phrases or variants <= 0:
        return
    typing = {s.index for s in episode.steps if s.screenshot is not None and _types_a_phrase(s, phrases)}
    if not typing:
        return
    plain = dataclasses.replace(config, include_thoughts=False)
    for v in range(variants):
        rng = random.Random(_seed(seed, episode.meta.episode_id, v))
        mapping = {p: random_phrase(p, rng) for p in phrases}
        rewrite = EpisodeRewrite(instruction=_rewrite_instruction(episode.meta.instruction, mapping),
                                 action=functools.partial(_rewritten, mapping=mapping),
                                 is_target=lambda step: step.index in typing, id_suffix=f":copy{v}")
        yield from episode_samples(episode, processor, plain, rewrite=rewrite)


def _types_a_phrase(step: Step, phrases: Sequence[str]) -> bool:
    action = step.parsed_action()
    return isinstance(action, TypeText) and rewrite_typed(action.text, {p: p for p in phrases}) is not None


def _rewritten(action: Action | None, mapping: Mapping[str, str]) -> Action | None:
    if isinstance(action, TypeText):
        text = rewrite_typed(action.text, mapping)
        if text is not None:
            return dataclasses.replace(action, text=text)
    return action


def copy_variant_samples(runs: Path | str | Sequence[Path | str], processor: Processor | None = None,
                         config: SFTConfig = SFTConfig(), variants: int = 4, seed: int = 0) -> Iterator[Sample]:
    """Copy variants of every episode of ``runs`` (filters and layout from ``config``)."""
    processor = processor or Processor.default()
    for episode in run_episodes(runs, config):
        yield from episode_copy_variants(episode, processor, config, variants, seed)


__all__ = ["copy_variant_samples", "episode_copy_variants", "quoted_phrases", "random_phrase", "rewrite_typed"]
