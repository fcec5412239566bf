"""Tokenizer: fixed special ids, exact round-trip, digit splitting, save/load, determinism."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from model.processing.tokenizer import (
    CORPUS_DIR,
    DEFAULT_TOKENIZER_FILE,
    TokenizerError,
    encode_text,
    load_tokenizer,
    train_tokenizer,
)
from model.special_tokens import SPECIAL_TOKENS, TOKEN_IDS

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def _shared():
    return load_tokenizer()


@pytest.fixture(scope="module")
def tok():
    return _shared()


def test_special_tokens_have_fixed_ids(tok) -> None:
    for i, text in enumerate(SPECIAL_TOKENS):
        assert tok.convert_tokens_to_ids(text) == i == TOKEN_IDS[text]
        assert tok(text, add_special_tokens=False)["input_ids"] == [i]
    assert tok.eos_token_id == TOKEN_IDS["<|endoftext|>"]
    assert tok.pad_token_id == TOKEN_IDS["<|pad|>"]


def test_shipped_tokenizer_size(tok) -> None:
    assert 1000 < len(tok) <= 4096  # fits the tiny model's 4096-row embedding
    assert DEFAULT_TOKENIZER_FILE.stat().st_size < 1_000_000


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_round_trip_any_unicode(s: str) -> None:
    tok = _shared()
    ids = tok(s, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=False) == s
    # as chat text (special-token strings kept as plain text) it round-trips even when skipping
    assert tok.decode(encode_text(tok, s), skip_special_tokens=True) == s


def test_special_strings_in_text_are_not_special(tok) -> None:
    ids = encode_text(tok, "a <|im_end|> b <think>")
    assert not set(ids) & set(range(len(SPECIAL_TOKENS)))
    assert tok.decode(ids) == "a <|im_end|> b <think>"


def test_digits_are_split_individually(tok) -> None:
    for text in ("(1034, 87)", "x=1920 y=1080", "2024"):
        pieces = [tok.decode([i]) for i in encode_text(tok, text)]
        digits = [p for p in pieces if any(c.isdigit() for c in p)]
        assert all(len(p.strip()) == 1 for p in digits), pieces
    # the same number tokenises the same wherever it appears
    a = encode_text(tok, "click(345, 12)")
    b = encode_text(tok, "x: 345")
    three_four_five = encode_text(tok, "345")
    assert a[2:5] == three_four_five or three_four_five in [a[i:i + 3] for i in range(len(a))]
    assert three_four_five == b[-3:]


def test_common_words_are_single_tokens(tok) -> None:
    for word in ("click", " button", " the", " scroll", "assistant"):
        assert len(encode_text(tok, word)) == 1, word


def test_save_and_autotokenizer_load_give_identical_ids(tok, tmp_path: Path) -> None:
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    mine = load_tokenizer(tmp_path)
    text = "<|im_user|>user<|im_middle|>Click OK at (120, 45) — naïve 😀<|im_end|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert mine(text, add_special_tokens=False)["input_ids"] == ids
    assert again.decode(ids, skip_special_tokens=False) == text


def test_training_is_deterministic_and_puts_specials_first(tmp_path: Path) -> None:
    files = sorted(CORPUS_DIR.glob("*.txt"))
    assert len(files) >= 5 and sum(f.stat().st_size for f in files) > 300_000
    small = [CORPUS_DIR / "prose.txt", CORPUS_DIR / "code.txt"]
    a, b = train_tokenizer(small, vocab_size=600), train_tokenizer(small, vocab_size=600)
    assert a.to_str() == b.to_str()
    assert [a.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)


def test_shipped_tokenizer_matches_training_script(tmp_path: Path) -> None:
    """scripts/train_tokenizer.py reproduces model/data/tokenizer.json byte for byte."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_tokenizer as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    corpus = tmp_path / "corpus"
    script.write_corpus(corpus)
    (corpus / "prose.txt").write_bytes((CORPUS_DIR / "prose.txt").read_bytes())
    for path in CORPUS_DIR.glob("*.txt"):
        assert (corpus / path.name).read_bytes() == path.read_bytes(), path.name
    out = tmp_path / "tokenizer.json"
    assert script.main(["--corpus", str(corpus), "--out", str(out)]) == 0
    assert out.read_bytes() == DEFAULT_TOKENIZER_FILE.read_bytes()


def test_bad_inputs_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="vocab_size"):
        train_tokenizer([CORPUS_DIR / "prose.txt"], vocab_size=100)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
