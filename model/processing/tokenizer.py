"""pixelpilot's tokenizer: byte-level BPE trained locally, special tokens at fixed ids 0..12.

Design choices (and why):
- Byte-level BPE: every string round-trips exactly (no unknown token, no normalisation), which
  matters for typed text, file paths and code the agent copies off the screen.
- Digits are split one per token (``Digits(individual_digits=True)`` before the byte-level
  split). A coordinate like ``(1034, 87)`` always becomes the same digit tokens whatever
  digits precede or follow it, so the model learns numbers compositionally instead of
  memorising thousands of merged digit strings that a small vocabulary cannot afford.
- The special tokens of ``model.special_tokens`` are the first entries of the vocabulary, in
  that order, so ids 0..12 are fixed for the model, processor and training code.

The tokenizer is used through ``transformers.PreTrainedTokenizerFast`` (``load_tokenizer``),
so ``save_pretrained`` / ``AutoTokenizer.from_pretrained`` work on a saved directory. This
module knows nothing about images or chat roles (see ``chat.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from model.special_tokens import SPECIAL_TOKENS, TOKEN_IDS

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CORPUS_DIR = DATA_DIR / "corpus"
DEFAULT_TOKENIZER_FILE = DATA_DIR / "tokenizer.json"
DEFAULT_VOCAB_SIZE = 4096
MODEL_MAX_LENGTH = 131072


class TokenizerError(ValueError):
    """The tokenizer file or its special tokens do not match ``model.special_tokens``."""


def new_bpe() -> Tokenizer:
    """An untrained byte-level BPE with pixelpilot's pre-tokenizer and decoder."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(files: Sequence[Path | str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """Train the BPE on text ``files`` (read in the given order); deterministic for fixed input.

    The vocabulary holds the special tokens (ids 0..12), the 256 byte symbols, then merges.
    """
    minimum = len(SPECIAL_TOKENS) + 256
    if vocab_size <= minimum:
        raise TokenizerError(f"vocab_size must exceed {minimum} (specials + 256 bytes), got {vocab_size}")
    if not files:
        raise TokenizerError("no training files given; run scripts/train_tokenizer.py --write-corpus")
    tok = new_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_pieces(files), trainer)
    check_special_ids(tok)
    return tok


def _training_pieces(files: Sequence[Path | str]) -> Iterator[str]:
    """Corpus lines with special-token strings cut out, so no merge ever spans into one
    (the chat corpus is written in the real template, special tokens included)."""
    pattern = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
    for path in files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield from (piece for piece in pattern.split(line) if piece)


def check_special_ids(tok: Tokenizer) -> None:
    """Raise ``TokenizerError`` unless every special token sits at its fixed id."""
    for text, expected in TOKEN_IDS.items():
        got = tok.token_to_id(text)
        if got != expected:
            raise TokenizerError(
                f"special token {text!r} has id {got}, expected {expected}; retrain with "
                "scripts/train_tokenizer.py (special tokens must come first)"
            )


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a trained ``tokenizers.Tokenizer`` as a Hugging Face fast tokenizer."""
    check_special_ids(tok)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|pad|>")],
        clean_up_tokenization_spaces=False,  # keep decode(encode(s)) == s
        model_max_length=MODEL_MAX_LENGTH,
    )
    return hf


def load_tokenizer(path: Path | str | None = None) -> PreTrainedTokenizerFast:
    """The shipped tokenizer (default), a ``tokenizer.json`` file, or a saved directory."""
    path = Path(path) if path is not None else DEFAULT_TOKENIZER_FILE
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise TokenizerError(f"{path} has no tokenizer.json; save one with processor.save_pretrained")
        hf = PreTrainedTokenizerFast.from_pretrained(str(path))
        check_special_ids(hf.backend_tokenizer)
        return hf
    if not path.is_file():
        raise TokenizerError(f"tokenizer file {path} not found; run scripts/train_tokenizer.py")
    return wrap_tokenizer(Tokenizer.from_file(str(path)))


def encode_text(hf: PreTrainedTokenizerFast, text: str) -> list[int]:
    """Token ids of plain ``text``; special-token strings inside it stay ordinary text.

    Chat content (screen text, user prompts) must never be able to inject ``<|im_end|>`` or a
    media token, so markup is produced only by the chat template, never parsed from text.
    """
    if not text:
        return []
    return list(hf(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
